/* test_sync_window.c - the full check of a folder a window at a time
 * (sync_full.c), against a private Redis and a private Dovecot that offers
 * neither CONDSTORE nor QRESYNC, so every sync compares UIDs and flags: a
 * folder of many windows synced whole, flag changes and expunges spread
 * over several windows found, and MAIL_MAX_MESSAGES_PER_FOLDER keeping the
 * newest messages and saying so. */
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
#include "hosts.h"
#include "mail_fixture.h"
#include "mailstore.h"
#include "sync.h"

#define ST       (tf_mail_the()->st)
#define MESSAGES 3000
#define WINDOW   250
/* Dovecot's own list without CONDSTORE and QRESYNC. */
#define NO_CONDSTORE "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE UIDPLUS SPECIAL-USE"

static tf_dovecot dove;
static sync_env env = {.fetch_batch = 100,
                       .fetch_budget = 1000,
                       .renew_s = 30,
                       .check_window = WINDOW,
                       .events_max_len = 1000000,
                       .events_max_age_s = 86400};
static sync_report report; /* no progress service: reports are dropped */

static int setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    if (tf_mail_setup(state) ||
        tf_dovecot_start_caps(&dove, "test", "secret", MESSAGES, NO_CONDSTORE) ||
        tf_dovecot_add_user(&dove, "capped", "secret", MESSAGES))
        return -1;
    env.hosts = tf_loopback_hosts();
    env.allow_insecure = true;
    return 0;
}

static int teardown(void **state)
{
    tf_dovecot_stop(&dove);
    return tf_mail_teardown(state);
}

/* sync_as syncs user's INBOX into account acct; the run's warning is
 * copied to warning. */
static int sync_as(const char *acct, const char *user, char *warning, size_t len)
{
    sync_run run = {.env = &env, .store = ST, .report = &report, .acct = acct};
    sh_val *a = sh_val_new_map();
    sh_val_set_cstr(a, "imapHost", sh_val_new_cstr("127.0.0.1"));
    sh_val_set_cstr(a, "imapPort", sh_val_new_int(dove.port));
    sh_val_set_cstr(a, "security", sh_val_new_cstr("none"));
    sh_val_set_cstr(a, "username", sh_val_new_cstr(user));
    sh_error err;
    sh_error_clear(&err);
    int rc = sync_account(&run, a, "secret", &err);
    if (rc)
        fprintf(stderr, "sync of %s: %s\n", acct, err.msg);
    if (warning)
        snprintf(warning, len, "%s", run.warning);
    sh_val_free(a);
    return rc;
}

static uint32_t uidvalidity_of(const char *acct)
{
    sync_folder_state fs;
    sh_error err;
    assert_int_equal(sync_mail_state_get(ST, acct, "INBOX", &fs, &err), SH_OK);
    assert_true(fs.uidvalidity != 0);
    return fs.uidvalidity;
}

static long long stored(const char *acct, long long *unread)
{
    long long total = 0, u = 0;
    sh_error err;
    assert_int_equal(
        sync_mail_folder_count(ST, acct, "INBOX", uidvalidity_of(acct), &total, &u, &err), SH_OK);
    if (unread)
        *unread = u;
    return total;
}

/* flags_of returns the stored flags of uid ("" when absent: -). */
static void flags_of(const char *acct, uint32_t uid, char *buf, size_t len)
{
    char **flags = NULL;
    sh_error err;
    assert_int_equal(
        sync_mail_flags(ST, acct, "INBOX", uidvalidity_of(acct), &uid, 1, &flags, &err), SH_OK);
    snprintf(buf, len, "%s", flags[0] ? flags[0] : "-");
    sync_mail_flags_free(flags, 1);
}

/* A folder of twelve windows is stored whole with each message's flags;
 * flag changes and expunges in several windows are then found by a sync
 * that has neither CONDSTORE nor QRESYNC to tell it. */
static void test_windows(void **state)
{
    (void)state;
    long long unread = 0;
    assert_int_equal(sync_as("w1", "test", NULL, 0), SH_OK);
    assert_int_equal(stored("w1", &unread), MESSAGES);
    assert_int_equal(unread, MESSAGES - MESSAGES / 3);
    char buf[128];
    uint32_t sample[] = {1, 3, 250, 251, 1499, 1500, 2999, 3000};
    for (size_t i = 0; i < sizeof sample / sizeof *sample; i++) {
        flags_of("w1", sample[i], buf, sizeof buf);
        assert_int_equal(strstr(buf, "\\Seen") != NULL, tf_dovecot_message_seen((int)sample[i]));
    }

    /* Changes in the first, a middle and the last windows, and on both
     * sides of a window's edge. */
    const char *cmds[] = {"SELECT INBOX",
                          "UID STORE 2,250,251,1777,3000 +FLAGS (\\Seen \\Flagged)",
                          "UID STORE 3,1500 -FLAGS (\\Seen)",
                          "UID STORE 10,500,501,2222,2999 +FLAGS (\\Deleted)",
                          "EXPUNGE",
                          NULL};
    assert_int_equal(tf_dovecot_imap(&dove, cmds, NULL, 0), 0);
    assert_int_equal(sync_as("w1", "test", NULL, 0), SH_OK);
    assert_int_equal(stored("w1", &unread), MESSAGES - 5);
    uint32_t gone[] = {10, 500, 501, 2222, 2999};
    for (size_t i = 0; i < sizeof gone / sizeof *gone; i++) {
        flags_of("w1", gone[i], buf, sizeof buf);
        assert_string_equal(buf, "-");
    }
    uint32_t flagged[] = {2, 250, 251, 1777, 3000};
    for (size_t i = 0; i < sizeof flagged / sizeof *flagged; i++) {
        flags_of("w1", flagged[i], buf, sizeof buf);
        assert_non_null(strstr(buf, "\\Flagged"));
        assert_non_null(strstr(buf, "\\Seen"));
    }
    flags_of("w1", 3, buf, sizeof buf);
    assert_null(strstr(buf, "\\Seen"));
    flags_of("w1", 1500, buf, sizeof buf);
    assert_null(strstr(buf, "\\Seen"));
    /* Unread: all but the seen thirds, less those expunged unread (10,
     * 500, 501, 2222, 2999: 2222 and 2999 are not seen... count them). */
    long long want = 0;
    for (int n = 1; n <= MESSAGES; n++) {
        bool seen = tf_dovecot_message_seen(n);
        if (n == 2 || n == 250 || n == 251 || n == 1777 || n == 3000)
            seen = true;
        if (n == 3 || n == 1500)
            seen = false;
        if (n == 10 || n == 500 || n == 501 || n == 2222 || n == 2999)
            continue;
        want += !seen;
    }
    assert_int_equal(unread, want);

    /* Again with nothing changed: nothing stored or removed. */
    assert_int_equal(sync_as("w1", "test", NULL, 0), SH_OK);
    assert_int_equal(stored("w1", NULL), MESSAGES - 5);
}

/* Over MAIL_MAX_MESSAGES_PER_FOLDER the newest that many are stored and the
 * run says so; a lower cap removes the oldest, no cap stores them all. */
static void test_cap(void **state)
{
    (void)state;
    char warning[400], buf[128];
    env.max_per_folder = 1000;
    assert_int_equal(sync_as("c1", "capped", warning, sizeof warning), SH_OK);
    assert_string_equal(warning, "INBOX holds 3000 messages, more than "
                                 "MAIL_MAX_MESSAGES_PER_FOLDER=1000; the newest 1000 are kept");
    assert_int_equal(stored("c1", NULL), 1000);
    flags_of("c1", 2000, buf, sizeof buf);
    assert_string_equal(buf, "-");
    flags_of("c1", 2001, buf, sizeof buf);
    assert_string_not_equal(buf, "-");
    flags_of("c1", 3000, buf, sizeof buf);
    assert_string_not_equal(buf, "-");

    /* Still over: said again, nothing more stored. */
    assert_int_equal(sync_as("c1", "capped", warning, sizeof warning), SH_OK);
    assert_non_null(strstr(warning, "MAIL_MAX_MESSAGES_PER_FOLDER=1000"));
    assert_int_equal(stored("c1", NULL), 1000);

    env.max_per_folder = 400;
    assert_int_equal(sync_as("c1", "capped", warning, sizeof warning), SH_OK);
    assert_non_null(strstr(warning, "the newest 400 are kept"));
    assert_int_equal(stored("c1", NULL), 400);
    flags_of("c1", 2600, buf, sizeof buf);
    assert_string_equal(buf, "-");
    flags_of("c1", 2601, buf, sizeof buf);
    assert_string_not_equal(buf, "-");

    env.max_per_folder = 0;
    assert_int_equal(sync_as("c1", "capped", warning, sizeof warning), SH_OK);
    assert_string_equal(warning, "");
    assert_int_equal(stored("c1", NULL), MESSAGES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_cap),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
