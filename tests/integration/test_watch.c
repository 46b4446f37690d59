/* test_watch.c - the IDLE watch leases on two coordinator processes and a
 * private Redis: one owner under concurrent leases, renewals and reports
 * fenced by the token, expiry handing the watch to another worker, tokens
 * growing even when the account's record of them is lost, accounts deleted
 * or with nothing to watch dropped, watchFolders checked, bad arguments
 * refused; and the folder a watch asks to sync first handed to the sync's
 * lease once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calls.h"
#include "fixture.h"
#include "services.h"
#include "shared/rpc.h"
#include "shared/store.h"
#include "shared/util.h"

#define KEY   "8f3a0c5e7b9d1f2a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a"
#define NACC  40
#define LEASE 3

static tf_redis redis;
static pid_t coord[2];
static char url[2][64];
static sh_rpc_client *cl[2];
static char logdir[300];

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    if (tf_redis_start(&redis, 0) != 0)
        return -1;
    snprintf(logdir, sizeof logdir, "%s", redis.dir);
    sh_error err;
    for (int i = 0; i < 2; i++) {
        char logpath[400], ev[64], lease[64];
        snprintf(url[i], sizeof url[i], "tcp://127.0.0.1:%d", tf_free_port());
        snprintf(ev, sizeof ev, "tcp://127.0.0.1:%d", tf_free_port());
        snprintf(logpath, sizeof logpath, "%s/coordinator%d.log", logdir, i);
        snprintf(lease, sizeof lease, "WATCH_LEASE_SECONDS=%d", LEASE);
        const char *env[] = {"ENCRYPTION_KEY=" KEY, "SCHED_AUTO_TICK=false", lease, "RPC_WORKERS=4",
                             NULL};
        tf_service svc = {.name = "coordinator",
                          .redis_url = redis.url,
                          .rpc_url = url[i],
                          .events_url = ev,
                          .env = env,
                          .log_path = logpath};
        coord[i] = tf_service_spawn(&svc);
        if (sh_rpc_client_new(url[i], 10000, 0, &cl[i], &err))
            return -1;
    }
    if (tf_wait_ping(cl[0], 1) == 0 && tf_wait_ping(cl[1], 1) == 0)
        return 0;
    fprintf(stderr, "coordinators did not answer; logs in %s\n", logdir);
    return -1;
}

static int group_teardown(void **state)
{
    (void)state;
    sh_rpc_client_free(cl[0]);
    sh_rpc_client_free(cl[1]);
    char logs[400];
    snprintf(logs, sizeof logs, "%s/coordinator*.log", logdir);
    int rc = tf_services_stop(coord, 2, logs);
    tf_redis_stop(&redis);
    sh_rpc_fini();
    return rc;
}

static void redis_cmd(const char *a, const char *b, const char *c)
{
    sh_store *s = tf_redis_store(&redis);
    assert_non_null(s);
    sh_error err;
    sh_cmd *cmd = sh_cmd_new(a);
    if (b)
        sh_cmd_str(cmd, b);
    if (c)
        sh_cmd_str(cmd, c);
    sh_reply *r = NULL;
    assert_int_equal(sh_store_run(s, cmd, &r, &err), SH_OK);
    sh_reply_free(r);
    sh_cmd_free(cmd);
    sh_store_free(s);
}

static int each_setup(void **state)
{
    (void)state;
    redis_cmd("FLUSHALL", NULL, NULL);
    return 0;
}

/* create makes an account; watch (may be NULL: left out) is its
 * watchFolders, n names of it. Its id goes to id. */
static void create(int i, const char *const *watch, int n, char id[64])
{
    char email[64];
    snprintf(email, sizeof email, "user%d@example.com", i);
    sh_val *f = sh_val_new_map();
    tf_put_str(f, "emailAddress", email);
    tf_put_str(f, "imapHost", "imap.example.com");
    tf_put_int(f, "imapPort", 993);
    tf_put_str(f, "security", "tls");
    tf_put_str(f, "username", email);
    tf_put_str(f, "password", "pw-secret");
    if (watch) {
        sh_val *a = sh_val_new_array();
        for (int k = 0; k < n; k++)
            sh_val_push(a, sh_val_new_cstr(watch[k]));
        sh_val_set_cstr(f, "watchFolders", a);
    }
    sh_val *acc = NULL;
    assert_int_equal(tf_call(cl[0], "account.create", f, 10000, &acc, NULL), SH_OK);
    snprintf(id, 64, "%s", sh_val_get_str(acc, "id", NULL));
    sh_val_free(acc);
}

static sh_val *get(const char *id)
{
    sh_val *acc = NULL;
    assert_int_equal(tf_call(cl[1], "account.get", tf_id_args(id), 10000, &acc, NULL), SH_OK);
    return acc;
}

static const char *watch_state(const sh_val *acc)
{
    const sh_val *w = sh_val_get(acc, "watch");
    assert_non_null(w);
    assert_non_null(sh_val_get_str(w, "since", NULL));
    return sh_val_get_str(w, "state", NULL);
}

/* lease asks for up to max watches for worker through coordinator i;
 * returns the leases array (caller frees the reply in *res). */
static const sh_val *lease(int i, const char *worker, int max, sh_val **res)
{
    sh_val *a = sh_val_new_map();
    tf_put_str(a, "workerId", worker);
    tf_put_int(a, "max", max);
    assert_int_equal(tf_call(cl[i], "watch.lease", a, 10000, res, NULL), SH_OK);
    const sh_val *l = sh_val_get(*res, "leases");
    assert_int_equal(sh_val_type_of(l), SH_VAL_ARRAY);
    return l;
}

static sh_val *refs1(const char *worker, const char *id, int64_t token)
{
    sh_val *a = sh_val_new_map(), *arr = sh_val_new_array(), *r = sh_val_new_map();
    tf_put_str(a, "workerId", worker);
    tf_put_str(r, "accountId", id);
    tf_put_int(r, "token", token);
    sh_val_push(arr, r);
    sh_val_set_cstr(a, "leases", arr);
    return a;
}

/* renew1 renews one lease; returns whether it is still held. */
static bool renew1(const char *worker, const char *id, int64_t token)
{
    sh_val *res = NULL;
    assert_int_equal(tf_call(cl[1], "watch.renew", refs1(worker, id, token), 10000, &res, NULL),
                     SH_OK);
    size_t nheld = sh_val_len(sh_val_get(res, "held"));
    size_t nlost = sh_val_len(sh_val_get(res, "lost"));
    assert_int_equal(nheld + nlost, 1);
    sh_val_free(res);
    return nheld == 1;
}

static int report(const char *id, int64_t token, const char *state, const char *error)
{
    sh_val *a = sh_val_new_map();
    tf_put_str(a, "accountId", id);
    tf_put_int(a, "token", token);
    tf_put_str(a, "state", state);
    if (error)
        tf_put_str(a, "error", error);
    sh_error err;
    return tf_call(cl[0], "watch.report", a, 10000, NULL, &err);
}

typedef struct racer {
    int idx;
    sh_val *res;
} racer;

static void *racer_main(void *p)
{
    racer *r = p;
    char worker[32];
    snprintf(worker, sizeof worker, "worker-%d", r->idx);
    sh_val *a = sh_val_new_map();
    tf_put_str(a, "workerId", worker);
    tf_put_int(a, "max", NACC);
    tf_call(cl[r->idx % 2], "watch.lease", a, 10000, &r->res, NULL);
    return NULL;
}

static void test_every_account_has_exactly_one_watcher_under_concurrent_leases(void **state)
{
    (void)state;
    char ids[NACC][64];
    for (int i = 0; i < NACC; i++)
        create(i, NULL, 0, ids[i]);
    racer r[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        r[i] = (racer){.idx = i};
        assert_int_equal(pthread_create(&th[i], NULL, racer_main, &r[i]), 0);
    }
    int owners[NACC] = {0};
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        const sh_val *l = sh_val_get(r[i].res, "leases");
        assert_non_null(l);
        for (size_t k = 0; k < sh_val_len(l); k++) {
            const sh_val *e = sh_val_at(l, k);
            const char *id = sh_val_get_str(e, "accountId", NULL);
            assert_true(sh_val_int(sh_val_get(e, "token")) > 0);
            assert_string_equal(sh_val_get_str(e, "host", NULL), "imap.example.com");
            assert_int_equal(sh_val_type_of(sh_val_get(e, "passwordSealed")), SH_VAL_BIN);
            const sh_val *wf = sh_val_get(e, "watchFolders");
            assert_int_equal(sh_val_len(wf), 1);
            assert_string_equal(sh_val_str(sh_val_at(wf, 0), NULL), "INBOX");
            for (int a = 0; a < NACC; a++)
                if (strcmp(ids[a], id) == 0)
                    owners[a]++;
        }
        sh_val_free(r[i].res);
    }
    for (int a = 0; a < NACC; a++)
        assert_int_equal(owners[a], 1);
    /* Nothing left: a third worker gets none. */
    sh_val *res = NULL;
    assert_int_equal(sh_val_len(lease(0, "late", 10, &res)), 0);
    sh_val_free(res);
    sh_val *acc = get(ids[0]);
    assert_string_equal(watch_state(acc), "connecting");
    sh_val_free(acc);
}

static void test_renew_report_fenced_and_expiry_moves_the_watch(void **state)
{
    (void)state;
    char id[64];
    create(1, NULL, 0, id);
    sh_val *res = NULL;
    const sh_val *l = lease(0, "w1", 5, &res);
    assert_int_equal(sh_val_len(l), 1);
    int64_t t1 = sh_val_int(sh_val_get(sh_val_at(l, 0), "token"));
    sh_val_free(res);
    assert_int_equal(report(id, t1, "idle", NULL), SH_OK);
    sh_val *acc = get(id);
    assert_string_equal(watch_state(acc), "idle");
    sh_val_free(acc);
    assert_int_equal(report(id, t1, "error", "connection lost"), SH_OK);
    acc = get(id);
    assert_string_equal(watch_state(acc), "error");
    assert_string_equal(sh_val_get_str(sh_val_get(acc, "watch"), "error", NULL), "connection lost");
    sh_val_free(acc);
    assert_true(renew1("w1", id, t1));
    assert_false(renew1("w2", id, t1));     /* not its lease */
    assert_false(renew1("w1", id, t1 + 1)); /* wrong token */
    /* w1 stops renewing: within the lease time, w2 takes it. */
    tf_sleep_ms(LEASE * 1000 + 300);
    l = lease(1, "w2", 5, &res);
    assert_int_equal(sh_val_len(l), 1);
    int64_t t2 = sh_val_int(sh_val_get(sh_val_at(l, 0), "token"));
    sh_val_free(res);
    assert_true(t2 > t1);
    assert_false(renew1("w1", id, t1));
    assert_int_equal(report(id, t1, "idle", NULL), SH_ELEASE);
    assert_int_equal(report(id, t2, "polling", NULL), SH_OK);
    acc = get(id);
    assert_string_equal(watch_state(acc), "polling");
    sh_val_free(acc);
    /* Released: free again at once, with a greater token. */
    assert_int_equal(tf_call(cl[0], "watch.release", refs1("w2", id, t2), 10000, &res, NULL),
                     SH_OK);
    assert_int_equal(sh_val_len(sh_val_get(res, "released")), 1);
    sh_val_free(res);
    acc = get(id);
    assert_string_equal(watch_state(acc), "off");
    sh_val_free(acc);
    l = lease(0, "w3", 5, &res);
    assert_int_equal(sh_val_len(l), 1);
    int64_t t3 = sh_val_int(sh_val_get(sh_val_at(l, 0), "token"));
    sh_val_free(res);
    assert_true(t3 > t2);
    /* The token record lost: the next token is still greater. */
    char key[96];
    snprintf(key, sizeof key, "account:{%s}", id);
    assert_int_equal(tf_call(cl[0], "watch.release", refs1("w3", id, t3), 10000, NULL, NULL),
                     SH_OK);
    redis_cmd("HDEL", key, "watchToken");
    l = lease(0, "w4", 5, &res);
    assert_int_equal(sh_val_len(l), 1);
    assert_true(sh_val_int(sh_val_get(sh_val_at(l, 0), "token")) > t3);
    sh_val_free(res);
}

static void test_deleted_or_unwatched_accounts_lose_their_watch(void **state)
{
    (void)state;
    static const char *const none[] = {NULL};
    static const char *const two[] = {"INBOX", "Archive"};
    char a[64], b[64], c[64];
    create(1, NULL, 0, a);
    create(2, none, 0, b);
    create(3, two, 2, c);
    sh_val *acc = get(b);
    assert_string_equal(watch_state(acc), "off");
    assert_int_equal(sh_val_len(sh_val_get(acc, "watchFolders")), 0);
    sh_val_free(acc);
    acc = get(c);
    assert_int_equal(sh_val_len(sh_val_get(acc, "watchFolders")), 2);
    sh_val_free(acc);
    sh_val *res = NULL;
    const sh_val *l = lease(0, "w1", 10, &res);
    assert_int_equal(sh_val_len(l), 2); /* not b */
    int64_t ta = 0, tc = 0;
    for (size_t i = 0; i < 2; i++) {
        const sh_val *e = sh_val_at(l, i);
        const char *id = sh_val_get_str(e, "accountId", NULL);
        assert_string_not_equal(id, b);
        if (strcmp(id, a) == 0)
            ta = sh_val_int(sh_val_get(e, "token"));
        else
            tc = sh_val_int(sh_val_get(e, "token"));
    }
    sh_val_free(res);
    assert_true(ta > 0 && tc > 0);
    /* c stops watching: its renewal fails, and nobody leases it. */
    sh_val *u = sh_val_new_map(), *f = sh_val_new_map();
    tf_put_str(u, "id", c);
    sh_val_set_cstr(f, "watchFolders", sh_val_new_array());
    sh_val_set_cstr(u, "fields", f);
    assert_int_equal(tf_call(cl[0], "account.update", u, 10000, NULL, NULL), SH_OK);
    assert_false(renew1("w1", c, tc));
    acc = get(c);
    assert_string_equal(watch_state(acc), "off");
    sh_val_free(acc);
    /* a is deleted: its renewal and report fail. */
    assert_int_equal(tf_call(cl[0], "account.delete", tf_id_args(a), 10000, NULL, NULL), SH_OK);
    assert_false(renew1("w1", a, ta));
    assert_int_equal(report(a, ta, "idle", NULL), SH_ELEASE);
    assert_int_equal(sh_val_len(lease(1, "w2", 10, &res)), 0);
    sh_val_free(res);
}

static void expect_einval(int i, const char *op, sh_val *args, const char *words)
{
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(tf_call(cl[i], op, args, 10000, NULL, &err), SH_EINVAL);
    if (!strstr(err.msg, words)) {
        fprintf(stderr, "%s: \"%s\" lacks \"%s\"\n", op, err.msg, words);
        fail();
    }
}

static void test_bad_arguments_are_refused_clearly(void **state)
{
    (void)state;
    sh_val *a = sh_val_new_map();
    tf_put_str(a, "workerId", "w1");
    expect_einval(0, "watch.lease", a, "\"max\"");
    a = sh_val_new_map();
    tf_put_str(a, "workerId", "bad id!");
    tf_put_int(a, "max", 3);
    expect_einval(0, "watch.lease", a, "\"workerId\"");
    a = sh_val_new_map();
    tf_put_str(a, "workerId", "w1");
    tf_put_int(a, "max", 3);
    tf_put_int(a, "extra", 3);
    expect_einval(0, "watch.lease", a, "unknown field \"extra\"");
    a = sh_val_new_map();
    tf_put_str(a, "workerId", "w1");
    tf_put_str(a, "leases", "x");
    expect_einval(1, "watch.renew", a, "\"leases\"");
    expect_einval(1, "watch.release", refs1("w1", "a1", 0), "\"token\"");
    a = sh_val_new_map();
    tf_put_str(a, "accountId", "a1");
    tf_put_int(a, "token", 5);
    tf_put_str(a, "state", "sleeping");
    expect_einval(0, "watch.report", a, "\"state\"");
    /* watchFolders is checked as folders are, but may be empty. */
    char id[64];
    create(1, NULL, 0, id);
    sh_val *u = sh_val_new_map(), *f = sh_val_new_map(), *arr = sh_val_new_array();
    sh_val_push(arr, sh_val_new_cstr(""));
    tf_put_str(u, "id", id);
    sh_val_set_cstr(f, "watchFolders", arr);
    sh_val_set_cstr(u, "fields", f);
    expect_einval(0, "account.update", u, "\"watchFolders\": entry 0");
    u = sh_val_new_map();
    f = sh_val_new_map();
    tf_put_str(u, "id", id);
    tf_put_str(f, "watchFolders", "INBOX");
    sh_val_set_cstr(u, "fields", f);
    expect_einval(0, "account.update", u, "\"watchFolders\" must be an array");
    /* Nothing changed by the refusals. */
    sh_val *acc = get(id);
    assert_int_equal(sh_val_len(sh_val_get(acc, "watchFolders")), 1);
    sh_val_free(acc);
}

static void test_sync_now_names_the_folder_to_sync_first(void **state)
{
    (void)state;
    char id[64];
    create(1, NULL, 0, id);
    sh_val *a = tf_id_args(id);
    tf_put_str(a, "folder", "Archive");
    assert_int_equal(tf_call(cl[0], "account.sync_now", a, 10000, NULL, NULL), SH_OK);
    sh_val *w = sh_val_new_map(), *res = NULL;
    tf_put_str(w, "worker", "w1");
    assert_int_equal(tf_call(cl[1], "sync.lease", w, 10000, &res, NULL), SH_OK);
    const sh_val *acc = sh_val_get(sh_val_get(res, "lease"), "account");
    assert_string_equal(sh_val_get_str(acc, "syncFirst", NULL), "Archive");
    /* Handed on once: the public view never shows it, the next lease lacks it. */
    sh_val *pub = get(id);
    assert_null(sh_val_get(pub, "syncFirst"));
    sh_val_free(pub);
    sh_val *c = sh_val_new_map();
    tf_put_str(c, "accountId", id);
    tf_put_str(c, "leaseToken", sh_val_get_str(sh_val_get(res, "lease"), "leaseToken", NULL));
    tf_put_str(c, "outcome", "ok");
    assert_int_equal(tf_call(cl[0], "sync.complete", c, 10000, NULL, NULL), SH_OK);
    sh_val_free(res);
    assert_int_equal(tf_call(cl[0], "account.sync_now", tf_id_args(id), 10000, NULL, NULL), SH_OK);
    w = sh_val_new_map();
    tf_put_str(w, "worker", "w1");
    assert_int_equal(tf_call(cl[1], "sync.lease", w, 10000, &res, NULL), SH_OK);
    acc = sh_val_get(sh_val_get(res, "lease"), "account");
    assert_non_null(acc);
    assert_null(sh_val_get(acc, "syncFirst"));
    sh_val_free(res);
    a = tf_id_args(id);
    sh_val_set_cstr(a, "folder", sh_val_new_int(7));
    expect_einval(0, "account.sync_now", a, "\"folder\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_every_account_has_exactly_one_watcher_under_concurrent_leases,
                               each_setup),
        cmocka_unit_test_setup(test_renew_report_fenced_and_expiry_moves_the_watch, each_setup),
        cmocka_unit_test_setup(test_deleted_or_unwatched_accounts_lose_their_watch, each_setup),
        cmocka_unit_test_setup(test_bad_arguments_are_refused_clearly, each_setup),
        cmocka_unit_test_setup(test_sync_now_names_the_folder_to_sync_first, each_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
