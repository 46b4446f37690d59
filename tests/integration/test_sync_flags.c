/* test_sync_flags.c - read/unread both ways against a real Dovecot: marks
 * made through the sync-worker RPC and the gateway are shown at once and
 * reach the server on the next sync (checked by a second IMAP session); a
 * message changed on the server meanwhile keeps the server's flags and the
 * conflict is logged; the account view counts unread messages. */
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

#define NMSG 30
#define KEY  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static tf_redis redis;
static tf_dovecot dove;
static pid_t progress_pid, coord_pid, worker_pid, gateway_pid;
static int http_port;
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
    char g_listen[64], g_sync[96];
    http_port = tf_free_port();
    snprintf(g_listen, sizeof g_listen, "GATEWAY_LISTEN=127.0.0.1:%d", http_port);
    snprintf(g_sync, sizeof g_sync, "SYNC_WORKER_RPC_URL=%s", worker_url);
    const char *genv[] = {p_rpc, p_ev, c_rpc, g_sync, g_listen, NULL};
    gateway_pid = spawn("services/gateway/gateway", "gateway", genv);
    if (progress_pid <= 0 || coord_pid <= 0 || worker_pid <= 0 || gateway_pid <= 0)
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
    pid_t pids[] = {gateway_pid, worker_pid, coord_pid, progress_pid};
    for (size_t i = 0; i < 4; i++) {
        if (pids[i] > 0 && tf_stop(pids[i], SIGTERM, 15000) != 0) {
            fprintf(stderr, "service %zu did not stop cleanly\n", i);
            bad = 1;
        }
    }
    /* Keep the services' logs beside the test binary for a look after a
     * failure. */
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "mkdir -p test_sync_flags.logs && cp %s/*.log %s/dovecot.log "
             "test_sync_flags.logs/ 2>/dev/null",
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

/* get_msg returns messages.get of uid (caller frees). */
static sh_val *get_msg(uint32_t uid)
{
    sh_val *a = sh_val_new_map(), *res = NULL;
    put_s(a, "accountId", account_id);
    sh_val_set_cstr(a, "uid", sh_val_new_int(uid));
    assert_int_equal(call(worker, "messages.get", a, &res), SH_OK);
    return res;
}

static void set_seen(uint32_t uid, bool seen)
{
    sh_val *a = sh_val_new_map(), *res = NULL;
    put_s(a, "accountId", account_id);
    sh_val_set_cstr(a, "uid", sh_val_new_int(uid));
    sh_val_set_cstr(a, "seen", sh_val_new_bool(seen));
    assert_int_equal(call(worker, "messages.set_seen", a, &res), SH_OK);
    assert_int_equal(has_flag(res, "\\Seen"), seen);
    sh_val_free(res);
}

/* server_flags returns the FLAGS the server gives for uid, from a second
 * IMAP session, in buf. */
static const char *server_flags(uint32_t uid, char *buf, size_t len)
{
    char fetch[64], out[4096];
    snprintf(fetch, sizeof fetch, "UID FETCH %u (FLAGS)", (unsigned)uid);
    const char *cmds[] = {"EXAMINE INBOX", fetch, NULL};
    assert_int_equal(tf_dovecot_imap(&dove, cmds, out, sizeof out), 0);
    const char *p = strstr(out, " FETCH (");
    assert_non_null(p);
    p = strstr(p, "FLAGS (");
    assert_non_null(p);
    p += 7;
    const char *e = strchr(p, ')');
    assert_non_null(e);
    snprintf(buf, len, "%.*s", (int)(e - p), p);
    return buf;
}

static bool server_seen(uint32_t uid)
{
    char f[256];
    return strstr(server_flags(uid, f, sizeof f), "\\Seen") != NULL;
}

static void test_initial_sync(void **state)
{
    char pid[128];
    create_account("secret", account_id, sizeof account_id);
    sync_and_wait(account_id, "ok", pid, sizeof pid);
    sh_val *all = list_all(account_id);
    assert_int_equal(sh_val_len(all), NMSG);
    for (size_t i = 0; i < sh_val_len(all); i++)
        assert_true(msg_number(sh_val_at(all, i)) > 0);
    sh_val_free(all);
}

/* Read/unread through the RPC: shown at once, on the server after the next
 * sync. */
static void test_set_seen_pushed(void **state)
{
    char pid[128];
    assert_false(server_seen(11));
    assert_true(server_seen(12));
    set_seen(11, true);
    set_seen(12, false);
    sh_val *m = get_msg(11);
    assert_true(has_flag(m, "\\Seen"));
    sh_val_free(m);
    m = get_msg(12);
    assert_false(has_flag(m, "\\Seen"));
    sh_val_free(m);
    assert_false(server_seen(11)); /* not yet pushed */
    sync_and_wait(account_id, "ok", pid, sizeof pid);
    assert_true(server_seen(11));
    assert_false(server_seen(12));
    m = get_msg(11);
    assert_true(has_flag(m, "\\Seen"));
    sh_val_free(m);
    m = get_msg(12);
    assert_false(has_flag(m, "\\Seen"));
    sh_val_free(m);
    /* Nothing is pushed twice: a second client's change stays. */
    const char *cmds[] = {"SELECT INBOX", "UID STORE 11 -FLAGS.SILENT (\\Seen)", NULL};
    assert_int_equal(tf_dovecot_imap(&dove, cmds, NULL, 0), 0);
    sync_and_wait(account_id, "ok", pid, sizeof pid);
    assert_false(server_seen(11));
    m = get_msg(11);
    assert_false(has_flag(m, "\\Seen"));
    sh_val_free(m);
}

/* A change made on the server after the last sync wins over the API's. */
static void test_conflict_server_wins(void **state)
{
    char pid[128], f[256];
    set_seen(13, true);
    const char *cmds[] = {"SELECT INBOX", "UID STORE 13 +FLAGS.SILENT (\\Flagged)", NULL};
    assert_int_equal(tf_dovecot_imap(&dove, cmds, NULL, 0), 0);
    sync_and_wait(account_id, "ok", pid, sizeof pid);
    server_flags(13, f, sizeof f);
    assert_non_null(strstr(f, "\\Flagged"));
    assert_null(strstr(f, "\\Seen"));
    sh_val *m = get_msg(13);
    assert_true(has_flag(m, "\\Flagged"));
    assert_false(has_flag(m, "\\Seen"));
    sh_val_free(m);
    /* The conflict is in the run's log. */
    sh_val *res = NULL;
    assert_int_equal(call(progress, "log.list", id_args(pid), &res), SH_OK);
    bool found = false;
    for (size_t i = 0; i < sh_val_len(res); i++) {
        const char *e = sh_val_get_str(sh_val_at(res, i), "error", NULL);
        if (e && strstr(e, "message 13 was changed on the server"))
            found = true;
    }
    sh_val_free(res);
    assert_true(found);
}

/* http runs curl and returns its HTTP status; the body goes to body. */
static int http(const char *method, const char *path, char *body, size_t len)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd,
             "curl -s -m 10 -o /dev/stdout -w '\\n%%{http_code}' -X %s 'http://127.0.0.1:%d%s'",
             method, http_port, path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(body, 1, len - 1, p);
    body[n] = '\0';
    pclose(p);
    char *nl = strrchr(body, '\n');
    assert_non_null(nl);
    *nl = '\0';
    return atoi(nl + 1);
}

static void test_http_routes(void **state)
{
    char path[300], body[65536], pid[128];
    snprintf(path, sizeof path, "/api/accounts/%s/messages?limit=5", account_id);
    assert_int_equal(http("GET", path, body, sizeof body), 200);
    assert_non_null(strstr(body, "\"nextCursor\":26"));
    assert_non_null(strstr(body, "\"subject\":\"Message 30\""));
    snprintf(path, sizeof path, "/api/accounts/%s/messages?limit=5&cursor=26", account_id);
    assert_int_equal(http("GET", path, body, sizeof body), 200);
    assert_non_null(strstr(body, "\"subject\":\"Message 25\""));
    assert_null(strstr(body, "\"subject\":\"Message 26\""));
    assert_int_equal(http("GET", "/api/accounts/nope/messages", body, sizeof body), 404);

    snprintf(path, sizeof path, "/api/accounts/%s/messages/14", account_id);
    assert_int_equal(http("GET", path, body, sizeof body), 200);
    assert_non_null(strstr(body, "\"uid\":14"));
    assert_null(strstr(body, "Seen"));
    snprintf(path, sizeof path, "/api/accounts/%s/messages/0", account_id);
    assert_int_equal(http("GET", path, body, sizeof body), 400);
    snprintf(path, sizeof path, "/api/accounts/%s/messages/9999", account_id);
    assert_int_equal(http("GET", path, body, sizeof body), 404);

    /* read: shown at once, pushed by the sync it asks for */
    snprintf(path, sizeof path, "/api/accounts/%s/messages/14/read?folder=INBOX", account_id);
    assert_int_equal(http("POST", path, body, sizeof body), 200);
    assert_non_null(strstr(body, "\"flags\":[\"\\\\Seen\"]"));
    snprintf(path, sizeof path, "/api/accounts/%s/messages/15/unread", account_id);
    assert_int_equal(http("POST", path, body, sizeof body), 200);
    assert_null(strstr(body, "Seen"));
    bool pushed = false;
    for (int i = 0; i < 200 && !pushed; i++) {
        pushed = server_seen(14) && !server_seen(15);
        if (!pushed)
            tf_sleep_ms(50);
    }
    assert_true(pushed);
    sync_and_wait(account_id, "ok", pid, sizeof pid);

    /* the account view counts the unread messages */
    sh_val *all = list_all(account_id);
    int unread = 0;
    for (size_t i = 0; i < sh_val_len(all); i++)
        unread += !has_flag(sh_val_at(all, i), "\\Seen");
    sh_val_free(all);
    char want[128];
    snprintf(want, sizeof want, "\"folders\":[{\"name\":\"INBOX\",\"total\":%d,\"unread\":%d}]",
             NMSG, unread);
    snprintf(path, sizeof path, "/api/accounts/%s", account_id);
    assert_int_equal(http("GET", path, body, sizeof body), 200);
    if (!strstr(body, want))
        fprintf(stderr, "want %s in %s\n", want, body);
    assert_non_null(strstr(body, want));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_initial_sync),
        cmocka_unit_test(test_set_seen_pushed),
        cmocka_unit_test(test_conflict_server_wins),
        cmocka_unit_test(test_http_routes),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
