/* rpc.c - request/reply over nng: a server of worker threads, each with its
 * own context, and a client for blocking and asynchronous calls. The one file
 * of libshared that includes nng's req/rep protocols. */
#include "shared/rpc.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shared/buf.h"
#include "shared/log.h"
#include "shared/msg.h"
#include "shared/util.h"

/* ---- server ------------------------------------------------------------ */

typedef struct rpc_worker {
    sh_rpc_server *srv;
    nng_ctx ctx;
    nng_aio *aio;      /* receives */
    nng_aio *send_aio; /* sends, completing on its own while the next receive waits */
    void *state;
    pthread_t thread;
    int started;
    int exited; /* atomic */
    int idx;
} rpc_worker;

struct sh_rpc_server {
    nng_socket sock;
    int sock_open;
    sh_rpc_server_opts opts;
    sh_msg_limits lim;
    rpc_worker *workers;
    int nworkers;
    int stopping; /* atomic */
};

static const sh_rpc_op *rpc_find(const sh_rpc_op *ops, const char *name)
{
    for (const sh_rpc_op *op = ops; op->name; op++)
        if (strcmp(op->name, name) == 0)
            return op;
    return NULL;
}

/* rpc_serve decodes one request, runs its handler and encodes the reply
 * into out. */
static void rpc_serve(rpc_worker *w, const void *data, size_t len, sh_buf *out)
{
    sh_call call;
    sh_error err;
    sh_error_clear(&err);
    int64_t t0 = sh_mono_ms();
    int rc = sh_call_decode(data, len, &w->srv->lim, &call, &err);
    if (rc != SH_OK) {
        sh_log_warn("rpc_bad_request", "undecodable request of %zu bytes: %s", len, err.msg);
        sh_reply_encode_err(0, rc == SH_ENOMEM ? SH_ENOMEM : SH_EPROTO, err.msg, out);
        return;
    }
    const sh_rpc_op *op = rpc_find(w->srv->opts.ops, call.op);
    sh_val *result = NULL;
    if (!op)
        rc = sh_error_set(&err, SH_ENOOP, "unknown operation \"%s\"", call.op);
    else
        rc = op->fn(w->state, call.args, &result, &err);
    if (rc == SH_OK) {
        sh_buf_reset(out);
        if (sh_reply_encode_ok(call.id, result, out) != SH_OK) {
            sh_buf_reset(out);
            sh_reply_encode_err(call.id, SH_ENOMEM, "out of memory encoding the reply", out);
        }
    } else {
        if (err.code != rc || !err.msg[0])
            sh_error_set(&err, rc, "%s", sh_strerror(rc));
        sh_reply_encode_err(call.id, rc, err.msg, out);
        int lvl = (rc == SH_EINTERNAL || rc == SH_ENOMEM || rc == SH_EUNAVAIL) ? SH_LOG_WARN
                                                                               : SH_LOG_DEBUG;
        sh_log(lvl, "rpc_error", "op=%s id=%llu code=%s %s", call.op, (unsigned long long)call.id,
               sh_err_name(rc), err.msg);
    }
    sh_log_debug("rpc", "op=%s id=%llu rc=%s ms=%lld", call.op, (unsigned long long)call.id,
                 sh_err_name(rc), (long long)(sh_mono_ms() - t0));
    sh_val_free(result);
    sh_call_fini(&call);
}

static void *rpc_worker_main(void *arg)
{
    rpc_worker *w = arg;
    sh_buf out;
    sh_buf_init(&out);
    /* No timeouts on these aios: every timeout set is work for nng's
     * expiry thread, which showed as a third of the service's CPU. A stop
     * cancels the wait instead (sh_rpc_server_free). */
    while (!__atomic_load_n(&w->srv->stopping, __ATOMIC_ACQUIRE)) {
        nng_ctx_recv(w->ctx, w->aio);
        nng_aio_wait(w->aio);
        int rv = nng_aio_result(w->aio);
        if (rv == NNG_ECANCELED || rv == NNG_ETIMEDOUT)
            continue;
        if (rv == NNG_ECLOSED)
            break;
        if (rv != 0) {
            sh_log_warn("rpc_recv", "receive failed: %s", nng_strerror(rv));
            continue;
        }
        nng_msg *msg = nng_aio_get_msg(w->aio);
        sh_buf_reset(&out);
        rpc_serve(w, nng_msg_body(msg), nng_msg_len(msg), &out);
        nng_msg_clear(msg);
        if (nng_msg_append(msg, out.data, out.len) != 0) {
            nng_msg_free(msg);
            continue;
        }
        /* The reply goes out while this worker already waits for the next
         * request: one wake-up per request instead of two. */
        nng_aio_wait(w->send_aio);
        nng_aio_set_msg(w->send_aio, msg);
        nng_ctx_send(w->ctx, w->send_aio);
        if (out.cap > 1024 * 1024)
            sh_buf_fini(&out); /* do not keep a large reply's buffer forever */
    }
    nng_aio_wait(w->send_aio);
    sh_buf_fini(&out);
    __atomic_store_n(&w->exited, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void rpc_sent(void *arg)
{
    rpc_worker *w = arg;
    if (nng_aio_result(w->send_aio) != 0)
        nng_msg_free(nng_aio_get_msg(w->send_aio));
}

int sh_rpc_server_new(const sh_rpc_server_opts *opts, sh_rpc_server **out, sh_error *err)
{
    *out = NULL;
    sh_rpc_server *s = calloc(1, sizeof *s);
    if (!s)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    s->opts = *opts;
    if (s->opts.workers <= 0)
        s->opts.workers = 8;
    sh_msg_limits_default(&s->lim);
    if (s->opts.max_msg)
        s->lim.max_bytes = s->opts.max_msg;
    int rv = nng_rep0_open(&s->sock);
    if (rv) {
        free(s);
        return sh_error_set(err, SH_EINTERNAL, "cannot open REP socket: %s", nng_strerror(rv));
    }
    s->sock_open = 1;
    nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, s->lim.max_bytes + 1024);
    s->workers = calloc((size_t)s->opts.workers, sizeof *s->workers);
    if (!s->workers) {
        sh_error_set(err, SH_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < s->opts.workers; i++) {
        rpc_worker *w = &s->workers[i];
        w->srv = s;
        w->idx = i;
        if ((rv = nng_ctx_open(&w->ctx, s->sock)) || (rv = nng_aio_alloc(&w->aio, NULL, NULL)) ||
            (rv = nng_aio_alloc(&w->send_aio, rpc_sent, w))) {
            sh_error_set(err, SH_EINTERNAL, "cannot set up RPC worker: %s", nng_strerror(rv));
            goto fail;
        }
        s->nworkers = i + 1;
        if (s->opts.worker_init && !(w->state = s->opts.worker_init(s->opts.arg, i))) {
            sh_error_set(err, SH_EINTERNAL, "cannot set up the state of RPC worker %d", i);
            goto fail;
        }
    }
    if ((rv = nng_listen(s->sock, s->opts.listen_url, NULL, 0))) {
        sh_error_set(err, SH_EINVAL, "cannot listen on %s: %s", s->opts.listen_url,
                     nng_strerror(rv));
        goto fail;
    }
    for (int i = 0; i < s->nworkers; i++) {
        if (pthread_create(&s->workers[i].thread, NULL, rpc_worker_main, &s->workers[i])) {
            sh_error_set(err, SH_EINTERNAL, "cannot start RPC worker thread");
            goto fail;
        }
        s->workers[i].started = 1;
    }
    *out = s;
    return SH_OK;
fail:
    sh_rpc_server_free(s);
    return err ? err->code : SH_EINTERNAL;
}

void sh_rpc_server_free(sh_rpc_server *s)
{
    if (!s)
        return;
    __atomic_store_n(&s->stopping, 1, __ATOMIC_RELEASE);
    /* An idle worker waits in a receive: cancel it until the worker has
     * seen the stop flag (a worker busy with a request finishes and answers
     * it first). */
    for (int i = 0; i < s->nworkers; i++) {
        rpc_worker *w = &s->workers[i];
        if (!w->started)
            continue;
        while (!__atomic_load_n(&w->exited, __ATOMIC_ACQUIRE)) {
            nng_aio_cancel(w->aio);
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
        }
        pthread_join(w->thread, NULL);
    }
    if (s->sock_open)
        nng_close(s->sock);
    for (int i = 0; i < s->nworkers; i++) {
        rpc_worker *w = &s->workers[i];
        if (w->aio)
            nng_aio_free(w->aio);
        if (w->send_aio)
            nng_aio_free(w->send_aio);
        if (w->state && s->opts.worker_fini)
            s->opts.worker_fini(w->state);
    }
    free(s->workers);
    free(s);
}

/* ---- client ------------------------------------------------------------ */

/* A call in flight: a small state machine driven by its aio callback. Call
 * objects (each with its own context and aio) are kept on a free list and
 * reused, so a call costs no socket-wide setup. */
typedef struct rpc_async rpc_async;
struct rpc_async {
    sh_rpc_client *c;
    nng_ctx ctx;
    nng_aio *aio;
    int receiving;
    uint64_t id;
    int timeout_ms;
    int64_t deadline;
    sh_rpc_done_fn cb;
    void *arg;
    char op[SH_OP_MAX + 1];
    rpc_async *next_free;
};

/* A blocking call waits on its own aio (no callback): one wake-up when the
 * reply arrives. Its context and aio come from a free list of their own. */
typedef struct rpc_sync rpc_sync;
struct rpc_sync {
    nng_ctx ctx;
    nng_aio *aio;
    rpc_sync *next_free;
};

struct sh_rpc_client {
    nng_socket sock;
    int sock_open;
    int timeout_ms;
    size_t max_msg;
    sh_msg_limits lim;
    uint64_t next_id; /* atomic */
    pthread_mutex_t lock;
    pthread_cond_t idle;
    int inflight; /* calls not yet completed */
    rpc_async *free_calls;
    rpc_sync *free_syncs;
};

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

int sh_rpc_client_new(const char *urls, int timeout_ms, size_t max_msg, sh_rpc_client **out,
                      sh_error *err)
{
    *out = NULL;
    sh_rpc_client *c = calloc(1, sizeof *c);
    if (!c)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->idle, NULL);
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    sh_msg_limits_default(&c->lim);
    if (max_msg)
        c->lim.max_bytes = max_msg;
    c->max_msg = c->lim.max_bytes;
    c->next_id = ((uint64_t)sh_now_ms() << 16) & INT64_MAX;
    int rv = nng_req0_open(&c->sock);
    if (rv) {
        sh_rpc_client_free(c);
        return sh_error_set(err, SH_EINTERNAL, "cannot open REQ socket: %s", nng_strerror(rv));
    }
    c->sock_open = 1;
    nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, c->lim.max_bytes + 1024);
    /* Resending is left to callers: a request is sent once per call. */
    nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, 3600 * 1000);
    nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 20);
    nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 500);
    char *list = strdup(urls ? urls : "");
    if (!list) {
        sh_rpc_client_free(c);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    int dialed = 0;
    char *save = NULL;
    for (char *u = strtok_r(list, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
        while (*u == ' ')
            u++;
        if (!*u)
            continue;
        if ((rv = nng_dial(c->sock, u, NULL, NNG_FLAG_NONBLOCK))) {
            sh_error_set(err, SH_EINVAL, "cannot dial %s: %s", u, nng_strerror(rv));
            free(list);
            sh_rpc_client_free(c);
            return SH_EINVAL;
        }
        dialed++;
    }
    free(list);
    if (!dialed) {
        sh_rpc_client_free(c);
        return sh_error_set(err, SH_EINVAL, "no RPC URL to dial");
    }
    *out = c;
    return SH_OK;
}

void sh_rpc_client_free(sh_rpc_client *c)
{
    if (!c)
        return;
    if (c->sock_open)
        nng_close(c->sock); /* fails every call in flight with "closed" */
    pthread_mutex_lock(&c->lock);
    while (c->inflight > 0)
        pthread_cond_wait(&c->idle, &c->lock);
    rpc_async *a = c->free_calls;
    c->free_calls = NULL;
    pthread_mutex_unlock(&c->lock);
    while (a) {
        rpc_async *next = a->next_free;
        nng_aio_free(a->aio);
        free(a);
        a = next;
    }
    rpc_sync *sy = c->free_syncs;
    while (sy) {
        rpc_sync *next = sy->next_free;
        nng_aio_free(sy->aio);
        free(sy);
        sy = next;
    }
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->idle);
    free(c);
}

/* rpc_build encodes a call into a new nng message. */
static int rpc_build(sh_rpc_client *c, const char *op, const sh_val *args, uint64_t *id,
                     nng_msg **out, sh_error *err)
{
    sh_buf b;
    sh_buf_init(&b);
    *id = __atomic_add_fetch(&c->next_id, 1, __ATOMIC_RELAXED) & INT64_MAX;
    int rc = sh_call_encode(op, *id, args, &b);
    if (rc) {
        sh_buf_fini(&b);
        return sh_error_set(err, rc, "cannot encode call %s: %s", op, sh_strerror(rc));
    }
    if (b.len > c->max_msg) {
        size_t n = b.len;
        sh_buf_fini(&b);
        return sh_error_set(err, SH_ETOOBIG, "request of %zu bytes exceeds the limit of %zu", n,
                            c->max_msg);
    }
    nng_msg *m = NULL;
    if (nng_msg_alloc(&m, b.len)) {
        sh_buf_fini(&b);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    memcpy(nng_msg_body(m), b.data, b.len);
    sh_buf_fini(&b);
    *out = m;
    return SH_OK;
}

/* rpc_finish decodes a reply message (freed here). */
static int rpc_finish(sh_rpc_client *c, const char *op, uint64_t id, nng_msg *m, sh_val **result,
                      sh_error *err)
{
    sh_reply_env env;
    int rc = sh_reply_decode(nng_msg_body(m), nng_msg_len(m), &c->lim, &env, err);
    nng_msg_free(m);
    if (rc)
        return sh_error_set(err, SH_EPROTO, "bad reply to %s: %s", op, err->msg);
    if (env.id != id && env.id != 0) {
        sh_reply_env_fini(&env);
        return sh_error_set(err, SH_EPROTO, "reply to %s carries id %llu, expected %llu", op,
                            (unsigned long long)env.id, (unsigned long long)id);
    }
    if (!env.ok) {
        sh_error_set(err, env.code, "%s", env.message);
        return env.code;
    }
    *result = env.result;
    return SH_OK;
}

/* rpc_async_done hands the outcome to the caller and the call object back
 * to the free list. */
static void rpc_async_done(rpc_async *a, int rc, sh_val *result, sh_error *err)
{
    sh_rpc_client *c = a->c;
    sh_rpc_done_fn cb = a->cb;
    void *arg = a->arg;
    pthread_mutex_lock(&c->lock);
    a->next_free = c->free_calls;
    c->free_calls = a;
    pthread_mutex_unlock(&c->lock);
    cb(arg, rc, result, err);
    pthread_mutex_lock(&c->lock);
    if (--c->inflight == 0)
        pthread_cond_broadcast(&c->idle);
    pthread_mutex_unlock(&c->lock);
}

static void rpc_async_cb(void *arg)
{
    rpc_async *a = arg;
    sh_error err;
    sh_error_clear(&err);
    int rv = nng_aio_result(a->aio);
    if (!a->receiving) {
        if (rv) {
            nng_msg_free(nng_aio_get_msg(a->aio));
            sh_error_set(&err, rpc_err_from_nng(rv), "call %s not sent: %s", a->op,
                         nng_strerror(rv));
            rpc_async_done(a, err.code, NULL, &err);
            return;
        }
        a->receiving = 1;
        int64_t left = a->deadline - sh_mono_ms();
        nng_aio_set_timeout(a->aio, left > 1 ? (nng_duration)left : 1);
        nng_ctx_recv(a->ctx, a->aio);
        return;
    }
    if (rv) {
        if (rv == NNG_ETIMEDOUT)
            sh_error_set(&err, SH_ETIMEDOUT, "no reply to %s within %d ms", a->op, a->timeout_ms);
        else
            sh_error_set(&err, rpc_err_from_nng(rv), "call %s failed: %s", a->op, nng_strerror(rv));
        rpc_async_done(a, err.code, NULL, &err);
        return;
    }
    sh_val *result = NULL;
    int rc = rpc_finish(a->c, a->op, a->id, nng_aio_get_msg(a->aio), &result, &err);
    rpc_async_done(a, rc, result, &err);
}

/* rpc_async_get takes a call object from the free list or makes one. */
static int rpc_async_get(sh_rpc_client *c, rpc_async **out)
{
    pthread_mutex_lock(&c->lock);
    rpc_async *a = c->free_calls;
    if (a)
        c->free_calls = a->next_free;
    pthread_mutex_unlock(&c->lock);
    if (!a) {
        a = calloc(1, sizeof *a);
        if (!a)
            return SH_ENOMEM;
        int rv = nng_ctx_open(&a->ctx, c->sock);
        if (!rv)
            rv = nng_aio_alloc(&a->aio, rpc_async_cb, a);
        if (rv) {
            if (a->ctx.id)
                nng_ctx_close(a->ctx);
            free(a);
            return rpc_err_from_nng(rv);
        }
        a->c = c;
    }
    *out = a;
    return SH_OK;
}

int sh_rpc_call_async(sh_rpc_client *c, const char *op, const sh_val *args, int timeout_ms,
                      sh_rpc_done_fn cb, void *arg)
{
    sh_error err;
    uint64_t id;
    nng_msg *m = NULL;
    int rc = rpc_build(c, op, args, &id, &m, &err);
    if (rc)
        return rc;
    rpc_async *a = NULL;
    if ((rc = rpc_async_get(c, &a))) {
        nng_msg_free(m);
        return rc;
    }
    a->id = id;
    a->cb = cb;
    a->arg = arg;
    a->receiving = 0;
    a->timeout_ms = timeout_ms > 0 ? timeout_ms : c->timeout_ms;
    snprintf(a->op, sizeof a->op, "%s", op);
    pthread_mutex_lock(&c->lock);
    c->inflight++;
    pthread_mutex_unlock(&c->lock);
    a->deadline = sh_mono_ms() + a->timeout_ms;
    nng_aio_set_timeout(a->aio, a->timeout_ms);
    nng_aio_set_msg(a->aio, m);
    nng_ctx_send(a->ctx, a->aio);
    return SH_OK;
}

static int rpc_sync_get(sh_rpc_client *c, rpc_sync **out)
{
    pthread_mutex_lock(&c->lock);
    rpc_sync *s = c->free_syncs;
    if (s)
        c->free_syncs = s->next_free;
    pthread_mutex_unlock(&c->lock);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return SH_ENOMEM;
        int rv = nng_ctx_open(&s->ctx, c->sock);
        if (!rv)
            rv = nng_aio_alloc(&s->aio, NULL, NULL);
        if (rv) {
            if (s->ctx.id)
                nng_ctx_close(s->ctx);
            free(s);
            return rpc_err_from_nng(rv);
        }
    }
    *out = s;
    return SH_OK;
}

static void rpc_sync_put(sh_rpc_client *c, rpc_sync *s)
{
    pthread_mutex_lock(&c->lock);
    s->next_free = c->free_syncs;
    c->free_syncs = s;
    pthread_mutex_unlock(&c->lock);
}

int sh_rpc_call(sh_rpc_client *c, const char *op, const sh_val *args, int timeout_ms,
                sh_val **result, sh_error *err)
{
    sh_error local;
    if (!err)
        err = &local;
    *result = NULL;
    if (timeout_ms <= 0)
        timeout_ms = c->timeout_ms;
    uint64_t id;
    nng_msg *m = NULL;
    int rc = rpc_build(c, op, args, &id, &m, err);
    if (rc)
        return rc;
    rpc_sync *s = NULL;
    if ((rc = rpc_sync_get(c, &s))) {
        nng_msg_free(m);
        return sh_error_set(err, rc, "cannot call %s: %s", op, sh_strerror(rc));
    }
    int64_t deadline = sh_mono_ms() + timeout_ms;
    nng_aio_set_timeout(s->aio, timeout_ms);
    nng_aio_set_msg(s->aio, m);
    nng_ctx_send(s->ctx, s->aio);
    nng_aio_wait(s->aio);
    int rv = nng_aio_result(s->aio);
    if (rv) {
        nng_msg_free(m);
        rc = sh_error_set(err, rpc_err_from_nng(rv), "call %s not sent: %s", op, nng_strerror(rv));
        goto done;
    }
    int64_t left = deadline - sh_mono_ms();
    nng_aio_set_timeout(s->aio, left > 1 ? (nng_duration)left : 1);
    nng_ctx_recv(s->ctx, s->aio);
    nng_aio_wait(s->aio);
    if ((rv = nng_aio_result(s->aio))) {
        if (rv == NNG_ETIMEDOUT)
            rc = sh_error_set(err, SH_ETIMEDOUT, "no reply to %s within %d ms", op, timeout_ms);
        else
            rc =
                sh_error_set(err, rpc_err_from_nng(rv), "call %s failed: %s", op, nng_strerror(rv));
        goto done;
    }
    rc = rpc_finish(c, op, id, nng_aio_get_msg(s->aio), result, err);
done:
    rpc_sync_put(c, s);
    return rc;
}

void sh_rpc_fini(void)
{
    nng_fini();
}
