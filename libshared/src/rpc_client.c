/* rpc_client.c - the calling side of request/reply over nng: calls made
 * while the client's requests are all awaiting replies queue and go out
 * together as one batch (msg.h has the wire format), each call keeping its
 * own timeout and outcome.
 *
 * One file past 600 lines, on purpose: the queue, the request slots, the
 * deadline list and its timer thread all move a call between states under
 * the one client lock, and each step's correctness rests on the others'
 * (a call is settled exactly once, by its reply, its deadline or the
 * client's close). Split, that lock discipline would span files. */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nng_dial.h"
#include "shared/buf.h"
#include "shared/log.h"
#include "shared/msg.h"
#include "shared/msgmac.h"
#include "shared/rpc.h"
#include "shared/util.h"

#define RPC_DEFAULT_INFLIGHT  4
#define RPC_DEFAULT_MAX_CALLS 64
#define RPC_DEFAULT_MAX_BYTES (256u * 1024u)

static sh_rpc_batch_opts rpc_defaults = {RPC_DEFAULT_INFLIGHT, RPC_DEFAULT_MAX_CALLS,
                                         RPC_DEFAULT_MAX_BYTES};

typedef enum { CALL_QUEUED, CALL_SENT, CALL_DONE } rpc_call_state;

/* A call from the moment it is made until its outcome is handed over and
 * no request refers to it any more. Guarded by the client's lock. */
typedef struct rpc_call rpc_call;
struct rpc_call {
    rpc_call *next;          /* in the queue, or the free list */
    rpc_call *tprev, *tnext; /* in the deadline list until done */
    rpc_call_state state;
    int closed_here; /* failed by sh_rpc_client_free */
    uint64_t id;
    int timeout_ms;
    int64_t deadline;
    sh_rpc_done_fn cb;
    void *arg;
    char op[SH_OP_MAX + 1];
    sh_buf env; /* the encoded envelope */
};

/* A request slot: one nng context with its aio, carrying one request (a
 * single call or a batch) at a time. There are `inflight` of them. */
typedef struct rpc_slot rpc_slot;
struct rpc_slot {
    sh_rpc_client *c;
    nng_ctx ctx;
    nng_aio *aio;
    int receiving;
    int64_t deadline; /* the latest deadline of its calls */
    rpc_call **calls;
    size_t n, cap;
    rpc_slot *next_free;
    unsigned char nonce[SH_MSGMAC_NONCE_BYTES]; /* of the request out, when signed */
};

struct sh_rpc_client {
    nng_socket sock;
    int sock_open;
    int timeout_ms;
    sh_msg_limits lim;
    sh_msgmac_conf mac;
    sh_rpc_batch_opts batch;
    uint64_t next_id; /* atomic */
    pthread_mutex_t lock;
    pthread_cond_t idle;  /* busy == 0 */
    pthread_cond_t timer; /* wakes the timer thread */
    int busy;             /* slots carrying a request */
    int closing;
    rpc_call *qhead, *qtail; /* queued, in arrival order */
    rpc_call *thead, *ttail; /* not done, by deadline */
    rpc_call *free_calls;
    rpc_slot *slots;
    int nslots;
    rpc_slot *free_slots;
    int64_t timer_wake; /* when the timer thread wakes next (INT64_MAX: not planned) */
    pthread_t timer_thread;
    int timer_started;
};

void sh_rpc_batch_defaults(const sh_rpc_batch_opts *o)
{
    if (o->inflight > 0)
        rpc_defaults.inflight = o->inflight;
    if (o->max_calls > 0)
        rpc_defaults.max_calls = o->max_calls;
    if (o->max_bytes > 0)
        rpc_defaults.max_bytes = o->max_bytes;
}

static int rpc_err_from_nng(int rv)
{
    switch (rv) {
    case NNG_ETIMEDOUT:
        return SH_ETIMEDOUT;
    case NNG_ECLOSED:
    case NNG_ECANCELED:
        return SH_ECLOSED;
    case NNG_ENOMEM:
        return SH_ENOMEM;
    case NNG_EMSGSIZE:
        return SH_ETOOBIG;
    default:
        return SH_EUNAVAIL;
    }
}

/* ---- call bookkeeping (client lock held) ---------------------------------- */

static void rpc_timer_insert(sh_rpc_client *c, rpc_call *k)
{
    /* Calls mostly share one timeout, so a new one usually goes last. */
    rpc_call *after = c->ttail;
    while (after && after->deadline > k->deadline)
        after = after->tprev;
    k->tprev = after;
    k->tnext = after ? after->tnext : c->thead;
    if (k->tnext)
        k->tnext->tprev = k;
    else
        c->ttail = k;
    if (after)
        after->tnext = k;
    else
        c->thead = k;
    /* Wake the timer thread only if it would sleep past this deadline: it
     * sleeps on after the calls it slept for are done, so with one timeout
     * for every call it wakes about once per timeout, not once per call. */
    if (k->deadline < c->timer_wake) {
        c->timer_wake = k->deadline;
        pthread_cond_signal(&c->timer);
    }
}

static void rpc_timer_remove(sh_rpc_client *c, rpc_call *k)
{
    if (k->tprev)
        k->tprev->tnext = k->tnext;
    else
        c->thead = k->tnext;
    if (k->tnext)
        k->tnext->tprev = k->tprev;
    else
        c->ttail = k->tprev;
    k->tprev = k->tnext = NULL;
}

/* rpc_call_settle marks k done; it returns 1 if this caller is the one to
 * hand over the outcome (the call was not done already). */
static int rpc_call_settle(sh_rpc_client *c, rpc_call *k)
{
    if (k->state == CALL_DONE)
        return 0;
    k->state = CALL_DONE;
    rpc_timer_remove(c, k);
    return 1;
}

static void rpc_call_put(sh_rpc_client *c, rpc_call *k)
{
    sh_buf_reset(&k->env);
    if (k->env.cap > 64 * 1024)
        sh_buf_fini(&k->env);
    k->next = c->free_calls;
    c->free_calls = k;
}

/* ---- requests ----------------------------------------------------------- */

static void rpc_slot_send(rpc_slot *s);

/* rpc_fill moves queued calls into slot s, oldest first, within the caps;
 * calls already done (timed out while queued) are freed on the way. It
 * returns the number taken. */
static size_t rpc_fill(sh_rpc_client *c, rpc_slot *s)
{
    size_t bytes = 0;
    s->n = 0;
    s->deadline = 0;
    while (c->qhead && s->n < (size_t)c->batch.max_calls) {
        rpc_call *k = c->qhead;
        if (k->state == CALL_DONE) {
            c->qhead = k->next;
            rpc_call_put(c, k);
            continue;
        }
        if (s->n && bytes + k->env.len > c->batch.max_bytes)
            break;
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 8;
            rpc_call **calls = realloc(s->calls, cap * sizeof *calls);
            if (!calls)
                break; /* the rest waits for the next request */
            s->calls = calls;
            s->cap = cap;
        }
        c->qhead = k->next;
        k->next = NULL;
        k->state = CALL_SENT;
        bytes += k->env.len;
        if (k->deadline > s->deadline)
            s->deadline = k->deadline;
        s->calls[s->n++] = k;
    }
    if (!c->qhead)
        c->qtail = NULL;
    return s->n;
}

/* rpc_complete hands outcome rc/result/err to call i of slot s (result is
 * freed if the call is done already). */
static void rpc_complete(sh_rpc_client *c, rpc_call *k, int rc, sh_val *result, const sh_error *err)
{
    pthread_mutex_lock(&c->lock);
    int mine = rpc_call_settle(c, k);
    pthread_mutex_unlock(&c->lock);
    if (mine)
        k->cb(k->arg, rc, result, err);
    else
        sh_val_free(result);
}

/* rpc_decode_one turns reply envelope data into the outcome of call k. */
static void rpc_decode_one(sh_rpc_client *c, rpc_call *k, const void *data, size_t len)
{
    sh_error err;
    sh_error_clear(&err);
    sh_reply_env env;
    int rc = sh_reply_decode(data, len, &c->lim, &env, &err);
    if (rc) {
        sh_error_set(&err, SH_EPROTO, "bad reply to %s: %s", k->op, err.msg);
        rpc_complete(c, k, SH_EPROTO, NULL, &err);
        return;
    }
    if (env.id != k->id && env.id != 0) {
        sh_reply_env_fini(&env);
        sh_error_set(&err, SH_EPROTO, "reply to %s carries id %llu, expected %llu", k->op,
                     (unsigned long long)env.id, (unsigned long long)k->id);
        rpc_complete(c, k, SH_EPROTO, NULL, &err);
        return;
    }
    if (!env.ok) {
        sh_error_set(&err, env.code, "%s", env.message);
        rpc_complete(c, k, env.code, NULL, &err);
        return;
    }
    rpc_complete(c, k, SH_OK, env.result, &err);
}

/* rpc_slot_fail fails every call of slot s with rc. */
static void rpc_slot_fail(rpc_slot *s, int rc, const char *what, int rv)
{
    for (size_t i = 0; i < s->n; i++) {
        sh_error err;
        rpc_call *k = s->calls[i];
        if (rc == SH_ETIMEDOUT)
            sh_error_set(&err, rc, "no reply to %s within %d ms", k->op, k->timeout_ms);
        else
            sh_error_set(&err, rc, "call %s %s: %s", k->op, what,
                         rv ? nng_strerror(rv) : sh_strerror(rc));
        rpc_complete(s->c, k, rc, NULL, &err);
    }
}

/* rpc_slot_refused fails every call of slot s with why (already set). */
static void rpc_slot_refused(rpc_slot *s, const sh_error *why)
{
    for (size_t i = 0; i < s->n; i++) {
        sh_error err;
        sh_error_set(&err, why->code, "call %s: %s", s->calls[i]->op, why->msg);
        rpc_complete(s->c, s->calls[i], why->code, NULL, &err);
    }
}

/* rpc_reply_open checks the MAC of reply body (narrowing it to the reply
 * inside); on failure it fails the calls of slot s and returns non-zero.
 * A server refuses an unauthenticated call with an unsigned reply: its
 * words are kept for the error, though the call fails whatever they say. */
static int rpc_reply_open(rpc_slot *s, const void **body, size_t *len)
{
    sh_rpc_client *c = s->c;
    sh_error err;
    sh_error_clear(&err);
    if (sh_msgmac_open(&c->mac, SH_MSGMAC_REPLY, NULL, sh_now_ms(), *body, *len, s->nonce, NULL,
                       body, len, &err) == SH_OK)
        return SH_OK;
    sh_reply_env env;
    sh_error derr;
    if (!sh_msgmac_is_signed(*body, *len) &&
        sh_reply_decode(*body, *len, &c->lim, &env, &derr) == SH_OK) {
        if (!env.ok)
            sh_error_set(&err, SH_EAUTH, "refused by the service: %s", env.message);
        else
            sh_error_set(&err, SH_EAUTH, "the reply carries no MAC");
        sh_reply_env_fini(&env);
    }
    sh_msgmac_log_refusal("rpc", &err);
    rpc_slot_refused(s, &err);
    return SH_EAUTH;
}

/* rpc_slot_reply hands out the replies in message m (freed here). */
static void rpc_slot_reply(rpc_slot *s, nng_msg *m)
{
    sh_rpc_client *c = s->c;
    const void *body = nng_msg_body(m);
    size_t len = nng_msg_len(m);
    if (c->mac.on && rpc_reply_open(s, &body, &len) != SH_OK) {
        nng_msg_free(m);
        return;
    }
    if (s->n == 1 && !sh_batch_is(body, len)) {
        rpc_decode_one(c, s->calls[0], body, len);
    } else if (!sh_batch_is(body, len)) {
        /* The server refused the batch as a whole: the reply says why. */
        sh_reply_env env;
        sh_error err;
        sh_error_clear(&err);
        int rc = sh_reply_decode(body, len, &c->lim, &env, &err);
        if (rc == SH_OK && !env.ok)
            rpc_slot_fail(s, env.code, "refused", 0);
        else
            rpc_slot_fail(s, SH_EPROTO, "got a single reply to a batch", 0);
        if (rc == SH_OK)
            sh_reply_env_fini(&env);
    } else {
        sh_slice *items = NULL;
        size_t n = 0;
        sh_error err;
        if (sh_batch_split(body, len, &items, &n, &err) != SH_OK || n != s->n) {
            rpc_slot_fail(s, SH_EPROTO, "got a malformed batch reply", 0);
        } else {
            for (size_t i = 0; i < n; i++)
                rpc_decode_one(c, s->calls[i], items[i].data, items[i].len);
        }
        free(items);
    }
    nng_msg_free(m);
}

/* rpc_slot_next frees the calls of slot s and sends the next batch from
 * the queue on it, or puts it back on the free list. */
static void rpc_slot_next(rpc_slot *s)
{
    sh_rpc_client *c = s->c;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < s->n; i++)
        rpc_call_put(c, s->calls[i]);
    s->n = 0;
    size_t n = c->closing ? 0 : rpc_fill(c, s);
    if (!n) {
        s->next_free = c->free_slots;
        c->free_slots = s;
        if (--c->busy == 0)
            pthread_cond_broadcast(&c->idle);
    }
    pthread_mutex_unlock(&c->lock);
    if (n)
        rpc_slot_send(s);
}

static void rpc_slot_cb(void *arg)
{
    rpc_slot *s = arg;
    int rv = nng_aio_result(s->aio);
    if (!s->receiving) {
        if (rv) {
            nng_msg_free(nng_aio_get_msg(s->aio));
            rpc_slot_fail(s, rpc_err_from_nng(rv), "not sent", rv);
            rpc_slot_next(s);
            return;
        }
        s->receiving = 1;
        int64_t left = s->deadline - sh_mono_ms();
        nng_aio_set_timeout(s->aio, left > 1 ? (nng_duration)left : 1);
        nng_ctx_recv(s->ctx, s->aio);
        return;
    }
    if (rv)
        rpc_slot_fail(s, rpc_err_from_nng(rv), "failed", rv);
    else
        rpc_slot_reply(s, nng_aio_get_msg(s->aio));
    rpc_slot_next(s);
}

/* rpc_slot_send builds the request of slot s's calls and sends it: a lone
 * call as a plain envelope (which any server takes), more as a batch. */
static void rpc_slot_send(rpc_slot *s)
{
    sh_rpc_client *c = s->c;
    nng_msg *m = NULL;
    int rv = nng_msg_alloc(&m, 0);
    if (!rv && c->mac.on) {
        unsigned char head[SH_MSGMAC_HEAD_BYTES];
        sh_msgmac_head(SH_MSGMAC_CALL, sh_now_ms(), NULL, s->nonce, head);
        rv = nng_msg_append(m, head, sizeof head);
    }
    if (!rv && s->n == 1) {
        rpc_call *k = s->calls[0];
        rv = nng_msg_append(m, k->env.data, k->env.len);
    } else if (!rv) {
        /* The framing goes straight into the message, beside each
         * envelope: every envelope is copied once. */
        sh_buf b;
        sh_buf_init(&b);
        size_t total = sh_batch_overhead(s->n);
        for (size_t i = 0; i < s->n; i++)
            total += s->calls[i]->env.len;
        rv = nng_msg_reserve(m, total + SH_MSGMAC_OVERHEAD);
        if (!rv)
            rv = sh_batch_begin(s->n, &b) ? NNG_ENOMEM : nng_msg_append(m, b.data, b.len);
        for (size_t i = 0; i < s->n && !rv; i++) {
            rpc_call *k = s->calls[i];
            sh_buf_reset(&b);
            rv =
                sh_batch_add_header(k->env.len, &b) ? NNG_ENOMEM : nng_msg_append(m, b.data, b.len);
            if (!rv)
                rv = nng_msg_append(m, k->env.data, k->env.len);
        }
        sh_buf_fini(&b);
    }
    if (!rv && c->mac.on) {
        unsigned char tag[SH_MSGMAC_TAG_BYTES];
        sh_msgmac_tag(&c->mac, nng_msg_body(m), nng_msg_len(m), tag);
        rv = nng_msg_append(m, tag, sizeof tag);
    }
    if (rv) {
        if (m)
            nng_msg_free(m);
        rpc_slot_fail(s, SH_ENOMEM, "not sent", rv);
        rpc_slot_next(s);
        return;
    }
    s->receiving = 0;
    int64_t left = s->deadline - sh_mono_ms();
    nng_aio_set_timeout(s->aio, left > 1 ? (nng_duration)left : 1);
    nng_aio_set_msg(s->aio, m);
    nng_ctx_send(s->ctx, s->aio);
}

/* ---- timeouts ----------------------------------------------------------- */

/* The timer thread fails each call at its deadline, whether it is queued
 * or sent (a reply coming later is then dropped). It sleeps until the
 * earliest deadline, so a busy client costs it no wake-ups of its own. */
static void *rpc_timer_main(void *arg)
{
    sh_rpc_client *c = arg;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        rpc_call *k = c->thead;
        int64_t now = sh_mono_ms();
        if (!k && c->closing)
            break;
        if (k && k->deadline <= now) {
            /* Once settled, k may be reused as soon as the lock is let go:
             * copy what the callback needs first. */
            sh_error err;
            sh_error_set(&err, SH_ETIMEDOUT, "no reply to %s within %d ms", k->op, k->timeout_ms);
            sh_rpc_done_fn cb = k->cb;
            void *cb_arg = k->arg;
            rpc_call_settle(c, k);
            pthread_mutex_unlock(&c->lock);
            cb(cb_arg, SH_ETIMEDOUT, NULL, &err);
            pthread_mutex_lock(&c->lock);
            continue;
        }
        /* Keep a planned wake-up even when its call is done meanwhile: the
         * calls made until then need no signal (rpc_timer_insert). */
        int64_t wake = c->timer_wake;
        if (wake <= now)
            wake = k ? k->deadline : INT64_MAX;
        else if (k && k->deadline < wake)
            wake = k->deadline;
        c->timer_wake = wake;
        if (wake == INT64_MAX) {
            pthread_cond_wait(&c->timer, &c->lock);
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ms = wake - now;
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L)
            ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&c->timer, &c->lock, &ts);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* ---- the client --------------------------------------------------------- */

int sh_rpc_client_new(const char *urls, int timeout_ms, size_t max_msg, sh_rpc_client **out,
                      sh_error *err)
{
    *out = NULL;
    sh_rpc_client *c = calloc(1, sizeof *c);
    if (!c)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->idle, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->timer, &ca);
    pthread_condattr_destroy(&ca);
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    c->batch = rpc_defaults;
    c->timer_wake = INT64_MAX;
    sh_msgmac_current(&c->mac);
    sh_msg_limits_default(&c->lim);
    if (max_msg)
        c->lim.max_bytes = max_msg;
    c->next_id = ((uint64_t)sh_now_ms() << 16) & INT64_MAX;
    int rv = nng_req0_open(&c->sock);
    if (rv) {
        sh_rpc_client_free(c);
        return sh_error_set(err, SH_EINTERNAL, "cannot open REQ socket: %s", nng_strerror(rv));
    }
    c->sock_open = 1;
    nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ,
                        c->lim.max_bytes + sh_batch_overhead((size_t)c->batch.max_calls) + 1024);
    /* Resending is left to callers: a request is sent once per call. */
    nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, 3600 * 1000);
    int rc = sh__nng_dial_all(c->sock, urls, "RPC", err);
    if (rc) {
        sh_rpc_client_free(c);
        return rc;
    }
    c->slots = calloc((size_t)c->batch.inflight, sizeof *c->slots);
    if (!c->slots) {
        sh_rpc_client_free(c);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    for (int i = 0; i < c->batch.inflight; i++) {
        rpc_slot *s = &c->slots[i];
        s->c = c;
        if ((rv = nng_ctx_open(&s->ctx, c->sock)) ||
            (rv = nng_aio_alloc(&s->aio, rpc_slot_cb, s))) {
            sh_rpc_client_free(c);
            return sh_error_set(err, SH_EINTERNAL, "cannot set up an RPC context: %s",
                                nng_strerror(rv));
        }
        c->nslots = i + 1;
        s->next_free = c->free_slots;
        c->free_slots = s;
    }
    if (pthread_create(&c->timer_thread, NULL, rpc_timer_main, c)) {
        sh_rpc_client_free(c);
        return sh_error_set(err, SH_EINTERNAL, "cannot start the RPC timer thread");
    }
    c->timer_started = 1;
    *out = c;
    return SH_OK;
}

void sh_rpc_client_free(sh_rpc_client *c)
{
    if (!c)
        return;
    /* Queued calls never leave now: they fail with "closed" here, and those
     * in flight fail the same way when the socket closes. */
    pthread_mutex_lock(&c->lock);
    c->closing = 1;
    for (rpc_call *k = c->qhead; k; k = k->next)
        k->closed_here = rpc_call_settle(c, k);
    pthread_mutex_unlock(&c->lock);
    for (rpc_call *k = c->qhead; k; k = k->next) {
        if (!k->closed_here)
            continue;
        sh_error err;
        sh_error_set(&err, SH_ECLOSED, "call %s not sent: the client is closing", k->op);
        k->cb(k->arg, SH_ECLOSED, NULL, &err);
    }
    /* nng 1.5.2 can expire a context's aio while nng_close tears the
     * context down, and panics on the destroyed mutex ("pthread_mutex_lock:
     * Invalid argument"): the aios are stopped first, failing what is in
     * flight as closed. */
    for (int i = 0; i < c->nslots; i++)
        nng_aio_stop(c->slots[i].aio);
    if (c->sock_open)
        nng_close(c->sock);
    pthread_mutex_lock(&c->lock);
    while (c->busy > 0)
        pthread_cond_wait(&c->idle, &c->lock);
    pthread_cond_signal(&c->timer);
    pthread_mutex_unlock(&c->lock);
    if (c->timer_started)
        pthread_join(c->timer_thread, NULL);
    while (c->qhead) {
        rpc_call *k = c->qhead;
        c->qhead = k->next;
        k->next = c->free_calls;
        c->free_calls = k;
    }
    for (int i = 0; i < c->nslots; i++) {
        nng_aio_free(c->slots[i].aio);
        free(c->slots[i].calls);
    }
    free(c->slots);
    while (c->free_calls) {
        rpc_call *k = c->free_calls;
        c->free_calls = k->next;
        sh_buf_fini(&k->env);
        free(k);
    }
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->idle);
    pthread_cond_destroy(&c->timer);
    free(c);
}

int sh_rpc_call_async(sh_rpc_client *c, const char *op, const sh_val *args, int timeout_ms,
                      sh_rpc_done_fn cb, void *arg)
{
    pthread_mutex_lock(&c->lock);
    rpc_call *k = c->free_calls;
    if (k)
        c->free_calls = k->next;
    pthread_mutex_unlock(&c->lock);
    if (!k) {
        k = calloc(1, sizeof *k);
        if (!k)
            return SH_ENOMEM;
        sh_buf_init(&k->env);
    }
    k->id = __atomic_add_fetch(&c->next_id, 1, __ATOMIC_RELAXED) & INT64_MAX;
    int rc = sh_call_encode(op, k->id, args, &k->env);
    if (rc == SH_OK && k->env.len > c->lim.max_bytes)
        rc = SH_ETOOBIG;
    pthread_mutex_lock(&c->lock);
    if (rc == SH_OK && c->closing)
        rc = SH_ECLOSED;
    if (rc) {
        sh_buf_reset(&k->env);
        k->next = c->free_calls;
        c->free_calls = k;
        pthread_mutex_unlock(&c->lock);
        return rc;
    }
    k->cb = cb;
    k->arg = arg;
    k->timeout_ms = timeout_ms > 0 ? timeout_ms : c->timeout_ms;
    k->deadline = sh_mono_ms() + k->timeout_ms;
    snprintf(k->op, sizeof k->op, "%s", op);
    k->state = CALL_QUEUED;
    k->closed_here = 0;
    k->next = NULL;
    rpc_timer_insert(c, k);
    if (c->qtail)
        c->qtail->next = k;
    else
        c->qhead = k;
    c->qtail = k;
    rpc_slot *s = c->free_slots;
    size_t n = 0;
    if (s) {
        c->free_slots = s->next_free;
        n = rpc_fill(c, s);
        if (n)
            c->busy++;
        else {
            s->next_free = c->free_slots;
            c->free_slots = s;
        }
    }
    pthread_mutex_unlock(&c->lock);
    if (n)
        rpc_slot_send(s);
    return SH_OK;
}

/* A blocking call waits for its own outcome: one wake-up when it lands. */
typedef struct rpc_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    int rc;
    sh_val *result;
    sh_error err;
} rpc_wait;

static void rpc_wait_done(void *arg, int rc, sh_val *result, const sh_error *err)
{
    rpc_wait *w = arg;
    pthread_mutex_lock(&w->lock);
    w->rc = rc;
    w->result = result;
    if (err)
        w->err = *err;
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

int sh_rpc_call(sh_rpc_client *c, const char *op, const sh_val *args, int timeout_ms,
                sh_val **result, sh_error *err)
{
    sh_error local;
    if (!err)
        err = &local;
    *result = NULL;
    rpc_wait w;
    memset(&w, 0, sizeof w);
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    int rc = sh_rpc_call_async(c, op, args, timeout_ms, rpc_wait_done, &w);
    if (rc) {
        sh_error_set(err, rc, "cannot call %s: %s", op, sh_strerror(rc));
    } else {
        pthread_mutex_lock(&w.lock);
        while (!w.done)
            pthread_cond_wait(&w.cond, &w.lock);
        pthread_mutex_unlock(&w.lock);
        rc = w.rc;
        *result = w.result;
        if (rc)
            *err = w.err;
    }
    pthread_mutex_destroy(&w.lock);
    pthread_cond_destroy(&w.cond);
    return rc;
}

void sh_rpc_fini(void)
{
    nng_fini();
}
