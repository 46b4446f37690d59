/* test_sync_dovecot.c - the sync-worker against a real Dovecot: Redis,
 * progress, coordinator and sync-worker run as processes; an account made
 * through the coordinator is synced (1,000 generated messages, envelopes and
 * flags as generated), then a second IMAP client adds, flags and deletes
 * messages and the next sync follows, with an event for each; a wrong
 * password ends in auth_error; a deleted account's mail is dropped.
 *
 * The sync runs three times, against Dovecot as it is (QRESYNC: changes and
 * expunges from UID FETCH VANISHED; an unchanged folder costs a SELECT),
 * with CONDSTORE but no QRESYNC, and with neither (the whole UID list is
 * compared, flags fully scanned); the worker's log says which path ran.
 * Then twice against the strict test server (with QRESYNC, and with none of
 * CONDSTORE, QRESYNC and LITERAL+), which answers BAD to any command that
 * strays from the grammar: none may. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/events.h"
#include "shared/util.h"
#include "sync_stack.h"

#define NMSG 1000

/* What the server of a group offers. */
typedef struct server_kind {
    tf_stack_group group;
    const char *capability; /* NULL: Dovecot's own, with QRESYNC */
    const char *check;      /* the path the worker's log names for a change */
    bool condstore;
    const tf_strict_opts *strict; /* the strict server instead of Dovecot */
} server_kind;

static const tf_strict_opts strict_qresync = {0};
static const tf_strict_opts strict_plain = {.capability = "IMAP4rev1 ENABLE SPECIAL-USE UIDPLUS"};

static const server_kind *kind;
static tf_stack st;
static char account_id[160];

static int group_setup(void **state)
{
    kind = tf_stack_group_current();
    account_id[0] = '\0';
    tf_stack_opts opts = {
        .name = kind->group.name, .messages = NMSG, .fetch_batch = 200, .command_timeout = 20};
    opts.imap_capability = kind->capability;
    opts.strict = kind->strict;
    *state = &st;
    return tf_stack_start(&st, &opts);
}

/* synced_lines counts the worker's folder_synced lines holding what. */
static int synced_lines(const char *what)
{
    return tf_stack_worker_log_count(&st, "event=folder_synced", what, (const char *)NULL);
}

/* mail_events subscribes to the account's mail events. */
static sh_sub *mail_events(void)
{
    sh_sub *sub = NULL;
    sh_error err;
    char topic[200];
    snprintf(topic, sizeof topic, "mail:%s", account_id);
    assert_int_equal(sh_sub_new(st.worker_events_url, 1 << 20, &sub, &err), SH_OK);
    assert_int_equal(sh_sub_subscribe(sub, topic), SH_OK);
    tf_sleep_ms(300); /* the subscription reaches the publisher */
    return sub;
}

/* expect_events reads the events of a sync and checks they are exactly
 * kinds[i] of uids[i] for i < n, in any order. */
static void expect_events(sh_sub *sub, const char *const *what, const int64_t *uids, size_t n)
{
    bool got[16] = {false};
    assert_true(n <= 16);
    size_t matched = 0;
    for (;;) {
        char *topic = NULL;
        sh_val *ev = NULL;
        if (sh_sub_recv(sub, matched == n ? 500 : 10000, &topic, &ev) != SH_OK)
            break;
        const char *k = sh_val_get_str(ev, "kind", NULL);
        int64_t uid = sh_val_int(sh_val_get(ev, "uid"));
        size_t i = 0;
        while (i < n && (got[i] || strcmp(what[i], k ? k : "") || uids[i] != uid))
            i++;
        if (i == n)
            fail_msg("unexpected mail event %s uid %lld", k ? k : "?", (long long)uid);
        got[i] = true;
        matched++;
        free(topic);
        sh_val_free(ev);
    }
    for (size_t i = 0; i < n; i++)
        if (!got[i])
            fail_msg("no mail event %s uid %lld", what[i], (long long)uids[i]);
}

/* expect_gone checks uid is no longer stored. */
/* sync_change makes the changes of cmds on the server, syncs the account,
 * and checks the sync's events are exactly what[i] of uids[i] for i < n
 * and that it took the server's check path. */
static void sync_change(const char *const *cmds, const char *const *what, const int64_t *uids,
                        size_t n)
{
    char out[4096];
    int before = synced_lines(kind->check);
    sh_sub *sub = mail_events();
    assert_int_equal(tf_dovecot_imap(&st.dove, cmds, out, sizeof out), 0);
    tf_stack_sync_and_wait(&st, account_id, "ok", NULL);
    expect_events(sub, what, uids, n);
    sh_sub_free(sub);
    assert_int_equal(synced_lines(kind->check), before + 1);
}

static void expect_gone(int64_t uid)
{
    sh_val *a = sh_val_new_map();
    tf_put_str(a, "accountId", account_id);
    sh_val_set_cstr(a, "uid", sh_val_new_int(uid));
    sh_error err;
    sh_val *res = NULL;
    assert_int_equal(sh_rpc_call(st.worker, "messages.get", a, 5000, &res, &err), SH_ENOTFOUND);
    sh_val_free(a);
}

static void test_initial_sync(void **state)
{
    tf_sync_end end;
    const tf_account acct = {.password = "secret", .unwatched = true};
    tf_stack_create_account(&st, &acct, account_id, sizeof account_id);
    int64_t t0 = sh_mono_ms();
    tf_stack_sync_and_wait(&st, account_id, "ok", &end);
    fprintf(stderr, "initial sync of %d messages: %lld ms\n", NMSG, (long long)(sh_mono_ms() - t0));

    sh_val *all = tf_stack_list_all(&st, account_id, NULL, 300);
    assert_int_equal(sh_val_len(all), NMSG);
    static bool seen[NMSG + 1];
    memset(seen, 0, sizeof seen);
    int64_t prev_uid = INT64_MAX;
    for (size_t i = 0; i < sh_val_len(all); i++) {
        const sh_val *m = sh_val_at(all, i);
        int n = tf_msg_number(m);
        assert_true(n >= 1 && n <= NMSG);
        assert_false(seen[n]);
        seen[n] = true;
        int64_t uid = sh_val_int(sh_val_get(m, "uid"));
        assert_true(uid < prev_uid); /* newest first */
        prev_uid = uid;
        tf_check_envelope(m, n);
        assert_string_equal(sh_val_get_str(m, "folder", NULL), "INBOX");
        assert_int_equal(tf_has_flag(m, "\\Seen"), tf_dovecot_message_seen(n));
    }
    sh_val_free(all);

    /* The run's progress: complete, with every message counted. */
    sh_val *res = NULL;
    assert_int_equal(tf_stack_call(st.progress, "progress.get", tf_id_args(end.progress_id), &res),
                     SH_OK);
    assert_true(sh_val_bool(sh_val_get(res, "complete")));
    assert_string_equal(sh_val_get_str(res, "phase", NULL), "sync");
    sh_val_free(res);

    assert_int_equal(synced_lines("check=full new=1000 removed=0"), 1);

    /* A second sync with no change stores nothing twice; with CONDSTORE the
     * folder is seen unchanged after SELECT and not looked into. */
    int before = synced_lines("");
    tf_stack_sync_and_wait(&st, account_id, "ok", NULL);
    all = tf_stack_list_all(&st, account_id, NULL, 300);
    assert_int_equal(sh_val_len(all), NMSG);
    sh_val_free(all);
    if (kind->condstore)
        assert_int_equal(synced_lines(""), before);
    else
        assert_int_equal(synced_lines("check=full new=0 removed=0 flags=0"), 1);
}

static void test_incremental(void **state)
{
    char append[1200], msg[1024];
    size_t len = tf_dovecot_message(NMSG + 1, msg, sizeof msg);
    snprintf(append, sizeof append, "APPEND INBOX (\\Flagged) {%zu+}\r\n%s", len, msg);
    const char *cmds[] = {"SELECT INBOX",
                          "UID STORE 1 +FLAGS.SILENT (\\Flagged)",
                          "UID STORE 3 -FLAGS.SILENT (\\Seen)",
                          "UID STORE 2 +FLAGS.SILENT (\\Deleted)",
                          "UID EXPUNGE 2",
                          append,
                          NULL};
    const char *what[] = {"added", "removed", "changed", "changed"};
    const int64_t uids[] = {NMSG + 1, 2, 1, 3};
    sync_change(cmds, what, uids, 4);
    assert_int_equal(synced_lines("new=1 removed=1"), 1);

    sh_val *all = tf_stack_list_all(&st, account_id, NULL, 300);
    assert_int_equal(sh_val_len(all), NMSG);
    const sh_val *newest = sh_val_at(all, 0);
    assert_int_equal(tf_msg_number(newest), NMSG + 1);
    assert_int_equal(sh_val_int(sh_val_get(newest, "uid")), NMSG + 1);
    assert_true(tf_has_flag(newest, "\\Flagged"));
    sh_val_free(all);

    sh_val *res = tf_stack_get_message(&st, account_id, 1);
    assert_true(tf_has_flag(res, "\\Flagged"));
    sh_val_free(res);

    res = tf_stack_get_message(&st, account_id, 3);
    assert_false(tf_has_flag(res, "\\Seen"));
    sh_val_free(res);
    expect_gone(2);
}

/* Expunges scattered over the folder (a run and single UIDs, one of them
 * the newest message), two new messages and a flag change, in one sync. */
static void test_incremental_scattered(void **state)
{
    char a1[1200], a2[1200], msg[1024];
    size_t len = tf_dovecot_message(NMSG + 2, msg, sizeof msg);
    snprintf(a1, sizeof a1, "APPEND INBOX {%zu+}\r\n%s", len, msg);
    len = tf_dovecot_message(NMSG + 3, msg, sizeof msg);
    snprintf(a2, sizeof a2, "APPEND INBOX (\\Seen) {%zu+}\r\n%s", len, msg);
    const char *cmds[] = {"SELECT INBOX",
                          "UID STORE 10:12,500,1001 +FLAGS.SILENT (\\Deleted)",
                          "UID EXPUNGE 10:12,500,1001",
                          "UID STORE 20 +FLAGS.SILENT (\\Answered)",
                          a1,
                          a2,
                          NULL};
    const char *what[] = {"removed", "removed", "removed", "removed",
                          "removed", "added",   "added",   "changed"};
    const int64_t uids[] = {10, 11, 12, 500, NMSG + 1, NMSG + 2, NMSG + 3, 20};
    sync_change(cmds, what, uids, 8);
    assert_int_equal(synced_lines("new=2 removed=5 flags="), 1);

    sh_val *all = tf_stack_list_all(&st, account_id, NULL, 300);
    assert_int_equal(sh_val_len(all), NMSG - 3);
    assert_int_equal(sh_val_int(sh_val_get(sh_val_at(all, 0), "uid")), NMSG + 3);
    assert_true(tf_has_flag(sh_val_at(all, 0), "\\Seen"));
    assert_false(tf_has_flag(sh_val_at(all, 1), "\\Seen"));
    sh_val_free(all);
    const int64_t gone[] = {10, 11, 12, 500, NMSG + 1};
    for (size_t i = 0; i < sizeof gone / sizeof *gone; i++)
        expect_gone(gone[i]);
    sh_val *res = tf_stack_get_message(&st, account_id, 20);
    assert_true(tf_has_flag(res, "\\Answered"));
    sh_val_free(res);
}

/* Header texts arrive as MIME encoded words (UTF-8 in base64, Latin-1 in
 * quoted-printable), as raw UTF-8, or as plain ASCII; all are stored as
 * UTF-8. */
static void test_encoded_words(void **state)
{
    static const char msg[] =
        "From: =?ISO-8859-1?Q?Fran=E7ois_M=FCller?= <francois@example.com>\r\n"
        "To: =?UTF-8?Q?Z=C3=BCrich?= <zurich@example.com>\r\n"
        "Cc: \xc3\x89mile <emile@example.com>\r\n"
        "Subject: =?UTF-8?B?w6lsw6h2ZSDDoCBQYXJpcw==?= and more\r\n"
        "Message-ID: <encoded@example.test>\r\n"
        "Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n"
        "\r\nbody\r\n";
    char append[1200];
    snprintf(append, sizeof append, "APPEND INBOX {%zu+}\r\n%s", strlen(msg), msg);
    const char *cmds[] = {append, NULL};
    char out[4096];
    assert_int_equal(tf_dovecot_imap(&st.dove, cmds, out, sizeof out), 0);
    tf_stack_sync_and_wait(&st, account_id, "ok", NULL);
    sh_val *m = tf_stack_get_message(&st, account_id, NMSG + 4);
    assert_string_equal(sh_val_get_str(m, "subject", NULL),
                        "\xc3\xa9l\xc3\xa8ve \xc3\xa0 Paris and more");
    assert_string_equal(sh_val_get_str(m, "from", NULL),
                        "Fran\xc3\xa7ois M\xc3\xbcller <francois@example.com>");
    assert_string_equal(sh_val_get_str(m, "to", NULL), "Z\xc3\xbcrich <zurich@example.com>");
    assert_string_equal(sh_val_get_str(m, "cc", NULL), "\xc3\x89mile <emile@example.com>");
    assert_string_equal(sh_val_get_str(m, "messageId", NULL), "<encoded@example.test>");
    sh_val_free(m);
}

/* count_mail_keys counts the keys of the account's mail in Redis. */
static long long count_mail_keys(const char *id)
{
    char pattern[256];
    snprintf(pattern, sizeof pattern, "mail:{%s}:*", id);
    return tf_stack_count_keys(&st, pattern);
}

static void test_deleted_account(void **state)
{
    assert_true(count_mail_keys(account_id) > NMSG);
    assert_int_equal(tf_stack_call(st.coord, "account.delete", tf_id_args(account_id), NULL),
                     SH_OK);
    long long n = -1;
    for (int i = 0; i < 200 && n != 0; i++) {
        n = count_mail_keys(account_id);
        if (n)
            tf_sleep_ms(50);
    }
    assert_int_equal(n, 0);
}

static void test_wrong_password(void **state)
{
    char id[160];
    tf_sync_end end;
    const tf_account acct = {.password = "not-the-password"};
    tf_stack_create_account(&st, &acct, id, sizeof id);
    tf_stack_sync_and_wait(&st, id, "auth_error", &end);
    sh_val *res = NULL;
    assert_int_equal(tf_stack_call(st.progress, "log.list", tf_id_args(end.progress_id), &res),
                     SH_OK);
    assert_true(sh_val_len(res) >= 1);
    assert_string_equal(sh_val_get_str(sh_val_at(res, 0), "tool", NULL), "imap");
    sh_val_free(res);
}

/* Against the strict server: the worker's commands reached it, and it
 * answered BAD to none. */
static void test_wire_exact(void **state)
{
    if (!kind->strict)
        skip();
    assert_true(tf_strict_log_count(&st.dove, "UID FETCH") > 0);
    tf_stack_expect_bad(&st, 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_initial_sync),          cmocka_unit_test(test_incremental),
    cmocka_unit_test(test_incremental_scattered), cmocka_unit_test(test_encoded_words),
    cmocka_unit_test(test_deleted_account),       cmocka_unit_test(test_wrong_password),
};
static const struct CMUnitTest strict_tests[] = {
    cmocka_unit_test(test_initial_sync),
    cmocka_unit_test(test_incremental),
    cmocka_unit_test(test_incremental_scattered),
    cmocka_unit_test(test_encoded_words),
    cmocka_unit_test(test_deleted_account),
    cmocka_unit_test(test_wrong_password),
    cmocka_unit_test(test_wire_exact),
};
static const struct CMUnitTest changes[] = {
    cmocka_unit_test(test_initial_sync),
    cmocka_unit_test(test_incremental),
    cmocka_unit_test(test_incremental_scattered),
};
/* The strict server without LITERAL+ takes no {n+} from the test's own
 * APPENDs, so there only the initial sync runs. */
static const struct CMUnitTest initial[] = {
    cmocka_unit_test(test_initial_sync),
    cmocka_unit_test(test_wrong_password),
    cmocka_unit_test(test_wire_exact),
};

static const server_kind kinds[] = {
    {{"test_sync_dovecot", TF_STACK_TESTS(tests)}, NULL, "check=qresync", true, NULL},
    {{"test_sync_dovecot_condstore", TF_STACK_TESTS(changes)},
     "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE UIDPLUS CONDSTORE SPECIAL-USE",
     "check=full",
     true,
     NULL},
    {{"test_sync_dovecot_plain", TF_STACK_TESTS(changes)},
     "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE UIDPLUS SPECIAL-USE",
     "check=full",
     false,
     NULL},
    {{"test_sync_strict", TF_STACK_TESTS(strict_tests)},
     NULL,
     "check=qresync",
     true,
     &strict_qresync},
    {{"test_sync_strict_plain", TF_STACK_TESTS(initial)}, NULL, "check=full", false, &strict_plain},
};

int main(void)
{
    return tf_stack_run_groups(kinds, sizeof kinds / sizeof kinds[0], sizeof kinds[0], group_setup);
}
