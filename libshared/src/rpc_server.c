/* rpc_server.c - the serving side of request/reply over nng: worker threads,
 * each with its own context, that take a single call or a batch of calls and
 * run a batch's pipelinable calls as one Redis pipeline. */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shared/buf.h"
#include "shared/log.h"
#include "shared/msg.h"
#include "shared/msgmac.h"
#include "shared/rpc.h"
#include "shared/util.h"

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
    sh_msgmac_conf mac;
    sh_msgmac_seen *seen; /* nonces of the calls taken within the window */
};

/* One call of a request while it is served. */
typedef struct rpc_item {
    sh_call call;
    int decoded;
    const sh_rpc_op *op;
    int rc;
    sh_error err;
    sh_val *result;
    sh_cmd *cmd; /* prepared, waiting for the group's pipeline */
    sh_val *ctx;
} rpc_item;

static const sh_rpc_op *rpc_find(const sh_rpc_op *ops, const char *name)
{
    for (const sh_rpc_op *op = ops; op->name; op++)
        if (strcmp(op->name, name) == 0)
            return op;
    return NULL;
}

static int rpc_fail(rpc_item *it, int rc)
{
    if (it->err.code != rc || !it->err.msg[0])
        sh_error_set(&it->err, rc, "%s", sh_strerror(rc));
    it->rc = rc;
    return rc;
}

/* rpc_pipelined tells whether item runs in a group of one pipeline. */
static int rpc_pipelined(const rpc_worker *w, const rpc_item *it)
{
    return it->rc == SH_OK && it->op && it->op->prep && w->srv->opts.pipeline;
}

/* rpc_flush runs the prepared calls items[0..n) (those with a command) as
 * one pipeline and finishes each with its reply. */
static void rpc_flush(rpc_worker *w, rpc_item *items, size_t n)
{
    sh_cmd *cmds_small[16];
    sh_reply *replies_small[16];
    sh_cmd **cmds = cmds_small;
    sh_reply **replies = replies_small;
    size_t *idx = NULL, k = 0;
    if (n > 16) {
        cmds = calloc(n, sizeof *cmds);
        replies = calloc(n, sizeof *replies);
    }
    idx = calloc(n ? n : 1, sizeof *idx);
    sh_error err;
    sh_error_clear(&err);
    int rc = cmds && replies && idx ? SH_OK : SH_ENOMEM;
    for (size_t i = 0; rc == SH_OK && i < n; i++)
        if (items[i].cmd)
            idx[k] = i, cmds[k++] = items[i].cmd;
    if (rc == SH_OK && k)
        rc = w->srv->opts.pipeline(w->state, cmds, k, replies, &err);
    else if (rc)
        sh_error_set(&err, rc, "out of memory");
    for (size_t j = 0; j < k; j++) {
        rpc_item *it = &items[idx[j]];
        if (rc) {
            it->err = err;
            rpc_fail(it, rc);
        } else if (sh_store_reply_check(replies[j], &it->err) != SH_OK) {
            rpc_fail(it, it->err.code);
        } else {
            int frc =
                it->op->finish(w->state, it->call.args, it->ctx, replies[j], &it->result, &it->err);
            if (frc)
                rpc_fail(it, frc);
        }
        if (rc == SH_OK)
            sh_reply_free(replies[j]);
    }
    for (size_t i = 0; i < n; i++) {
        sh_cmd_free(items[i].cmd);
        items[i].cmd = NULL;
        sh_val_free(items[i].ctx);
        items[i].ctx = NULL;
    }
    if (!(cmds && replies && idx)) {
        for (size_t i = 0; i < n; i++)
            if (items[i].rc == SH_OK && !items[i].result && rpc_pipelined(w, &items[i]))
                rpc_fail(&items[i], SH_ENOMEM);
    }
    if (cmds != cmds_small)
        free(cmds);
    if (replies != replies_small)
        free(replies);
    free(idx);
}

/* rpc_run serves items[0..n) in order: consecutive pipelinable calls as one
 * group, any other call alone between groups. */
static void rpc_run(rpc_worker *w, rpc_item *items, size_t n)
{
    size_t group = 0; /* first item of the open group */
    for (size_t i = 0; i < n; i++) {
        rpc_item *it = &items[i];
        if (it->rc != SH_OK)
            continue;
        it->op = rpc_find(w->srv->opts.ops, it->call.op);
        if (!it->op) {
            sh_error_set(&it->err, SH_ENOOP, "unknown operation \"%s\"", it->call.op);
            rpc_fail(it, SH_ENOOP);
            continue;
        }
        if (rpc_pipelined(w, it)) {
            int rc = it->op->prep(w->state, it->call.args, &it->cmd, &it->ctx, &it->err);
            if (rc == SH_OK && !it->cmd)
                rc = sh_error_set(&it->err, SH_ENOMEM, "out of memory building a command");
            if (rc) {
                sh_cmd_free(it->cmd);
                it->cmd = NULL;
                rpc_fail(it, rc);
            }
            continue;
        }
        rpc_flush(w, items + group, i - group);
        group = i + 1;
        int rc = it->op->fn ? it->op->fn(w->state, it->call.args, &it->result, &it->err)
                            : sh_error_set(&it->err, SH_EINTERNAL,
                                           "operation \"%s\" needs a pipeline", it->call.op);
        if (rc)
            rpc_fail(it, rc);
    }
    rpc_flush(w, items + group, n - group);
}

/* rpc_reply encodes the outcome of one call into out. A result larger than
 * the message limit is refused here: a client (with the same limit) would
 * drop the connection, and nng would send the call again and again. */
static void rpc_reply(const rpc_worker *w, rpc_item *it, sh_buf *out)
{
    size_t mark = out->len;
    uint64_t id = it->decoded ? it->call.id : 0;
    if (it->rc == SH_OK) {
        int rc = sh_reply_encode_ok(id, it->result, out);
        size_t len = out->len - mark;
        if (rc == SH_OK && len <= w->srv->lim.max_bytes)
            return;
        out->len = mark;
        if (rc == SH_OK)
            sh_error_set(&it->err, SH_ETOOBIG, "reply of %zu bytes exceeds the limit of %zu", len,
                         w->srv->lim.max_bytes);
        else
            sh_error_set(&it->err, SH_ENOMEM, "out of memory encoding the reply");
        rpc_fail(it, it->err.code);
    }
    sh_reply_encode_err(id, it->rc, it->err.msg, out);
    if (!it->decoded)
        return;
    int lvl = (it->rc == SH_EINTERNAL || it->rc == SH_ENOMEM || it->rc == SH_EUNAVAIL)
                  ? SH_LOG_WARN
                  : SH_LOG_DEBUG;
    sh_log(lvl, "rpc_error", "op=%s id=%llu code=%s %s", it->call.op,
           (unsigned long long)it->call.id, sh_err_name(it->rc), it->err.msg);
}

static void rpc_decode(rpc_worker *w, rpc_item *it, const void *data, size_t len)
{
    memset(it, 0, sizeof *it);
    int rc = sh_call_decode(data, len, &w->srv->lim, &it->call, &it->err);
    if (rc != SH_OK) {
        sh_log_warn("rpc_bad_request", "undecodable call of %zu bytes: %s", len, it->err.msg);
        /* Over a size limit the client is told which; anything else is
         * malformed. */
        rpc_fail(it, rc == SH_ENOMEM || rc == SH_ETOOBIG || rc == SH_ELIMIT ? rc : SH_EPROTO);
        return;
    }
    it->decoded = 1;
}

static void rpc_items_fini(rpc_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sh_val_free(items[i].result);
        if (items[i].decoded)
            sh_call_fini(&items[i].call);
    }
}

/* rpc_serve_one answers a single-call request. */
static void rpc_serve_one(rpc_worker *w, const void *data, size_t len, sh_buf *out)
{
    rpc_item it;
    rpc_decode(w, &it, data, len);
    rpc_run(w, &it, 1);
    rpc_reply(w, &it, out);
    rpc_items_fini(&it, 1);
}

/* rpc_serve_batch answers a batch: one reply per call, in order. */
static void rpc_serve_batch(rpc_worker *w, const void *data, size_t len, sh_buf *out)
{
    sh_slice *slices = NULL;
    size_t n = 0;
    sh_error err;
    sh_error_clear(&err);
    int rc = sh_batch_split(data, len, &slices, &n, &err);
    rpc_item *items = rc ? NULL : calloc(n, sizeof *items);
    if (!items) {
        if (!rc)
            sh_error_set(&err, rc = SH_ENOMEM, "out of memory");
        sh_log_warn("rpc_bad_request", "undecodable batch of %zu bytes: %s", len, err.msg);
        sh_reply_encode_err(0, rc == SH_ENOMEM ? SH_ENOMEM : SH_EPROTO, err.msg, out);
        free(slices);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (i < SH_RPC_BATCH_SERVER_MAX) {
            rpc_decode(w, &items[i], slices[i].data, slices[i].len);
        } else {
            sh_error_set(&items[i].err, SH_ELIMIT, "a batch holds at most %d calls",
                         SH_RPC_BATCH_SERVER_MAX);
            items[i].rc = SH_ELIMIT;
        }
    }
    free(slices);
    rpc_run(w, items, n);
    sh_buf one;
    sh_buf_init(&one);
    rc = sh_batch_begin(n, out);
    for (size_t i = 0; i < n && rc == SH_OK; i++) {
        sh_buf_reset(&one);
        rpc_reply(w, &items[i], &one);
        rc = sh_batch_add(one.data, one.len, out);
    }
    sh_buf_fini(&one);
    if (rc) {
        sh_buf_reset(out);
        sh_reply_encode_err(0, SH_ENOMEM, "out of memory encoding the replies", out);
    }
    rpc_items_fini(items, n);
    free(items);
}

/* rpc_open checks the MAC of a request (when the server has a key) and
 * narrows data and len to the request inside; on a refusal it writes the
 * error reply to out, unsigned (the caller may not hold the key, and the
 * reply carries nothing but why), and returns non-zero. */
static int rpc_open(rpc_worker *w, const void **data, size_t *len, unsigned char *nonce,
                    sh_buf *out)
{
    sh_rpc_server *srv = w->srv;
    sh_error err;
    sh_error_clear(&err);
    int rc;
    if (srv->mac.on)
        rc = sh_msgmac_open(&srv->mac, SH_MSGMAC_CALL, srv->seen, sh_now_ms(), *data, *len, NULL,
                            nonce, data, len, &err);
    else if (sh_msgmac_is_signed(*data, *len))
        rc = sh_error_set(&err, SH_EAUTH,
                          "the call carries a MAC but this service has no "
                          "RPC_SECRET: set the same RPC_SECRET on every service");
    else
        return SH_OK;
    if (rc == SH_OK)
        return SH_OK;
    sh_msgmac_log_refusal("rpc", &err);
    sh_reply_encode_err(0, SH_EAUTH, err.msg, out);
    return rc;
}

/* rpc_fill_reply puts the reply in out into msg, signed with the request's
 * nonce when the request was. */
static int rpc_fill_reply(rpc_worker *w, nng_msg *msg, const sh_buf *out,
                          const unsigned char *nonce)
{
    nng_msg_clear(msg);
    if (!nonce)
        return nng_msg_append(msg, out->data, out->len);
    unsigned char head[SH_MSGMAC_HEAD_BYTES], tag[SH_MSGMAC_TAG_BYTES];
    sh_msgmac_head(SH_MSGMAC_REPLY, sh_now_ms(), nonce, NULL, head);
    int rv = nng_msg_reserve(msg, sizeof head + out->len + sizeof tag);
    if (!rv)
        rv = nng_msg_append(msg, head, sizeof head);
    if (!rv)
        rv = nng_msg_append(msg, out->data, out->len);
    if (rv)
        return rv;
    sh_msgmac_tag(&w->srv->mac, nng_msg_body(msg), nng_msg_len(msg), tag);
    return nng_msg_append(msg, tag, sizeof tag);
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
        int64_t t0 = sh_mono_ms();
        const void *body = nng_msg_body(msg);
        size_t len = nng_msg_len(msg);
        unsigned char nonce[SH_MSGMAC_NONCE_BYTES];
        int signed_reply = 0;
        if (rpc_open(w, &body, &len, nonce, &out) == SH_OK) {
            signed_reply = w->srv->mac.on;
            if (sh_batch_is(body, len))
                rpc_serve_batch(w, body, len, &out);
            else
                rpc_serve_one(w, body, len, &out);
        }
        sh_log_debug("rpc", "request of %zu bytes served in %lld ms", len,
                     (long long)(sh_mono_ms() - t0));
        if (rpc_fill_reply(w, msg, &out, signed_reply ? nonce : NULL) != 0) {
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
    sh_msgmac_current(&s->mac);
    if (s->mac.on && sh_msgmac_seen_new(SH_MSGMAC_SEEN_DEFAULT, &s->seen) != SH_OK) {
        sh_error_set(err, SH_ENOMEM, "out of memory");
        goto fail;
    }
    int rv = nng_rep0_open(&s->sock);
    if (rv) {
        sh_error_set(err, SH_EINTERNAL, "cannot open REP socket: %s", nng_strerror(rv));
        goto fail;
    }
    s->sock_open = 1;
    /* A batch may carry up to max_msg of envelopes plus its framing. */
    nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ,
                        s->lim.max_bytes + sh_batch_overhead(SH_RPC_BATCH_SERVER_MAX) + 1024);
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
    sh_msgmac_warn_open("RPC", s->opts.listen_url);
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
    sh_msgmac_seen_free(s->seen);
    free(s);
}
