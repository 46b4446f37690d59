/* test_service.c - the common life of a service process (service.c): bad
 * settings named at start-up, start and stop hooks, a service whose Redis is
 * down serving anyway (its "ping" says so), the orderly stop on SIGTERM, the
 * stop watchdog, and one-shot commands. Each service runs in a child
 * process: this executable started again with TS_CHILD naming what to run,
 * its log read back from a file. Redis is never up here: the ping that
 * succeeds is exercised by the tests of every service. */
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
#include <unistd.h>

#include "fixture.h"
#include "ipc_dir.h"
#include "shared/log.h"
#include "shared/rpc.h"
#include "shared/service.h"
#include "shared/util.h"

/* ---- the child: a small service ------------------------------------------------- */

static const char *ts_greeting;

static const sh_setting ts_settings[] = {
    {"TS_GREETING", NULL, SH_SET_STR, "hello", 1, 32, &ts_greeting, false, "a greeting"},
    {NULL, NULL, 0, NULL, 0, 0, NULL, false, NULL},
};

static int ts_validate(sh_error *err)
{
    if (strcmp(ts_greeting, "refuse") == 0)
        return sh_error_set(err, SH_EINVAL, "TS_GREETING may not be \"refuse\"");
    return SH_OK;
}

static int ts_start(const sh_redis_url *url, sh_pub *pub, sh_error *err)
{
    if (strcmp(ts_greeting, "nostart") == 0)
        return sh_error_set(err, SH_EUNAVAIL, "background work cannot start");
    sh_log_info("ts_start", "greeting %s", ts_greeting);
    return SH_OK;
}

static void ts_stop(void)
{
    sh_log_info("ts_stop", "background work stopped");
}

static const sh_rpc_op ts_ops[] = {
    {"ping", sh_service_ping, NULL, NULL},
    {NULL, NULL, NULL, NULL},
};

static const sh_service_def ts_def = {
    .name = "testsvc",
    .settings = ts_settings,
    .rpc_var = "TS_RPC_URL",
    .rpc_default = "ipc:///nonexistent/rpc",
    .events_var = "TS_EVENTS_URL",
    .events_default = "ipc:///nonexistent/events",
    .ops = ts_ops,
    .validate = ts_validate,
    .start = ts_start,
    .stop = ts_stop,
};

static int ts_command_fn(sh_store *store, const void *env, sh_error *err)
{
    sh_log_info("ts_command_ran", "the command ran");
    return SH_OK;
}

/* child_main runs what TS_CHILD names and returns the exit status. */
static int child_main(const char *what)
{
    if (strcmp(what, "service") == 0)
        return sh_service_main(&ts_def);
    if (strcmp(what, "command") == 0)
        return sh_service_command(&ts_def, "ts_command", ts_command_fn);
    if (strcmp(what, "watchdog") == 0) {
        sh_log_init("testsvc", SH_LOG_INFO);
        sh_service_watchdog(150);
        tf_sleep_ms(10000); /* a stop that hangs */
        return 3;
    }
    return 2;
}

/* ---- the parent ------------------------------------------------------------------- */

static char rpc_url[160], ev_url[160], redis_down[64], logpath[200];
static char self[512];

static int group_setup(void **state)
{
    (void)state;
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0 || tf_ipc_dir_make("test_service") != 0)
        return -1;
    self[n] = '\0';
    tf_ipc_url(rpc_url, sizeof rpc_url, "rpc");
    tf_ipc_url(ev_url, sizeof ev_url, "events");
    /* A port nothing listens on: Redis is down. */
    snprintf(redis_down, sizeof redis_down, "redis://127.0.0.1:%d", tf_free_port());
    snprintf(logpath, sizeof logpath, "%s", rpc_url + strlen("ipc://"));
    strcpy(strrchr(logpath, '/') + 1, "child.log");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    sh_rpc_fini();
    return tf_ipc_dir_remove();
}

/* spawn starts this executable as child `what` with env (NULL-terminated,
 * added to the common settings below). */
static pid_t spawn(const char *what, const char *const *extra)
{
    static char e_child[64], e_redis[128], e_rpc[200], e_ev[200];
    snprintf(e_child, sizeof e_child, "TS_CHILD=%s", what);
    snprintf(e_redis, sizeof e_redis, "REDIS_URL=%s", redis_down);
    snprintf(e_rpc, sizeof e_rpc, "TS_RPC_URL=%s", rpc_url);
    snprintf(e_ev, sizeof e_ev, "TS_EVENTS_URL=%s", ev_url);
    const char *env[16] = {e_child, e_redis, e_rpc, e_ev, "RPC_WORKERS=2"};
    size_t n = 5;
    for (; extra && *extra && n < 15; extra++)
        env[n++] = *extra;
    env[n] = NULL;
    pid_t pid = tf_spawn(self, env, logpath);
    assert_true(pid > 0);
    return pid;
}

/* child_log returns the child's log (the caller frees). */
static char *child_log(void)
{
    FILE *f = fopen(logpath, "r");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

static void expect_in_log(const char *log, const char *what)
{
    if (!strstr(log, what))
        fail_msg("\"%s\" not in the log:\n%s", what, log);
}

/* run_to_exit runs child `what` with extra settings and returns its exit
 * status, which must come within 5 s. */
static int run_to_exit(const char *what, const char *const *extra)
{
    pid_t pid = spawn(what, extra);
    int st = tf_stop(pid, 0, 5000);
    assert_int_not_equal(st, -1);
    return st;
}

static void test_bad_settings_are_named_and_exit_1(void **state)
{
    (void)state;
    struct {
        const char *setting, *named;
    } bad[] = {
        {"LOG_LEVEL=loud", "LOG_LEVEL must be debug, info, warn or error, got \\\"loud\\\""},
        {"RPC_WORKERS=0", "RPC_WORKERS"},
        {"RPC_MAX_MSG=12", "RPC_MAX_MSG"},
        {"RPC_BATCH_MAX_CALLS=5000", "RPC_BATCH_MAX_CALLS"},
        {"TS_GREETING=refuse", "TS_GREETING may not be \\\"refuse\\\""},
        {"REDIS_URL=http://127.0.0.1:6379", "REDIS_URL"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *extra[] = {bad[i].setting, NULL};
        int st = run_to_exit("service", extra);
        char *log = child_log();
        if (st != 1)
            fail_msg("%s: exit %d\n%s", bad[i].setting, st, log);
        expect_in_log(log, "event=config");
        expect_in_log(log, bad[i].named);
        /* Nothing started. */
        assert_null(strstr(log, "event=started"));
        assert_null(strstr(log, "event=ts_start"));
        free(log);
    }
}

static void test_runs_with_redis_down_and_stops_on_sigterm(void **state)
{
    (void)state;
    const char *extra[] = {"TS_GREETING=bonjour", NULL};
    pid_t pid = spawn("service", extra);
    sh_rpc_client *c = NULL;
    sh_error err;
    assert_int_equal(sh_rpc_client_new(rpc_url, 2000, 0, &c, &err), SH_OK);
    /* Serving anyway: ping answers, with Redis's absence. */
    sh_val *res = NULL;
    int rc = SH_ETIMEDOUT;
    for (int i = 0; i < 50 && rc == SH_ETIMEDOUT; i++)
        rc = sh_rpc_call(c, "ping", NULL, 200, &res, &err);
    assert_int_equal(rc, SH_EUNAVAIL);
    assert_null(res);
    assert_true(strlen(err.msg) > 0);
    /* An operation it does not have. */
    assert_int_equal(sh_rpc_call(c, "nope", NULL, 2000, &res, &err), SH_ENOOP);
    sh_rpc_client_free(c);

    int64_t t0 = sh_mono_ms();
    int st = tf_stop(pid, SIGTERM, 5000);
    assert_int_equal(st, 0);
    assert_true(sh_mono_ms() - t0 < SH_STOP_GRACE_MS);
    char *log = child_log();
    expect_in_log(log, "service=testsvc event=config");
    expect_in_log(log, "TS_GREETING");
    expect_in_log(log, "event=redis_down");
    expect_in_log(log, "serving anyway");
    expect_in_log(log, "event=ts_start msg=\"greeting bonjour\"");
    expect_in_log(log, "event=stopping");
    expect_in_log(log, "event=stopped msg=\"exit 0\"");
    /* In order: started, the hook, the signal, the stop hook, stopped. */
    const char *order[] = {"event=started", "event=ts_start", "event=stopping", "event=ts_stop",
                           "event=stopped"};
    const char *at = log;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const char *p = strstr(at, order[i]);
        if (!p)
            fail_msg("%s missing or out of order:\n%s", order[i], log);
        at = p;
    }
    free(log);
}

static void test_start_failures_exit_1(void **state)
{
    (void)state;
    /* The start hook fails: no stop hook, the rest torn down. */
    const char *nostart[] = {"TS_GREETING=nostart", NULL};
    assert_int_equal(run_to_exit("service", nostart), 1);
    char *log = child_log();
    expect_in_log(log, "event=start msg=\"background work cannot start\"");
    assert_null(strstr(log, "event=ts_stop"));
    expect_in_log(log, "event=stopped msg=\"exit 1\"");
    free(log);
    /* The RPC URL cannot be listened on. */
    const char *badrpc[] = {"TS_RPC_URL=nope://x", NULL};
    assert_int_equal(run_to_exit("service", badrpc), 1);
    log = child_log();
    expect_in_log(log, "event=start msg=\"rpc: cannot listen on nope://x");
    assert_null(strstr(log, "event=ts_start"));
    free(log);
    /* Nor the events URL. */
    const char *badev[] = {"TS_EVENTS_URL=nope://y", NULL};
    assert_int_equal(run_to_exit("service", badev), 1);
    log = child_log();
    expect_in_log(log, "event=start msg=\"events: cannot listen on nope://y");
    free(log);
}

static void test_watchdog_ends_a_stuck_stop(void **state)
{
    (void)state;
    int64_t t0 = sh_mono_ms();
    assert_int_equal(run_to_exit("watchdog", NULL), 0);
    int64_t dt = sh_mono_ms() - t0;
    assert_true(dt >= 150 && dt < 3000);
    char *log = child_log();
    expect_in_log(log, "level=error service=testsvc event=stop_stuck msg=\"still stopping 150 ms "
                       "after the stop signal; exiting now\"");
    free(log);
}

static void test_command_fails_without_redis(void **state)
{
    (void)state;
    assert_int_equal(run_to_exit("command", NULL), 1);
    char *log = child_log();
    expect_in_log(log, "level=error service=testsvc event=ts_command");
    assert_null(strstr(log, "ts_command_ran")); /* never reached */
    free(log);
    /* Its settings are checked as the service's. */
    const char *bad[] = {"LOG_LEVEL=loud", NULL};
    assert_int_equal(run_to_exit("command", bad), 1);
    log = child_log();
    expect_in_log(log, "LOG_LEVEL must be");
    free(log);
}

int main(void)
{
    const char *child = getenv("TS_CHILD");
    if (child)
        return child_main(child);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_settings_are_named_and_exit_1),
        cmocka_unit_test(test_runs_with_redis_down_and_stops_on_sigterm),
        cmocka_unit_test(test_start_failures_exit_1),
        cmocka_unit_test(test_watchdog_ends_a_stuck_stop),
        cmocka_unit_test(test_command_fails_without_redis),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
