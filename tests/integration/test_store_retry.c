/* test_store_retry.c - what the store sends again and what it does not,
 * against private redis-servers: a write whose reply is lost in a stall
 * (DEBUG SLEEP past the command timeout) runs once and answers
 * SH_EUNKNOWN; a read and a retry-safe script are sent again and answer; an
 * idle link whose server restarted is re-made before sending, without an
 * error; READONLY drops the link; a two-host URL follows a failover. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "shared/store.h"
#include "shared/util.h"

/* DEBUG SLEEP, and replicas served at once (not after the default 5 s). */
static const char *const debug_args[] = {"--enable-debug-command", "local",
                                         "--repl-diskless-sync-delay", "0", NULL};

static tf_redis redis;
static tf_redis other; /* a second server, stopped by teardown whatever happens */

static sh_script script_safe_read =
    SH_SCRIPT_RETRY_SAFE("safe_read", "return redis.call('GET', KEYS[1])");
static sh_script script_push = SH_SCRIPT("push", "return redis.call('RPUSH', KEYS[1], ARGV[1])");

static int setup(void **state)
{
    (void)state;
    return tf_redis_start_args(&redis, 0, debug_args, NULL, NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tf_redis_stop(&other);
    tf_redis_stop(&redis);
    return 0;
}

/* store_on opens a store on url with a 2 s command timeout. */
static sh_store *store_on(const char *url)
{
    sh_redis_url u;
    sh_error err;
    sh_store *s = NULL;
    sh_store_opts o = {.connect_timeout_ms = 1000, .command_timeout_ms = 2000};
    assert_int_equal(sh_redis_url_parse(url, &u, &err), SH_OK);
    assert_int_equal(sh_store_new(&u, &o, &s, &err), SH_OK);
    return s;
}

static sh_cmd *cmd_1(const char *name, const char *a)
{
    sh_cmd *c = sh_cmd_new(name);
    sh_cmd_str(c, a);
    return c;
}

/* run_ll runs c on s (freeing it) and returns its integer or string value
 * as a number (-1 for none). */
static long long run_ll(sh_store *s, sh_cmd *c)
{
    sh_reply *r = NULL;
    sh_error err;
    int rc = sh_store_call(s, c, &r, &err);
    if (rc)
        fail_msg("%s", err.msg);
    long long v = sh_reply_kind(r) == SH_REPLY_INTEGER ? sh_reply_integer(r)
                  : sh_reply_kind(r) == SH_REPLY_NIL   ? -1
                                                       : sh_reply_ll(r, NULL);
    sh_reply_free(r);
    return v;
}

typedef struct stall {
    int port;
    pthread_t thread;
} stall;

/* stall_thread has the server sleep 3 s, over a link of its own. */
static void *stall_thread(void *arg)
{
    stall *st = arg;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "redis-cli -p %d DEBUG SLEEP 3 >/dev/null 2>&1", st->port);
    if (system(cmd) != 0)
        fprintf(stderr, "DEBUG SLEEP failed\n");
    return NULL;
}

/* stall_start puts the server in a 3 s stall and returns once it began. */
static void stall_start(stall *st, int port)
{
    st->port = port;
    assert_int_equal(pthread_create(&st->thread, NULL, stall_thread, st), 0);
    tf_sleep_ms(300);
}

static void stall_end(stall *st)
{
    pthread_join(st->thread, NULL);
}

/* A write whose reply does not come within the timeout is not sent again:
 * it answers SH_EUNKNOWN, and Redis runs it once. */
static void test_write_in_a_stall_runs_once(void **state)
{
    (void)state;
    sh_store *s = store_on(redis.url);
    assert_int_equal(run_ll(s, cmd_1("DEL", "w")), 0);
    stall st;
    stall_start(&st, redis.port);
    sh_reply *r = NULL;
    sh_error err;
    int64_t t0 = sh_mono_ms();
    assert_int_equal(sh_store_call(s, cmd_1("INCR", "w"), &r, &err), SH_EUNKNOWN);
    assert_null(r);
    assert_non_null(strstr(err.msg, "outcome unknown"));
    assert_non_null(strstr(err.msg, "same request id"));
    assert_true(sh_mono_ms() - t0 < 2900); /* one timeout, no second one */
    /* A script that is not retry-safe is not sent again either (loaded
     * first: a SCRIPT LOAD lost in the stall is sent again, as nothing of
     * the caller's went out yet). */
    stall_end(&st);
    sh_cmd *ev = sh_cmd_new_eval(&script_push, 1);
    sh_cmd_str(ev, "l0");
    sh_cmd_str(ev, "x");
    assert_int_equal(run_ll(s, ev), 1);
    stall_start(&st, redis.port);
    ev = sh_cmd_new_eval(&script_push, 1);
    sh_cmd_str(ev, "l");
    sh_cmd_str(ev, "x");
    assert_int_equal(sh_store_call(s, ev, &r, &err), SH_EUNKNOWN);
    stall_end(&st);
    tf_sleep_ms(200);
    assert_int_equal(run_ll(s, cmd_1("GET", "w")), 1);
    assert_int_equal(run_ll(s, cmd_1("LLEN", "l")), 1);
    sh_store_free(s);
}

/* A read, and a script declared retry-safe, are sent again on a new link
 * and answer once the stall is over. */
static void test_read_in_a_stall_is_resent(void **state)
{
    (void)state;
    sh_store *s = store_on(redis.url);
    sh_cmd *set = cmd_1("SET", "rk");
    sh_cmd_str(set, "41");
    sh_reply *r = NULL;
    sh_error err;
    assert_int_equal(sh_store_call(s, set, &r, &err), SH_OK);
    sh_reply_free(r);
    stall st;
    stall_start(&st, redis.port);
    assert_int_equal(run_ll(s, cmd_1("GET", "rk")), 41);
    stall_end(&st);
    stall_start(&st, redis.port);
    sh_cmd *ev = sh_cmd_new_eval(&script_safe_read, 1);
    sh_cmd_str(ev, "rk");
    assert_int_equal(run_ll(s, ev), 41);
    stall_end(&st);
    sh_store_free(s);
}

/* The server restarts while the link is idle: the next write goes out on a
 * new link, once, with no error. */
static void test_idle_link_after_restart(void **state)
{
    (void)state;
    sh_store *s = store_on(redis.url);
    assert_int_equal(run_ll(s, cmd_1("INCR", "idle")), 1);
    int port = redis.port;
    tf_redis_kill(&redis);
    assert_int_equal(tf_redis_start_args(&redis, port, debug_args, NULL, NULL), 0);
    assert_true(sh_store_connected(s)); /* it has not noticed yet */
    assert_int_equal(run_ll(s, cmd_1("INCR", "idle")), 1);
    assert_int_equal(run_ll(s, cmd_1("INCR", "idle")), 2);
    sh_store_free(s);
}

static void redis_cli(int port, const char *args)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "redis-cli -p %d %s >/dev/null", port, args);
    assert_int_equal(system(cmd), 0);
}

/* READONLY: the command did not run; the link is dropped (tried once more
 * on a new one), and the error is the answer while the server stays a
 * replica. Once it is a master again, writes succeed. */
static void test_readonly_drops_the_link(void **state)
{
    (void)state;
    assert_int_equal(tf_redis_start_args(&other, 0, debug_args, NULL, NULL), 0);
    sh_store *s = store_on(redis.url);
    assert_int_equal(run_ll(s, cmd_1("INCR", "ro")), 1);
    char arg[64];
    snprintf(arg, sizeof arg, "REPLICAOF 127.0.0.1 %d", other.port);
    redis_cli(redis.port, arg);
    sh_reply *r = NULL;
    sh_error err;
    assert_int_equal(sh_store_call(s, cmd_1("INCR", "ro"), &r, &err), SH_EUNAVAIL);
    assert_non_null(strstr(err.msg, "READONLY"));
    assert_false(sh_store_connected(s));
    redis_cli(redis.port, "REPLICAOF NO ONE");
    assert_int_equal(run_ll(s, cmd_1("INCR", "ro2")), 1);
    assert_true(sh_store_connected(s));
    sh_store_free(s);
    tf_redis_stop(&other);
    memset(&other, 0, sizeof other);
}

/* Two hosts, a primary and its replica: the store uses the master, skips
 * the replica listed first, and follows a failover without losing the
 * write that met the demoted primary. */
static void test_two_hosts_follow_a_failover(void **state)
{
    (void)state;
    tf_redis *b = &other;
    assert_int_equal(tf_redis_start_args(b, 0, debug_args, NULL, NULL), 0);
    char arg[64];
    snprintf(arg, sizeof arg, "REPLICAOF 127.0.0.1 %d", redis.port);
    redis_cli(b->port, arg);
    char url[128];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d,127.0.0.1:%d", b->port, redis.port);
    sh_store *s = store_on(url);
    assert_int_equal(run_ll(s, cmd_1("DEL", "fo")), 0);
    assert_int_equal(run_ll(s, cmd_1("INCR", "fo")), 1);
    /* It landed on the master (redis), and reached the replica. */
    sh_store *direct = store_on(redis.url);
    assert_int_equal(run_ll(direct, cmd_1("GET", "fo")), 1);
    sh_store_free(direct);
    int synced = 0;
    for (int i = 0; i < 250 && !synced; i++) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "redis-cli -p %d GET fo | grep -qx 1", b->port);
        synced = system(cmd) == 0;
        if (!synced)
            tf_sleep_ms(20);
    }
    assert_true(synced);
    /* Failover: b promoted, redis demoted to b's replica. */
    redis_cli(b->port, "REPLICAOF NO ONE");
    snprintf(arg, sizeof arg, "REPLICAOF 127.0.0.1 %d", b->port);
    redis_cli(redis.port, arg);
    /* The write meets READONLY on the old primary, and is sent to b. */
    assert_int_equal(run_ll(s, cmd_1("INCR", "fo")), 2);
    direct = store_on(b->url);
    assert_int_equal(run_ll(direct, cmd_1("GET", "fo")), 2);
    sh_store_free(direct);
    sh_store_free(s);
    /* Put redis back as a master for any later test. */
    redis_cli(redis.port, "REPLICAOF NO ONE");
    tf_redis_stop(b);
    memset(b, 0, sizeof *b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_in_a_stall_runs_once),
        cmocka_unit_test(test_read_in_a_stall_is_resent),
        cmocka_unit_test(test_idle_link_after_restart),
        cmocka_unit_test(test_readonly_drops_the_link),
        cmocka_unit_test(test_two_hosts_follow_a_failover),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
