/* test_sync_tls.c - the sync-worker against a private Dovecot with a
 * throwaway CA: implicit TLS and STARTTLS accounts sync when IMAP_CA_FILE
 * names the CA, end in error naming the certificate problem with the
 * system store, and sync without the CA when the account sets tlsVerify
 * false. */
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

#define NMSG 5
#define KEY  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static tf_redis redis;
static tf_dovecot dove;
static pid_t progress_pid, coord_pid, worker_pid;
static char e_redis[160], p_rpc[96], c_rpc[96], c_ev[96], w_rpc[96], w_ev[96];

static sh_rpc_client *coord, *worker, *progress;
static sh_store *store;

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

/* start_worker starts the sync-worker, with IMAP_CA_FILE set to the test
 * CA when with_ca. */
static int start_worker(bool with_ca)
{
    char ca[400];
    snprintf(ca, sizeof ca, "IMAP_CA_FILE=%s", with_ca ? dove.ca_file : "");
    const char *wenv[] = {
        e_redis, p_rpc, c_rpc, c_ev, w_rpc, w_ev, "ENCRYPTION_KEY=" KEY, "SYNC_CONCURRENCY=2",
        ca,      NULL};
    worker_pid =
        spawn("services/sync-worker/sync-worker", with_ca ? "sync-worker-ca" : "sync-worker", wenv);
    return worker_pid > 0 ? 0 : -1;
}

static char coord_url[64], worker_url[64], progress_url[64];
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
    char p_ev[96];
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
    progress_pid = spawn("services/progress/progress", "progress", penv);
    coord_pid = spawn("services/coordinator/coordinator", "coordinator", cenv);
    start_worker(true);
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
             "mkdir -p test_sync_tls.logs && cp %s/*.log %s/dovecot.log "
             "test_sync_tls.logs/ 2>/dev/null",
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
static void create_account(const char *security, bool verify, char *id, size_t len)
{
    sh_val *a = sh_val_new_map(), *res = NULL;
    const char *password = "secret";
    put_s(a, "emailAddress", "test@example.com");
    put_s(a, "imapHost", "127.0.0.1");
    sh_val_set_cstr(a, "imapPort",
                    sh_val_new_int(strcmp(security, "tls") == 0 ? dove.tls_port : dove.port));
    put_s(a, "security", security);
    sh_val_set_cstr(a, "tlsVerify", sh_val_new_bool(verify));
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

static long long stored_count(const char *id)
{
    sh_val *a = sh_val_new_map(), *res = NULL;
    put_s(a, "accountId", id);
    sh_val_set_cstr(a, "limit", sh_val_new_int(100));
    assert_int_equal(call(worker, "messages.list", a, &res), SH_OK);
    long long n = (long long)sh_val_len(sh_val_get(res, "messages"));
    sh_val_free(res);
    return n;
}

static void error_message(const char *id, char *buf, size_t len)
{
    sh_val *res = NULL;
    assert_int_equal(call(coord, "account.get", id_args(id), &res), SH_OK);
    const char *em = sh_val_get_str(res, "errorMessage", NULL);
    snprintf(buf, len, "%s", em ? em : "");
    sh_val_free(res);
}

/* With IMAP_CA_FILE naming the test CA, implicit TLS and STARTTLS work. */
static void test_tls_with_ca(void **state)
{
    const char *modes[] = {"tls", "starttls"};
    for (size_t i = 0; i < 2; i++) {
        char id[160], pid[128];
        create_account(modes[i], true, id, sizeof id);
        sync_and_wait(id, "ok", pid, sizeof pid);
        assert_int_equal(stored_count(id), NMSG);
    }
}

/* Without it (the system store) the certificate is refused, naming the
 * problem, unless the account opts out with tlsVerify false. */
static void test_tls_without_ca(void **state)
{
    assert_int_equal(tf_stop(worker_pid, SIGTERM, 15000), 0);
    worker_pid = 0;
    assert_int_equal(start_worker(false), 0);
    assert_int_equal(wait_ping(worker), 0);
    const char *modes[] = {"tls", "starttls"};
    for (size_t i = 0; i < 2; i++) {
        char id[160], pid[128], msg[600];
        create_account(modes[i], true, id, sizeof id);
        sync_and_wait(id, "error", pid, sizeof pid);
        error_message(id, msg, sizeof msg);
        fprintf(stderr, "%s without the CA: %s\n", modes[i], msg);
        assert_non_null(strstr(msg, "certificate"));
        assert_non_null(strstr(msg, "not trusted"));
        assert_int_equal(stored_count(id), 0);

        create_account(modes[i], false, id, sizeof id);
        sync_and_wait(id, "ok", pid, sizeof pid);
        assert_int_equal(stored_count(id), NMSG);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_with_ca),
        cmocka_unit_test(test_tls_without_ca),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
