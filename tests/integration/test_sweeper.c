/* test_sweeper.c - the sweep of the mail of deleted accounts (sweeper.c)
 * against a private Redis and a coordinator process: the mail of accounts
 * the coordinator no longer has goes, every key of it, and the mail of the
 * others stays; with the coordinator gone, nothing is removed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "calls.h"
#include "fixture.h"
#include "mail_fixture.h"
#include "services.h"
#include "shared/rpc.h"
#include "sweeper.h"

#define KEY "8f3a0c5e7b9d1f2a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a"
#define ST  (tf_mail_the()->st)

static pid_t coord;
static char url[64], logpath[400];
static sh_rpc_client *cl;

static int setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    if (tf_mail_setup(state))
        return -1;
    char ev[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", tf_free_port());
    snprintf(ev, sizeof ev, "tcp://127.0.0.1:%d", tf_free_port());
    snprintf(logpath, sizeof logpath, "%s/coordinator.log", tf_mail_the()->redis.dir);
    const char *env[] = {"ENCRYPTION_KEY=" KEY, "SCHED_AUTO_TICK=false", "RPC_WORKERS=2", NULL};
    tf_service svc = {.name = "coordinator",
                      .redis_url = tf_mail_the()->redis.url,
                      .rpc_url = url,
                      .events_url = ev,
                      .env = env,
                      .log_path = logpath};
    coord = tf_service_spawn(&svc);
    sh_error err;
    if (sh_rpc_client_new(url, 5000, 0, &cl, &err) || tf_wait_ping(cl, 1) != 0) {
        fprintf(stderr, "the coordinator did not answer; log in %s\n", logpath);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    sh_rpc_client_free(cl);
    int rc = coord > 0 ? tf_services_stop(&coord, 1, logpath) : 0;
    return tf_mail_teardown(state) || rc;
}

static void create(const char *email, char id[32])
{
    sh_val *f = sh_val_new_map(), *acc = NULL;
    sh_val_set_cstr(f, "emailAddress", sh_val_new_cstr(email));
    sh_val_set_cstr(f, "imapHost", sh_val_new_cstr("imap.example.com"));
    sh_val_set_cstr(f, "imapPort", sh_val_new_int(993));
    sh_val_set_cstr(f, "security", sh_val_new_cstr("tls"));
    sh_val_set_cstr(f, "username", sh_val_new_cstr(email));
    sh_val_set_cstr(f, "password", sh_val_new_cstr("a-password"));
    assert_int_equal(tf_call(cl, "account.create", f, 5000, &acc, NULL), SH_OK);
    snprintf(id, 32, "%s", sh_val_get_str(acc, "id", NULL));
    sh_val_free(acc);
}

static void mail_of(const char *acct, uint32_t n)
{
    for (uint32_t u = 1; u <= n; u++)
        tf_mail_put(ST, acct, "INBOX", 1, u, u % 2 ? "\\Seen" : "");
    tf_mail_folder(ST, acct, "INBOX", 1, n + 1, 5);
}

static void test_sweep_removes_only_what_the_coordinator_no_longer_has(void **state)
{
    (void)state;
    char kept[32], deleted[32];
    create("kept@example.com", kept);
    create("deleted@example.com", deleted);
    mail_of(kept, 1500);
    mail_of(deleted, 1500);
    mail_of("a0never0created", 3); /* mail written after its account went */
    long long kept_keys = tf_mail_keys(ST, kept);
    assert_true(kept_keys > 1500);
    sh_val *a = sh_val_new_map();
    sh_val_set_cstr(a, "id", sh_val_new_cstr(deleted));
    assert_int_equal(tf_call(cl, "account.delete", a, 5000, NULL, NULL), SH_OK);

    sync_sweep_stats s;
    sh_error err;
    assert_int_equal(sync_sweep(ST, cl, 5000, &s, &err), SH_OK);
    assert_int_equal(s.accounts, 3);
    assert_int_equal(s.gone, 2);
    /* each: its messages, index, unseen set, folder state and folder set */
    assert_int_equal(s.keys, 1504 + 7);
    assert_int_equal(tf_mail_keys(ST, deleted), 0);
    assert_int_equal(tf_mail_keys(ST, "a0never0created"), 0);
    assert_int_equal(tf_mail_keys(ST, kept), kept_keys);
    /* Nothing left to sweep. */
    assert_int_equal(sync_sweep(ST, cl, 5000, &s, &err), SH_OK);
    assert_int_equal(s.accounts, 1);
    assert_int_equal(s.gone, 0);
    assert_int_equal(s.keys, 0);

    /* The coordinator gone: the sweep fails and removes nothing, although
     * no account it knows of answers. */
    mail_of("a0also0stale", 2);
    assert_int_equal(tf_services_stop(&coord, 1, logpath), 0);
    coord = 0;
    long long before = tf_mail_int(ST, sh_cmd_new("DBSIZE"));
    int rc = sync_sweep(ST, cl, 500, &s, &err);
    assert_true(rc == SH_ETIMEDOUT || rc == SH_EUNAVAIL);
    assert_int_equal(s.gone, 0);
    assert_int_equal(tf_mail_int(ST, sh_cmd_new("DBSIZE")), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweep_removes_only_what_the_coordinator_no_longer_has),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
