/* test_sync_dovecot.c - the sync-worker against a real Dovecot: Redis,
 * progress, coordinator and sync-worker run as processes; an account made
 * through the coordinator is synced (1,000 generated messages, envelopes and
 * flags as generated), then a second IMAP client adds, flags and deletes
 * messages and the next sync follows; a wrong password ends in auth_error;
 * a deleted account's mail is dropped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dovecot_fixture.h"
#include "fixture.h"
#include "shared/rpc.h"
#include "shared/store.h"
#include "shared/util.h"

#define NMSG 1000
#define KEY  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static tf_redis redis;
static tf_dovecot dove;
static pid_t progress_pid, coord_pid, worker_pid;
static char coord_url[64], worker_url[64], progress_url[64];
static sh_rpc_client *coord, *worker, *progress;
static sh_store *store;
static char account_id[160];

static void put_s(sh_val *m, const char *k, const char *v)
{
    sh_val_set_cstr(m, k, sh_val_new_cstr(v));
}

static int call(sh_rpc_client *c, const char *op, sh_val *args, sh_val **out)
{
    sh_val *res = NULL;
    sh_error err;
    int rc = sh_rpc_call(c, op, args, 10000, &res, &err);
    if (rc != SH_OK)
        fprintf(stderr, "%s: %s\n", op, err.msg);
    sh_val_free(args);
    if (out)
        *out = res;
    else
        sh_val_free(res);
    return rc;
}

static pid_t spawn(const char *bin, const char *name, const char *const *env)
{
    char log[400];
    snprintf(log, sizeof log, "%s/%s.log", redis.dir, name);
    return tf_spawn(tf_build_path(bin), env, log);
}

static int wait_ping(sh_rpc_client *c)
{
    for (int i = 0; i < 250; i++) {
        sh_val *res = NULL;
        sh_error err;
        int rc = sh_rpc_call(c, "ping", NULL, 200, &res, &err);
        sh_val_free(res);
        if (rc == SH_OK)
            return 0;
        tf_sleep_ms(20);
    }
    return -1;
}

static int group_setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    if (tf_redis_start(&redis, 0) != 0)
        return -1;
    if (tf_dovecot_start(&dove, "test", "secret", NMSG) != 0)
        return -1;
    char e_redis[160], p_rpc[96], p_ev[96], c_rpc[96], c_ev[96], w_rpc[96], w_ev[96];
    char c_ev_url[64];
    snprintf(progress_url, sizeof progress_url, "tcp://127.0.0.1:%d", tf_free_port());
    snprintf(coord_url, sizeof coord_url, "tcp://127.0.0.1:%d", tf_free_port());
    snprintf(worker_url, sizeof worker_url, "tcp://127.0.0.1:%d", tf_free_port());
    snprintf(c_ev_url, sizeof c_ev_url, "tcp://127.0.0.1:%d", tf_free_port());
    snprintf(e_redis, sizeof e_redis, "REDIS_URL=%s", redis.url);
    snprintf(p_rpc, sizeof p_rpc, "PROGRESS_RPC_URL=%s", progress_url);
    snprintf(p_ev, sizeof p_ev, "PROGRESS_EVENTS_URL=tcp://127.0.0.1:%d", tf_free_port());
    snprintf(c_rpc, sizeof c_rpc, "COORDINATOR_RPC_URL=%s", coord_url);
    snprintf(c_ev, sizeof c_ev, "COORDINATOR_EVENTS_URL=%s", c_ev_url);
    snprintf(w_rpc, sizeof w_rpc, "SYNC_WORKER_RPC_URL=%s", worker_url);
    snprintf(w_ev, sizeof w_ev, "SYNC_WORKER_EVENTS_URL=tcp://127.0.0.1:%d", tf_free_port());
    const char *penv[] = {e_redis, p_rpc, p_ev, NULL};
    const char *cenv[] = {e_redis, c_rpc, c_ev, "ENCRYPTION_KEY=" KEY, "SCHED_AUTO_TICK=false",
                          NULL};
    const char *wenv[] = {e_redis,
                          p_rpc,
                          c_rpc,
                          c_ev,
                          w_rpc,
                          w_ev,
                          "ENCRYPTION_KEY=" KEY,
                          "SYNC_CONCURRENCY=2",
                          "SYNC_FETCH_BATCH=200",
                          "IMAP_COMMAND_TIMEOUT_SECONDS=20",
                          NULL};
    progress_pid = spawn("services/progress/progress", "progress", penv);
    coord_pid = spawn("services/coordinator/coordinator", "coordinator", cenv);
    worker_pid = spawn("services/sync-worker/sync-worker", "sync-worker", wenv);
    if (progress_pid <= 0 || coord_pid <= 0 || worker_pid <= 0)
        return -1;
    sh_error err;
    if (sh_rpc_client_new(coord_url, 10000, 0, &coord, &err) ||
        sh_rpc_client_new(worker_url, 10000, 0, &worker, &err) ||
        sh_rpc_client_new(progress_url, 10000, 0, &progress, &err))
        return -1;
    if (wait_ping(coord) || wait_ping(worker) || wait_ping(progress)) {
        fprintf(stderr, "services did not answer; logs in %s\n", redis.dir);
        return -1;
    }
    sh_redis_url u;
    if (sh_redis_url_parse(redis.url, &u, &err) || sh_store_new(&u, NULL, &store, &err))
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    int bad = 0;
    pid_t pids[] = {worker_pid, coord_pid, progress_pid};
    for (size_t i = 0; i < 3; i++) {
        if (pids[i] > 0 && tf_stop(pids[i], SIGTERM, 15000) != 0) {
            fprintf(stderr, "service %zu did not stop cleanly\n", i);
            bad = 1;
        }
    }
    /* Keep the services' logs beside the test binary for a look after a
     * failure. */
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "mkdir -p test_sync_dovecot.logs && cp %s/*.log %s/dovecot.log "
             "test_sync_dovecot.logs/ 2>/dev/null",
             redis.dir, dove.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "(cannot keep the logs)\n");
    if (bad) {
        snprintf(cmd, sizeof cmd, "cat %s/*.log >&2", redis.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "(no logs)\n");
    }
    sh_rpc_client_free(coord);
    sh_rpc_client_free(worker);
    sh_rpc_client_free(progress);
    sh_store_free(store);
    tf_dovecot_stop(&dove);
    tf_redis_stop(&redis);
    sh_rpc_fini();
    return bad ? -1 : 0;
}

/* create_account returns the id of a new account on the test Dovecot. */
static void create_account(const char *password, char *id, size_t len)
{
    sh_val *a = sh_val_new_map(), *res = NULL;
    put_s(a, "emailAddress", "test@example.com");
    put_s(a, "imapHost", "127.0.0.1");
    sh_val_set_cstr(a, "imapPort", sh_val_new_int(dove.port));
    put_s(a, "security", "none");
    put_s(a, "username", "test");
    put_s(a, "password", password);
    assert_int_equal(call(coord, "account.create", a, &res), SH_OK);
    const char *s = sh_val_get_str(res, "id", NULL);
    assert_non_null(s);
    snprintf(id, len, "%s", s);
    sh_val_free(res);
}

static sh_val *id_args(const char *id)
{
    sh_val *a = sh_val_new_map();
    put_s(a, "id", id);
    return a;
}

/* sync_and_wait asks for a sync, waits until the run's progress record
 * says complete and the account's status settles, and checks it is want.
 * The run's progress id goes to pid. */
static void sync_and_wait(const char *id, const char *want, char *pid, size_t pidlen)
{
    sh_val *res = NULL;
    assert_int_equal(call(coord, "account.sync_now", id_args(id), &res), SH_OK);
    const char *p = sh_val_get_str(res, "progressId", NULL);
    assert_non_null(p);
    snprintf(pid, pidlen, "%s", p);
    sh_val_free(res);
    bool complete = false;
    for (int i = 0; i < 1200 && !complete; i++) {
        sh_val *args = id_args(pid);
        sh_error err;
        int rc = sh_rpc_call(progress, "progress.get", args, 5000, &res, &err);
        sh_val_free(args);
        complete = rc == SH_OK && sh_val_bool(sh_val_get(res, "complete"));
        sh_val_free(res);
        res = NULL;
        if (!complete)
            tf_sleep_ms(50);
    }
    assert_true(complete);
    char status[32] = "";
    for (int i = 0; i < 200; i++) {
        assert_int_equal(call(coord, "account.get", id_args(id), &res), SH_OK);
        const char *st = sh_val_get_str(res, "syncStatus", NULL);
        snprintf(status, sizeof status, "%s", st ? st : "");
        if (strcmp(status, "queued") && strcmp(status, "syncing") && strcmp(status, want)) {
            const char *em = sh_val_get_str(res, "errorMessage", NULL);
            fprintf(stderr, "sync ended %s: %s\n", status, em ? em : "");
        }
        sh_val_free(res);
        if (strcmp(status, "queued") && strcmp(status, "syncing"))
            break;
        tf_sleep_ms(50);
    }
    assert_string_equal(status, want);
}

/* list_all reads every message of INBOX through messages.list, page by
 * page; returns an array the caller frees. */
static sh_val *list_all(const char *id)
{
    sh_val *all = sh_val_new_array();
    int64_t cursor = 0;
    for (int page = 0; page < 100; page++) {
        sh_val *a = sh_val_new_map(), *res = NULL;
        put_s(a, "accountId", id);
        sh_val_set_cstr(a, "limit", sh_val_new_int(300));
        if (cursor)
            sh_val_set_cstr(a, "cursor", sh_val_new_int(cursor));
        assert_int_equal(call(worker, "messages.list", a, &res), SH_OK);
        const sh_val *msgs = sh_val_get(res, "messages");
        for (size_t i = 0; i < sh_val_len(msgs); i++)
            sh_val_push(all, sh_val_clone(sh_val_at(msgs, i)));
        const sh_val *next = sh_val_get(res, "nextCursor");
        cursor = sh_val_type_of(next) == SH_VAL_INT ? sh_val_int(next) : 0;
        sh_val_free(res);
        if (!cursor)
            break;
    }
    return all;
}

static bool has_flag(const sh_val *m, const char *flag)
{
    const sh_val *flags = sh_val_get(m, "flags");
    for (size_t i = 0; i < sh_val_len(flags); i++)
        if (strcmp(sh_val_str(sh_val_at(flags, i), NULL), flag) == 0)
            return true;
    return false;
}

/* msg_number returns n of a generated message from its id, or -1. */
static int msg_number(const sh_val *m)
{
    const char *mid = sh_val_get_str(m, "messageId", NULL);
    int n;
    if (!mid || sscanf(mid, "<msg%d@example.test>", &n) != 1)
        return -1;
    return n;
}

static void test_initial_sync(void **state)
{
    char pid[128];
    create_account("secret", account_id, sizeof account_id);
    int64_t t0 = sh_mono_ms();
    sync_and_wait(account_id, "ok", pid, sizeof pid);
    fprintf(stderr, "initial sync of %d messages: %lld ms\n", NMSG, (long long)(sh_mono_ms() - t0));

    sh_val *all = list_all(account_id);
    assert_int_equal(sh_val_len(all), NMSG);
    static bool seen[NMSG + 1];
    int64_t prev_uid = INT64_MAX;
    for (size_t i = 0; i < sh_val_len(all); i++) {
        const sh_val *m = sh_val_at(all, i);
        int n = msg_number(m);
        assert_true(n >= 1 && n <= NMSG);
        assert_false(seen[n]);
        seen[n] = true;
        int64_t uid = sh_val_int(sh_val_get(m, "uid"));
        assert_true(uid < prev_uid); /* newest first */
        prev_uid = uid;
        char want[128];
        snprintf(want, sizeof want, "Message %d", n);
        assert_string_equal(sh_val_get_str(m, "subject", NULL), want);
        snprintf(want, sizeof want, "Sender %d <sender%d@example.com>", n, n);
        assert_string_equal(sh_val_get_str(m, "from", NULL), want);
        assert_string_equal(sh_val_get_str(m, "to", NULL), "Test User <test@example.com>");
        assert_string_equal(sh_val_get_str(m, "folder", NULL), "INBOX");
        assert_true(sh_val_int(sh_val_get(m, "size")) > 100);
        assert_int_equal(has_flag(m, "\\Seen"), tf_dovecot_message_seen(n));
    }
    sh_val_free(all);

    /* The run's progress: complete, with every message counted. */
    sh_val *res = NULL;
    assert_int_equal(call(progress, "progress.get", id_args(pid), &res), SH_OK);
    assert_true(sh_val_bool(sh_val_get(res, "complete")));
    assert_string_equal(sh_val_get_str(res, "phase", NULL), "sync");
    sh_val_free(res);

    /* A second sync with no change stores nothing twice. */
    sync_and_wait(account_id, "ok", pid, sizeof pid);
    all = list_all(account_id);
    assert_int_equal(sh_val_len(all), NMSG);
    sh_val_free(all);
}

static void test_incremental(void **state)
{
    char pid[128], append[1200], msg[1024];
    size_t len = tf_dovecot_message(NMSG + 1, msg, sizeof msg);
    snprintf(append, sizeof append, "APPEND INBOX (\\Flagged) {%zu+}\r\n%s", len, msg);
    const char *cmds[] = {"SELECT INBOX",
                          "UID STORE 1 +FLAGS.SILENT (\\Flagged)",
                          "UID STORE 3 -FLAGS.SILENT (\\Seen)",
                          "UID STORE 2 +FLAGS.SILENT (\\Deleted)",
                          "UID EXPUNGE 2",
                          append,
                          NULL};
    char out[4096];
    assert_int_equal(tf_dovecot_imap(&dove, cmds, out, sizeof out), 0);
    sync_and_wait(account_id, "ok", pid, sizeof pid);

    sh_val *all = list_all(account_id);
    assert_int_equal(sh_val_len(all), NMSG);
    const sh_val *newest = sh_val_at(all, 0);
    assert_int_equal(msg_number(newest), NMSG + 1);
    assert_int_equal(sh_val_int(sh_val_get(newest, "uid")), NMSG + 1);
    assert_true(has_flag(newest, "\\Flagged"));
    sh_val_free(all);

    sh_val *a = sh_val_new_map(), *res = NULL;
    put_s(a, "accountId", account_id);
    sh_val_set_cstr(a, "uid", sh_val_new_int(1));
    assert_int_equal(call(worker, "messages.get", a, &res), SH_OK);
    assert_true(has_flag(res, "\\Flagged"));
    sh_val_free(res);

    a = sh_val_new_map();
    put_s(a, "accountId", account_id);
    sh_val_set_cstr(a, "uid", sh_val_new_int(3));
    assert_int_equal(call(worker, "messages.get", a, &res), SH_OK);
    assert_false(has_flag(res, "\\Seen"));
    sh_val_free(res);

    a = sh_val_new_map();
    put_s(a, "accountId", account_id);
    sh_val_set_cstr(a, "uid", sh_val_new_int(2));
    sh_error err;
    assert_int_equal(sh_rpc_call(worker, "messages.get", a, 5000, &res, &err), SH_ENOTFOUND);
    sh_val_free(a);
}

static long long count_keys(const char *id)
{
    sh_cmd *c = sh_cmd_new("KEYS");
    sh_cmd_fmt(c, "mail:{%s}:*", id);
    sh_reply *r = NULL;
    sh_error err;
    assert_int_equal(sh_store_call(store, c, &r, &err), SH_OK);
    long long n = (long long)sh_reply_count(r);
    sh_reply_free(r);
    return n;
}

static void test_deleted_account(void **state)
{
    assert_true(count_keys(account_id) > NMSG);
    sh_val *res = NULL;
    assert_int_equal(call(coord, "account.delete", id_args(account_id), &res), SH_OK);
    sh_val_free(res);
    long long n = -1;
    for (int i = 0; i < 200 && n != 0; i++) {
        n = count_keys(account_id);
        if (n)
            tf_sleep_ms(50);
    }
    assert_int_equal(n, 0);
}

static void test_wrong_password(void **state)
{
    char id[160], pid[128];
    create_account("not-the-password", id, sizeof id);
    sync_and_wait(id, "auth_error", pid, sizeof pid);
    sh_val *res = NULL;
    assert_int_equal(call(progress, "log.list", id_args(pid), &res), SH_OK);
    assert_true(sh_val_len(res) >= 1);
    assert_string_equal(sh_val_get_str(sh_val_at(res, 0), "tool", NULL), "imap");
    sh_val_free(res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_initial_sync),
        cmocka_unit_test(test_incremental),
        cmocka_unit_test(test_deleted_account),
        cmocka_unit_test(test_wrong_password),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
