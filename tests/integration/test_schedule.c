/* test_schedule.c - email accounts and the sync schedule on two coordinator
 * processes and a private Redis, with the clock driven by the test: spread
 * and batch limits, effective interval, missed intervals, leases, backoff,
 * auth failures, concurrent ticks, sealed secrets and key rotation (also of
 * blobs in the format of earlier releases). */
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
#include <time.h>
#include <unistd.h>

#include "calls.h"
#include "fixture.h"
#include "services.h"
#include "shared/events.h"
#include "shared/keys.h"
#include "shared/rpc.h"
#include "shared/secret.h"
#include "shared/store.h"
#include "shared/util.h"

#define K1   "8f3a0c5e7b9d1f2a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a"
#define K2   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define NACC 300
#define MIN  60000LL

static tf_redis redis;
static pid_t coord[2];
static char url[2][64];
static char ev_url[2][64]; /* each coordinator's events */
static sh_rpc_client *c0, *c1;
static char logdir[300];

static pid_t start_coord(int i, const char *key, const char *prev, const char *cmd)
{
    char e_key[100], e_prev[120], logpath[400], ev[64];
    snprintf(ev, sizeof ev, "tcp://127.0.0.1:%d", tf_free_port());
    if (!cmd)
        snprintf(ev_url[i], sizeof ev_url[i], "%s", ev);
    snprintf(e_key, sizeof e_key, "ENCRYPTION_KEY=%s", key);
    snprintf(e_prev, sizeof e_prev, "ENCRYPTION_KEY_PREVIOUS=%s", prev ? prev : "");
    snprintf(logpath, sizeof logpath, "%s/coordinator%d%s.log", logdir, i, cmd ? "-cmd" : "");
    const char *env[] = {e_key,
                         e_prev,
                         "SCHED_AUTO_TICK=false",
                         "SYNC_INTERVAL_MINUTES=15",
                         "EMAIL_SYNC_BATCH_SIZE=20",
                         "SYNC_LEASE_SECONDS=5",
                         "RPC_WORKERS=4",
                         NULL};
    /* With cmd, a one-shot command, which the caller waits for. */
    tf_service svc = {.name = "coordinator",
                      .redis_url = redis.url,
                      .rpc_url = url[i],
                      .events_url = ev,
                      .env = env,
                      .command = cmd,
                      .log_path = logpath};
    return tf_service_spawn(&svc);
}

static int group_setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    if (tf_redis_start(&redis, 0) != 0)
        return -1;
    snprintf(logdir, sizeof logdir, "%s", redis.dir);
    sh_error err;
    for (int i = 0; i < 2; i++) {
        snprintf(url[i], sizeof url[i], "tcp://127.0.0.1:%d", tf_free_port());
        coord[i] = start_coord(i, K1, NULL, NULL);
    }
    if (sh_rpc_client_new(url[0], 10000, 0, &c0, &err) ||
        sh_rpc_client_new(url[1], 10000, 0, &c1, &err))
        return -1;
    if (tf_wait_ping(c0, 1) == 0 && tf_wait_ping(c1, 1) == 0)
        return 0;
    fprintf(stderr, "coordinators did not answer; logs in %s\n", logdir);
    return -1;
}

static int group_teardown(void **state)
{
    sh_rpc_client_free(c0);
    sh_rpc_client_free(c1);
    char logs[400];
    snprintf(logs, sizeof logs, "%s/coordinator*.log", logdir);
    int rc = tf_services_stop(coord, 2, logs);
    tf_redis_stop(&redis);
    sh_rpc_fini();
    return rc;
}

static void flush_redis(void)
{
    sh_redis_url u;
    sh_store *s = NULL;
    sh_error err;
    assert_int_equal(sh_redis_url_parse(redis.url, &u, &err), SH_OK);
    assert_int_equal(sh_store_new(&u, NULL, &s, &err), SH_OK);
    sh_cmd *c = sh_cmd_new("FLUSHALL");
    sh_reply *r = NULL;
    assert_int_equal(sh_store_run(s, c, &r, &err), SH_OK);
    sh_reply_free(r);
    sh_cmd_free(c);
    sh_store_free(s);
}

static sh_val *account_fields(int i, const char *password)
{
    char email[64];
    snprintf(email, sizeof email, "user%d@example.com", i);
    sh_val *f = sh_val_new_map();
    sh_val_set_cstr(f, "emailAddress", sh_val_new_cstr(email));
    sh_val_set_cstr(f, "imapHost", sh_val_new_cstr("imap.example.com"));
    sh_val_set_cstr(f, "imapPort", sh_val_new_int(993));
    sh_val_set_cstr(f, "security", sh_val_new_cstr("tls"));
    sh_val_set_cstr(f, "username", sh_val_new_cstr(email));
    sh_val_set_cstr(f, "password", sh_val_new_cstr(password));
    return f;
}

/* create_accounts makes n accounts inside one wall-clock minute and returns
 * the start of that minute; ids[i] receives each id. */
static long long create_accounts(int n, char ids[][32])
{
    long long now = sh_now_ms();
    if (now % MIN > 45000)
        tf_sleep_ms((int)(MIN - now % MIN + 200));
    long long t0 = sh_now_ms() / MIN * MIN;
    for (int i = 0; i < n; i++) {
        char pw[32];
        snprintf(pw, sizeof pw, "pw-%d-secret", i);
        sh_val *acc = NULL;
        assert_int_equal(tf_call(c0, "account.create", account_fields(i, pw), 10000, &acc, NULL),
                         SH_OK);
        snprintf(ids[i], 32, "%s", sh_val_get_str(acc, "id", NULL));
        assert_string_equal(sh_val_get_str(acc, "syncStatus", NULL), "idle");
        assert_null(sh_val_get(acc, "password"));
        sh_val_free(acc);
    }
    assert_int_equal(sh_now_ms() / MIN * MIN, t0);
    return t0;
}

static int index_of(char ids[][32], int n, const char *id)
{
    for (int i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0)
            return i;
    return -1;
}

/* drain leases every queued account and completes it ok. */
static int drain(void)
{
    int n = 0;
    for (;;) {
        sh_val *a = sh_val_new_map(), *res = NULL;
        sh_val_set_cstr(a, "worker", sh_val_new_cstr("test"));
        assert_int_equal(tf_call(c0, "sync.lease", a, 10000, &res, NULL), SH_OK);
        const sh_val *lease = sh_val_get(res, "lease");
        if (sh_val_type_of(lease) != SH_VAL_MAP) {
            sh_val_free(res);
            return n;
        }
        sh_val *c = sh_val_new_map();
        sh_val_set_cstr(c, "accountId", sh_val_clone(sh_val_get(lease, "accountId")));
        sh_val_set_cstr(c, "leaseToken", sh_val_clone(sh_val_get(lease, "leaseToken")));
        sh_val_set_cstr(c, "outcome", sh_val_new_cstr("ok"));
        sh_val_free(res);
        assert_int_equal(tf_call(c0, "sync.complete", c, 10000, NULL, NULL), SH_OK);
        n++;
    }
}

static sh_val *tick(sh_rpc_client *c, long long now, long long batch, bool force)
{
    sh_val *a = sh_val_new_map(), *res = NULL;
    sh_val_set_cstr(a, "now", sh_val_new_int(now));
    sh_val_set_cstr(a, "batchSize", sh_val_new_int(batch));
    sh_val_set_cstr(a, "force", sh_val_new_bool(force));
    assert_int_equal(tf_call(c, "sched.tick", a, 10000, &res, NULL), SH_OK);
    return res;
}

static long long iso_ms(const char *iso)
{
    struct tm tm = {0};
    int ms = 0;
    sscanf(iso, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
           &tm.tm_min, &tm.tm_sec, &ms);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm) * 1000 + ms;
}

/* run_schedule ticks minute by minute and checks every account is queued
 * exactly once per window of `per` minutes and no minute exceeds batch. */
static void run_schedule(long long batch, int minutes, int window, long long expect_eff)
{
    flush_redis();
    static char ids[NACC][32];
    long long t0 = create_accounts(NACC, ids);
    static int count[NACC][8];
    memset(count, 0, sizeof count);
    for (int m = 0; m < minutes; m++) {
        sh_val *res = tick(m % 2 ? c1 : c0, t0 + m * MIN + 1000, batch, false);
        const sh_val *q = sh_val_get(res, "queued");
        assert_true(sh_val_len(q) <= (size_t)batch);
        assert_int_equal(sh_val_int(sh_val_get(res, "effectiveIntervalMinutes")), expect_eff);
        for (size_t i = 0; i < sh_val_len(q); i++) {
            int at = index_of(ids, NACC, sh_val_str(sh_val_at(q, i), NULL));
            assert_true(at >= 0);
            count[at][m / window]++;
        }
        assert_int_equal(drain(), (int)sh_val_len(q));
        sh_val_free(res);
    }
    for (int i = 0; i < NACC; i++)
        for (int wdw = 0; wdw < minutes / window; wdw++)
            if (count[i][wdw] != 1)
                fail_msg("account %d queued %d times in window %d", i, count[i][wdw], wdw);
}

static void test_300_accounts_batch_20_each_once_per_interval(void **state)
{
    run_schedule(20, 45, 15, 15);
}

static void test_300_accounts_batch_5_effective_interval_60(void **state)
{
    run_schedule(5, 60, 60, 60);
    sh_val *res = NULL;
    assert_int_equal(tf_call(c0, "sched.status", NULL, 10000, &res, NULL), SH_OK);
    assert_int_equal(sh_val_int(sh_val_get(res, "totalAccounts")), NACC);
    assert_int_equal(sh_val_int(sh_val_get(res, "syncInterval")), 15);
    assert_int_equal(sh_val_int(sh_val_get(res, "recommendedBatchSize")), 20);
    sh_val_free(res);
}

/* ---- concurrent ticks -------------------------------------------------- */

typedef struct ticker_arg {
    sh_rpc_client *c;
    long long now;
    bool force;
    sh_val *res;
} ticker_arg;

static void *ticker_main(void *p)
{
    ticker_arg *t = p;
    sh_val *a = sh_val_new_map();
    sh_val_set_cstr(a, "now", sh_val_new_int(t->now));
    sh_val_set_cstr(a, "batchSize", sh_val_new_int(1000));
    sh_val_set_cstr(a, "force", sh_val_new_bool(t->force));
    sh_error err;
    if (sh_rpc_call(t->c, "sched.tick", a, 10000, &t->res, &err) != SH_OK)
        t->res = NULL;
    sh_val_free(a);
    return NULL;
}

static void test_two_coordinators_ticking_at_once_never_double_queue(void **state)
{
    flush_redis();
    static char ids[60][32];
    long long t0 = create_accounts(60, ids);
    for (int round = 0; round < 4; round++) {
        bool force = round % 2 == 1;
        ticker_arg a = {c0, t0 + round * 15 * MIN + 1000, force, NULL};
        ticker_arg b = {c1, t0 + round * 15 * MIN + 1000, force, NULL};
        pthread_t ta, tb;
        pthread_create(&ta, NULL, ticker_main, &a);
        pthread_create(&tb, NULL, ticker_main, &b);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        assert_non_null(a.res);
        assert_non_null(b.res);
        const sh_val *qa = sh_val_get(a.res, "queued"), *qb = sh_val_get(b.res, "queued");
        /* Everything due (one interval's worth: the accounts whose minute has
         * come) is queued once, by one of the two. */
        size_t total = sh_val_len(qa) + sh_val_len(qb);
        for (size_t i = 0; i < sh_val_len(qa); i++)
            for (size_t j = 0; j < sh_val_len(qb); j++)
                assert_string_not_equal(sh_val_str(sh_val_at(qa, i), NULL),
                                        sh_val_str(sh_val_at(qb, j), NULL));
        assert_int_equal(drain(), (int)total);
        if (round == 0)
            assert_true(total >= 1);
        sh_val_free(a.res);
        sh_val_free(b.res);
    }
}

/* Three intervals without a tick (all replicas down, say): the first tick
 * queues every account once, and each one's next time is its own minute of
 * the coming interval, not a time already past that every later tick -
 * forced ones too - would queue again. */
static void test_missed_intervals_are_skipped_not_made_up(void **state)
{
    flush_redis();
    static char ids[30][32];
    long long t0 = create_accounts(30, ids);
    long long now = t0 + 3 * 15 * MIN + 1000;
    sh_val *res = tick(c0, now, 1000, false);
    assert_int_equal(sh_val_len(sh_val_get(res, "queued")), 30);
    sh_val_free(res);
    assert_int_equal(drain(), 30);
    sh_val *list = NULL;
    assert_int_equal(tf_call(c0, "account.list", sh_val_new_map(), 10000, &list, NULL), SH_OK);
    const sh_val *accs = sh_val_get(list, "accounts");
    assert_int_equal(sh_val_len(accs), 30);
    for (size_t i = 0; i < sh_val_len(accs); i++) {
        long long next = iso_ms(sh_val_get_str(sh_val_at(accs, i), "nextSyncAt", NULL));
        assert_true(next > now && next <= now + 15 * MIN);
        assert_int_equal(next % MIN, 0);
    }
    sh_val_free(list);
    static int count[30];
    memset(count, 0, sizeof count);
    for (int m = 1; m <= 15; m++) {
        res = tick(m % 2 ? c1 : c0, now + m * MIN, 1000, true);
        const sh_val *q = sh_val_get(res, "queued");
        for (size_t i = 0; i < sh_val_len(q); i++) {
            int at = index_of(ids, 30, sh_val_str(sh_val_at(q, i), NULL));
            assert_true(at >= 0);
            count[at]++;
        }
        assert_int_equal(drain(), (int)sh_val_len(q));
        sh_val_free(res);
    }
    for (int i = 0; i < 30; i++)
        if (count[i] != 1)
            fail_msg("account %d queued %d times in the interval after the gap", i, count[i]);
}

/* ---- leases, backoff, auth failures -------------------------------------- */

static sh_val *lease_one(sh_rpc_client *c)
{
    sh_val *a = sh_val_new_map(), *res = NULL;
    sh_val_set_cstr(a, "worker", sh_val_new_cstr("w"));
    assert_int_equal(tf_call(c, "sync.lease", a, 10000, &res, NULL), SH_OK);
    sh_val *lease = sh_val_clone(sh_val_get(res, "lease"));
    sh_val_free(res);
    return lease;
}

static int complete(const sh_val *lease, const char *token, const char *outcome, sh_val **account)
{
    sh_val *c = sh_val_new_map();
    sh_val_set_cstr(c, "accountId", sh_val_clone(sh_val_get(lease, "accountId")));
    sh_val_set_cstr(c, "leaseToken", sh_val_new_cstr(token));
    sh_val_set_cstr(c, "outcome", sh_val_new_cstr(outcome));
    sh_val_set_cstr(c, "message", sh_val_new_cstr("server said no"));
    return tf_call(c0, "sync.complete", c, 10000, account, NULL);
}

static void sync_now(const char *id)
{
    sh_val *a = sh_val_new_map(), *res = NULL;
    sh_val_set_cstr(a, "id", sh_val_new_cstr(id));
    assert_int_equal(tf_call(c0, "account.sync_now", a, 10000, &res, NULL), SH_OK);
    assert_non_null(sh_val_get_str(res, "progressId", NULL));
    sh_val_free(res);
}

/* Accounts put on the queue are announced on "sync:queued" (so idle sync
 * workers lease at once): by account.sync_now, not again while the account
 * is already queued, and by a tick that queues some. */
static void test_queued_accounts_are_announced(void **state)
{
    flush_redis();
    static char ids[3][32];
    long long t0 = create_accounts(3, ids);
    sh_sub *sub = NULL;
    sh_error err;
    assert_int_equal(sh_sub_new(ev_url[0], 0, &sub, &err), SH_OK);
    assert_int_equal(sh_sub_subscribe(sub, "sync:queued"), SH_OK);
    tf_sleep_ms(300); /* the subscription reaches the publisher */
    char *topic = NULL;
    sh_val *ev = NULL;

    sync_now(ids[0]);
    assert_int_equal(sh_sub_recv(sub, 5000, &topic, &ev), SH_OK);
    assert_string_equal(topic, "sync:queued");
    assert_string_equal(sh_val_get_str(ev, "kind", NULL), "queued");
    assert_string_equal(sh_val_get_str(ev, "accountId", NULL), ids[0]);
    free(topic);
    sh_val_free(ev);

    sync_now(ids[0]); /* already queued: nothing new */
    topic = NULL;
    ev = NULL;
    assert_int_not_equal(sh_sub_recv(sub, 500, &topic, &ev), SH_OK);
    free(topic);
    sh_val_free(ev);

    sh_val *res = tick(c0, t0 + 16 * MIN, 20, false);
    size_t n = sh_val_len(sh_val_get(res, "queued")) + sh_val_len(sh_val_get(res, "requeued"));
    sh_val_free(res);
    assert_true(n >= 2);
    topic = NULL;
    ev = NULL;
    assert_int_equal(sh_sub_recv(sub, 5000, &topic, &ev), SH_OK);
    assert_int_equal(sh_val_int(sh_val_get(ev, "count")), (int64_t)n);
    free(topic);
    sh_val_free(ev);
    sh_sub_free(sub);
    drain();
}

/* next_account_event receives the next event on sub (failing after 5 s),
 * checks it is kind of account id on its topic, and returns its payload. */
static sh_val *next_account_event(sh_sub *sub, const char *kind, const char *id)
{
    char *topic = NULL, want[64];
    sh_val *ev = NULL;
    assert_int_equal(sh_sub_recv(sub, 5000, &topic, &ev), SH_OK);
    snprintf(want, sizeof want, "account:%s", id);
    assert_string_equal(topic, want);
    assert_string_equal(sh_val_get_str(ev, "kind", NULL), kind);
    assert_string_equal(sh_val_get_str(ev, "id", NULL), id);
    free(topic);
    return ev;
}

/* Every change of an account is published on account:<id>: created and
 * updated with the public view (no secret), status with the schedule's
 * fields when it is queued (sync_now, a tick), leased and completed, and
 * deleted. */
static void test_account_changes_are_published(void **state)
{
    flush_redis();
    sh_sub *sub = NULL;
    sh_error err;
    assert_int_equal(sh_sub_new(ev_url[0], 0, &sub, &err), SH_OK);
    assert_int_equal(sh_sub_subscribe(sub, "account:"), SH_OK);
    tf_sleep_ms(300);
    static char ids[2][32];
    long long t0 = create_accounts(2, ids);
    for (int i = 0; i < 2; i++) {
        sh_val *ev = next_account_event(sub, "created", ids[i]);
        assert_string_equal(sh_val_get_str(ev, "syncStatus", NULL), "idle");
        assert_non_null(sh_val_get_str(ev, "emailAddress", NULL));
        assert_null(sh_val_get(ev, "password"));
        assert_null(sh_val_get(ev, "passwordSealed"));
        sh_val_free(ev);
    }

    sh_val *u = sh_val_new_map(), *f = sh_val_new_map(), *res = NULL;
    sh_val_set_cstr(f, "imapPort", sh_val_new_int(1993));
    sh_val_set_cstr(u, "id", sh_val_new_cstr(ids[0]));
    sh_val_set_cstr(u, "fields", f);
    assert_int_equal(tf_call(c0, "account.update", u, 10000, &res, NULL), SH_OK);
    sh_val_free(res);
    sh_val *ev = next_account_event(sub, "updated", ids[0]);
    assert_int_equal(sh_val_int(sh_val_get(ev, "imapPort")), 1993);
    sh_val_free(ev);

    sync_now(ids[0]);
    ev = next_account_event(sub, "status", ids[0]);
    assert_string_equal(sh_val_get_str(ev, "syncStatus", NULL), "queued");
    assert_non_null(sh_val_get(ev, "nextSyncAt"));
    assert_null(sh_val_get(ev, "emailAddress")); /* the schedule's fields only */
    sh_val_free(ev);

    sh_val *lease = lease_one(c0);
    assert_non_null(lease);
    ev = next_account_event(sub, "status", ids[0]);
    assert_string_equal(sh_val_get_str(ev, "syncStatus", NULL), "syncing");
    sh_val_free(ev);
    assert_int_equal(complete(lease, sh_val_get_str(lease, "leaseToken", NULL), "error", NULL),
                     SH_OK);
    sh_val_free(lease);
    ev = next_account_event(sub, "status", ids[0]);
    assert_string_equal(sh_val_get_str(ev, "syncStatus", NULL), "error");
    assert_string_equal(sh_val_get_str(ev, "errorMessage", NULL), "server said no");
    assert_non_null(sh_val_get(ev, "lastSyncedAt"));
    sh_val_free(ev);

    /* A tick that queues the other account announces its status. */
    res = tick(c0, t0 + 16 * MIN, 20, false);
    const sh_val *q = sh_val_get(res, "queued");
    bool other = false;
    for (size_t i = 0; i < sh_val_len(q); i++)
        other = other || strcmp(sh_val_str(sh_val_at(q, i), NULL), ids[1]) == 0;
    assert_true(other);
    size_t n = sh_val_len(q) + sh_val_len(sh_val_get(res, "requeued"));
    sh_val_free(res);
    bool seen = false;
    for (size_t i = 0; i < n; i++) {
        char *topic = NULL;
        ev = NULL;
        assert_int_equal(sh_sub_recv(sub, 5000, &topic, &ev), SH_OK);
        assert_string_equal(sh_val_get_str(ev, "kind", NULL), "status");
        assert_string_equal(sh_val_get_str(ev, "syncStatus", NULL), "queued");
        seen = seen || strcmp(sh_val_get_str(ev, "id", NULL), ids[1]) == 0;
        free(topic);
        sh_val_free(ev);
    }
    assert_true(seen);
    int drained = drain();
    for (int i = 0; i < 2 * drained; i++) { /* syncing, then ok, of each */
        char *topic = NULL;
        ev = NULL;
        assert_int_equal(sh_sub_recv(sub, 5000, &topic, &ev), SH_OK);
        free(topic);
        sh_val_free(ev);
    }

    sh_val *d = sh_val_new_map();
    sh_val_set_cstr(d, "id", sh_val_new_cstr(ids[1]));
    assert_int_equal(tf_call(c0, "account.delete", d, 10000, NULL, NULL), SH_OK);
    ev = next_account_event(sub, "deleted", ids[1]);
    sh_val_free(ev);
    char *topic = NULL;
    ev = NULL;
    assert_int_not_equal(sh_sub_recv(sub, 300, &topic, &ev), SH_OK); /* nothing else */
    free(topic);
    sh_val_free(ev);
    sh_sub_free(sub);
}

/* A sync asked for while the account syncs (a read/unread change made
 * meanwhile) is not lost: when the run completes the account is queued
 * again at once, under a new progress id, and announced; a refused login
 * ends that instead. */
static void test_sync_asked_while_syncing_follows(void **state)
{
    flush_redis();
    static char ids[1][32];
    create_accounts(1, ids);
    sh_sub *sub = NULL;
    sh_error err;
    assert_int_equal(sh_sub_new(ev_url[0], 0, &sub, &err), SH_OK);
    assert_int_equal(sh_sub_subscribe(sub, "sync:queued"), SH_OK);
    tf_sleep_ms(300);
    for (int round = 0; round < 2; round++) {
        sync_now(ids[0]);
        sh_val *lease = lease_one(c0);
        assert_non_null(lease);
        const char *first = sh_val_get_str(lease, "progressId", NULL);
        char first_pid[128];
        snprintf(first_pid, sizeof first_pid, "%s", first ? first : "");
        sync_now(ids[0]); /* while syncing */
        sh_val *acct = NULL;
        const char *outcome = round == 0 ? "ok" : "auth_error";
        assert_int_equal(complete(lease, sh_val_get_str(lease, "leaseToken", NULL), outcome, &acct),
                         SH_OK);
        const char *status = sh_val_get_str(acct, "syncStatus", NULL);
        if (round == 0) {
            assert_string_equal(status, "queued");
            sh_val *again = lease_one(c0);
            assert_non_null(again);
            assert_string_equal(sh_val_get_str(again, "accountId", NULL), ids[0]);
            assert_string_not_equal(sh_val_get_str(again, "progressId", NULL), first_pid);
            assert_int_equal(complete(again, sh_val_get_str(again, "leaseToken", NULL), "ok", NULL),
                             SH_OK);
            sh_val_free(again);
        } else {
            assert_string_equal(status, "auth_error");
        }
        sh_val_free(acct);
        sh_val_free(lease);
    }
    /* announced: the two sync_now that queued, and the run that followed */
    int n = 0;
    char *topic = NULL;
    sh_val *ev = NULL;
    while (sh_sub_recv(sub, 500, &topic, &ev) == SH_OK) {
        n++;
        free(topic);
        sh_val_free(ev);
        topic = NULL;
        ev = NULL;
    }
    assert_int_equal(n, 3);
    sh_sub_free(sub);
    drain();
}

static void test_lease_expiry_requeues_and_stale_token_refused(void **state)
{
    flush_redis();
    static char ids[1][32];
    create_accounts(1, ids);
    sync_now(ids[0]);
    sh_val *l1 = lease_one(c0);
    assert_int_equal(sh_val_type_of(l1), SH_VAL_MAP);
    assert_string_equal(sh_val_get_str(l1, "accountId", NULL), ids[0]);
    char t1[64];
    snprintf(t1, sizeof t1, "%s", sh_val_get_str(l1, "leaseToken", NULL));
    /* Renewing works while the lease holds. */
    sh_val *r = sh_val_new_map();
    sh_val_set_cstr(r, "accountId", sh_val_new_cstr(ids[0]));
    sh_val_set_cstr(r, "leaseToken", sh_val_new_cstr(t1));
    assert_int_equal(tf_call(c1, "sync.renew", r, 10000, NULL, NULL), SH_OK);
    /* Then the worker goes silent: past the lease, a tick queues it again. */
    sh_val *res = tick(c0, sh_now_ms() + 6000, 5, true);
    assert_int_equal(sh_val_len(sh_val_get(res, "requeued")), 1);
    sh_val_free(res);
    sh_val *l2 = lease_one(c1);
    assert_int_equal(sh_val_type_of(l2), SH_VAL_MAP);
    assert_string_not_equal(sh_val_get_str(l2, "leaseToken", NULL), t1);
    /* The old token is refused, for complete and renew alike. */
    assert_int_equal(complete(l1, t1, "ok", NULL), SH_ELEASE);
    r = sh_val_new_map();
    sh_val_set_cstr(r, "accountId", sh_val_new_cstr(ids[0]));
    sh_val_set_cstr(r, "leaseToken", sh_val_new_cstr(t1));
    assert_int_equal(tf_call(c1, "sync.renew", r, 10000, NULL, NULL), SH_ELEASE);
    sh_val *acc = NULL;
    assert_int_equal(complete(l2, sh_val_get_str(l2, "leaseToken", NULL), "ok", &acc), SH_OK);
    assert_string_equal(sh_val_get_str(acc, "syncStatus", NULL), "ok");
    assert_non_null(sh_val_get_str(acc, "lastSyncedAt", NULL));
    sh_val_free(acc);
    sh_val_free(l1);
    sh_val_free(l2);
}

static void test_backoff_and_auth_failures(void **state)
{
    flush_redis();
    static char ids[1][32];
    create_accounts(1, ids);
    long long expect[] = {15, 30, 60, 120, 120};
    for (int i = 0; i < 5; i++) {
        sync_now(ids[0]);
        sh_val *l = lease_one(c0);
        sh_val *acc = NULL;
        long long before = sh_now_ms();
        assert_int_equal(complete(l, sh_val_get_str(l, "leaseToken", NULL), "error", &acc), SH_OK);
        assert_string_equal(sh_val_get_str(acc, "syncStatus", NULL), "error");
        assert_string_equal(sh_val_get_str(acc, "errorMessage", NULL), "server said no");
        assert_int_equal(sh_val_int(sh_val_get(acc, "consecutiveFailures")), i + 1);
        long long wait = iso_ms(sh_val_get_str(acc, "nextSyncAt", NULL)) - before;
        assert_true(wait >= expect[i] * MIN - 2000 && wait <= expect[i] * MIN + 2000);
        sh_val_free(acc);
        sh_val_free(l);
    }
    sh_val *a = sh_val_new_map(), *res = NULL;
    sh_val_set_cstr(a, "status", sh_val_new_cstr("error"));
    assert_int_equal(tf_call(c0, "account.list", a, 10000, &res, NULL), SH_OK);
    assert_int_equal(sh_val_len(sh_val_get(res, "accounts")), 1);
    sh_val_free(res);

    /* An auth failure takes the account off the schedule until updated. */
    sync_now(ids[0]);
    sh_val *l = lease_one(c0);
    sh_val *acc = NULL;
    assert_int_equal(complete(l, sh_val_get_str(l, "leaseToken", NULL), "auth_error", &acc), SH_OK);
    assert_string_equal(sh_val_get_str(acc, "syncStatus", NULL), "auth_error");
    assert_int_equal(sh_val_type_of(sh_val_get(acc, "nextSyncAt")), SH_VAL_NIL);
    sh_val_free(acc);
    sh_val_free(l);
    for (int k = 1; k <= 3; k++) {
        res = tick(c0, sh_now_ms() + k * 200 * MIN, 100, true);
        assert_int_equal(sh_val_len(sh_val_get(res, "queued")), 0);
        sh_val_free(res);
    }
    a = sh_val_new_map();
    sh_val *f = sh_val_new_map();
    sh_val_set_cstr(f, "password", sh_val_new_cstr("the-new-password"));
    sh_val_set_cstr(a, "id", sh_val_new_cstr(ids[0]));
    sh_val_set_cstr(a, "fields", f);
    assert_int_equal(tf_call(c0, "account.update", a, 10000, &acc, NULL), SH_OK);
    assert_string_equal(sh_val_get_str(acc, "syncStatus", NULL), "idle");
    assert_int_equal(sh_val_int(sh_val_get(acc, "consecutiveFailures")), 0);
    assert_non_null(sh_val_get_str(acc, "nextSyncAt", NULL));
    sh_val_free(acc);
    res = tick(c0, sh_now_ms() + 16 * MIN, 100, true);
    assert_int_equal(sh_val_len(sh_val_get(res, "queued")), 1);
    sh_val_free(res);
    assert_int_equal(drain(), 1);
}

/* ---- secrets ----------------------------------------------------------------- */

/* calls_of reads how many times Redis ran cmd (INFO commandstats), the
 * commands of scripts included. */
static long long calls_of(const char *cmd)
{
    sh_redis_url u;
    sh_store *s = NULL;
    sh_error err;
    assert_int_equal(sh_redis_url_parse(redis.url, &u, &err), SH_OK);
    assert_int_equal(sh_store_new(&u, NULL, &s, &err), SH_OK);
    sh_cmd *c = sh_cmd_new("INFO");
    sh_cmd_str(c, "commandstats");
    sh_reply *r = NULL;
    assert_int_equal(sh_store_run(s, c, &r, &err), SH_OK);
    char needle[64];
    snprintf(needle, sizeof needle, "cmdstat_%s:calls=", cmd);
    const char *text = sh_reply_string(r, NULL), *at = text ? strstr(text, needle) : NULL;
    long long n = at ? atoll(at + strlen(needle)) : 0;
    sh_reply_free(r);
    sh_cmd_free(c);
    sh_store_free(s);
    return n;
}

static sh_val *list_accounts(const char *status)
{
    sh_val *a = sh_val_new_map(), *res = NULL;
    if (status)
        sh_val_set_cstr(a, "status", sh_val_new_cstr(status));
    assert_int_equal(tf_call(c1, "account.list", a, 10000, &res, NULL), SH_OK);
    return res;
}

/* assert_oldest_first_each_once checks that accs lists exactly the n
 * accounts of ids, by creation time. */
static void assert_oldest_first_each_once(const sh_val *accs, char ids[][32], int n)
{
    assert_int_equal(sh_val_len(accs), n);
    static char seen[NACC];
    memset(seen, 0, sizeof seen);
    const char *prev = "";
    for (size_t i = 0; i < sh_val_len(accs); i++) {
        const sh_val *acc = sh_val_at(accs, i);
        int at = index_of(ids, n, sh_val_get_str(acc, "id", NULL));
        assert_true(at >= 0 && !seen[at]);
        seen[at] = 1;
        const char *created = sh_val_get_str(acc, "createdAt", NULL);
        assert_non_null(created);
        assert_true(strcmp(prev, created) <= 0);
        prev = created;
    }
}

/* The list reads accounts in pages (300 accounts span two), oldest first
 * and each once; the error filters read only the accounts of the error
 * index, not every account; account.exists tells which ids are left. */
static void test_listing_pages_and_the_error_index(void **state)
{
    flush_redis();
    static char ids[NACC][32];
    create_accounts(NACC, ids);
    sh_val *res = list_accounts(NULL);
    const sh_val *accs = sh_val_get(res, "accounts");
    assert_int_equal(sh_val_len(accs), NACC);
    assert_oldest_first_each_once(accs, ids, NACC);
    sh_val_free(res);

    /* Accounts 10..14 fail, 20 and 21 are refused their login. */
    int failed[] = {10, 11, 12, 13, 14, 20, 21};
    for (size_t i = 0; i < sizeof failed / sizeof *failed; i++) {
        sync_now(ids[failed[i]]);
        sh_val *l = lease_one(c0);
        assert_string_equal(sh_val_get_str(l, "accountId", NULL), ids[failed[i]]);
        assert_int_equal(complete(l, sh_val_get_str(l, "leaseToken", NULL),
                                  failed[i] >= 20 ? "auth_error" : "error", NULL),
                         SH_OK);
        sh_val_free(l);
    }
    long long before = calls_of("hget");
    res = list_accounts("error");
    long long hgets = calls_of("hget") - before;
    accs = sh_val_get(res, "accounts");
    assert_int_equal(sh_val_len(accs), 7);
    static char failed_ids[7][32];
    for (size_t i = 0; i < 7; i++)
        snprintf(failed_ids[i], 32, "%s", ids[failed[i]]);
    assert_oldest_first_each_once(accs, failed_ids, 7);
    sh_val_free(res);
    assert_true(hgets >= 7 && hgets < 20);
    res = list_accounts("auth_error");
    accs = sh_val_get(res, "accounts");
    assert_int_equal(sh_val_len(accs), 2);
    assert_oldest_first_each_once(accs, failed_ids + 5, 2);
    sh_val_free(res);
    res = list_accounts("idle");
    assert_int_equal(sh_val_len(sh_val_get(res, "accounts")), NACC - 7);
    sh_val_free(res);

    /* A failed account that syncs again leaves the error listing. */
    sync_now(ids[12]);
    sh_val *l = lease_one(c0);
    assert_int_equal(complete(l, sh_val_get_str(l, "leaseToken", NULL), "ok", NULL), SH_OK);
    sh_val_free(l);
    res = list_accounts("error");
    assert_int_equal(sh_val_len(sh_val_get(res, "accounts")), 6);
    sh_val_free(res);

    sh_val *a = sh_val_new_map(), *q = sh_val_new_array();
    sh_val_push(q, sh_val_new_cstr(ids[0]));
    sh_val_push(q, sh_val_new_cstr("a0000000000000000000000"));
    sh_val_push(q, sh_val_new_cstr(ids[NACC - 1]));
    sh_val_set_cstr(a, "ids", q);
    assert_int_equal(tf_call(c0, "account.exists", a, 10000, &res, NULL), SH_OK);
    const sh_val *ex = sh_val_get(res, "exists");
    assert_int_equal(sh_val_len(ex), 3);
    assert_true(sh_val_bool(sh_val_at(ex, 0)));
    assert_false(sh_val_bool(sh_val_at(ex, 1)));
    assert_true(sh_val_bool(sh_val_at(ex, 2)));
    sh_val_free(res);
    a = sh_val_new_map();
    q = sh_val_new_array();
    sh_val_push(q, sh_val_new_cstr("no spaces"));
    sh_val_set_cstr(a, "ids", q);
    sh_error e;
    assert_int_equal(tf_call(c0, "account.exists", a, 10000, &res, &e), SH_EINVAL);
    assert_non_null(strstr(e.msg, "\"ids\"[0]"));
    a = sh_val_new_map();
    sh_val_set_cstr(a, "ids", sh_val_new_array());
    assert_int_equal(tf_call(c0, "account.exists", a, 10000, &res, &e), SH_EINVAL);
}

static void hexof(const char *s, char *out)
{
    for (size_t i = 0; s[i]; i++)
        sprintf(out + 2 * i, "%02x", (unsigned char)s[i]);
}

static void base64of(const char *s, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s), o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)s[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)s[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
}

static bool bytes_contain(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return true;
    return false;
}

/* dump_all appends every key and every value in Redis to out. */
static void dump_all(sh_buf *out)
{
    sh_redis_url u;
    sh_store *s = NULL;
    sh_error err;
    assert_int_equal(sh_redis_url_parse(redis.url, &u, &err), SH_OK);
    assert_int_equal(sh_store_new(&u, NULL, &s, &err), SH_OK);
    sh_cmd *c = sh_cmd_new("KEYS");
    sh_cmd_str(c, "*");
    sh_reply *keys = NULL;
    assert_int_equal(sh_store_run(s, c, &keys, &err), SH_OK);
    sh_cmd_free(c);
    for (size_t i = 0; i < sh_reply_count(keys); i++) {
        size_t klen;
        const char *k = sh_reply_string(sh_reply_elem(keys, i), &klen);
        sh_buf_append(out, k, klen);
        static const char *const dumps[][2] = {
            {"HGETALL", NULL}, {"GET", NULL}, {"LRANGE", "L"}, {"ZRANGE", "Z"}, {"SMEMBERS", NULL}};
        for (size_t d = 0; d < 5; d++) {
            c = sh_cmd_new(dumps[d][0]);
            sh_cmd_arg(c, k, klen);
            if (dumps[d][1]) {
                sh_cmd_str(c, "0");
                sh_cmd_str(c, "-1");
            }
            sh_reply *r = NULL;
            assert_int_equal(sh_store_run(s, c, &r, &err), SH_OK);
            sh_cmd_free(c);
            size_t len;
            const char *v = sh_reply_string(r, &len);
            if (v && sh_reply_kind(r) == SH_REPLY_STRING)
                sh_buf_append(out, v, len);
            for (size_t j = 0; j < sh_reply_count(r); j++) {
                v = sh_reply_string(sh_reply_elem(r, j), &len);
                if (v)
                    sh_buf_append(out, v, len);
            }
            sh_reply_free(r);
        }
    }
    sh_reply_free(keys);
    sh_store_free(s);
}

static void test_secrets_never_stored_and_rotation(void **state)
{
    flush_redis();
    static char ids[20][32];
    create_accounts(20, ids);
    sh_buf all;
    sh_buf_init(&all);
    dump_all(&all);
    assert_true(all.len > 1000);
    for (int i = 0; i < 20; i++) {
        char pw[32], hex[80], b64[80];
        snprintf(pw, sizeof pw, "pw-%d-secret", i);
        hexof(pw, hex);
        base64of(pw, b64);
        assert_false(bytes_contain(all.data, all.len, pw));
        assert_false(bytes_contain(all.data, all.len, hex));
        assert_false(bytes_contain(all.data, all.len, b64));
    }
    sh_buf_fini(&all);

    /* A worker opens the sealed password with the key; a wrong key fails
     * with a clear error. */
    sh_key k1, k2;
    sh_error err;
    assert_int_equal(sh_key_parse(K1, "K1", &k1, &err), SH_OK);
    assert_int_equal(sh_key_parse(K2, "K2", &k2, &err), SH_OK);
    sync_now(ids[3]);
    sh_val *l = lease_one(c0);
    const sh_val *acct = sh_val_get(l, "account");
    size_t blen;
    const char *blob = sh_val_str(sh_val_get(acct, "passwordSealed"), &blen);
    assert_non_null(blob);
    sh_buf plain;
    sh_buf_init(&plain);
    const sh_key *only1[] = {&k1}, *only2[] = {&k2};
    assert_int_equal(sh_open(only1, 1, blob, blen, ids[3], &plain, &err), SH_OK);
    assert_string_equal(plain.data, "pw-3-secret");
    sh_buf_reset(&plain);
    assert_int_equal(sh_open(only2, 1, blob, blen, ids[3], &plain, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "another key"));
    assert_int_equal(complete(l, sh_val_get_str(l, "leaseToken", NULL), "ok", NULL), SH_OK);
    sh_val_free(l);

    /* Rotation to K2 keeps every account usable. */
    pid_t p = start_coord(0, K2, K1, "rotate-keys");
    int st = tf_stop(p, 0, 30000);
    assert_int_equal(st, 0);
    for (int i = 0; i < 20; i++)
        sync_now(ids[i]);
    for (int i = 0; i < 20; i++) {
        l = lease_one(c0);
        acct = sh_val_get(l, "account");
        blob = sh_val_str(sh_val_get(acct, "passwordSealed"), &blen);
        const char *id = sh_val_get_str(l, "accountId", NULL);
        int at = index_of(ids, 20, id);
        char pw[32];
        snprintf(pw, sizeof pw, "pw-%d-secret", at);
        sh_buf_reset(&plain);
        assert_int_equal(sh_open(only2, 1, blob, blen, id, &plain, &err), SH_OK);
        assert_string_equal(plain.data, pw);
        sh_buf_reset(&plain);
        assert_int_equal(sh_open(only1, 1, blob, blen, id, &plain, &err), SH_EINVAL);
        assert_int_equal(complete(l, sh_val_get_str(l, "leaseToken", NULL), "ok", NULL), SH_OK);
        sh_val_free(l);
    }
    sh_buf_fini(&plain);
}

/* ---- rotation of old-format blobs ----------------------------------------- */

#define K3 "5b1e9d7c3a2f4e6d8c0b1a2f3e4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f1e2d"

static void secret_key_of(const char *id, char *key, size_t len)
{
    assert_true(sh_key_build(key, len, SH_KEY_ACCOUNT, id, ":secret") > 0);
}

static void secret_get(sh_store *s, const char *id, sh_buf *out)
{
    char key[128];
    secret_key_of(id, key, sizeof key);
    sh_cmd *c = sh_cmd_new("GET");
    sh_cmd_str(c, key);
    sh_reply *r = NULL;
    sh_error err;
    assert_int_equal(sh_store_run(s, c, &r, &err), SH_OK);
    sh_cmd_free(c);
    size_t len;
    const char *v = sh_reply_string(r, &len);
    assert_non_null(v);
    sh_buf_reset(out);
    sh_buf_append(out, v, len);
    sh_reply_free(r);
}

static void secret_put(sh_store *s, const char *id, const sh_buf *blob)
{
    char key[128];
    secret_key_of(id, key, sizeof key);
    sh_cmd *c = sh_cmd_new("SET");
    sh_cmd_str(c, key);
    sh_cmd_arg(c, blob->data, blob->len);
    sh_reply *r = NULL;
    sh_error err;
    assert_int_equal(sh_store_run(s, c, &r, &err), SH_OK);
    sh_cmd_free(c);
    sh_reply_free(r);
}

/* reseal_as writes account i's password sealed by key in version 1 or 2. */
static void reseal_as(sh_store *s, const char *id, int i, const sh_key *key, int version)
{
    char pw[32];
    snprintf(pw, sizeof pw, "pw-%d-secret", i);
    sh_buf b;
    sh_buf_init(&b);
    if (version == 1)
        assert_int_equal(sh_seal_v1(key, pw, strlen(pw), id, &b), SH_OK);
    else
        assert_int_equal(sh_seal(key, pw, strlen(pw), id, &b), SH_OK);
    secret_put(s, id, &b);
    sh_buf_fini(&b);
}

/* rotate runs `coordinator rotate-keys` to key from prev; returns its exit
 * status and its last report line in line. */
static int rotate(const char *key, const char *prev, char *line, size_t len)
{
    pid_t p = start_coord(0, key, prev, "rotate-keys");
    int st = tf_stop(p, 0, 30000);
    char path[400], buf[1024];
    snprintf(path, sizeof path, "%s/coordinator0-cmd.log", logdir);
    FILE *f = fopen(path, "r");
    line[0] = '\0';
    while (f && fgets(buf, sizeof buf, f))
        if (strncmp(buf, "rotate-keys:", 12) == 0 || strstr(buf, "same key id")) {
            size_t n = strlen(buf) < len ? strlen(buf) : len - 1;
            memcpy(line, buf, n);
            line[n] = '\0';
        }
    if (f)
        fclose(f);
    return st;
}

/* Blobs of earlier releases (one-byte key id) are brought to the newest
 * format under the new key, with counts printed; a blob that opens with
 * neither key fails the run; keys whose ids collide are refused before
 * anything is touched; afterwards every blob opens with the new key
 * alone. */
static void test_rotation_of_old_format_blobs(void **state)
{
    flush_redis();
    static char ids[12][32];
    create_accounts(12, ids);
    sh_key k1, k3;
    sh_error err;
    assert_int_equal(sh_key_parse(K1, "K1", &k1, &err), SH_OK);
    assert_int_equal(sh_key_parse(K3, "K3", &k3, &err), SH_OK);
    assert_int_not_equal(k1.id, k3.id);
    sh_store *s = tf_redis_store(&redis);
    assert_non_null(s);
    /* 0-3: version 1 under the old key; 4-5: version 1 under the new key;
     * 6: current; 7-11: version 2 under the old key (as created). */
    for (int i = 0; i < 4; i++)
        reseal_as(s, ids[i], i, &k1, 1);
    reseal_as(s, ids[4], 4, &k3, 1);
    reseal_as(s, ids[5], 5, &k3, 1);
    reseal_as(s, ids[6], 6, &k3, 2);
    sh_buf before, blob, plain;
    sh_buf_init(&before);
    sh_buf_init(&blob);
    sh_buf_init(&plain);
    secret_get(s, ids[0], &before);

    /* A previous key whose one-byte id is the new key's: refused, nothing
     * written. */
    char kc_hex[65], line[512];
    sh_key kc;
    for (unsigned i = 1;; i++) {
        snprintf(kc_hex, sizeof kc_hex, "%064x", i);
        assert_int_equal(sh_key_parse(kc_hex, "KC", &kc, &err), SH_OK);
        if (kc.id == k3.id)
            break;
    }
    assert_int_not_equal(rotate(K3, kc_hex, line, sizeof line), 0);
    assert_non_null(
        strstr(line, "ENCRYPTION_KEY and ENCRYPTION_KEY_PREVIOUS have the same key id"));
    secret_get(s, ids[0], &blob);
    assert_int_equal(blob.len, before.len);
    assert_memory_equal(blob.data, before.data, blob.len);

    /* A damaged blob fails the run, which still brings over the rest. */
    secret_get(s, ids[11], &blob);
    blob.data[blob.len - 1] ^= 1;
    secret_put(s, ids[11], &blob);
    assert_int_not_equal(rotate(K3, K1, line, sizeof line), 0);
    assert_string_equal(line,
                        "rotate-keys: 12 scanned, 10 re-sealed, 1 already current, 1 failed\n");

    /* Repaired (the password set again), a second run finishes the job. */
    reseal_as(s, ids[11], 11, &k1, 1);
    assert_int_equal(rotate(K3, K1, line, sizeof line), 0);
    assert_string_equal(line,
                        "rotate-keys: 12 scanned, 1 re-sealed, 11 already current, 0 failed\n");
    assert_int_equal(rotate(K3, K1, line, sizeof line), 0);
    assert_string_equal(line,
                        "rotate-keys: 12 scanned, 0 re-sealed, 12 already current, 0 failed\n");

    const sh_key *only3[] = {&k3}, *only1[] = {&k1};
    for (int i = 0; i < 12; i++) {
        char pw[32];
        snprintf(pw, sizeof pw, "pw-%d-secret", i);
        secret_get(s, ids[i], &blob);
        assert_true(sh_seal_is_current(&k3, blob.data, blob.len));
        sh_buf_reset(&plain);
        assert_int_equal(sh_open(only3, 1, blob.data, blob.len, ids[i], &plain, &err), SH_OK);
        assert_string_equal(plain.data, pw);
        sh_buf_reset(&plain);
        assert_int_equal(sh_open(only1, 1, blob.data, blob.len, ids[i], &plain, &err), SH_EINVAL);
    }
    sh_buf_fini(&before);
    sh_buf_fini(&blob);
    sh_buf_fini(&plain);
    sh_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_300_accounts_batch_20_each_once_per_interval),
        cmocka_unit_test(test_300_accounts_batch_5_effective_interval_60),
        cmocka_unit_test(test_two_coordinators_ticking_at_once_never_double_queue),
        cmocka_unit_test(test_queued_accounts_are_announced),
        cmocka_unit_test(test_account_changes_are_published),
        cmocka_unit_test(test_missed_intervals_are_skipped_not_made_up),
        cmocka_unit_test(test_sync_asked_while_syncing_follows),
        cmocka_unit_test(test_lease_expiry_requeues_and_stale_token_refused),
        cmocka_unit_test(test_backoff_and_auth_failures),
        cmocka_unit_test(test_listing_pages_and_the_error_index),
        cmocka_unit_test(test_secrets_never_stored_and_rotation),
        cmocka_unit_test(test_rotation_of_old_format_blobs),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
