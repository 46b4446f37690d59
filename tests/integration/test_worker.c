/* test_worker.c - worker.c driven directly (sync_workers_start, _kick,
 * _stop) against a private Redis and real progress and coordinator
 * processes: a lease run to its end, idle threads woken by the
 * coordinator's sync:queued rather than their idle poll, the mail of a
 * deleted account dropped, a kick queuing a sync, a start that cannot
 * complete, a prompt stop, and keys whose ids collide refused at
 * start-up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "calls.h"
#include "hosts.h"
#include "mail_fixture.h"
#include "shared/util.h"
#include "sync_stack.h"
#include "worker.h"

#define ST (tf_mail_the()->st)

static pid_t progress_pid, coord_pid;
static char coord_url[64], coord_events_url[64], progress_url[64];
static sh_rpc_client *coord;
static sh_key key;
static sync_env env;
static sh_redis_url redis_url;

static void free_url(char *url, size_t len)
{
    snprintf(url, len, "tcp://127.0.0.1:%d", tf_free_port());
}

static int setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    sh_error err;
    if (tf_mail_setup(state) || sh_redis_url_parse(tf_mail_the()->redis.url, &redis_url, &err) ||
        sh_key_parse(TF_STACK_KEY, "key", &key, &err))
        return -1;
    char e_redis[160], c_rpc[96], c_ev[96], p_rpc[96], p_ev[96], log[400];
    free_url(coord_url, sizeof coord_url);
    free_url(coord_events_url, sizeof coord_events_url);
    free_url(progress_url, sizeof progress_url);
    snprintf(e_redis, sizeof e_redis, "REDIS_URL=%s", tf_mail_the()->redis.url);
    snprintf(c_rpc, sizeof c_rpc, "COORDINATOR_RPC_URL=%s", coord_url);
    snprintf(c_ev, sizeof c_ev, "COORDINATOR_EVENTS_URL=%s", coord_events_url);
    snprintf(p_rpc, sizeof p_rpc, "PROGRESS_RPC_URL=%s", progress_url);
    snprintf(p_ev, sizeof p_ev, "PROGRESS_EVENTS_URL=tcp://127.0.0.1:%d", tf_free_port());
    const char *cenv[] = {e_redis,
                          c_rpc,
                          c_ev,
                          "ENCRYPTION_KEY=" TF_STACK_KEY,
                          "SCHED_AUTO_TICK=false",
                          TF_ALLOW_LOOPBACK,
                          TF_ALLOW_INSECURE,
                          NULL};
    const char *penv[] = {e_redis, p_rpc, p_ev, NULL};
    snprintf(log, sizeof log, "%s/coordinator.log", tf_mail_the()->redis.dir);
    coord_pid = tf_spawn(tf_build_path("services/coordinator/coordinator"), cenv, log);
    snprintf(log, sizeof log, "%s/progress.log", tf_mail_the()->redis.dir);
    progress_pid = tf_spawn(tf_build_path("services/progress/progress"), penv, log);
    sh_rpc_client *progress = NULL;
    int rc = coord_pid > 0 && progress_pid > 0 &&
                     !sh_rpc_client_new(coord_url, 10000, 0, &coord, &err) &&
                     !sh_rpc_client_new(progress_url, 10000, 0, &progress, &err) &&
                     !tf_stack_wait_ping(coord) && !tf_stack_wait_ping(progress)
                 ? 0
                 : -1;
    sh_rpc_client_free(progress);
    if (rc)
        fprintf(stderr, "the coordinator or progress did not start; logs in %s\n",
                tf_mail_the()->redis.dir);
    env.keys[0] = &key;
    env.nkeys = 1;
    env.coordinator_rpc = coord_url;
    env.coordinator_events = coord_events_url;
    env.progress_rpc = progress_url;
    env.connect_timeout_s = 2;
    env.command_timeout_s = 2;
    env.hosts = tf_loopback_hosts();
    env.allow_insecure = true;
    env.fetch_batch = 100;
    env.fetch_budget = 1000;
    env.renew_s = 30;
    return rc;
}

static int teardown(void **state)
{
    sh_rpc_client_free(coord);
    int bad = 0;
    if (coord_pid > 0 && tf_stop(coord_pid, SIGTERM, 10000) != 0)
        bad = 1;
    if (progress_pid > 0 && tf_stop(progress_pid, SIGTERM, 10000) != 0)
        bad = 1;
    tf_mail_teardown(state);
    return bad ? -1 : 0;
}

/* start runs the workers with n sync threads. */
static void start(int n)
{
    env.concurrency = n;
    sh_error err;
    assert_int_equal(sync_workers_start(&redis_url, NULL, &env, &err), SH_OK);
}

/* create_on makes an account on IMAP port port; its id goes to id. */
static void create_on(int port, char *id, size_t len)
{
    sh_val *a = sh_val_new_map(), *res = NULL;
    sh_val_set_cstr(a, "emailAddress", sh_val_new_cstr("w@example.com"));
    sh_val_set_cstr(a, "imapHost", sh_val_new_cstr("127.0.0.1"));
    sh_val_set_cstr(a, "imapPort", sh_val_new_int(port));
    sh_val_set_cstr(a, "security", sh_val_new_cstr("none"));
    sh_val_set_cstr(a, "username", sh_val_new_cstr("w"));
    sh_val_set_cstr(a, "password", sh_val_new_cstr("secret"));
    assert_int_equal(tf_call(coord, "account.create", a, 5000, &res, NULL), SH_OK);
    snprintf(id, len, "%s", sh_val_get_str(res, "id", NULL));
    sh_val_free(res);
}

/* create makes an account on an IMAP port nothing listens on (a run fails
 * at once); its id goes to id. */
static void create(char *id, size_t len)
{
    create_on(tf_free_port(), id, len);
}

/* status copies the account's syncStatus (and errorMessage into msg),
 * through the stack's helper: only its coordinator client is used. */
static void status(const char *id, char *st, size_t len, char *msg, size_t mlen)
{
    tf_stack s = {.coord = coord};
    tf_stack_account_status(&s, id, st, len, msg, mlen);
}

static void sync_now(const char *id)
{
    tf_stack s = {.coord = coord};
    tf_stack_sync_now(&s, id, NULL, 0);
}

/* wait_leased waits until the account is no longer queued and returns how
 * long that took (ms), or -1 after 5 s. */
static long long wait_leased(const char *id)
{
    int64_t t0 = sh_mono_ms();
    char st[32];
    while (sh_mono_ms() - t0 < 5000) {
        status(id, st, sizeof st, NULL, 0);
        if (strcmp(st, "queued") != 0)
            return sh_mono_ms() - t0;
        tf_sleep_ms(5);
    }
    return -1;
}

/* wait_status waits up to 5 s for the account's status to be want. */
static void wait_status(const char *id, const char *want, char *msg, size_t mlen)
{
    char st[32] = "";
    for (int i = 0; i < 500; i++) {
        status(id, st, sizeof st, msg, mlen);
        if (strcmp(st, want) == 0)
            return;
        tf_sleep_ms(10);
    }
    assert_string_equal(st, want);
}

/* A leased account is synced and its lease completed with the run's
 * outcome and message. */
static void test_lease_run_completes(void **state)
{
    (void)state;
    char id[64], msg[512];
    create(id, sizeof id);
    start(1);
    sync_now(id);
    wait_status(id, "error", msg, sizeof msg);
    assert_non_null(strstr(msg, "connect"));
    sync_workers_stop();
}

/* A run is held to SYNC_RUN_DEADLINE_SECONDS: a server that accepts and
 * never greets ends it at the run's deadline, before the connect timeout. */
static void test_run_deadline(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    char id[64], msg[512], want[200];
    create_on(ntohs(a.sin_port), id, sizeof id);
    sync_env saved = env;
    env.connect_timeout_s = 30;
    env.run_deadline_s = 1;
    start(1);
    int64_t t0 = sh_mono_ms();
    sync_now(id);
    wait_status(id, "error", msg, sizeof msg);
    int64_t took = sh_mono_ms() - t0;
    snprintf(want, sizeof want,
             "sync run deadline of 1 s (SYNC_RUN_DEADLINE_SECONDS) reached waiting for greeting "
             "of 127.0.0.1:%d",
             ntohs(a.sin_port));
    assert_string_equal(msg, want);
    assert_true(took < 4000);
    sync_workers_stop();
    env = saved;
    close(fd);
}

/* An idle thread asks for a lease when the coordinator announces a queued
 * sync, not at its next idle poll (a second after its last). Each sync is
 * asked for right after the thread found nothing to do, so only the
 * announcement can bring the lease in well under a second. */
static void test_queued_wakes_idle_thread(void **state)
{
    (void)state;
    char id[64];
    create(id, sizeof id);
    start(1);
    tf_sleep_ms(300); /* the subscriber connects */
    for (int i = 0; i < 4; i++) {
        sync_now(id);
        long long ms = wait_leased(id);
        assert_true(ms >= 0);
        if (ms > 400)
            fprintf(stderr, "lease %d came after %lld ms\n", i, ms);
        assert_true(ms <= 400);
        wait_status(id, "error", NULL, 0);
    }
    sync_workers_stop();
}

/* The coordinator's account:<id> deleted drops that account's mail and no
 * other's. */
static void test_deleted_account_mail_dropped(void **state)
{
    (void)state;
    char gone[64], kept[64];
    create(gone, sizeof gone);
    create(kept, sizeof kept);
    for (uint32_t u = 1; u <= 20; u++) {
        tf_mail_put(ST, gone, "INBOX", 1, u, "");
        tf_mail_put(ST, kept, "INBOX", 1, u, "");
    }
    tf_mail_folder(ST, gone, "INBOX", 1, 21, 1);
    assert_int_equal(tf_mail_keys(ST, gone), 24);
    start(0);
    tf_sleep_ms(300); /* the subscriber connects */
    assert_int_equal(tf_call(coord, "account.delete", tf_id_args(gone), 5000, NULL, NULL), SH_OK);
    long long left = -1;
    for (int i = 0; i < 300 && left != 0; i++) {
        left = tf_mail_keys(ST, gone);
        if (left)
            tf_sleep_ms(10);
    }
    assert_int_equal(left, 0);
    assert_int_equal(tf_mail_keys(ST, kept), 22);
    sync_workers_stop();
}

/* A kick asks the coordinator for a sync; with no sync thread the account
 * stays queued. After stop a kick is refused quietly. */
static void test_kick(void **state)
{
    (void)state;
    char id[64], st[32];
    create(id, sizeof id);
    status(id, st, sizeof st, NULL, 0);
    assert_string_not_equal(st, "queued");
    start(0);
    sync_workers_kick(id);
    status(id, st, sizeof st, NULL, 0);
    assert_string_equal(st, "queued");
    sync_workers_kick("no-such-account");
    sync_workers_stop();
    sync_workers_kick(id);
    status(id, st, sizeof st, NULL, 0);
    assert_string_equal(st, "queued");
}

/* A start that cannot complete says why and leaves nothing running; the
 * next start works. The bad setting is the first one used: a later one
 * would close RPC clients whose dials nng 1.5.2 still has in flight, and
 * a close then can leak nng's own dialer state (fixed in nng 1.6). */
static void test_start_fails_cleanly(void **state)
{
    (void)state;
    sync_env bad = env;
    bad.coordinator_rpc = "not a url";
    bad.concurrency = 2;
    sh_error err;
    sh_error_clear(&err);
    assert_int_not_equal(sync_workers_start(&redis_url, NULL, &bad, &err), SH_OK);
    assert_true(err.msg[0] != '\0');
    char id[64];
    create(id, sizeof id);
    start(1);
    sync_now(id);
    wait_status(id, "error", NULL, 0);
    sync_workers_stop();
}

/* Stopping does not wait out the idle threads' poll (a second): they are
 * woken; what remains is the event thread's receive (half a second). */
static void test_stop_is_prompt(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        start(2);
        tf_sleep_ms(100); /* both threads found nothing and sleep */
        int64_t t0 = sh_mono_ms();
        sync_workers_stop();
        long long ms = sh_mono_ms() - t0;
        if (ms > 700)
            fprintf(stderr, "stop %d took %lld ms\n", i, ms);
        assert_true(ms <= 700);
    }
}

/* worker_refuses runs the sync-worker with ENCRYPTION_KEY_PREVIOUS=prev and
 * checks that it exits at once with an error holding what. */
static void worker_refuses(const char *prev, const char *what)
{
    char e_redis[160], e_prev[120], e_rpc[96], log[400], line[1024];
    snprintf(e_redis, sizeof e_redis, "REDIS_URL=%s", tf_mail_the()->redis.url);
    snprintf(e_prev, sizeof e_prev, "ENCRYPTION_KEY_PREVIOUS=%s", prev);
    snprintf(e_rpc, sizeof e_rpc, "SYNC_WORKER_RPC_URL=tcp://127.0.0.1:%d", tf_free_port());
    const char *wenv[] = {e_redis, e_rpc, "ENCRYPTION_KEY=" TF_STACK_KEY, e_prev, NULL};
    snprintf(log, sizeof log, "%s/sync-worker-keys.log", tf_mail_the()->redis.dir);
    pid_t p = tf_spawn(tf_build_path("services/sync-worker/sync-worker"), wenv, log);
    assert_true(p > 0);
    int st = tf_stop(p, 0, 15000);
    assert_true(st > 0 && st < 128);
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, what) != NULL;
    fclose(f);
    if (!found)
        fail_msg("the sync-worker's log %s does not say \"%s\"", log, what);
}

/* Start-up refuses a previous key that is the current one, or whose key id
 * collides with it (found by trying keys). */
static void test_colliding_keys_refused(void **state)
{
    worker_refuses(TF_STACK_KEY, "ENCRYPTION_KEY_PREVIOUS is the same key as ENCRYPTION_KEY");
    char hex[65];
    sh_key kc;
    sh_error err;
    for (unsigned i = 1;; i++) {
        snprintf(hex, sizeof hex, "%064x", i);
        assert_int_equal(sh_key_parse(hex, "KC", &kc, &err), SH_OK);
        if (kc.id == key.id)
            break;
    }
    worker_refuses(hex, "ENCRYPTION_KEY and ENCRYPTION_KEY_PREVIOUS have the same key id");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lease_run_completes),
        cmocka_unit_test(test_run_deadline),
        cmocka_unit_test(test_queued_wakes_idle_thread),
        cmocka_unit_test(test_deleted_account_mail_dropped),
        cmocka_unit_test(test_kick),
        cmocka_unit_test(test_start_fails_cleanly),
        cmocka_unit_test(test_stop_is_prompt),
        cmocka_unit_test(test_colliding_keys_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
