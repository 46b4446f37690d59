/* test_sync_robust.c - the sync-worker when things go wrong, against a real
 * Dovecot holding 5,000 messages and a fake IMAP server: the initial sync of
 * the whole mailbox, a worker killed (SIGKILL) and one stopped (SIGTERM) in
 * the middle of it, a folder recreated under a new UIDVALIDITY, the server
 * stopped and started again, and hostile or broken replies (a literal of a
 * gigabyte, garbage, a missing envelope, invalid UTF-8, an over-long
 * subject) that end the account's run in `error` while the worker goes on;
 * last, a folder marked \Sent (SPECIAL-USE) synced beside INBOX. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dovecot_fixture.h"
#include "fixture.h"
#include "shared/rpc.h"
#include "shared/store.h"
#include "shared/util.h"

#define NMSG 5000
#define KEY  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static tf_redis redis;
static tf_dovecot dove;
static pid_t progress_pid, coord_pid, worker_pid;
static char coord_url[64], worker_url[64], progress_url[64];
static sh_rpc_client *coord, *worker, *progress;
static sh_store *store;
static char acct_main[160];
static long long inbox_uv;
static char w_env[10][160];
static const char *wenv[12];

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

/* start_worker starts a sync-worker (a new log file each time). */
static int start_worker(void)
{
    static int n;
    char name[32];
    snprintf(name, sizeof name, "sync-worker-%d", n++);
    worker_pid = spawn("services/sync-worker/sync-worker", name, wenv);
    return worker_pid > 0 && wait_ping(worker) == 0 ? 0 : -1;
}

static int group_setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    if (tf_redis_start(&redis, 0) != 0)
        return -1;
    if (tf_dovecot_start(&dove, "test", "secret", NMSG) != 0)
        return -1;
    char e_redis[160], p_rpc[96], p_ev[96], c_rpc[96], c_ev[96];
    snprintf(progress_url, sizeof progress_url, "tcp://127.0.0.1:%d", tf_free_port());
    snprintf(coord_url, sizeof coord_url, "tcp://127.0.0.1:%d", tf_free_port());
    snprintf(worker_url, sizeof worker_url, "tcp://127.0.0.1:%d", tf_free_port());
    snprintf(e_redis, sizeof e_redis, "REDIS_URL=%s", redis.url);
    snprintf(p_rpc, sizeof p_rpc, "PROGRESS_RPC_URL=%s", progress_url);
    snprintf(p_ev, sizeof p_ev, "PROGRESS_EVENTS_URL=tcp://127.0.0.1:%d", tf_free_port());
    snprintf(c_rpc, sizeof c_rpc, "COORDINATOR_RPC_URL=%s", coord_url);
    snprintf(c_ev, sizeof c_ev, "COORDINATOR_EVENTS_URL=tcp://127.0.0.1:%d", tf_free_port());
    const char *penv[] = {e_redis, p_rpc, p_ev, NULL};
    const char *cenv[] = {e_redis,
                          c_rpc,
                          c_ev,
                          "ENCRYPTION_KEY=" KEY,
                          "SCHED_AUTO_TICK=false",
                          "SYNC_LEASE_SECONDS=5",
                          NULL};
    snprintf(w_env[0], sizeof w_env[0], "%s", e_redis);
    snprintf(w_env[1], sizeof w_env[1], "%s", p_rpc);
    snprintf(w_env[2], sizeof w_env[2], "%s", c_rpc);
    snprintf(w_env[3], sizeof w_env[3], "%s", c_ev);
    snprintf(w_env[4], sizeof w_env[4], "SYNC_WORKER_RPC_URL=%s", worker_url);
    snprintf(w_env[5], sizeof w_env[5], "SYNC_WORKER_EVENTS_URL=tcp://127.0.0.1:%d",
             tf_free_port());
    snprintf(w_env[6], sizeof w_env[6], "ENCRYPTION_KEY=" KEY);
    snprintf(w_env[7], sizeof w_env[7], "SYNC_CONCURRENCY=2");
    snprintf(w_env[8], sizeof w_env[8], "SYNC_FETCH_BATCH=50");
    snprintf(w_env[9], sizeof w_env[9], "SYNC_RENEW_SECONDS=1");
    for (int i = 0; i < 10; i++)
        wenv[i] = w_env[i];
    wenv[10] = "IMAP_COMMAND_TIMEOUT_SECONDS=20";
    wenv[11] = NULL;
    progress_pid = spawn("services/progress/progress", "progress", penv);
    coord_pid = spawn("services/coordinator/coordinator", "coordinator", cenv);
    if (progress_pid <= 0 || coord_pid <= 0)
        return -1;
    sh_error err;
    if (sh_rpc_client_new(coord_url, 10000, 0, &coord, &err) ||
        sh_rpc_client_new(worker_url, 10000, 0, &worker, &err) ||
        sh_rpc_client_new(progress_url, 10000, 0, &progress, &err))
        return -1;
    if (wait_ping(coord) || wait_ping(progress) || start_worker()) {
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
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "mkdir -p test_sync_robust.logs && cp %s/*.log %s/dovecot.log "
             "test_sync_robust.logs/ 2>/dev/null",
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

/* create_account returns the id of a new account for user on port, with
 * the folders given (NULL: INBOX). */
static void create_account(int port, const char *user, const char *folder, char *id, size_t len)
{
    sh_val *a = sh_val_new_map(), *res = NULL;
    put_s(a, "emailAddress", "test@example.com");
    put_s(a, "imapHost", "127.0.0.1");
    sh_val_set_cstr(a, "imapPort", sh_val_new_int(port));
    put_s(a, "security", "none");
    put_s(a, "username", user);
    put_s(a, "password", "secret");
    if (folder) {
        sh_val *f = sh_val_new_array();
        sh_val_push(f, sh_val_new_cstr(folder));
        sh_val_set_cstr(a, "folders", f);
    }
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

/* account_status copies the account's syncStatus and errorMessage. */
static void account_status(const char *id, char *status, size_t slen, char *msg, size_t mlen)
{
    sh_val *res = NULL;
    assert_int_equal(call(coord, "account.get", id_args(id), &res), SH_OK);
    const char *st = sh_val_get_str(res, "syncStatus", NULL);
    const char *em = sh_val_get_str(res, "errorMessage", NULL);
    snprintf(status, slen, "%s", st ? st : "");
    if (msg)
        snprintf(msg, mlen, "%s", em ? em : "");
    sh_val_free(res);
}

/* wait_settled waits until the account is neither queued nor syncing and
 * checks its status is want; its error message goes to msg. */
static void wait_settled(const char *id, const char *want, char *msg, size_t mlen)
{
    char status[32] = "", em[512] = "";
    for (int i = 0; i < 2400; i++) {
        account_status(id, status, sizeof status, em, sizeof em);
        if (strcmp(status, "queued") && strcmp(status, "syncing"))
            break;
        tf_sleep_ms(50);
    }
    if (strcmp(status, want))
        fprintf(stderr, "sync ended %s: %s\n", status, em);
    assert_string_equal(status, want);
    if (msg)
        snprintf(msg, mlen, "%s", em);
}

/* sync_now asks for a sync of the account. */
static void sync_now(const char *id)
{
    sh_val *res = NULL;
    assert_int_equal(call(coord, "account.sync_now", id_args(id), &res), SH_OK);
    assert_non_null(sh_val_get_str(res, "progressId", NULL));
    sh_val_free(res);
}

static void sync_and_wait(const char *id, const char *want, char *msg, size_t mlen)
{
    sync_now(id);
    wait_settled(id, want, msg, mlen);
}

/* list_all reads every message of folder through messages.list. */
static sh_val *list_all(const char *id, const char *folder)
{
    sh_val *all = sh_val_new_array();
    int64_t cursor = 0;
    for (int page = 0; page < 100; page++) {
        sh_val *a = sh_val_new_map(), *res = NULL;
        put_s(a, "accountId", id);
        put_s(a, "folder", folder);
        sh_val_set_cstr(a, "limit", sh_val_new_int(500));
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

static int msg_number(const sh_val *m)
{
    const char *mid = sh_val_get_str(m, "messageId", NULL);
    int n;
    if (!mid || sscanf(mid, "<msg%d@example.test>", &n) != 1)
        return -1;
    return n;
}

/* check_exactly checks the folder holds exactly the generated messages
 * first..last, once each, with their envelopes and \Seen. */
static void check_exactly(const char *id, const char *folder, int first, int last)
{
    sh_val *all = list_all(id, folder);
    assert_int_equal(sh_val_len(all), last - first + 1);
    char *seen = calloc((size_t)(last - first + 1), 1);
    assert_non_null(seen);
    for (size_t i = 0; i < sh_val_len(all); i++) {
        const sh_val *m = sh_val_at(all, i);
        int n = msg_number(m);
        assert_true(n >= first && n <= last);
        assert_false(seen[n - first]);
        seen[n - first] = 1;
        assert_int_equal(has_flag(m, "\\Seen"), tf_dovecot_message_seen(n));
        if (n % 97 == 0 || n == first || n == last) {
            char want[128];
            snprintf(want, sizeof want, "Message %d", n);
            assert_string_equal(sh_val_get_str(m, "subject", NULL), want);
            snprintf(want, sizeof want, "Sender %d <sender%d@example.com>", n, n);
            assert_string_equal(sh_val_get_str(m, "from", NULL), want);
            assert_string_equal(sh_val_get_str(m, "to", NULL), "Test User <test@example.com>");
            assert_true(sh_val_int(sh_val_get(m, "size")) > 100);
        }
    }
    free(seen);
    sh_val_free(all);
}

static sh_reply *redis_cmd(sh_cmd *c)
{
    sh_reply *r = NULL;
    sh_error err;
    assert_int_equal(sh_store_call(store, c, &r, &err), SH_OK);
    return r;
}

static long long redis_int(sh_cmd *c)
{
    sh_reply *r = redis_cmd(c);
    long long v = sh_reply_kind(r) == SH_REPLY_INTEGER ? sh_reply_integer(r) : 0;
    if (sh_reply_kind(r) == SH_REPLY_STRING) {
        const char *s = sh_reply_string(r, NULL);
        v = s ? atoll(s) : 0;
    }
    sh_reply_free(r);
    return v;
}

static long long hget_ll(const char *key, const char *field)
{
    sh_cmd *c = sh_cmd_new("HGET");
    sh_cmd_str(c, key);
    sh_cmd_str(c, field);
    return redis_int(c);
}

static long long count_keys(const char *pattern)
{
    sh_cmd *c = sh_cmd_new("KEYS");
    sh_cmd_str(c, pattern);
    sh_reply *r = redis_cmd(c);
    long long n = (long long)sh_reply_count(r);
    sh_reply_free(r);
    return n;
}

/* stored_inbox is the number of INBOX messages stored for the account. */
static long long stored_inbox(const char *id)
{
    sh_cmd *c = sh_cmd_new("ZCARD");
    sh_cmd_fmt(c, "mail:{%s}:idx:INBOX:%lld", id, inbox_uv);
    return redis_int(c);
}

/* wait_stored waits until at least n INBOX messages are stored; returns
 * how many were when it saw them. */
static long long wait_stored(const char *id, long long n)
{
    long long have = 0;
    int64_t until = sh_mono_ms() + 60000;
    while ((have = stored_inbox(id)) < n && sh_mono_ms() < until)
        tf_sleep_ms(1);
    return have;
}

static void test_initial_sync_5000(void **state)
{
    create_account(dove.port, "test", NULL, acct_main, sizeof acct_main);
    int64_t t0 = sh_mono_ms();
    sync_and_wait(acct_main, "ok", NULL, 0);
    fprintf(stderr, "initial sync of %d messages: %lld ms\n", NMSG, (long long)(sh_mono_ms() - t0));
    char key[256];
    snprintf(key, sizeof key, "mail:{%s}:state:INBOX", acct_main);
    inbox_uv = hget_ll(key, "uidvalidity");
    assert_true(inbox_uv > 0);
    check_exactly(acct_main, "INBOX", 1, NMSG);
    /* Every \Seen flag, unread count included. */
    sh_cmd *c = sh_cmd_new("ZCARD");
    sh_cmd_fmt(c, "mail:{%s}:unseen:INBOX:%lld", acct_main, inbox_uv);
    long long unread = 0;
    for (int n = 1; n <= NMSG; n++)
        unread += !tf_dovecot_message_seen(n);
    assert_int_equal(redis_int(c), unread);
}

static void test_sigkill_mid_sync(void **state)
{
    char id[160], key[256];
    create_account(dove.port, "test", NULL, id, sizeof id);
    sync_now(id);
    long long at_kill = wait_stored(id, 1000);
    assert_int_equal(kill(worker_pid, SIGKILL), 0);
    int st;
    assert_int_equal(waitpid(worker_pid, &st, 0), worker_pid);
    worker_pid = 0;
    fprintf(stderr, "killed with %lld messages stored\n", at_kill);
    assert_true(at_kill >= 1000);
    assert_true(stored_inbox(id) < NMSG);
    assert_int_equal(start_worker(), 0);

    /* The account stays `syncing` until the dead worker's lease runs out;
     * the next tick queues it again. */
    char status[32];
    account_status(id, status, sizeof status, NULL, 0);
    assert_string_equal(status, "syncing");
    snprintf(key, sizeof key, "account:{%s}", id);
    long long expires = hget_ll(key, "leaseExpires");
    assert_true(expires > 0);
    while (sh_now_ms() <= expires + 50)
        tf_sleep_ms(50);
    sh_val *a = sh_val_new_map(), *res = NULL;
    sh_val_set_cstr(a, "force", sh_val_new_bool(true));
    sh_val_set_cstr(a, "now", sh_val_new_int(sh_now_ms()));
    assert_int_equal(call(coord, "sched.tick", a, &res), SH_OK);
    const sh_val *rq = sh_val_get(res, "requeued");
    bool found = false;
    for (size_t i = 0; i < sh_val_len(rq); i++)
        found = found || strcmp(sh_val_str(sh_val_at(rq, i), NULL), id) == 0;
    sh_val_free(res);
    assert_true(found);
    wait_settled(id, "ok", NULL, 0);

    check_exactly(id, "INBOX", 1, NMSG);
    assert_int_equal(stored_inbox(id), NMSG);
    snprintf(key, sizeof key, "mail:{%s}:m:INBOX:*", id);
    assert_int_equal(count_keys(key), NMSG);
}

static void test_sigterm_mid_sync(void **state)
{
    char id[160], msg[512], status[32];
    create_account(dove.port, "test", NULL, id, sizeof id);
    sync_now(id);
    assert_true(wait_stored(id, 1000) >= 1000);
    int64_t t0 = sh_mono_ms();
    int st = tf_stop(worker_pid, SIGTERM, 10000);
    int64_t took = sh_mono_ms() - t0;
    worker_pid = 0;
    fprintf(stderr, "stopped in %lld ms with %lld messages stored\n", (long long)took,
            stored_inbox(id));
    assert_int_equal(st, 0);
    assert_true(took < 10000);
    account_status(id, status, sizeof status, msg, sizeof msg);
    assert_string_not_equal(status, "syncing");
    assert_string_equal(status, "error");
    assert_string_equal(msg, "interrupted by shutdown");
    assert_true(stored_inbox(id) < NMSG);

    assert_int_equal(start_worker(), 0);
    sync_and_wait(id, "ok", NULL, 0);
    check_exactly(id, "INBOX", 1, NMSG);
}

/* append_cmds fills cmds with APPENDs of messages first..last to folder. */
static void append_cmds(const char *folder, int first, int last, char bufs[][1200],
                        const char **cmds)
{
    char msg[1024];
    int k = 0;
    for (int n = first; n <= last; n++, k++) {
        size_t len = tf_dovecot_message(n, msg, sizeof msg);
        snprintf(bufs[k], 1200, "APPEND %s (%s) {%zu+}\r\n%s", folder,
                 tf_dovecot_message_seen(n) ? "\\Seen" : "", len, msg);
        cmds[k] = bufs[k];
    }
    cmds[k] = NULL;
}

static void test_uidvalidity_reset(void **state)
{
    char id[160], key[256], out[4096];
    static char bufs[4][1200];
    const char *cmds[8];
    const char *create[] = {"CREATE Work", NULL};
    assert_int_equal(tf_dovecot_imap(&dove, create, out, sizeof out), 0);
    append_cmds("Work", 7001, 7003, bufs, cmds);
    assert_int_equal(tf_dovecot_imap(&dove, cmds, out, sizeof out), 0);
    create_account(dove.port, "test", "Work", id, sizeof id);
    sync_and_wait(id, "ok", NULL, 0);
    check_exactly(id, "Work", 7001, 7003);
    snprintf(key, sizeof key, "mail:{%s}:state:Work", id);
    long long old_uv = hget_ll(key, "uidvalidity");
    assert_true(old_uv > 0);

    /* The folder deleted and made again: a new UIDVALIDITY, other mail. */
    const char *recreate[] = {"DELETE Work", "CREATE Work", NULL};
    assert_int_equal(tf_dovecot_imap(&dove, recreate, out, sizeof out), 0);
    append_cmds("Work", 7101, 7102, bufs, cmds);
    assert_int_equal(tf_dovecot_imap(&dove, cmds, out, sizeof out), 0);
    sync_and_wait(id, "ok", NULL, 0);
    long long new_uv = hget_ll(key, "uidvalidity");
    fprintf(stderr, "uidvalidity %lld -> %lld\n", old_uv, new_uv);
    assert_true(new_uv > 0 && new_uv != old_uv);
    check_exactly(id, "Work", 7101, 7102);
    char pat[256];
    snprintf(pat, sizeof pat, "mail:{%s}:*:Work:%lld*", id, old_uv);
    assert_int_equal(count_keys(pat), 0);
    snprintf(pat, sizeof pat, "mail:{%s}:m:Work:%lld:*", id, new_uv);
    assert_int_equal(count_keys(pat), 2);
    sh_val *all = list_all(id, "Work");
    for (size_t i = 0; i < sh_val_len(all); i++)
        assert_int_equal(sh_val_int(sh_val_get(sh_val_at(all, i), "uidvalidity")), new_uv);
    sh_val_free(all);
}

static void test_server_down_then_back(void **state)
{
    char msg[512], key[256];
    assert_int_equal(tf_dovecot_halt(&dove), 0);
    int64_t before = sh_now_ms();
    sync_and_wait(acct_main, "error", msg, sizeof msg);
    fprintf(stderr, "server down: %s\n", msg);
    assert_non_null(strstr(msg, "cannot connect"));
    /* Backed off: the next scheduled sync is an interval (15 min) away. */
    snprintf(key, sizeof key, "account:{%s}", acct_main);
    assert_true(hget_ll(key, "nextSyncAt") >= before + 14 * 60000LL);
    assert_int_equal(hget_ll(key, "failures"), 1);

    assert_int_equal(tf_dovecot_resume(&dove), 0);
    sync_and_wait(acct_main, "ok", NULL, 0);
    assert_int_equal(hget_ll(key, "failures"), 0);
    assert_int_equal(stored_inbox(acct_main), NMSG);
}

/* The fake IMAP server: one thread per connection, what it answers to UID
 * FETCH chosen by the user name that logged in. */
static int fake_fd = -1, fake_port;
static volatile int fake_stop;

static int fake_send(int fd, const char *s, size_t len)
{
    while (len) {
        ssize_t w = write(fd, s, len);
        if (w <= 0)
            return -1;
        s += w;
        len -= (size_t)w;
    }
    return 0;
}

static int fake_puts(int fd, const char *s)
{
    return fake_send(fd, s, strlen(s));
}

#define FAKE_HEAD                                                                                  \
    "RFC822.SIZE 120 INTERNALDATE \"01-Jan-2024 10:00:00 +0000\" ENVELOPE (\"Mon, 01 Jan 2024 "    \
    "10:00:00 +0000\" "

/* fake_fetch answers a UID FETCH for user. */
static void fake_fetch(int fd, const char *user, const char *tag)
{
    char line[512];
    if (strcmp(user, "huge") == 0) {
        fake_puts(fd, "* 1 FETCH (UID 1 FLAGS (\\Seen) " FAKE_HEAD "{999999999}\r\n");
        static char junk[1 << 20];
        memset(junk, 'x', sizeof junk);
        for (int i = 0; i < 80 && fake_send(fd, junk, sizeof junk) == 0; i++)
            ;
        return; /* the client has hung up, or gets the connection closed */
    }
    if (strcmp(user, "garbage") == 0) {
        fake_puts(fd, "* 1 FETCH (UID 1 FLAGS (\\Seen) ENVELOPE (((((( ]]] \x01\x02 }{\r\n");
    } else if (strcmp(user, "noenv") == 0) {
        fake_puts(fd, "* 1 FETCH (UID 1 FLAGS (\\Seen) RFC822.SIZE 10 INTERNALDATE "
                      "\"01-Jan-2024 10:00:00 +0000\")\r\n"
                      "* 2 FETCH (UID 2 FLAGS () RFC822.SIZE 10 INTERNALDATE "
                      "\"01-Jan-2024 10:00:00 +0000\")\r\n");
    } else {
        /* utf8: invalid UTF-8 in the subject and a name, then a subject of
         * 10,000 bytes. */
        const char *subj = "Caf\xe9 \xff\xfe ok";
        const char *name = "Bj\xf6rn";
        snprintf(line, sizeof line,
                 "* 1 FETCH (UID 1 FLAGS (\\Seen) " FAKE_HEAD
                 "{%zu}\r\n%s (({%zu}\r\n%s NIL \"bjorn\" \"example.com\")) NIL NIL "
                 "((\"To\" NIL \"to\" \"example.com\")) NIL NIL NIL \"<u1@fake>\"))\r\n",
                 strlen(subj), subj, strlen(name), name);
        fake_puts(fd, line);
        static char big[10000];
        memset(big, 'A', sizeof big);
        snprintf(line, sizeof line, "* 2 FETCH (UID 2 FLAGS () " FAKE_HEAD "{%zu}\r\n", sizeof big);
        fake_puts(fd, line);
        fake_send(fd, big, sizeof big);
        fake_puts(fd, " NIL NIL NIL ((\"To\" NIL \"to\" \"example.com\")) NIL NIL NIL "
                      "\"<u2@fake>\"))\r\n");
    }
    snprintf(line, sizeof line, "%s OK FETCH done\r\n", tag);
    fake_puts(fd, line);
}

static void *fake_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096], user[64] = "";
    size_t n = 0;
    fake_puts(fd, "* OK fake IMAP ready\r\n");
    for (;;) {
        char *eol = n ? memchr(buf, '\n', n) : NULL;
        if (!eol) {
            if (n == sizeof buf)
                break;
            ssize_t r = read(fd, buf + n, sizeof buf - n);
            if (r <= 0)
                break;
            n += (size_t)r;
            continue;
        }
        *eol = '\0';
        if (eol > buf && eol[-1] == '\r')
            eol[-1] = '\0';
        char tag[32] = "", cmd[32] = "", rest[512] = "", reply[512];
        sscanf(buf, "%31s %31s %511[^\n]", tag, cmd, rest);
        size_t used = (size_t)(eol + 1 - buf);
        memmove(buf, eol + 1, n - used);
        n -= used;
        if (strcasecmp(cmd, "CAPABILITY") == 0) {
            snprintf(reply, sizeof reply, "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n%s OK done\r\n",
                     tag);
        } else if (strcasecmp(cmd, "LOGIN") == 0) {
            sscanf(rest[0] == '"' ? rest + 1 : rest, "%63[^\" ]", user);
            snprintf(reply, sizeof reply, "%s OK logged in\r\n", tag);
        } else if (strcasecmp(cmd, "SELECT") == 0 || strcasecmp(cmd, "EXAMINE") == 0) {
            snprintf(reply, sizeof reply,
                     "* FLAGS (\\Seen)\r\n* 2 EXISTS\r\n* 0 RECENT\r\n"
                     "* OK [UIDVALIDITY 42] ok\r\n* OK [UIDNEXT 3] ok\r\n"
                     "%s OK [READ-WRITE] selected\r\n",
                     tag);
        } else if (strcasecmp(cmd, "UID") == 0 && strncasecmp(rest, "SEARCH", 6) == 0) {
            snprintf(reply, sizeof reply, "* SEARCH 1 2\r\n%s OK done\r\n", tag);
        } else if (strcasecmp(cmd, "UID") == 0 && strncasecmp(rest, "FETCH", 5) == 0) {
            fake_fetch(fd, user, tag);
            if (strcmp(user, "huge") == 0)
                break;
            continue;
        } else if (strcasecmp(cmd, "LOGOUT") == 0) {
            snprintf(reply, sizeof reply, "* BYE\r\n%s OK bye\r\n", tag);
            fake_puts(fd, reply);
            break;
        } else {
            snprintf(reply, sizeof reply, "%s BAD unknown command\r\n", tag);
        }
        if (fake_puts(fd, reply))
            break;
    }
    close(fd);
    return NULL;
}

static void *fake_main(void *arg)
{
    while (!fake_stop) {
        int fd = accept(fake_fd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_t t;
        if (pthread_create(&t, NULL, fake_conn, (void *)(intptr_t)fd) == 0)
            pthread_detach(t);
        else
            close(fd);
    }
    return arg;
}

static bool valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int need = *p < 0x80             ? 0
                   : (*p & 0xE0) == 0xC0 ? 1
                   : (*p & 0xF0) == 0xE0 ? 2
                   : (*p & 0xF8) == 0xF0 ? 3
                                         : -1;
        if (need < 0)
            return false;
        p++;
        for (int k = 0; k < need; k++, p++)
            if ((*p & 0xC0) != 0x80)
                return false;
    }
    return true;
}

static sh_val *get_message(const char *id, int uid)
{
    sh_val *a = sh_val_new_map(), *res = NULL;
    put_s(a, "accountId", id);
    sh_val_set_cstr(a, "uid", sh_val_new_int(uid));
    assert_int_equal(call(worker, "messages.get", a, &res), SH_OK);
    return res;
}

static void test_hostile_server(void **state)
{
    fake_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fake_fd >= 0);
    int one = 1;
    setsockopt(fake_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    assert_int_equal(bind(fake_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fake_fd, 16), 0);
    assert_int_equal(getsockname(fake_fd, (struct sockaddr *)&a, &alen), 0);
    fake_port = ntohs(a.sin_port);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fake_main, NULL), 0);

    char huge[160], garbage[160], noenv[160], utf8[160], msg[512];
    create_account(fake_port, "huge", NULL, huge, sizeof huge);
    create_account(fake_port, "garbage", NULL, garbage, sizeof garbage);
    create_account(fake_port, "noenv", NULL, noenv, sizeof noenv);
    create_account(fake_port, "utf8", NULL, utf8, sizeof utf8);

    sync_and_wait(huge, "error", msg, sizeof msg);
    fprintf(stderr, "huge literal: %s\n", msg);
    assert_non_null(strstr(msg, "larger than"));
    sync_and_wait(garbage, "error", msg, sizeof msg);
    fprintf(stderr, "garbage: %s\n", msg);
    assert_non_null(strstr(msg, "INBOX"));
    sync_and_wait(noenv, "error", msg, sizeof msg);
    fprintf(stderr, "no envelope: %s\n", msg);
    assert_non_null(strstr(msg, "lacks"));

    sync_and_wait(utf8, "ok", NULL, 0);
    sh_val *m = get_message(utf8, 1);
    const char *subject = sh_val_get_str(m, "subject", NULL);
    const char *from = sh_val_get_str(m, "from", NULL);
    fprintf(stderr, "subject \"%s\" from \"%s\"\n", subject, from);
    assert_true(valid_utf8(subject));
    assert_true(valid_utf8(from));
    assert_non_null(strstr(subject, "Caf"));
    assert_non_null(strstr(subject, " ok"));
    assert_string_not_equal(subject, "Caf\xe9 \xff\xfe ok");
    assert_non_null(strstr(from, "bjorn@example.com"));
    sh_val_free(m);
    m = get_message(utf8, 2);
    size_t len = strlen(sh_val_get_str(m, "subject", NULL));
    assert_true(len >= 1000 && len <= 4096);
    sh_val_free(m);

    /* The worker is still up and syncs a real account. */
    int st;
    assert_int_equal(waitpid(worker_pid, &st, WNOHANG), 0);
    sync_and_wait(acct_main, "ok", NULL, 0);
    assert_int_equal(stored_inbox(acct_main), NMSG);

    fake_stop = 1;
    shutdown(fake_fd, SHUT_RDWR);
    close(fake_fd);
    pthread_join(t, NULL);
}

/* A folder the server marks \Sent is synced with INBOX, though the
 * account names no folder. */
static void test_special_use_sent(void **state)
{
    char id[160], out[4096];
    static char bufs[4][1200];
    const char *cmds[8];
    const char *create[] = {"CREATE Sent", NULL};
    assert_int_equal(tf_dovecot_imap(&dove, create, out, sizeof out), 0);
    append_cmds("Sent", 8001, 8002, bufs, cmds);
    assert_int_equal(tf_dovecot_imap(&dove, cmds, out, sizeof out), 0);
    create_account(dove.port, "test", NULL, id, sizeof id);
    sync_and_wait(id, "ok", NULL, 0);
    check_exactly(id, "Sent", 8001, 8002);
    assert_int_equal(stored_inbox(id), NMSG);
    sh_val *a = sh_val_new_map(), *res = NULL;
    put_s(a, "accountId", id);
    assert_int_equal(call(worker, "folders.counts", a, &res), SH_OK);
    const sh_val *f = sh_val_get(res, "folders");
    bool sent = false;
    for (size_t i = 0; i < sh_val_len(f); i++) {
        const sh_val *e = sh_val_at(f, i);
        if (strcmp(sh_val_get_str(e, "name", NULL), "Sent") == 0) {
            sent = true;
            assert_int_equal(sh_val_int(sh_val_get(e, "total")), 2);
        }
    }
    assert_true(sent);
    sh_val_free(res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_initial_sync_5000),     cmocka_unit_test(test_sigkill_mid_sync),
        cmocka_unit_test(test_sigterm_mid_sync),      cmocka_unit_test(test_uidvalidity_reset),
        cmocka_unit_test(test_server_down_then_back), cmocka_unit_test(test_hostile_server),
        cmocka_unit_test(test_special_use_sent),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
