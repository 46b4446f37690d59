/* test_watcher.c - IDLE watches end to end: a change made by another IMAP
 * client (a new message, a flag, an expunge, in INBOX or another watched
 * folder) reaches the account's event log within 2 s with no sync asked
 * for by the test; the strict server answering IDLE with untagged data
 * before "+ idling"; a server without IDLE polled; Dovecot restarted under
 * a watch; the cap on connections per host; no watch with IMAP_MAX_WATCHES
 * 0; an IDLE read past a command's deadline; and the watch moving to another worker when its own
 * dies, with the old lease's token refused afterwards. */
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

#include "shared/util.h"
#include "sync_stack.h"

#define NMSG       5
#define WITHIN_MS  2000
#define IDLE_CAPS  "IMAP4rev1 LITERAL+ ENABLE CONDSTORE QRESYNC SPECIAL-USE UIDPLUS IDLE"
#define PLAIN_CAPS "IMAP4rev1 LITERAL+ ENABLE CONDSTORE QRESYNC SPECIAL-USE UIDPLUS"

typedef struct watch_group {
    tf_stack_group group;
    const tf_strict_opts *strict; /* NULL: Dovecot */
    int poll_seconds;
    int max_per_host;
    const char *worker_setting;
} watch_group;

static const tf_strict_opts strict_early = {.capability = IDLE_CAPS, .idle_untagged_first = true};
static const tf_strict_opts strict_no_idle = {.capability = PLAIN_CAPS};

static tf_stack st;
static char acct[160];
static int appended;          /* messages appended so far, numbering the next */
static sh_rpc_client *reader; /* the sync-worker read from: the stack's, or NULL for it */

static int group_setup(void **state)
{
    const watch_group *g = tf_stack_group_current();
    acct[0] = '\0';
    appended = 0;
    tf_stack_opts opts = {.name = g->group.name,
                          .messages = NMSG,
                          .command_timeout = 10,
                          .watch_lease_seconds = 3,
                          .watch_renew_seconds = 1,
                          .poll_seconds = g->poll_seconds,
                          .max_per_host = g->max_per_host,
                          .worker_setting = g->worker_setting,
                          .strict = g->strict};
    *state = &st;
    return tf_stack_start(&st, &opts);
}

static sh_val *account(void)
{
    sh_val *a = NULL;
    assert_int_equal(tf_stack_call(st.coord, "account.get", tf_id_args(acct), &a), SH_OK);
    return a;
}

/* wait_watch waits up to ms for the account's watch state to be want. */
static void wait_watch(const char *want, int ms)
{
    char got[32] = "";
    for (int64_t end = sh_mono_ms() + ms; sh_mono_ms() < end; tf_sleep_ms(100)) {
        sh_val *a = account();
        const char *s = sh_val_get_str(sh_val_get(a, "watch"), "state", NULL);
        snprintf(got, sizeof got, "%s", s ? s : "(none)");
        sh_val_free(a);
        if (strcmp(got, want) == 0)
            return;
    }
    fail_msg("the watch is %s after %d ms, not %s", got, ms, want);
}

/* last_event is the newest id of the account's event log. */
static void last_event(char id[64])
{
    sh_val *a = sh_val_new_map(), *r = NULL;
    tf_put_str(a, "accountId", acct);
    assert_int_equal(tf_stack_call(reader ? reader : st.worker, "events.read", a, &r), SH_OK);
    snprintf(id, 64, "%s", sh_val_get_str(r, "lastId", NULL));
    sh_val_free(r);
}

/* wait_event waits up to WITHIN_MS for an event of type in folder after
 * id; returns how long it took. */
static int64_t wait_event(const char *after, const char *type, const char *folder)
{
    int64_t start = sh_mono_ms();
    while (sh_mono_ms() - start < WITHIN_MS) {
        sh_val *a = sh_val_new_map(), *r = NULL;
        tf_put_str(a, "accountId", acct);
        if (after[0])
            tf_put_str(a, "after", after);
        assert_int_equal(tf_stack_call(reader ? reader : st.worker, "events.read", a, &r), SH_OK);
        const sh_val *evs = sh_val_get(r, "events");
        for (size_t i = 0; i < sh_val_len(evs); i++) {
            const sh_val *e = sh_val_at(evs, i);
            const char *t = sh_val_get_str(e, "type", NULL);
            const char *f = sh_val_get_str(e, "folder", NULL);
            if (t && strcmp(t, type) == 0 && f && strcmp(f, folder) == 0) {
                sh_val_free(r);
                return sh_mono_ms() - start;
            }
        }
        sh_val_free(r);
        tf_sleep_ms(20);
    }
    fail_msg("no %s event for %s within %d ms", type, folder, WITHIN_MS);
    return -1;
}

/* other_client runs commands (NULL-terminated) on a connection of its own. */
static void other_client(const char *const *cmds)
{
    char out[4096];
    if (tf_dovecot_imap(&st.dove, cmds, out, sizeof out) != 0)
        fail_msg("the other client's commands failed: %s", out);
}

static void append_to(const char *folder)
{
    char msg[1024], cmd[1400];
    size_t n = tf_dovecot_message(100 + ++appended, msg, sizeof msg);
    snprintf(cmd, sizeof cmd, "APPEND %s {%zu+}\r\n%s", folder, n, msg);
    const char *cmds[] = {cmd, NULL};
    other_client(cmds);
}

/* new_mail_arrives appends to folder elsewhere and checks mail.new comes. */
static void new_mail_arrives(const char *folder)
{
    char after[64];
    last_event(after);
    append_to(folder);
    int64_t ms = wait_event(after, "mail.new", folder);
    fprintf(stderr, "mail.new in %s after %lld ms\n", folder, (long long)ms);
}

/* setup_account creates the account, syncs it once and waits until its
 * INBOX is watched (want: idle, or polling). */
static void setup_account(const char *want)
{
    if (!acct[0]) {
        tf_account a = {0};
        tf_stack_create_account(&st, &a, acct, sizeof acct);
        tf_stack_sync_and_wait(&st, acct, "ok", NULL);
    }
    wait_watch(want, 10000);
}

/* watch_archive_too creates the folder Archive elsewhere and has the
 * account watch it besides INBOX (and sync it too, with sync_too). */
static void watch_archive_too(bool sync_too)
{
    const char *create[] = {"CREATE Archive", NULL};
    other_client(create);
    sh_val *u = sh_val_new_map(), *f = sh_val_new_map(), *both = sh_val_new_array();
    sh_val_push(both, sh_val_new_cstr("INBOX"));
    sh_val_push(both, sh_val_new_cstr("Archive"));
    if (sync_too)
        sh_val_set_cstr(f, "folders", sh_val_clone(both));
    sh_val_set_cstr(f, "watchFolders", both);
    tf_put_str(u, "id", acct);
    sh_val_set_cstr(u, "fields", f);
    assert_int_equal(tf_stack_call(st.coord, "account.update", u, NULL), SH_OK);
}

static void test_new_mail_reaches_the_log_without_a_sync_asked(void **state)
{
    (void)state;
    setup_account("idle");
    int changes = tf_stack_worker_log_count(&st, "event=watch_change", (const char *)NULL);
    new_mail_arrives("INBOX");
    assert_true(tf_stack_worker_log_count(&st, "event=watch_change", (const char *)NULL) > changes);
    /* And again: the watch idles on after a change. */
    new_mail_arrives("INBOX");
}

static void test_flag_set_elsewhere_reaches_the_log(void **state)
{
    (void)state;
    setup_account("idle");
    char after[64];
    last_event(after);
    const char *cmds[] = {"SELECT INBOX", "UID STORE 1 +FLAGS (\\Flagged)", NULL};
    other_client(cmds);
    wait_event(after, "mail.flags", "INBOX");
}

static void test_expunge_elsewhere_reaches_the_log(void **state)
{
    (void)state;
    setup_account("idle");
    char after[64];
    last_event(after);
    const char *cmds[] = {"SELECT INBOX", "UID STORE 2 +FLAGS (\\Deleted)", "UID EXPUNGE 2", NULL};
    other_client(cmds);
    wait_event(after, "mail.removed", "INBOX");
    /* The count is back where it was once a message comes: still a change. */
    new_mail_arrives("INBOX");
}

static void test_a_watched_folder_besides_inbox(void **state)
{
    (void)state;
    setup_account("idle");
    watch_archive_too(true);
    tf_stack_sync_and_wait(&st, acct, "ok", NULL);
    wait_watch("idle", 10000);
    /* Both sessions up: the watcher holds the lease again. */
    int opened = 0;
    for (int i = 0; i < 50 && !opened; i++) {
        opened = tf_stack_worker_log_count(&st, "event=watch_opened", "folders=2",
                                           (const char *)NULL) > 0;
        if (!opened)
            tf_sleep_ms(100);
    }
    if (!opened)
        fail_msg("the watch of INBOX and Archive did not open within 5 s");
    tf_sleep_ms(300);
    new_mail_arrives("Archive");
    new_mail_arrives("INBOX");
}

static void test_dovecot_restarted_during_idle(void **state)
{
    (void)state;
    setup_account("idle");
    assert_int_equal(tf_dovecot_halt(&st.dove), 0);
    wait_watch("error", 10000);
    assert_int_equal(tf_dovecot_resume(&st.dove), 0);
    wait_watch("idle", 20000);
    new_mail_arrives("INBOX");
}

static void test_watch_moves_when_its_worker_dies(void **state)
{
    (void)state;
    setup_account("idle");
    char key[200];
    snprintf(key, sizeof key, "account:{%s}", acct);
    long long old = tf_stack_hget_ll(&st, key, "watchToken");
    assert_true(old > 0);
    sh_rpc_client *c2 = NULL;
    pid_t second = tf_stack_start_extra_worker(&st, &c2);
    assert_true(second > 0);
    /* The first worker dies without a word: its lease runs out (3 s). */
    int64_t killed = sh_mono_ms();
    tf_stop(st.worker_pid, SIGKILL, 5000);
    st.worker_pid = 0;
    long long now = old;
    while (now == old && sh_mono_ms() - killed < 3000 + 3000) {
        tf_sleep_ms(100);
        now = tf_stack_hget_ll(&st, key, "watchToken");
    }
    assert_true(now > old);
    fprintf(stderr, "watch taken over after %lld ms\n", (long long)(sh_mono_ms() - killed));
    wait_watch("idle", 5000);
    /* The dead worker's token is refused. */
    sh_val *a = sh_val_new_map(), *arr = sh_val_new_array(), *r = sh_val_new_map(), *res = NULL;
    tf_put_str(r, "accountId", acct);
    tf_put_int(r, "token", old);
    sh_val_push(arr, r);
    tf_put_str(a, "workerId", "any");
    sh_val_set_cstr(a, "leases", arr);
    assert_int_equal(tf_stack_call(st.coord, "watch.renew", a, &res), SH_OK);
    assert_int_equal(sh_val_len(sh_val_get(res, "held")), 0);
    sh_val_free(res);
    a = sh_val_new_map();
    tf_put_str(a, "accountId", acct);
    tf_put_int(a, "token", old);
    tf_put_str(a, "state", "idle");
    sh_error err;
    assert_int_equal(tf_call(st.coord, "watch.report", a, 5000, NULL, &err), SH_ELEASE);
    /* The second worker's watch works, and its sync threads sync. */
    reader = c2;
    new_mail_arrives("INBOX");
    reader = NULL;
    assert_int_equal(tf_stop(second, SIGTERM, 10000), 0);
    sh_rpc_client_free(c2);
    /* Stopping released the watch at once. */
    wait_watch("off", 2000);
}

static void test_untagged_before_continuation_keeps_working(void **state)
{
    (void)state;
    setup_account("idle");
    new_mail_arrives("INBOX");
    new_mail_arrives("INBOX");
    assert_true(tf_strict_log_count(&st.dove, "C: b'DONE\\r\\n'") >= 2);
    tf_stack_expect_bad(&st, 0);
}

static void test_server_without_idle_is_polled(void **state)
{
    (void)state;
    setup_account("polling");
    new_mail_arrives("INBOX");
    assert_int_equal(tf_strict_log_count(&st.dove, "IDLE"), 0);
    tf_stack_expect_bad(&st, 0);
}

static void test_connections_per_host_are_capped(void **state)
{
    (void)state;
    setup_account("idle");
    watch_archive_too(false);
    /* A cap of 2 leaves one connection to the watches, one to the syncs. */
    wait_watch("error", 10000);
    sh_val *a = account();
    const char *e = sh_val_get_str(sh_val_get(a, "watch"), "error", NULL);
    assert_non_null(e);
    assert_non_null(strstr(e, "IMAP_MAX_CONNECTIONS_PER_HOST"));
    assert_non_null(strstr(e, "Archive"));
    sh_val_free(a);
    /* INBOX is watched still, and its change synced. */
    new_mail_arrives("INBOX");
}

static const struct CMUnitTest dovecot_tests[] = {
    cmocka_unit_test(test_new_mail_reaches_the_log_without_a_sync_asked),
    cmocka_unit_test(test_flag_set_elsewhere_reaches_the_log),
    cmocka_unit_test(test_expunge_elsewhere_reaches_the_log),
    cmocka_unit_test(test_a_watched_folder_besides_inbox),
    cmocka_unit_test(test_dovecot_restarted_during_idle),
    cmocka_unit_test(test_watch_moves_when_its_worker_dies),
};
static const struct CMUnitTest early_tests[] = {
    cmocka_unit_test(test_untagged_before_continuation_keeps_working),
};
static const struct CMUnitTest poll_tests[] = {
    cmocka_unit_test(test_server_without_idle_is_polled),
};

static void test_no_watch_when_watches_are_off(void **state)
{
    (void)state;
    setup_account("off");
    /* Well past a renewal period: nobody took the watch. */
    tf_sleep_ms(3000);
    wait_watch("off", 100);
    assert_int_equal(tf_stack_worker_log_count(&st, "event=watch_opened", (const char *)NULL), 0);
    char key[200];
    snprintf(key, sizeof key, "account:{%s}", acct);
    assert_int_equal(tf_stack_hget_ll(&st, key, "watchToken"), 0);
}

static const struct CMUnitTest off_tests[] = {
    cmocka_unit_test(test_no_watch_when_watches_are_off),
};

/* An IDLE runs for IMAP_IDLE_RENEW_SECONDS, far past a command's deadline:
 * the change it reports after that deadline is read on the same session. */
static void test_idle_outlasts_the_command_deadline(void **state)
{
    (void)state;
    setup_account("idle");
    tf_sleep_ms(3500);
    new_mail_arrives("INBOX");
    wait_watch("idle", 100);
    assert_int_equal(tf_stack_worker_log_count(&st, "event=watch_lost", (const char *)NULL), 0);
}

static const struct CMUnitTest long_idle_tests[] = {
    cmocka_unit_test(test_idle_outlasts_the_command_deadline),
};

static const struct CMUnitTest cap_tests[] = {
    cmocka_unit_test(test_connections_per_host_are_capped),
};

static const watch_group groups[] = {
    {{"test_watcher_dovecot", TF_STACK_TESTS(dovecot_tests)}, NULL, 0, 0, NULL},
    {{"test_watcher_strict_early", TF_STACK_TESTS(early_tests)}, &strict_early, 0, 0, NULL},
    {{"test_watcher_strict_poll", TF_STACK_TESTS(poll_tests)}, &strict_no_idle, 1, 0, NULL},
    {{"test_watcher_host_cap", TF_STACK_TESTS(cap_tests)}, NULL, 0, 2, NULL},
    {{"test_watcher_off", TF_STACK_TESTS(off_tests)}, NULL, 0, 0, "IMAP_MAX_WATCHES=0"},
    {{"test_watcher_long_idle", TF_STACK_TESTS(long_idle_tests)},
     NULL,
     0,
     0,
     "IMAP_COMMAND_DEADLINE_SECONDS=2"},
};

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    return tf_stack_run_groups(groups, sizeof groups / sizeof groups[0], sizeof groups[0],
                               group_setup);
}
