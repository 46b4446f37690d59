/* test_coordinator.c - three coordinator processes on one private Redis:
 * claims never overlap and tokens only grow, whatever the concurrency;
 * reservations are disjoint and gap-free; expiry hands an item over with a
 * higher token and the old holder gets lease_lost; bad input is refused;
 * a lost row counter or a lowered first row never hands a row out twice. */
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

#include "calls.h"
#include "fixture.h"
#include "services.h"
#include "shared/rpc.h"
#include "shared/util.h"

#define NCOORD   3
#define CLIENTS  16
#define ATTEMPTS 20000
#define ITEMS    50

static tf_redis redis;
static pid_t coord[NCOORD];
static char urls[512];
static char logdir[300];

/* item_args returns the arguments {sq, botId, token} of a claim or
 * reservation operation (token 0: none). */
static sh_val *item_args(const char *sq, const char *bot, int64_t token)
{
    sh_val *a = sh_val_new_map();
    tf_put_str(a, "sq", sq);
    tf_put_str(a, "botId", bot);
    if (token)
        tf_put_int(a, "token", token);
    return a;
}

static int group_setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    if (tf_redis_start(&redis, 0) != 0)
        return -1;
    snprintf(logdir, sizeof logdir, "%s", redis.dir);
    urls[0] = '\0';
    for (int i = 0; i < NCOORD; i++) {
        char url[64], logpath[400];
        snprintf(url, sizeof url, "tcp://127.0.0.1:%d", tf_free_port());
        snprintf(logpath, sizeof logpath, "%s/coordinator%d.log", logdir, i);
        const char *env[] = {"RPC_WORKERS=8", NULL};
        tf_service svc = {.name = "coordinator",
                          .redis_url = redis.url,
                          .rpc_url = url,
                          .env = env,
                          .log_path = logpath};
        coord[i] = tf_service_spawn(&svc);
        if (coord[i] <= 0)
            return -1;
        strcat(urls, i ? "," : "");
        strcat(urls, url);
    }
    /* Every replica must answer before the race starts: enough pings that
     * the client's round robin has reached each. */
    sh_rpc_client *c = NULL;
    sh_error err;
    if (sh_rpc_client_new(urls, 1000, 0, &c, &err) != SH_OK)
        return -1;
    int rc = tf_wait_ping(c, 20);
    sh_rpc_client_free(c);
    if (rc) {
        fprintf(stderr, "coordinators did not answer; logs in %s\n", logdir);
        return -1;
    }
    tf_sleep_ms(200); /* let every client connection reach every replica */
    return 0;
}

static int group_teardown(void **state)
{
    char logs[400];
    snprintf(logs, sizeof logs, "%s/coordinator*.log", logdir);
    int rc = tf_services_stop(coord, NCOORD, logs);
    tf_redis_stop(&redis);
    sh_rpc_fini();
    return rc;
}

/* ---- the race ------------------------------------------------------------ */

/* Shared by the racing threads: how many believe they hold each item, and
 * the last token seen for it. A belief starts after a successful claim
 * reply and ends before the release is sent (or when the holder abandons
 * the item to let it expire), so it lies inside the lease: two beliefs at
 * once would be two holders at once. */
static int holders[ITEMS];
static int64_t last_token[ITEMS];
static pthread_mutex_t token_lock = PTHREAD_MUTEX_INITIALIZER;
static int attempts_left = ATTEMPTS;

typedef struct racer {
    int idx;
    int claims, conflicts, overlaps, token_regressions, errors, abandoned, lease_lost;
    unsigned seed;
    char first_error[256];
} racer;

static void *racer_main(void *p)
{
    racer *r = p;
    sh_rpc_client *c = NULL;
    sh_error err;
    if (sh_rpc_client_new(urls, 5000, 0, &c, &err) != SH_OK) {
        r->errors++;
        return NULL;
    }
    char bot[16];
    snprintf(bot, sizeof bot, "BOT%d", r->idx);
    while (__atomic_sub_fetch(&attempts_left, 1, __ATOMIC_RELAXED) >= 0) {
        int item = (int)(rand_r(&r->seed) % ITEMS);
        char sq[16];
        snprintf(sq, sizeof sq, "item-%d", item);
        sh_val *a = item_args(sq, bot, 0), *res = NULL;
        tf_put_int(a, "ttlSeconds", 1);
        int rc = tf_call(c, "claim", a, 5000, &res, &err);
        if (rc != SH_OK) {
            if (!r->errors++)
                snprintf(r->first_error, sizeof r->first_error, "claim: %.200s", err.msg);
            continue;
        }
        if (!sh_val_bool(sh_val_get(res, "claimed"))) {
            r->conflicts++;
            sh_val_free(res);
            continue;
        }
        const sh_val *claim = sh_val_get(res, "claim");
        int64_t token = sh_val_int(sh_val_get(claim, "token"));
        bool renewed = sh_val_bool(sh_val_get(claim, "renewed"));
        sh_val_free(res);
        if (renewed) {
            /* This bot abandoned the item earlier and it has not expired:
             * claiming again hands back the same lease; let it go. */
            continue;
        }
        if (__atomic_fetch_add(&holders[item], 1, __ATOMIC_SEQ_CST) != 0)
            r->overlaps++;
        pthread_mutex_lock(&token_lock);
        if (token <= last_token[item])
            r->token_regressions++;
        last_token[item] = token;
        pthread_mutex_unlock(&token_lock);
        r->claims++;
        bool abandon = rand_r(&r->seed) % 40 == 0;
        __atomic_fetch_sub(&holders[item], 1, __ATOMIC_SEQ_CST);
        if (abandon) {
            r->abandoned++;
            continue;
        }
        a = item_args(sq, bot, token);
        rc = tf_call(c, "claim.release", a, 5000, NULL, &err);
        if (rc == SH_ELEASE)
            r->lease_lost++; /* possible only if the 1 s lease ran out first */
        else if (rc != SH_OK && !r->errors++)
            snprintf(r->first_error, sizeof r->first_error, "release: %.200s", err.msg);
    }
    sh_rpc_client_free(c);
    return NULL;
}

static void test_race_never_two_holders(void **state)
{
    pthread_t t[CLIENTS];
    racer r[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i].idx = i + 1;
        r[i].seed = (unsigned)(i * 7919 + 17);
        pthread_create(&t[i], NULL, racer_main, &r[i]);
    }
    int claims = 0, conflicts = 0, abandoned = 0, lease_lost = 0;
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(t[i], NULL);
        if (r[i].errors)
            fail_msg("client %d: %d errors, first: %s", i, r[i].errors, r[i].first_error);
        assert_int_equal(r[i].overlaps, 0);
        assert_int_equal(r[i].token_regressions, 0);
        claims += r[i].claims;
        conflicts += r[i].conflicts;
        abandoned += r[i].abandoned;
        lease_lost += r[i].lease_lost;
    }
    print_message("race: %d claims, %d conflicts, %d abandoned to expiry, %d late releases\n",
                  claims, conflicts, abandoned, lease_lost);
    /* The race must have been a race: many claims, many conflicts, and
     * abandoned items taken over after expiry. */
    assert_true(claims > 500);
    assert_true(conflicts > 1000);
    assert_true(abandoned > 10);
}

/* ---- reservations ------------------------------------------------------- */

#define RES_PER_CLIENT 500

typedef struct block {
    int64_t start, count;
} block;

typedef struct reserver {
    int idx;
    const char *log; /* NULL: racelog */
    block blocks[RES_PER_CLIENT];
    int n, errors;
    char first_error[256];
} reserver;

static void *reserver_main(void *p)
{
    reserver *r = p;
    sh_rpc_client *c = NULL;
    sh_error err;
    if (sh_rpc_client_new(urls, 5000, 0, &c, &err) != SH_OK) {
        r->errors++;
        return NULL;
    }
    unsigned seed = (unsigned)r->idx * 31u;
    char bot[16];
    snprintf(bot, sizeof bot, "BOT%d", r->idx);
    for (int i = 0; i < RES_PER_CLIENT; i++) {
        char sq[32];
        snprintf(sq, sizeof sq, "sq-%d-%d", r->idx, i);
        int64_t rows = 1 + rand_r(&seed) % 25;
        sh_val *a = item_args(sq, bot, 0), *res = NULL;
        tf_put_int(a, "rowCount", rows);
        tf_put_str(a, "log", r->log ? r->log : "racelog");
        if (tf_call(c, "reserve", a, 5000, &res, &err) != SH_OK ||
            !sh_val_bool(sh_val_get(res, "reserved"))) {
            if (!r->errors++)
                snprintf(r->first_error, sizeof r->first_error, "%s", err.msg);
            sh_val_free(res);
            continue;
        }
        const sh_val *rv = sh_val_get(res, "reservation");
        r->blocks[r->n].start = sh_val_int(sh_val_get(rv, "startRow"));
        r->blocks[r->n].count = sh_val_int(sh_val_get(rv, "rowCount"));
        assert_int_equal(r->blocks[r->n].count, rows);
        r->n++;
        sh_val_free(res);
    }
    sh_rpc_client_free(c);
    return NULL;
}

static int block_cmp(const void *a, const void *b)
{
    const block *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* race_reservers runs n reservers (ids from idx0) on log, and checks their
 * blocks are disjoint and follow each other from row 1 without gaps. r
 * keeps each reserver's blocks. */
static void race_reservers(reserver *r, int n, int idx0, const char *log)
{
    pthread_t t[CLIENTS];
    assert_true(n <= CLIENTS);
    for (int i = 0; i < n; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i].idx = idx0 + i;
        r[i].log = log;
        pthread_create(&t[i], NULL, reserver_main, &r[i]);
    }
    static block all[CLIENTS * RES_PER_CLIENT];
    size_t got = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        if (r[i].errors)
            fail_msg("client %d: %d errors, first: %s", i, r[i].errors, r[i].first_error);
        memcpy(all + got, r[i].blocks, (size_t)r[i].n * sizeof(block));
        got += (size_t)r[i].n;
    }
    assert_int_equal(got, (size_t)n * RES_PER_CLIENT);
    qsort(all, got, sizeof all[0], block_cmp);
    assert_int_equal(all[0].start, 1);
    for (size_t i = 1; i < got; i++)
        if (all[i].start != all[i - 1].start + all[i - 1].count)
            fail_msg("%s: block %zu starts at %lld, previous ended at %lld", log, i,
                     (long long)all[i].start, (long long)(all[i - 1].start + all[i - 1].count));
}

static void test_reservations_disjoint_without_gaps(void **state)
{
    static reserver r[CLIENTS];
    race_reservers(r, CLIENTS, 1, "racelog");

    /* The same item and owner get the same block back; another owner a
     * conflict naming the holder. */
    sh_rpc_client *c = tf_client(urls);
    sh_val *a = item_args("sq-1-0", "BOT1", 0), *res = NULL;
    tf_put_int(a, "rowCount", 3);
    tf_put_str(a, "log", "racelog");
    assert_int_equal(tf_call(c, "reserve", a, 5000, &res, NULL), SH_OK);
    assert_true(sh_val_bool(sh_val_get(res, "reserved")));
    assert_int_equal(sh_val_int(sh_val_get(sh_val_get(res, "reservation"), "startRow")),
                     r[0].blocks[0].start);
    sh_val_free(res);
    a = item_args("sq-1-0", "BOT2", 0);
    tf_put_int(a, "rowCount", 3);
    tf_put_str(a, "log", "racelog");
    assert_int_equal(tf_call(c, "reserve", a, 5000, &res, NULL), SH_OK);
    assert_false(sh_val_bool(sh_val_get(res, "reserved")));
    assert_string_equal(sh_val_get_str(sh_val_get(res, "reservation"), "botId", NULL), "BOT1");
    sh_val_free(res);
    /* Releasing needs the owner. */
    a = item_args("sq-1-0", "BOT2", 0);
    tf_put_str(a, "log", "racelog");
    assert_int_equal(tf_call(c, "reserve.release", a, 5000, NULL, NULL), SH_ELEASE);
    a = item_args("sq-1-0", "BOT1", 0);
    tf_put_str(a, "log", "racelog");
    assert_int_equal(tf_call(c, "reserve.release", a, 5000, NULL, NULL), SH_OK);
    sh_rpc_client_free(c);
}

/* ---- expiry -------------------------------------------------------------- */

static void test_expiry_hands_over_with_higher_token(void **state)
{
    sh_rpc_client *c = tf_client(urls);
    sh_val *a = item_args("251019-164rmb", "BOT1", 0), *res = NULL;
    tf_put_int(a, "ttlSeconds", 1);
    assert_int_equal(tf_call(c, "claim", a, 5000, &res, NULL), SH_OK);
    assert_true(sh_val_bool(sh_val_get(res, "claimed")));
    int64_t t1 = sh_val_int(sh_val_get(sh_val_get(res, "claim"), "token"));
    assert_string_equal(sh_val_get_str(sh_val_get(res, "claim"), "status", NULL), "CLAIMING");
    sh_val_free(res);

    /* Before expiry BOT3 is refused, told who holds it. */
    a = item_args("251019-164rmb", "BOT3", 0);
    assert_int_equal(tf_call(c, "claim", a, 5000, &res, NULL), SH_OK);
    assert_false(sh_val_bool(sh_val_get(res, "claimed")));
    assert_string_equal(sh_val_get_str(sh_val_get(res, "claim"), "botId", NULL), "BOT1");
    assert_null(sh_val_get(sh_val_get(res, "claim"), "token"));
    sh_val_free(res);

    /* The same owner claiming again keeps its token. */
    a = item_args("251019-164rmb", "BOT1", 0);
    tf_put_int(a, "ttlSeconds", 1);
    assert_int_equal(tf_call(c, "claim", a, 5000, &res, NULL), SH_OK);
    assert_int_equal(sh_val_int(sh_val_get(sh_val_get(res, "claim"), "token")), t1);
    sh_val_free(res);

    int64_t t0 = sh_mono_ms();
    tf_sleep_ms(1100);
    a = item_args("251019-164rmb", "BOT3", 0);
    assert_int_equal(tf_call(c, "claim", a, 5000, &res, NULL), SH_OK);
    assert_true(sh_val_bool(sh_val_get(res, "claimed")));
    int64_t t3 = sh_val_int(sh_val_get(sh_val_get(res, "claim"), "token"));
    assert_true(t3 > t1);
    sh_val_free(res);
    assert_true(sh_mono_ms() - t0 < 1600); /* it expired on time */

    const char *ops[] = {"claim.renew", "claim.release", "claim.status"};
    for (int i = 0; i < 3; i++) {
        a = item_args("251019-164rmb", "BOT1", t1);
        if (i == 2)
            tf_put_str(a, "status", "WRITING");
        sh_error err;
        assert_int_equal(tf_call(c, ops[i], a, 5000, NULL, &err), SH_ELEASE);
        assert_non_null(strstr(err.msg, "lease_lost"));
    }
    /* The right owner with a stale token is refused too. */
    a = item_args("251019-164rmb", "BOT3", t1);
    assert_int_equal(tf_call(c, "claim.release", a, 5000, NULL, NULL), SH_ELEASE);

    /* The holder sets its status, renews and releases; then the item can be
     * claimed again with a higher token. */
    a = item_args("251019-164rmb", "BOT3", t3);
    tf_put_str(a, "status", "WRITING");
    assert_int_equal(tf_call(c, "claim.status", a, 5000, &res, NULL), SH_OK);
    assert_string_equal(sh_val_get_str(sh_val_get(res, "claim"), "status", NULL), "WRITING");
    sh_val_free(res);
    a = item_args("251019-164rmb", "BOT3", t3);
    tf_put_int(a, "ttlSeconds", 60);
    assert_int_equal(tf_call(c, "claim.renew", a, 5000, NULL, NULL), SH_OK);
    a = item_args("251019-164rmb", "BOT3", t3);
    assert_int_equal(tf_call(c, "claim.release", a, 5000, NULL, NULL), SH_OK);
    a = item_args("251019-164rmb", "BOT2", 0);
    assert_int_equal(tf_call(c, "claim", a, 5000, &res, NULL), SH_OK);
    assert_true(sh_val_int(sh_val_get(sh_val_get(res, "claim"), "token")) > t3);
    sh_val_free(res);

    /* The listing shows it, under its id, with the seed's fields. */
    assert_int_equal(tf_call(c, "list", NULL, 5000, &res, NULL), SH_OK);
    const sh_val *cl = sh_val_get(sh_val_get(res, "claims"), "251019-164rmb");
    assert_non_null(cl);
    assert_string_equal(sh_val_get_str(cl, "botId", NULL), "BOT2");
    assert_non_null(sh_val_get_str(cl, "timestamp", NULL));
    assert_non_null(sh_val_get_str(cl, "expiresAt", NULL));
    sh_val_free(res);
    sh_rpc_client_free(c);
}

static void test_listing_sweeps_expired(void **state)
{
    sh_rpc_client *c = tf_client(urls);
    sh_val *a = item_args("short-lived", "BOT9", 0);
    tf_put_int(a, "ttlSeconds", 1);
    tf_put_str(a, "namespace", "sweep");
    assert_int_equal(tf_call(c, "claim", a, 5000, NULL, NULL), SH_OK);
    sh_val *res = NULL, *la = sh_val_new_map();
    tf_put_str(la, "namespace", "sweep");
    assert_int_equal(tf_call(c, "list", la, 5000, &res, NULL), SH_OK);
    assert_int_equal(sh_val_len(sh_val_get(res, "claims")), 1);
    sh_val_free(res);
    tf_sleep_ms(1100);
    la = sh_val_new_map();
    tf_put_str(la, "namespace", "sweep");
    assert_int_equal(tf_call(c, "list", la, 5000, &res, NULL), SH_OK);
    assert_int_equal(sh_val_len(sh_val_get(res, "claims")), 0);
    sh_val_free(res);
    sh_rpc_client_free(c);
}

/* ---- bad input ------------------------------------------------------------ */

static void expect_invalid(sh_rpc_client *c, const char *op, sh_val *a, const char *words)
{
    sh_error err;
    sh_error_clear(&err);
    int rc = tf_call(c, op, a, 5000, NULL, &err);
    if (rc != SH_EINVAL)
        fail_msg("%s: expected invalid_argument, got %s (%s)", op, sh_err_name(rc), err.msg);
    if (!strstr(err.msg, words))
        fail_msg("%s: \"%s\" lacks \"%s\"", op, err.msg, words);
}

static void test_bad_input_changes_nothing(void **state)
{
    sh_rpc_client *c = tf_client(urls);
    char big[200];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sh_val *a;

    a = sh_val_new_map();
    tf_put_str(a, "botId", "B");
    expect_invalid(c, "claim", a, "\"sq\" is required");
    a = item_args(big, "B", 0);
    expect_invalid(c, "claim", a, "1..128");
    a = item_args("bad id", "B", 0);
    expect_invalid(c, "claim", a, "letters, digits");
    a = sh_val_new_map();
    tf_put_int(a, "sq", 5);
    tf_put_str(a, "botId", "B");
    expect_invalid(c, "claim", a, "must be a string");
    /* One bad field beside a valid item and owner. */
    static const struct {
        const char *op, *field, *str; /* str NULL: the number num */
        long long num;
        const char *words;
    } bad[] = {
        {"claim", "ttlSeconds", NULL, -5, "ttlSeconds"},
        {"claim", "ttlSeconds", NULL, 99999999999LL, "between 1 and"},
        {"claim", "ttlSeconds", "60", 0, "must be an integer"},
        {"claim", "namespace", "Bad NS", 0, "namespace"},
        {"claim", "colour", "red", 0, "unknown field \"colour\""},
        {"claim.release", "token", "12", 0, "token"},
        {"reserve", "rowCount", NULL, 0, "rowCount"},
        {"reserve", "rowCount", NULL, -3, "rowCount"},
        {"reserve", "rowCount", NULL, 1LL << 40, "rowCount"},
        {"reserve", "log", "../etc", 0, "log"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        a = item_args("x1", "B", 0);
        if (strcmp(bad[i].op, "reserve") == 0 && strcmp(bad[i].field, "rowCount") != 0)
            tf_put_int(a, "rowCount", 2);
        if (bad[i].str)
            tf_put_str(a, bad[i].field, bad[i].str);
        else
            tf_put_int(a, bad[i].field, bad[i].num);
        expect_invalid(c, bad[i].op, a, bad[i].words);
    }
    expect_invalid(c, "claim", sh_val_new_cstr("x"), "must be an object");

    /* Nothing of the above was stored. */
    sh_val *res = NULL;
    assert_int_equal(tf_call(c, "list", NULL, 5000, &res, NULL), SH_OK);
    assert_null(sh_val_get(sh_val_get(res, "claims"), "x1"));
    assert_null(sh_val_get(sh_val_get(res, "reservations"), "x1"));
    sh_val_free(res);
    sh_rpc_client_free(c);
}

/* ---- a floor under the row counter -------------------------------------- */

/* redis_do runs one command on the private Redis and returns its integer
 * reply (or -1 for another reply). */
static long long redis_do(const char *const *argv)
{
    sh_store *s = tf_redis_store(&redis);
    sh_error err;
    assert_non_null(s);
    sh_cmd *c = sh_cmd_new(argv[0]);
    for (int i = 1; argv[i]; i++)
        sh_cmd_str(c, argv[i]);
    sh_reply *r = NULL;
    assert_int_equal(sh_store_run(s, c, &r, &err), SH_OK);
    long long v = sh_reply_kind(r) == SH_REPLY_INTEGER ? sh_reply_integer(r) : -1;
    sh_reply_free(r);
    sh_cmd_free(c);
    sh_store_free(s);
    return v;
}

/* reserve_block reserves rows rows of log for sq and returns the block. */
static block reserve_block(sh_rpc_client *c, const char *log, const char *sq, int64_t rows)
{
    sh_val *a = item_args(sq, "BOTF", 0), *res = NULL;
    tf_put_int(a, "rowCount", rows);
    tf_put_str(a, "log", log);
    sh_error err;
    if (tf_call(c, "reserve", a, 5000, &res, &err) != SH_OK)
        fail_msg("reserve %s: %s", sq, err.msg);
    assert_true(sh_val_bool(sh_val_get(res, "reserved")));
    const sh_val *rv = sh_val_get(res, "reservation");
    block b = {sh_val_int(sh_val_get(rv, "startRow")), sh_val_int(sh_val_get(rv, "rowCount"))};
    sh_val_free(res);
    return b;
}

static void release_block(sh_rpc_client *c, const char *log, const char *sq)
{
    sh_val *a = item_args(sq, "BOTF", 0);
    tf_put_str(a, "log", log);
    assert_int_equal(tf_call(c, "reserve.release", a, 5000, NULL, NULL), SH_OK);
}

static void assert_after(block earlier, block later)
{
    if (later.start < earlier.start + earlier.count)
        fail_msg("rows %lld..%lld overlap rows %lld..%lld handed out before",
                 (long long)later.start, (long long)(later.start + later.count - 1),
                 (long long)earlier.start, (long long)(earlier.start + earlier.count - 1));
}

/* A counter lost (eviction, a crash losing its last writes, a replica
 * promoted without them) never hands out a row again: the log's high-water
 * mark, and failing that its live reservations, put a floor under it. */
static void test_lost_row_counter_never_reissues_rows(void **state)
{
    sh_rpc_client *c = tf_client(urls);
    const char *del_counter[] = {"DEL", "refund:rows:lostlog", NULL};
    const char *del_all[] = {"DEL", "refund:rows:lostlog", "refund:rowsmax:lostlog", NULL};
    block a = reserve_block(c, "lostlog", "lost-a", 10);
    assert_int_equal(a.start, 1);
    /* Counter gone while a's reservation is live. */
    assert_int_equal(redis_do(del_counter), 1);
    block b = reserve_block(c, "lostlog", "lost-b", 5);
    assert_after(a, b);
    /* Counter gone after b's reservation was released: nothing live
     * remembers b's rows but the high-water mark. */
    release_block(c, "lostlog", "lost-b");
    assert_int_equal(redis_do(del_counter), 1);
    block d = reserve_block(c, "lostlog", "lost-d", 7);
    assert_after(b, d);
    /* Counter and high-water mark both gone: the live reservations
     * (a and d) still hold the floor. */
    assert_int_equal(redis_do(del_all), 2);
    block e = reserve_block(c, "lostlog", "lost-e", 3);
    assert_after(a, e);
    assert_after(d, e);
    /* Without losses, blocks still follow each other without gaps. */
    block f = reserve_block(c, "lostlog", "lost-f", 4);
    assert_int_equal(f.start, e.start + e.count);
    sh_rpc_client_free(c);
}

/* Shared by the lossy race: the deleter runs until told to stop. */
static volatile int deleter_stop;
static int deletions;

static void *deleter_main(void *p)
{
    (void)p;
    sh_store *s = tf_redis_store(&redis);
    sh_error err;
    while (s && !deleter_stop) {
        sh_cmd *c = sh_cmd_new("DEL");
        sh_cmd_str(c, "refund:rows:lossylog");
        sh_reply *r = NULL;
        if (sh_store_run(s, c, &r, &err) == SH_OK && sh_reply_integer(r) == 1)
            deletions++;
        sh_reply_free(r);
        sh_cmd_free(c);
        tf_sleep_ms(1);
    }
    sh_store_free(s);
    return NULL;
}

/* Twelve bots reserving at once (500 blocks each) while the counter keeps
 * vanishing: still disjoint, and (the high-water mark standing in for it)
 * still without gaps. */
#define LOSSY_BOTS 12
static void test_reservations_disjoint_while_counter_vanishes(void **state)
{
    static reserver r[LOSSY_BOTS];
    pthread_t d;
    deleter_stop = 0;
    deletions = 0;
    pthread_create(&d, NULL, deleter_main, NULL);
    race_reservers(r, LOSSY_BOTS, 100, "lossylog");
    deleter_stop = 1;
    pthread_join(d, NULL);
    if (deletions < 10)
        fail_msg("the counter was deleted only %d times during the race", deletions);
}

/* spawn_coord starts one more coordinator with the given first row. */
static pid_t spawn_coord(const char *first_row, const char *logname, char *url, size_t urllen)
{
    char logpath[400], setting[64];
    snprintf(url, urllen, "tcp://127.0.0.1:%d", tf_free_port());
    snprintf(logpath, sizeof logpath, "%s/%s", logdir, logname);
    snprintf(setting, sizeof setting, "RESERVE_FIRST_ROW=%s", first_row);
    const char *env[] = {setting, NULL};
    tf_service svc = {.name = "coordinator",
                      .redis_url = redis.url,
                      .rpc_url = url,
                      .env = env,
                      .log_path = logpath};
    return tf_service_spawn(&svc);
}

static bool file_has(const char *path, const char *what)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[2048];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, what) != NULL;
    fclose(f);
    return found;
}

/* A lowered RESERVE_FIRST_ROW would hand out a log's first rows again:
 * start-up refuses it, naming the log and its first row. A raised one is
 * accepted, and a replica still running with the lower one continues from
 * the log's high-water mark. */
static void test_lowered_first_row_refused(void **state)
{
    char url[64], path[400];
    /* lostlog, racelog and lossylog began at row 1. */
    pid_t p = spawn_coord("0", "coordinator-low.log", url, sizeof url);
    assert_true(p > 0);
    int st = tf_stop(p, 0, 15000);
    snprintf(path, sizeof path, "%s/coordinator-low.log", logdir);
    assert_true(st > 0 && st < 128); /* exited by itself, refusing */
    assert_true(file_has(path, "RESERVE_FIRST_ROW (0) is below row 1, the first row of log"));
    assert_true(file_has(path, "lostlog") || file_has(path, "racelog") ||
                file_has(path, "lossylog"));

    /* A higher first row starts; its new log begins there. */
    p = spawn_coord("1000", "coordinator-high.log", url, sizeof url);
    assert_true(p > 0);
    sh_rpc_client *hc = tf_client(url);
    assert_int_equal(tf_wait_ping(hc, 1), 0);
    block h = reserve_block(hc, "highlog", "high-a", 5);
    assert_int_equal(h.start, 1000);
    sh_rpc_client_free(hc);
    assert_int_equal(tf_stop(p, SIGTERM, 10000), 0);
    /* The replicas at first row 1 continue after it, not at row 1. */
    sh_rpc_client *c = tf_client(urls);
    block l = reserve_block(c, "highlog", "high-b", 5);
    assert_int_equal(l.start, 1005);
    sh_rpc_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_race_never_two_holders),
        cmocka_unit_test(test_reservations_disjoint_without_gaps),
        cmocka_unit_test(test_expiry_hands_over_with_higher_token),
        cmocka_unit_test(test_listing_sweeps_expired),
        cmocka_unit_test(test_bad_input_changes_nothing),
        cmocka_unit_test(test_lost_row_counter_never_reissues_rows),
        cmocka_unit_test(test_reservations_disjoint_while_counter_vanishes),
        cmocka_unit_test(test_lowered_first_row_refused),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
