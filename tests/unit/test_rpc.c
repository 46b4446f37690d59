/* test_rpc.c - rpc_client.c and rpc_server.c together over nng ipc, without
 * Redis: calls and remote errors, timeouts and late replies, a server that
 * goes away and comes back, workers in parallel, a client's batching seen
 * from a raw REP socket (and its answer to malformed replies), size limits,
 * the pipeline grouping of a batch, and the teardown of both sides.
 * (tests/integration/test_rpc_batch.c covers batches against the progress
 * service and Redis.) Longer than most files: the two sides are tested
 * against each other and against raw sockets, with one set of test
 * operations and helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "ipc_dir.h"
#include "shared/msg.h"
#include "shared/rpc.h"
#include "shared/util.h"

static int group_setup(void **state)
{
    (void)state;
    return tf_ipc_dir_make("test_rpc");
}

static int group_teardown(void **state)
{
    (void)state;
    sh_rpc_fini();
    return tf_ipc_dir_remove();
}

/* ---- a server with test operations ------------------------------------------- */

static atomic_int inits, finis, pipelines, pipelined_cmds, bigs;

typedef struct worker {
    int idx;
} worker;

static void *worker_init(void *arg, int idx)
{
    int fail_at = arg ? *(int *)arg : -1;
    if (idx == fail_at)
        return NULL;
    worker *w = calloc(1, sizeof *w);
    w->idx = idx;
    atomic_fetch_add(&inits, 1);
    return w;
}

static void worker_fini(void *state)
{
    atomic_fetch_add(&finis, 1);
    free(state);
}

static int op_echo(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    *result = sh_val_clone(args);
    return *result ? SH_OK : sh_error_set(err, SH_ENOMEM, "out of memory");
}

/* fail returns the error named by args.code with args.message (if any). */
static int op_fail(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    size_t len = 0;
    const char *code = sh_val_get_str(args, "code", &len);
    const char *msg = sh_val_get_str(args, "message", NULL);
    int rc = sh_err_from_name(code ? code : "internal", code ? len : 8);
    if (msg)
        return sh_error_set(err, rc, "%s", msg);
    return rc;
}

static int op_sleep(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    int64_t ms = sh_val_int(sh_val_get(args, "ms"));
    tf_sleep_ms((int)ms);
    *result = sh_val_new_map();
    sh_val_set_cstr(*result, "slept", sh_val_new_int(ms));
    sh_val_set_cstr(*result, "worker", sh_val_new_int(((worker *)state)->idx));
    return SH_OK;
}

/* big returns a binary of args.n bytes. */
static int op_big(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    atomic_fetch_add(&bigs, 1);
    size_t n = (size_t)sh_val_int(sh_val_get(args, "n"));
    char *p = calloc(1, n ? n : 1);
    *result = sh_val_new_bin(p, n);
    free(p);
    return SH_OK;
}

/* A pipelinable operation: one command, the fake pipeline fails them all. */
static int op_prep(void *state, const sh_val *args, sh_cmd **cmd, sh_val **ctx, sh_error *err)
{
    if (sh_val_type_of(args) != SH_VAL_INT)
        return sh_error_set(err, SH_EINVAL, "piped takes an integer");
    *cmd = sh_cmd_new("PING");
    return SH_OK;
}

static int op_finish(void *state, const sh_val *args, sh_val *ctx, const sh_reply *reply,
                     sh_val **result, sh_error *err)
{
    return sh_error_set(err, SH_EINTERNAL, "finish without a reply");
}

static int fake_pipeline(void *state, sh_cmd *const *cmds, size_t n, sh_reply **replies,
                         sh_error *err)
{
    atomic_fetch_add(&pipelines, 1);
    atomic_fetch_add(&pipelined_cmds, (int)n);
    return sh_error_set(err, SH_EUNAVAIL, "pipeline of %zu down", n);
}

static const sh_rpc_op test_ops[] = {
    {"echo", op_echo, NULL, NULL},       {"fail", op_fail, NULL, NULL},
    {"sleep", op_sleep, NULL, NULL},     {"big", op_big, NULL, NULL},
    {"piped", NULL, op_prep, op_finish}, {NULL, NULL, NULL, NULL},
};

static sh_rpc_server *server_on(const char *url, int workers, size_t max_msg)
{
    sh_rpc_server_opts o = {
        .listen_url = url,
        .workers = workers,
        .max_msg = max_msg,
        .ops = test_ops,
        .worker_init = worker_init,
        .worker_fini = worker_fini,
        .pipeline = fake_pipeline,
    };
    sh_rpc_server *s = NULL;
    sh_error err;
    if (sh_rpc_server_new(&o, &s, &err) != SH_OK)
        fail_msg("server on %s: %s", url, err.msg);
    return s;
}

static sh_rpc_client *client_on(const char *url, int timeout_ms, size_t max_msg)
{
    sh_rpc_client *c = NULL;
    sh_error err;
    if (sh_rpc_client_new(url, timeout_ms, max_msg, &c, &err) != SH_OK)
        fail_msg("client of %s: %s", url, err.msg);
    return c;
}

/* client_batching makes a client with these batch settings, then puts the
 * defaults back. */
static sh_rpc_client *client_batching(const char *url, int inflight, int max_calls)
{
    sh_rpc_batch_opts o = {inflight, max_calls, 256 * 1024}, def = {4, 64, 256 * 1024};
    sh_rpc_batch_defaults(&o);
    sh_rpc_client *c = client_on(url, 5000, 0);
    sh_rpc_batch_defaults(&def);
    return c;
}

static sh_val *ms_args(int ms)
{
    sh_val *a = sh_val_new_map();
    sh_val_set_cstr(a, "ms", sh_val_new_int(ms));
    return a;
}

/* ---- asynchronous outcomes -------------------------------------------------- */

typedef struct outcome {
    atomic_int calls;
    int rc;
    sh_val *result;
    sh_error err;
} outcome;

static void outcome_done(void *arg, int rc, sh_val *result, const sh_error *err)
{
    outcome *o = arg;
    o->rc = rc;
    o->result = result;
    if (err)
        o->err = *err;
    atomic_fetch_add(&o->calls, 1);
}

static void wait_outcomes(outcome *o, int n, int ms)
{
    for (int i = 0; i < n; i++)
        for (int t = 0; t < ms / 5 && atomic_load(&o[i].calls) == 0; t++)
            tf_sleep_ms(5);
    for (int i = 0; i < n; i++)
        assert_int_equal(atomic_load(&o[i].calls), 1);
}

static void outcomes_fini(outcome *o, int n)
{
    for (int i = 0; i < n; i++)
        sh_val_free(o[i].result);
}

/* ---- calls and errors --------------------------------------------------------- */

static void test_calls_return_their_results(void **state)
{
    (void)state;
    char url[128];
    sh_rpc_server *srv = server_on(tf_ipc_url(url, sizeof url, "calls"), 2, 0);
    sh_rpc_client *c = client_on(url, 5000, 0);
    sh_val *args = sh_val_new_map(), *list = sh_val_new_array();
    sh_val_push(list, sh_val_new_int(-1));
    sh_val_push(list, sh_val_new_str("a\0b", 3));
    sh_val_push(list, sh_val_new_bool(true));
    sh_val_set_cstr(args, "list", list);
    sh_val_set_cstr(args, "f", sh_val_new_float(2.5));
    sh_val *res = NULL;
    sh_error err;
    assert_int_equal(sh_rpc_call(c, "echo", args, 0, &res, &err), SH_OK);
    assert_true(sh_val_equal(res, args));
    sh_val_free(res);
    /* No arguments arrive as nil. */
    assert_int_equal(sh_rpc_call(c, "echo", NULL, 0, &res, &err), SH_OK);
    assert_int_equal(sh_val_type_of(res), SH_VAL_NIL);
    sh_val_free(res);
    sh_val_free(args);
    sh_rpc_client_free(c);
    sh_rpc_server_free(srv);
}

static void test_remote_errors_keep_code_and_message(void **state)
{
    (void)state;
    char url[128];
    sh_rpc_server *srv = server_on(tf_ipc_url(url, sizeof url, "errors"), 2, 0);
    sh_rpc_client *c = client_on(url, 5000, 0);
    const char *codes[] = {"not_found", "conflict", "lease_lost", "invalid_argument", "timeout"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        sh_val *a = sh_val_new_map(), *res = (sh_val *)1;
        sh_val_set_cstr(a, "code", sh_val_new_cstr(codes[i]));
        sh_val_set_cstr(a, "message", sh_val_new_cstr("record \"x\" is gone"));
        sh_error err;
        int rc = sh_rpc_call(c, "fail", a, 0, &res, &err);
        assert_int_equal(rc, sh_err_from_name(codes[i], strlen(codes[i])));
        assert_int_equal(err.code, rc);
        assert_string_equal(err.msg, "record \"x\" is gone");
        assert_null(res);
        sh_val_free(a);
    }
    /* A handler that gives no message: the code's description travels. */
    sh_val *a = sh_val_new_map(), *res = NULL;
    sh_val_set_cstr(a, "code", sh_val_new_cstr("conflict"));
    sh_error err;
    assert_int_equal(sh_rpc_call(c, "fail", a, 0, &res, &err), SH_ECONFLICT);
    assert_string_equal(err.msg, sh_strerror(SH_ECONFLICT));
    sh_val_free(a);
    /* An operation the server does not have. */
    assert_int_equal(sh_rpc_call(c, "no.such", NULL, 0, &res, &err), SH_ENOOP);
    assert_non_null(strstr(err.msg, "no.such"));
    /* One with prep and finish on a server without... this one has a
     * pipeline: it fails as the pipeline says. */
    sh_val *one = sh_val_new_int(1);
    assert_int_equal(sh_rpc_call(c, "piped", one, 0, &res, &err), SH_EUNAVAIL);
    assert_string_equal(err.msg, "pipeline of 1 down");
    sh_val_free(one);
    sh_rpc_client_free(c);
    sh_rpc_server_free(srv);
}

static void test_bad_operation_names_never_leave(void **state)
{
    (void)state;
    char url[128], op[SH_OP_MAX + 2];
    sh_rpc_client *c = client_on(tf_ipc_url(url, sizeof url, "opnames"), 5000, 0);
    memset(op, 'o', sizeof op - 1);
    op[sizeof op - 1] = '\0';
    sh_val *res = NULL;
    sh_error err;
    int64_t t0 = sh_mono_ms();
    assert_int_equal(sh_rpc_call(c, op, NULL, 0, &res, &err), SH_EINVAL);
    assert_int_equal(sh_rpc_call(c, "", NULL, 0, &res, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "cannot call"));
    assert_true(sh_mono_ms() - t0 < 500); /* refused here, no server needed */
    sh_rpc_client_free(c);
}

/* ---- timeouts, absent and returning servers ------------------------------------ */

static void test_timeout_then_the_late_reply_is_dropped(void **state)
{
    (void)state;
    char url[128];
    sh_rpc_server *srv = server_on(tf_ipc_url(url, sizeof url, "late"), 2, 0);
    sh_rpc_client *c = client_batching(url, 1, 64); /* one request out at a time */
    sh_val *slow = ms_args(400), *res = NULL;
    sh_error err;
    int64_t t0 = sh_mono_ms();
    assert_int_equal(sh_rpc_call(c, "sleep", slow, 100, &res, &err), SH_ETIMEDOUT);
    int64_t dt = sh_mono_ms() - t0;
    assert_true(dt >= 95 && dt < 350);
    assert_string_equal(err.msg, "no reply to sleep within 100 ms");
    assert_null(res);
    /* The next call gets its own reply, not the late one of the slow call. */
    sh_val *quick = ms_args(1);
    assert_int_equal(sh_rpc_call(c, "sleep", quick, 3000, &res, &err), SH_OK);
    assert_int_equal(sh_val_int(sh_val_get(res, "slept")), 1);
    sh_val_free(res);
    sh_val_free(slow);
    sh_val_free(quick);
    sh_rpc_client_free(c);
    sh_rpc_server_free(srv);
}

static void test_default_timeout_applies(void **state)
{
    (void)state;
    char url[128];
    sh_rpc_server *srv = server_on(tf_ipc_url(url, sizeof url, "deftimeout"), 1, 0);
    sh_rpc_client *c = client_on(url, 150, 0);
    sh_val *slow = ms_args(500), *res = NULL;
    sh_error err;
    int64_t t0 = sh_mono_ms();
    assert_int_equal(sh_rpc_call(c, "sleep", slow, 0, &res, &err), SH_ETIMEDOUT);
    assert_true(sh_mono_ms() - t0 < 450);
    assert_string_equal(err.msg, "no reply to sleep within 150 ms");
    sh_val_free(slow);
    sh_rpc_client_free(c);
    sh_rpc_server_free(srv);
}

static void test_no_server_is_a_timeout_not_a_hang(void **state)
{
    (void)state;
    char url[128];
    sh_rpc_client *c = client_on(tf_ipc_url(url, sizeof url, "nobody"), 5000, 0);
    sh_val *res = NULL;
    sh_error err;
    int64_t t0 = sh_mono_ms();
    assert_int_equal(sh_rpc_call(c, "echo", NULL, 200, &res, &err), SH_ETIMEDOUT);
    int64_t dt = sh_mono_ms() - t0;
    assert_true(dt >= 190 && dt < 1000);
    assert_non_null(strstr(err.msg, "echo"));
    sh_rpc_client_free(c);
}

static void test_server_gone_then_back(void **state)
{
    (void)state;
    char url[128];
    sh_rpc_server *srv = server_on(tf_ipc_url(url, sizeof url, "comeback"), 2, 0);
    sh_rpc_client *c = client_on(url, 5000, 0);
    sh_val *args = sh_val_new_int(7), *res = NULL;
    sh_error err;
    assert_int_equal(sh_rpc_call(c, "echo", args, 0, &res, &err), SH_OK);
    sh_val_free(res);
    sh_rpc_server_free(srv);
    /* Gone: a clear timeout, in time. */
    int64_t t0 = sh_mono_ms();
    assert_int_equal(sh_rpc_call(c, "echo", args, 200, &res, &err), SH_ETIMEDOUT);
    assert_true(sh_mono_ms() - t0 < 1000);
    assert_null(res);
    /* Back: the client redials on its own and calls succeed again. */
    srv = server_on(url, 2, 0);
    int rc = SH_ETIMEDOUT;
    for (int i = 0; i < 20 && rc != SH_OK; i++)
        rc = sh_rpc_call(c, "echo", args, 200, &res, &err);
    assert_int_equal(rc, SH_OK);
    assert_int_equal(sh_val_int(res), 7);
    sh_val_free(res);
    sh_val_free(args);
    sh_rpc_client_free(c);
    sh_rpc_server_free(srv);
}

/* ---- concurrency ----------------------------------------------------------------- */

static void test_workers_serve_in_parallel(void **state)
{
    (void)state;
    char url[128];
    sh_rpc_server *srv = server_on(tf_ipc_url(url, sizeof url, "parallel"), 4, 0);
    sh_rpc_client *c = client_batching(url, 4, 64); /* four requests out at once */
    outcome o[4];
    memset(o, 0, sizeof o);
    sh_val *a = ms_args(300);
    int64_t t0 = sh_mono_ms();
    for (int i = 0; i < 4; i++)
        assert_int_equal(sh_rpc_call_async(c, "sleep", a, 5000, outcome_done, &o[i]), SH_OK);
    wait_outcomes(o, 4, 5000);
    int64_t dt = sh_mono_ms() - t0;
    int seen = 0;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(o[i].rc, SH_OK);
        seen |= 1 << sh_val_int(sh_val_get(o[i].result, "worker"));
    }
    assert_int_equal(seen, 0xf); /* each on its own worker */
    assert_true(dt < 1000);      /* together, not 4 x 300 ms */
    outcomes_fini(o, 4);
    sh_val_free(a);
    sh_rpc_client_free(c);
    sh_rpc_server_free(srv);
}

/* ---- the client's side of the wire, seen from a raw REP socket --------------------- */

typedef struct raw_rep {
    nng_socket sock;
} raw_rep;

static void raw_open(raw_rep *r, const char *url)
{
    assert_int_equal(nng_rep0_open(&r->sock), 0);
    assert_int_equal(nng_listen(r->sock, url, NULL, 0), 0);
    nng_socket_set_ms(r->sock, NNG_OPT_RECVTIMEO, 3000);
}

/* raw_take receives one request; its calls' decoded envelopes go in calls
 * (at most max) and their number is returned; *batch tells the framing. */
static size_t raw_take(raw_rep *r, sh_call *calls, size_t max, int *batch)
{
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(nng_recv(r->sock, &buf, &len, NNG_FLAG_ALLOC), 0);
    sh_error err;
    *batch = sh_batch_is(buf, len);
    size_t n = 1;
    if (*batch) {
        sh_slice *sl = NULL;
        assert_int_equal(sh_batch_split(buf, len, &sl, &n, &err), SH_OK);
        assert_true(n <= max);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(sh_call_decode(sl[i].data, sl[i].len, NULL, &calls[i], &err), SH_OK);
        free(sl);
    } else {
        assert_int_equal(sh_call_decode(buf, len, NULL, &calls[0], &err), SH_OK);
    }
    nng_free(buf, len);
    return n;
}

static void raw_answer(raw_rep *r, const sh_buf *b)
{
    assert_int_equal(nng_send(r->sock, b->data, b->len, 0), 0);
}

static void test_queued_calls_leave_as_one_batch(void **state)
{
    (void)state;
    enum { N = 10 };
    char url[128];
    raw_rep r;
    raw_open(&r, tf_ipc_url(url, sizeof url, "rawbatch"));
    sh_rpc_client *c = client_batching(url, 1, 64);
    outcome o[N];
    memset(o, 0, sizeof o);
    sh_val *a = sh_val_new_int(0);
    assert_int_equal(sh_rpc_call_async(c, "echo", a, 5000, outcome_done, &o[0]), SH_OK);
    sh_call calls[N];
    int batch = -1;
    /* The first call leaves at once, alone, as a plain envelope. */
    assert_int_equal(raw_take(&r, calls, N, &batch), 1);
    assert_false(batch);
    assert_string_equal(calls[0].op, "echo");
    /* The rest queue behind it. */
    for (int i = 1; i < N; i++) {
        sh_val_free(a);
        a = sh_val_new_int(i);
        assert_int_equal(sh_rpc_call_async(c, "echo", a, 5000, outcome_done, &o[i]), SH_OK);
    }
    sh_buf b;
    sh_buf_init(&b);
    sh_val *res = sh_val_new_int(100);
    assert_int_equal(sh_reply_encode_ok(calls[0].id, res, &b), SH_OK);
    sh_val_free(res);
    sh_call_fini(&calls[0]);
    raw_answer(&r, &b);
    /* The reply lets the queue go: one batch of the nine others. */
    assert_int_equal(raw_take(&r, calls, N, &batch), N - 1);
    assert_true(batch);
    sh_buf_reset(&b);
    sh_batch_begin(N - 1, &b);
    for (int i = 0; i < N - 1; i++) {
        assert_int_equal(sh_val_int(calls[i].args), i + 1); /* in call order */
        sh_buf one;
        sh_buf_init(&one);
        res = sh_val_new_int(100 + i + 1);
        if (i == 4)
            sh_reply_encode_err(calls[i].id, SH_ENOTFOUND, "the fifth is missing", &one);
        else
            sh_reply_encode_ok(calls[i].id, res, &one);
        sh_batch_add(one.data, one.len, &b);
        sh_buf_fini(&one);
        sh_val_free(res);
        sh_call_fini(&calls[i]);
    }
    raw_answer(&r, &b);
    wait_outcomes(o, N, 3000);
    for (int i = 0; i < N; i++) {
        if (i == 5) {
            assert_int_equal(o[i].rc, SH_ENOTFOUND);
            assert_string_equal(o[i].err.msg, "the fifth is missing");
            assert_null(o[i].result);
        } else {
            assert_int_equal(o[i].rc, SH_OK);
            assert_int_equal(sh_val_int(o[i].result), 100 + i);
        }
    }
    outcomes_fini(o, N);
    sh_val_free(a);
    sh_buf_fini(&b);
    sh_rpc_client_free(c);
    nng_close(r.sock);
}

/* A reply that does not fit its request fails the calls, saying why. */
typedef enum { BAD_GARBAGE, BAD_ID, BAD_COUNT, BATCH_REFUSED } bad_reply;

/* bad_round sends n calls (n - 1 of them queued behind the first, so they
 * batch), answers the first well and the rest with the bad reply kind, and
 * checks the outcomes of the rest: rc and the start of the message. */
static void bad_round(const char *name, int n, bad_reply kind, int want_rc, const char *want_msg)
{
    char url[128];
    raw_rep r;
    raw_open(&r, tf_ipc_url(url, sizeof url, name));
    sh_rpc_client *c = client_batching(url, 1, 64);
    outcome o[8];
    memset(o, 0, sizeof o);
    sh_call calls[8];
    int batch;
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sh_rpc_call_async(c, "echo", NULL, 5000, outcome_done, &o[0]), SH_OK);
    raw_take(&r, calls, 8, &batch);
    for (int i = 1; i < n; i++)
        assert_int_equal(sh_rpc_call_async(c, "echo", NULL, 5000, outcome_done, &o[i]), SH_OK);
    sh_reply_encode_ok(calls[0].id, NULL, &b);
    sh_call_fini(&calls[0]);
    raw_answer(&r, &b);
    size_t got = raw_take(&r, calls, 8, &batch);
    assert_int_equal(got, (size_t)(n - 1));
    sh_buf_reset(&b);
    if (kind == BAD_GARBAGE) {
        sh_buf_append(&b, "\x81\xc1", 2);
    } else if (kind == BAD_ID) {
        sh_reply_encode_ok(calls[0].id + 1000, NULL, &b);
    } else if (kind == BAD_COUNT) {
        sh_buf one;
        sh_buf_init(&one);
        sh_reply_encode_ok(calls[0].id, NULL, &one);
        sh_batch_begin(1, &b);
        sh_batch_add(one.data, one.len, &b);
        sh_buf_fini(&one);
    } else {
        sh_reply_encode_err(0, SH_EUNAVAIL, "batch refused", &b);
    }
    for (size_t i = 0; i < got; i++)
        sh_call_fini(&calls[i]);
    raw_answer(&r, &b);
    wait_outcomes(o, n, 3000);
    assert_int_equal(o[0].rc, SH_OK);
    for (int i = 1; i < n; i++) {
        assert_int_equal(o[i].rc, want_rc);
        assert_null(o[i].result);
        if (strncmp(o[i].err.msg, want_msg, strlen(want_msg)) != 0)
            fail_msg("call %d: \"%s\", wanted \"%s...\"", i, o[i].err.msg, want_msg);
        /* The cause follows the context once, not the context again. */
        assert_null(strstr(o[i].err.msg + strlen(want_msg), want_msg));
    }
    outcomes_fini(o, n);
    sh_buf_fini(&b);
    sh_rpc_client_free(c);
    nng_close(r.sock);
}

static void test_malformed_replies_fail_clearly(void **state)
{
    (void)state;
    /* One call queued: it leaves alone, so its reply is a single one. */
    bad_round("garbage", 2, BAD_GARBAGE, SH_EPROTO, "bad reply to echo: ");
    bad_round("wrongid", 2, BAD_ID, SH_EPROTO, "reply to echo carries id");
    bad_round("count", 4, BAD_COUNT, SH_EPROTO, "call echo got a malformed batch reply");
    bad_round("refused", 4, BATCH_REFUSED, SH_EUNAVAIL, "call echo refused");
    bad_round("single", 3, BAD_ID, SH_EPROTO, "call echo got a single reply to a batch");
}

/* ---- sizes ------------------------------------------------------------------------ */

static void test_oversized_calls_are_refused_before_sending(void **state)
{
    (void)state;
    char url[128];
    sh_rpc_server *srv = server_on(tf_ipc_url(url, sizeof url, "toobig"), 1, 0);
    sh_rpc_client *c = client_on(url, 5000, 4096);
    char pad[5000];
    memset(pad, 'p', sizeof pad);
    sh_val *big = sh_val_new_str(pad, sizeof pad), *res = NULL;
    sh_error err;
    assert_int_equal(sh_rpc_call(c, "echo", big, 0, &res, &err), SH_ETOOBIG);
    assert_string_equal(err.msg, "cannot call echo: too large");
    outcome o;
    memset(&o, 0, sizeof o);
    assert_int_equal(sh_rpc_call_async(c, "echo", big, 0, outcome_done, &o), SH_ETOOBIG);
    /* Within the limit the client works on. */
    sh_val *small = sh_val_new_str(pad, 1000);
    assert_int_equal(sh_rpc_call(c, "echo", small, 0, &res, &err), SH_OK);
    assert_true(sh_val_equal(res, small));
    sh_val_free(res);
    tf_sleep_ms(50);
    assert_int_equal(atomic_load(&o.calls), 0); /* a refused call has no callback */
    sh_val_free(small);
    sh_val_free(big);
    sh_rpc_client_free(c);
    sh_rpc_server_free(srv);
}

static void test_server_refuses_calls_over_its_limit(void **state)
{
    (void)state;
    char url[128];
    sh_rpc_server *srv = server_on(tf_ipc_url(url, sizeof url, "srvmax"), 1, 2048);
    sh_rpc_client *c = client_on(url, 2000, 0);
    char pad[3000];
    memset(pad, 'p', sizeof pad);
    sh_val *big = sh_val_new_str(pad, sizeof pad), *res = NULL;
    sh_error err;
    /* Told it is too large, and by how much; not "malformed". */
    assert_int_equal(sh_rpc_call(c, "echo", big, 0, &res, &err), SH_ETOOBIG);
    assert_non_null(strstr(err.msg, "exceeds the limit of 2048"));
    assert_null(res);
    sh_val *small = sh_val_new_str(pad, 500);
    assert_int_equal(sh_rpc_call(c, "echo", small, 0, &res, &err), SH_OK);
    sh_val_free(res);
    sh_val_free(small);
    sh_val_free(big);
    sh_rpc_client_free(c);
    sh_rpc_server_free(srv);
}

static void test_result_over_the_limit_fails_once(void **state)
{
    (void)state;
    char url[128];
    sh_rpc_server *srv = server_on(tf_ipc_url(url, sizeof url, "bigreply"), 1, 64 * 1024);
    sh_rpc_client *c = client_on(url, 3000, 64 * 1024);
    sh_val *a = sh_val_new_map(), *res = NULL;
    sh_val_set_cstr(a, "n", sh_val_new_int(100 * 1024));
    sh_error err;
    atomic_store(&bigs, 0);
    int64_t t0 = sh_mono_ms();
    /* Refused by the server at once: not a timeout after the call ran again
     * on every reconnection of a client that cannot take the reply. */
    assert_int_equal(sh_rpc_call(c, "big", a, 0, &res, &err), SH_ETOOBIG);
    assert_true(sh_mono_ms() - t0 < 1000);
    assert_non_null(strstr(err.msg, "exceeds the limit of 65536"));
    assert_null(res);
    assert_int_equal(atomic_load(&bigs), 1);
    sh_val_set_cstr(a, "n", sh_val_new_int(60 * 1024));
    assert_int_equal(sh_rpc_call(c, "big", a, 0, &res, &err), SH_OK);
    size_t len = 0;
    sh_val_str(res, &len);
    assert_int_equal(len, 60 * 1024);
    sh_val_free(res);
    sh_val_free(a);
    sh_rpc_client_free(c);
    sh_rpc_server_free(srv);
}

/* ---- a batch's pipelinable calls ---------------------------------------------------- */

static void test_batch_groups_pipelinable_calls(void **state)
{
    (void)state;
    char url[128];
    sh_rpc_server *srv = server_on(tf_ipc_url(url, sizeof url, "groups"), 1, 0);
    /* piped x2, echo, piped x3 (one with bad arguments), then an unknown op. */
    const char *ops[] = {"piped", "piped", "echo", "piped", "piped", "piped", "nope"};
    int bad_at = 4;
    sh_buf env[7], b;
    sh_buf_init(&b);
    sh_batch_begin(7, &b);
    for (int i = 0; i < 7; i++) {
        sh_buf_init(&env[i]);
        sh_val *a = i == bad_at ? sh_val_new_cstr("x") : sh_val_new_int(i);
        sh_call_encode(ops[i], (uint64_t)i + 1, a, &env[i]);
        sh_batch_add(env[i].data, env[i].len, &b);
        sh_val_free(a);
        sh_buf_fini(&env[i]);
    }
    atomic_store(&pipelines, 0);
    atomic_store(&pipelined_cmds, 0);
    nng_socket s;
    assert_int_equal(nng_req0_open(&s), 0);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 3000);
    assert_int_equal(nng_dial(s, url, NULL, 0), 0);
    assert_int_equal(nng_send(s, b.data, b.len, 0), 0);
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(nng_recv(s, &buf, &len, NNG_FLAG_ALLOC), 0);
    sh_slice *sl = NULL;
    size_t n = 0;
    sh_error err;
    assert_int_equal(sh_batch_split(buf, len, &sl, &n, &err), SH_OK);
    assert_int_equal(n, 7);
    int want[] = {SH_EUNAVAIL, SH_EUNAVAIL, SH_OK, SH_EUNAVAIL, SH_EINVAL, SH_EUNAVAIL, SH_ENOOP};
    for (size_t i = 0; i < n; i++) {
        sh_reply_env r;
        assert_int_equal(sh_reply_decode(sl[i].data, sl[i].len, NULL, &r, &err), SH_OK);
        assert_int_equal(r.id, i + 1);
        assert_int_equal(r.ok ? SH_OK : r.code, want[i]);
        sh_reply_env_fini(&r);
    }
    /* Two groups, split by the echo: [0,1] and [3,5] (4 failed its prep). */
    assert_int_equal(atomic_load(&pipelines), 2);
    assert_int_equal(atomic_load(&pipelined_cmds), 4);
    free(sl);
    nng_free(buf, len);
    nng_close(s);
    sh_buf_fini(&b);
    sh_rpc_server_free(srv);
}

/* ---- set-up and teardown -------------------------------------------------------------- */

static void test_server_setup_failures(void **state)
{
    (void)state;
    char url[128];
    sh_rpc_server_opts o = {.listen_url = "nope://x",
                            .workers = 2,
                            .ops = test_ops,
                            .worker_init = worker_init,
                            .worker_fini = worker_fini};
    sh_rpc_server *s = (sh_rpc_server *)1;
    sh_error err;
    atomic_store(&inits, 0);
    atomic_store(&finis, 0);
    assert_int_equal(sh_rpc_server_new(&o, &s, &err), SH_EINVAL);
    assert_null(s);
    assert_non_null(strstr(err.msg, "nope://x"));
    /* Worker 2 of 4 cannot be set up: the two made are freed. */
    int fail_at = 2;
    o.listen_url = tf_ipc_url(url, sizeof url, "setup");
    o.workers = 4;
    o.arg = &fail_at;
    assert_int_equal(sh_rpc_server_new(&o, &s, &err), SH_EINTERNAL);
    assert_string_equal(err.msg, "cannot set up the state of RPC worker 2");
    /* The address is free again, and taken while a server runs. */
    sh_rpc_server *first = server_on(url, 1, 0);
    o.arg = NULL;
    assert_int_equal(sh_rpc_server_new(&o, &s, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, url));
    sh_rpc_server_free(first);
    assert_int_equal(atomic_load(&inits), atomic_load(&finis));
    sh_rpc_server_free(NULL);
    sh_rpc_client_free(NULL);
}

static void test_server_free_answers_calls_in_progress(void **state)
{
    (void)state;
    char url[128];
    sh_rpc_server *srv = server_on(tf_ipc_url(url, sizeof url, "drain"), 2, 0);
    sh_rpc_client *c = client_on(url, 5000, 0);
    outcome o;
    memset(&o, 0, sizeof o);
    sh_val *a = ms_args(300);
    assert_int_equal(sh_rpc_call_async(c, "sleep", a, 3000, outcome_done, &o), SH_OK);
    tf_sleep_ms(100); /* the handler runs */
    sh_rpc_server_free(srv);
    wait_outcomes(&o, 1, 3000);
    assert_int_equal(o.rc, SH_OK);
    assert_int_equal(sh_val_int(sh_val_get(o.result, "slept")), 300);
    outcomes_fini(&o, 1);
    sh_val_free(a);
    sh_rpc_client_free(c);
}

static void test_client_free_fails_calls_in_flight_once(void **state)
{
    (void)state;
    enum { N = 6 };
    char url[128];
    sh_rpc_server *srv = server_on(tf_ipc_url(url, sizeof url, "clientfree"), 1, 0);
    sh_rpc_client *c = client_batching(url, 1, 2); /* one out, the rest queued */
    outcome o[N];
    memset(o, 0, sizeof o);
    sh_val *a = ms_args(300);
    for (int i = 0; i < N; i++)
        assert_int_equal(sh_rpc_call_async(c, "sleep", a, 5000, outcome_done, &o[i]), SH_OK);
    tf_sleep_ms(50);
    int64_t t0 = sh_mono_ms();
    sh_rpc_client_free(c);
    assert_true(sh_mono_ms() - t0 < 1000);
    /* Every callback ran, once, before free returned. */
    for (int i = 0; i < N; i++) {
        assert_int_equal(atomic_load(&o[i].calls), 1);
        assert_int_equal(o[i].rc, SH_ECLOSED);
        assert_null(o[i].result);
    }
    assert_non_null(strstr(o[N - 1].err.msg, "the client is closing"));
    sh_val_free(a);
    sh_rpc_server_free(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calls_return_their_results),
        cmocka_unit_test(test_remote_errors_keep_code_and_message),
        cmocka_unit_test(test_bad_operation_names_never_leave),
        cmocka_unit_test(test_timeout_then_the_late_reply_is_dropped),
        cmocka_unit_test(test_default_timeout_applies),
        cmocka_unit_test(test_no_server_is_a_timeout_not_a_hang),
        cmocka_unit_test(test_server_gone_then_back),
        cmocka_unit_test(test_workers_serve_in_parallel),
        cmocka_unit_test(test_queued_calls_leave_as_one_batch),
        cmocka_unit_test(test_malformed_replies_fail_clearly),
        cmocka_unit_test(test_oversized_calls_are_refused_before_sending),
        cmocka_unit_test(test_server_refuses_calls_over_its_limit),
        cmocka_unit_test(test_result_over_the_limit_fails_once),
        cmocka_unit_test(test_batch_groups_pipelinable_calls),
        cmocka_unit_test(test_server_setup_failures),
        cmocka_unit_test(test_server_free_answers_calls_in_progress),
        cmocka_unit_test(test_client_free_fails_calls_in_flight_once),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
