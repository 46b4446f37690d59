/* test_rpc_batch.c - calls batched on the wire and pipelined into Redis,
 * against the progress service as a process and a private Redis: merges and
 * version order with many writers sharing a client, a batch with a
 * malformed call, batches over the caps, clients that batch beside ones
 * that do not, and a service killed with a batch in flight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls.h"
#include "fixture.h"
#include "services.h"
#include "shared/msg.h"
#include "shared/rpc.h"
#include "shared/util.h"
#include "signing.h"

static tf_redis redis;
static pid_t svc;
static char rpc_url[64], logpath[300];

static sh_rpc_client *client_with(int inflight, int max_calls, size_t max_bytes)
{
    sh_rpc_batch_opts o = {inflight, max_calls, max_bytes}, def = {4, 64, 256 * 1024};
    sh_rpc_batch_defaults(&o);
    sh_rpc_client *c = NULL;
    sh_error err;
    assert_int_equal(sh_rpc_client_new(rpc_url, 5000, 0, &c, &err), SH_OK);
    sh_rpc_batch_defaults(&def);
    return c;
}

static int start_service(void)
{
    const char *env[] = {"RPC_WORKERS=4", NULL};
    tf_service def = {.name = "progress",
                      .redis_url = redis.url,
                      .rpc_url = rpc_url,
                      .env = env,
                      .log_path = logpath};
    sh_rpc_client *c = client_with(1, 1, 1024);
    int rc = tf_service_start(&def, c, &svc);
    sh_rpc_client_free(c);
    return rc;
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    if (tf_redis_start(&redis, 0) != 0)
        return -1;
    snprintf(rpc_url, sizeof rpc_url, "tcp://127.0.0.1:%d", tf_free_port());
    snprintf(logpath, sizeof logpath, "%s/progress.log", redis.dir);
    return start_service();
}

static int group_teardown(void **state)
{
    (void)state;
    int st = tf_stop(svc, SIGTERM, 10000);
    tf_redis_stop(&redis);
    sh_rpc_fini();
    return st == 0 ? 0 : -1;
}

/* ---- many writers on one client ------------------------------------------ */

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* run_writers runs n writers of `writes` updates each on record id through
 * one client that keeps at most `inflight` requests out, then checks the
 * merge and that the versions handed out are exactly 1..n*writes. */
static void run_writers(const char *id, int n, int writes, int inflight)
{
    sh_rpc_client *c = client_with(inflight, 64, 256 * 1024);
    pthread_t *t = calloc((size_t)n, sizeof *t);
    tf_progress_writer *w = calloc((size_t)n, sizeof *w);
    int64_t *all = calloc((size_t)(n * writes), sizeof *all);
    for (int i = 0; i < n; i++) {
        w[i] = (tf_progress_writer){
            .c = c, .id = id, .idx = i, .writes = writes, .versions = all + i * writes};
        pthread_create(&t[i], NULL, tf_progress_writer_main, &w[i]);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
        assert_int_equal(w[i].out_of_order, 0);
    }
    qsort(all, (size_t)(n * writes), sizeof *all, cmp64);
    for (int i = 0; i < n * writes; i++)
        assert_int_equal(all[i], i + 1);
    sh_val *a = sh_val_new_map(), *rec = NULL;
    sh_val_set_cstr(a, "id", sh_val_new_cstr(id));
    sh_error err;
    assert_int_equal(sh_rpc_call(c, "progress.get", a, 5000, &rec, &err), SH_OK);
    sh_val_free(a);
    for (int i = 0; i < n; i++) {
        char field[16];
        snprintf(field, sizeof field, "f%d", i);
        assert_int_equal(sh_val_int(sh_val_get(rec, field)), writes);
    }
    assert_int_equal(sh_val_int(sh_val_get(rec, "version")), n * writes);
    sh_val_free(rec);
    sh_rpc_client_free(c);
    free(all);
    free(w);
    free(t);
}

static void test_eight_writers_merge_batched(void **state)
{
    (void)state;
    run_writers("merge8", 8, 200, 1); /* one request out at a time: the rest batch */
}

static void test_fifty_writers_version_order(void **state)
{
    (void)state;
    run_writers("order50", 50, 40, 2);
}

/* ---- raw batches ------------------------------------------------------------ */

/* raw_batch sends n envelopes as one batch on a plain REQ socket and
 * returns the decoded replies (n of them) in envs. */
static void raw_batch(sh_buf *const *items, size_t n, sh_reply_env *envs)
{
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sh_batch_begin(n, &b), SH_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sh_batch_add(items[i]->data, items[i]->len, &b), SH_OK);
    nng_socket s;
    assert_int_equal(nng_req0_open(&s), 0);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 5000);
    assert_int_equal(nng_dial(s, rpc_url, NULL, 0), 0);
    sh_buf req;
    sh_buf_init(&req);
    tf_sign(SH_MSGMAC_CALL, b.data, b.len, 0, NULL, &req);
    assert_int_equal(nng_send(s, req.data, req.len, 0), 0);
    sh_buf_fini(&req);
    void *buf;
    size_t blen;
    assert_int_equal(nng_recv(s, &buf, &blen, NNG_FLAG_ALLOC), 0);
    const void *body = buf;
    size_t len = blen;
    tf_unsign(&body, &len);
    assert_true(sh_batch_is(body, len));
    sh_slice *sl;
    size_t got;
    sh_error err;
    assert_int_equal(sh_batch_split(body, len, &sl, &got, &err), SH_OK);
    assert_int_equal(got, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sh_reply_decode(sl[i].data, sl[i].len, NULL, &envs[i], &err), SH_OK);
    free(sl);
    nng_free(buf, blen);
    nng_close(s);
    sh_buf_fini(&b);
}

static void test_batch_with_one_malformed_call(void **state)
{
    (void)state;
    sh_buf e[6];
    sh_buf *items[6];
    for (int i = 0; i < 6; i++) {
        sh_buf_init(&e[i]);
        items[i] = &e[i];
    }
    sh_val *u1 = tf_progress_args("mal", "a", 1), *u2 = tf_progress_args("mal", "a", 2);
    sh_val *bad = sh_val_new_map();
    sh_val_set_cstr(bad, "id", sh_val_new_int(5)); /* id must be a string */
    sh_call_encode("progress.update", 11, u1, &e[0]);
    sh_buf_append(&e[1], "\xc1\xc1\xc1", 3);           /* not msgpack at all */
    sh_call_encode("progress.update", 13, bad, &e[2]); /* invalid arguments */
    sh_call_encode("no.such.op", 14, NULL, &e[3]);
    sh_call_encode("progress.update", 15, u2, &e[4]);
    sh_call_encode("progress.get", 16, NULL, &e[5]); /* nil arguments */
    sh_reply_env env[6];
    raw_batch(items, 6, env);
    assert_true(env[0].ok);
    assert_int_equal(env[0].id, 11);
    assert_int_equal(sh_val_int(sh_val_get(env[0].result, "a")), 1);
    assert_false(env[1].ok);
    assert_int_equal(env[1].code, SH_EPROTO);
    assert_false(env[2].ok);
    assert_int_equal(env[2].id, 13);
    assert_int_equal(env[2].code, SH_EINVAL);
    assert_false(env[3].ok);
    assert_int_equal(env[3].code, SH_ENOOP);
    assert_true(env[4].ok);
    assert_int_equal(env[4].id, 15);
    /* The good calls around the bad ones applied, in order. */
    assert_int_equal(sh_val_int(sh_val_get(env[4].result, "a")), 2);
    assert_int_equal(sh_val_int(sh_val_get(env[4].result, "version")),
                     sh_val_int(sh_val_get(env[0].result, "version")) + 1);
    assert_false(env[5].ok);
    assert_int_equal(env[5].code, SH_EINVAL);
    for (int i = 0; i < 6; i++) {
        sh_reply_env_fini(&env[i]);
        sh_buf_fini(&e[i]);
    }
    sh_val_free(u1);
    sh_val_free(u2);
    sh_val_free(bad);
}

static void test_batch_over_the_server_cap(void **state)
{
    (void)state;
    size_t n = SH_RPC_BATCH_SERVER_MAX + 5;
    sh_buf *e = calloc(n, sizeof *e);
    sh_buf **items = calloc(n, sizeof *items);
    sh_reply_env *env = calloc(n, sizeof *env);
    sh_val *a = sh_val_new_map();
    sh_val_set_cstr(a, "id", sh_val_new_cstr("capped"));
    for (size_t i = 0; i < n; i++) {
        sh_buf_init(&e[i]);
        items[i] = &e[i];
        sh_call_encode("progress.get", i + 1, a, &e[i]);
    }
    raw_batch(items, n, env);
    for (size_t i = 0; i < n; i++) {
        assert_false(env[i].ok); /* the record does not exist */
        if (i < SH_RPC_BATCH_SERVER_MAX) {
            assert_int_equal(env[i].code, SH_ENOTFOUND);
            assert_int_equal(env[i].id, i + 1);
        } else {
            assert_int_equal(env[i].code, SH_ELIMIT);
        }
        sh_reply_env_fini(&env[i]);
        sh_buf_fini(&e[i]);
    }
    sh_val_free(a);
    free(env);
    free(items);
    free(e);
}

/* ---- asynchronous calls, counted -------------------------------------------- */

typedef struct outcome {
    atomic_int answers;
    int rc;
    int64_t value;
    atomic_int *left;
} outcome;

static void outcome_done(void *arg, int rc, sh_val *result, const sh_error *err)
{
    (void)err;
    outcome *o = arg;
    o->rc = rc;
    o->value = rc == SH_OK ? sh_val_int(sh_val_get(result, "n")) : -1;
    sh_val_free(result);
    if (atomic_fetch_add(&o->answers, 1) == 0)
        atomic_fetch_sub(o->left, 1);
}

static void wait_left(atomic_int *left, int ms)
{
    for (int i = 0; i < ms / 10 && atomic_load(left) > 0; i++)
        tf_sleep_ms(10);
}

/* fire sends n updates of field "n" = i on records id-i%8 through c. */
static void fire(sh_rpc_client *c, const char *id, outcome *o, int n, atomic_int *left,
                 int timeout_ms)
{
    for (int i = 0; i < n; i++) {
        char rec[64];
        snprintf(rec, sizeof rec, "%s-%d", id, i % 8);
        sh_val *a = sh_val_new_map(), *f = sh_val_new_map();
        sh_val_set_cstr(a, "id", sh_val_new_cstr(rec));
        sh_val_set_cstr(f, "n", sh_val_new_int(i));
        /* A large field makes the byte cap bite as well. */
        char pad[300];
        memset(pad, 'p', sizeof pad);
        sh_val_set_cstr(f, "pad", sh_val_new_str(pad, sizeof pad));
        sh_val_set_cstr(a, "fields", f);
        o[i].left = left;
        assert_int_equal(
            sh_rpc_call_async(c, "progress.update", a, timeout_ms, outcome_done, &o[i]), SH_OK);
        sh_val_free(a);
    }
}

static void test_client_caps_split_batches(void **state)
{
    (void)state;
    enum { N = 200 };
    /* At most 5 calls or 1 KiB (about 3 calls) per batch, one batch out. */
    sh_rpc_client *c = client_with(1, 5, 1024);
    static outcome o[N];
    memset(o, 0, sizeof o);
    atomic_int left = N;
    fire(c, "caps", o, N, &left, 10000);
    wait_left(&left, 15000);
    assert_int_equal(atomic_load(&left), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(atomic_load(&o[i].answers), 1);
        assert_int_equal(o[i].rc, SH_OK);
        assert_int_equal(o[i].value, i); /* each call got its own reply */
    }
    sh_rpc_client_free(c);
}

static void test_mixed_single_and_batched_clients(void **state)
{
    (void)state;
    enum { N = 300 };
    sh_rpc_client *single = client_with(4, 1, 1024 * 1024); /* never batches */
    sh_rpc_client *batched = client_with(1, 64, 256 * 1024);
    static outcome a[N], b[N];
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    atomic_int left = 2 * N;
    fire(single, "mixed", a, N, &left, 10000);
    fire(batched, "mixed", b, N, &left, 10000);
    wait_left(&left, 15000);
    assert_int_equal(atomic_load(&left), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(a[i].rc, SH_OK);
        assert_int_equal(a[i].value, i);
        assert_int_equal(b[i].rc, SH_OK);
        assert_int_equal(b[i].value, i);
    }
    /* Every write counted once: 8 records, 2 * N writes in all. */
    int64_t total = 0;
    for (int r = 0; r < 8; r++) {
        char id[32];
        snprintf(id, sizeof id, "mixed-%d", r);
        sh_val *args = sh_val_new_map(), *rec = NULL;
        sh_val_set_cstr(args, "id", sh_val_new_cstr(id));
        sh_error err;
        assert_int_equal(sh_rpc_call(batched, "progress.get", args, 5000, &rec, &err), SH_OK);
        total += sh_val_int(sh_val_get(rec, "version"));
        sh_val_free(rec);
        sh_val_free(args);
    }
    assert_int_equal(total, 2 * N);
    sh_rpc_client_free(single);
    sh_rpc_client_free(batched);
}

/* A service killed while a batch is in flight: every call of it gets one
 * outcome (answered by the restarted service, or failed), none two. */
static void test_service_killed_with_batch_in_flight(void **state)
{
    (void)state;
    enum { N = 120 };
    sh_rpc_client *c = client_with(1, 64, 256 * 1024);
    static outcome o[N];
    memset(o, 0, sizeof o);
    atomic_int left = N;
    /* Redis paused: the service holds the batch it took, waiting on Redis. */
    char cmd[300];
    snprintf(cmd, sizeof cmd, "redis-cli -p %d CLIENT PAUSE 1500 >/dev/null", redis.port);
    assert_int_equal(system(cmd), 0);
    fire(c, "killed", o, N, &left, 4000);
    tf_sleep_ms(300);
    kill(svc, SIGKILL);
    tf_stop(svc, SIGKILL, 5000);
    assert_int_equal(start_service(), 0);
    wait_left(&left, 10000);
    assert_int_equal(atomic_load(&left), 0);
    int ok = 0, failed = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(atomic_load(&o[i].answers), 1);
        if (o[i].rc == SH_OK) {
            assert_int_equal(o[i].value, i);
            ok++;
        } else {
            failed++;
        }
    }
    fprintf(stderr, "killed mid-batch: %d answered, %d failed\n", ok, failed);
    tf_sleep_ms(500); /* a late reply must not bring a second outcome */
    for (int i = 0; i < N; i++)
        assert_int_equal(atomic_load(&o[i].answers), 1);
    sh_rpc_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eight_writers_merge_batched),
        cmocka_unit_test(test_fifty_writers_version_order),
        cmocka_unit_test(test_batch_with_one_malformed_call),
        cmocka_unit_test(test_batch_over_the_server_cap),
        cmocka_unit_test(test_client_caps_split_batches),
        cmocka_unit_test(test_mixed_single_and_batched_clients),
        cmocka_unit_test(test_service_killed_with_batch_in_flight),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
