/* test_sync_flags.c - read/unread both ways against a real Dovecot: marks
 * made through the sync-worker RPC and the gateway are shown at once and
 * reach the server on the next sync (checked by a second IMAP session); a
 * message changed on the server meanwhile keeps the server's flags and the
 * conflict is logged; the account view counts unread messages.
 *
 * Each test runs against Dovecot and against the strict test server, which
 * answers BAD to any command that strays from the grammar by one byte.
 * Against the strict server also: a command made malformed on purpose (a
 * test-build hook) is caught, and a push the server refuses is visible: put
 * off (NO for now) it is retried by the next syncs; refused for good, the
 * message shows the server's flags again with the reason in flagError, and
 * the account's errorMessage names it. */
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

#include "sync_stack.h"

#define NMSG 30

/* The strict server, which answers BAD to any byte out of place. */
static const tf_strict_opts strict = {0};

/* The servers the tests run against, a group of tests each. */
typedef struct server_kind {
    tf_stack_group group;
    const tf_strict_opts *strict; /* NULL: Dovecot */
} server_kind;

static const server_kind *kind;
static tf_stack st;
static char account_id[160];

static int group_setup(void **state)
{
    kind = tf_stack_group_current();
    account_id[0] = '\0';
    const tf_stack_opts opts = {.name = kind->group.name,
                                .messages = NMSG,
                                .fetch_batch = 200,
                                .command_timeout = 20,
                                .gateway = true,
                                .strict = kind->strict};
    *state = &st;
    return tf_stack_start(&st, &opts);
}

/* sync_ok syncs the test account and checks the run ends ok. */
static void sync_ok(void)
{
    tf_stack_sync_and_wait(&st, account_id, "ok", NULL);
}

/* get_msg returns messages.get of uid (caller frees). */
static sh_val *get_msg(uint32_t uid)
{
    return tf_stack_get_message(&st, account_id, uid);
}

static void set_seen(uint32_t uid, bool seen)
{
    sh_val *a = sh_val_new_map(), *res = NULL;
    tf_put_str(a, "accountId", account_id);
    sh_val_set_cstr(a, "uid", sh_val_new_int(uid));
    sh_val_set_cstr(a, "seen", sh_val_new_bool(seen));
    assert_int_equal(tf_stack_call(st.worker, "messages.set_seen", a, &res), SH_OK);
    assert_int_equal(tf_has_flag(res, "\\Seen"), seen);
    sh_val_free(res);
}

/* server_flags returns the FLAGS the server gives for uid, from a second
 * IMAP session, in buf. */
static const char *server_flags(uint32_t uid, char *buf, size_t len)
{
    char fetch[64], out[4096];
    snprintf(fetch, sizeof fetch, "UID FETCH %u (FLAGS)", (unsigned)uid);
    const char *cmds[] = {"EXAMINE INBOX", fetch, NULL};
    assert_int_equal(tf_dovecot_imap(&st.dove, cmds, out, sizeof out), 0);
    const char *p = strstr(out, " FETCH (");
    assert_non_null(p);
    p = strstr(p, "FLAGS (");
    assert_non_null(p);
    p += 7;
    const char *e = strchr(p, ')');
    assert_non_null(e);
    snprintf(buf, len, "%.*s", (int)(e - p), p);
    return buf;
}

static bool server_seen(uint32_t uid)
{
    char f[256];
    return strstr(server_flags(uid, f, sizeof f), "\\Seen") != NULL;
}

static void test_initial_sync(void **state)
{
    const tf_account acct = {.password = "secret"};
    tf_stack_create_account(&st, &acct, account_id, sizeof account_id);
    sync_ok();
    sh_val *all = tf_stack_list_all(&st, account_id, NULL, 300);
    assert_int_equal(sh_val_len(all), NMSG);
    for (size_t i = 0; i < sh_val_len(all); i++)
        assert_true(tf_msg_number(sh_val_at(all, i)) > 0);
    sh_val_free(all);
}

/* Read/unread through the RPC: shown at once, on the server after the next
 * sync. */
static void test_set_seen_pushed(void **state)
{
    assert_false(server_seen(11));
    assert_true(server_seen(12));
    set_seen(11, true);
    set_seen(12, false);
    sh_val *m = get_msg(11);
    assert_true(tf_has_flag(m, "\\Seen"));
    sh_val_free(m);
    m = get_msg(12);
    assert_false(tf_has_flag(m, "\\Seen"));
    sh_val_free(m);
    assert_false(server_seen(11)); /* not yet pushed */
    sync_ok();
    assert_true(server_seen(11));
    assert_false(server_seen(12));
    m = get_msg(11);
    assert_true(tf_has_flag(m, "\\Seen"));
    sh_val_free(m);
    m = get_msg(12);
    assert_false(tf_has_flag(m, "\\Seen"));
    sh_val_free(m);
    /* Nothing is pushed twice: a second client's change stays. */
    const char *cmds[] = {"SELECT INBOX", "UID STORE 11 -FLAGS.SILENT (\\Seen)", NULL};
    assert_int_equal(tf_dovecot_imap(&st.dove, cmds, NULL, 0), 0);
    sync_ok();
    assert_false(server_seen(11));
    m = get_msg(11);
    assert_false(tf_has_flag(m, "\\Seen"));
    sh_val_free(m);
}

/* A change made on the server after the last sync wins over the API's. */
static void test_conflict_server_wins(void **state)
{
    char f[256];
    tf_sync_end end;
    set_seen(13, true);
    const char *cmds[] = {"SELECT INBOX", "UID STORE 13 +FLAGS.SILENT (\\Flagged)", NULL};
    assert_int_equal(tf_dovecot_imap(&st.dove, cmds, NULL, 0), 0);
    tf_stack_sync_and_wait(&st, account_id, "ok", &end);
    server_flags(13, f, sizeof f);
    assert_non_null(strstr(f, "\\Flagged"));
    assert_null(strstr(f, "\\Seen"));
    sh_val *m = get_msg(13);
    assert_true(tf_has_flag(m, "\\Flagged"));
    assert_false(tf_has_flag(m, "\\Seen"));
    sh_val_free(m);
    /* The conflict is in the run's log. */
    sh_val *res = NULL;
    assert_int_equal(tf_stack_call(st.progress, "log.list", tf_id_args(end.progress_id), &res),
                     SH_OK);
    bool found = false;
    for (size_t i = 0; i < sh_val_len(res); i++) {
        const char *e = sh_val_get_str(sh_val_at(res, i), "error", NULL);
        if (e && strstr(e, "message 13 was changed on the server"))
            found = true;
    }
    sh_val_free(res);
    assert_true(found);
}

static void test_http_routes(void **state)
{
    char body[65536];
    assert_int_equal(
        tf_stack_account_http(&st, account_id, "GET", "/messages?limit=5", body, sizeof body), 200);
    assert_non_null(strstr(body, "\"nextCursor\":26"));
    assert_non_null(strstr(body, "\"subject\":\"Message 30\""));
    assert_int_equal(tf_stack_account_http(&st, account_id, "GET", "/messages?limit=5&cursor=26",
                                           body, sizeof body),
                     200);
    assert_non_null(strstr(body, "\"subject\":\"Message 25\""));
    assert_null(strstr(body, "\"subject\":\"Message 26\""));
    assert_int_equal(tf_stack_http(&st, "GET", "/api/accounts/nope/messages", body, sizeof body),
                     404);

    assert_int_equal(
        tf_stack_account_http(&st, account_id, "GET", "/messages/14", body, sizeof body), 200);
    assert_non_null(strstr(body, "\"uid\":14"));
    assert_null(strstr(body, "Seen"));
    assert_int_equal(
        tf_stack_account_http(&st, account_id, "GET", "/messages/0", body, sizeof body), 400);
    assert_int_equal(
        tf_stack_account_http(&st, account_id, "GET", "/messages/9999", body, sizeof body), 404);

    /* read: shown at once, pushed by the sync it asks for */
    assert_int_equal(tf_stack_account_http(&st, account_id, "POST",
                                           "/messages/14/read?folder=INBOX", body, sizeof body),
                     200);
    assert_non_null(strstr(body, "\"flags\":[\"\\\\Seen\"]"));
    assert_int_equal(
        tf_stack_account_http(&st, account_id, "POST", "/messages/15/unread", body, sizeof body),
        200);
    assert_null(strstr(body, "Seen"));
    bool pushed = false;
    for (int i = 0; i < 200 && !pushed; i++) {
        pushed = server_seen(14) && !server_seen(15);
        if (!pushed)
            tf_sleep_ms(50);
    }
    assert_true(pushed);
    sync_ok();

    /* the account view counts the unread messages */
    sh_val *all = tf_stack_list_all(&st, account_id, NULL, 300);
    int unread = 0;
    for (size_t i = 0; i < sh_val_len(all); i++)
        unread += !tf_has_flag(sh_val_at(all, i), "\\Seen");
    sh_val_free(all);
    char want[128];
    snprintf(want, sizeof want, "\"folders\":[{\"name\":\"INBOX\",\"total\":%d,\"unread\":%d}]",
             NMSG, unread);
    assert_int_equal(tf_stack_account_http(&st, account_id, "GET", "", body, sizeof body), 200);
    if (!strstr(body, want))
        fprintf(stderr, "want %s in %s\n", want, body);
    assert_non_null(strstr(body, want));
}

/* restart_worker stops the sync-worker and starts another with one more
 * setting (NULL: none). */
static void restart_worker(const char *env)
{
    assert_int_equal(tf_stop(st.worker_pid, SIGTERM, 10000), 0);
    st.worker_pid = 0;
    st.worker_env = env;
    assert_int_equal(tf_stack_start_worker(&st, false), 0);
}

/* pending_count is how many read/unread changes of INBOX wait for a push. */
static long long pending_count(void)
{
    char key[300];
    snprintf(key, sizeof key, "mail:{%s}:pending:INBOX", account_id);
    sh_cmd *c = sh_cmd_new("HLEN");
    sh_cmd_str(c, key);
    return tf_stack_redis_int(&st, c);
}

/* strict_control sends the strict server one of its test commands. */
static void strict_control(const char *cmd)
{
    const char *cmds[] = {cmd, NULL};
    assert_int_equal(tf_dovecot_imap(&st.dove, cmds, NULL, 0), 0);
}

/* expect_reverted checks that uid shows the server's flags (unread) again,
 * with a flagError holding what, and that the account's errorMessage names
 * the refusal while its status stays ok. */
static void expect_reverted(uint32_t uid, const char *what)
{
    assert_false(server_seen(uid));
    sh_val *m = get_msg(uid);
    assert_false(tf_has_flag(m, "\\Seen"));
    const char *fe = sh_val_get_str(m, "flagError", NULL);
    if (!fe || !strstr(fe, what))
        fail_msg("flagError of %u is %s, not about %s", (unsigned)uid, fe ? fe : "(none)", what);
    sh_val_free(m);
    char status[32], msg[1024];
    tf_stack_account_status(&st, account_id, status, sizeof status, msg, sizeof msg);
    assert_string_equal(status, "ok");
    if (!strstr(msg, "refused") || !strstr(msg, what))
        fail_msg("errorMessage does not name the refusal: %s", msg);
    assert_int_equal(pending_count(), 0);
    /* and the gateway shows it */
    char rest[64], body[8192];
    snprintf(rest, sizeof rest, "/messages/%u", (unsigned)uid);
    assert_int_equal(tf_stack_account_http(&st, account_id, "GET", rest, body, sizeof body), 200);
    if (!strstr(body, "\"flagError\":\"") || !strstr(body, what))
        fail_msg("no flagError in %s", body);
}

/* A command made malformed on purpose (one trailing space, which lenient
 * servers let by) is caught by the strict server; the refusal is visible,
 * and the same change goes through once the commands are right again. */
static void test_malformed_caught(void **state)
{
    restart_worker("SYNC_TEST_WIRE_FAULT=trailing-space");
    assert_false(server_seen(16));
    set_seen(16, true);
    sync_ok();
    assert_int_equal(tf_strict_log_count(&st.dove, "BAD Unexpected extra arguments to UID Store"),
                     1);
    expect_reverted(16, "Unexpected extra arguments");
    restart_worker(NULL);
    set_seen(16, true);
    sh_val *m = get_msg(16);
    assert_null(sh_val_get(m, "flagError"));
    sh_val_free(m);
    sync_ok();
    assert_true(server_seen(16));
    char status[32], msg[1024];
    tf_stack_account_status(&st, account_id, status, sizeof status, msg, sizeof msg);
    assert_string_equal(msg, "");
}

/* A push the server puts off (NO [UNAVAILABLE]) stays pending and is sent
 * again by the next syncs until it is applied. */
static void test_push_put_off(void **state)
{
    strict_control("XSTRICT FAIL-STORE 17 2 NO UNAVAILABLE");
    set_seen(17, true);
    for (int i = 0; i < 2; i++) {
        sync_ok();
        assert_false(server_seen(17));
        assert_int_equal(pending_count(), 1);
        sh_val *m = get_msg(17);
        assert_true(tf_has_flag(m, "\\Seen")); /* still the app's change */
        sh_val_free(m);
    }
    sync_ok();
    assert_true(server_seen(17));
    assert_int_equal(pending_count(), 0);
    assert_int_equal(
        tf_stack_worker_log_count(&st, "event=flag_push_deferred", "uid=17", (const char *)NULL),
        2);
}

/* A push refused for good (NO [CANNOT]) is not retried: the message shows
 * the server's flags again and says why. */
static void test_push_refused(void **state)
{
    strict_control("XSTRICT FAIL-STORE 19 1 NO CANNOT");
    set_seen(19, true);
    sync_ok();
    expect_reverted(19, "CANNOT");
}

/* Every command the worker sent was the grammar's: the strict server
 * answered BAD to none but the one made malformed on purpose. */
static void test_wire_exact(void **state)
{
    assert_int_equal(tf_strict_log_count(&st.dove, "listening"), 1);
    /* The worker's commands did reach it. */
    assert_true(tf_strict_log_count(&st.dove, "UID STORE") >= 4);
    assert_true(tf_strict_log_count(&st.dove, "SELECT INBOX (CONDSTORE)") >= 4);
    tf_stack_expect_bad(&st, 1);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_initial_sync),
    cmocka_unit_test(test_set_seen_pushed),
    cmocka_unit_test(test_conflict_server_wins),
    cmocka_unit_test(test_http_routes),
};
/* Against the strict server also what only it can play. */
static const struct CMUnitTest strict_tests[] = {
    cmocka_unit_test(test_initial_sync),         cmocka_unit_test(test_set_seen_pushed),
    cmocka_unit_test(test_conflict_server_wins), cmocka_unit_test(test_http_routes),
    cmocka_unit_test(test_malformed_caught),     cmocka_unit_test(test_push_put_off),
    cmocka_unit_test(test_push_refused),         cmocka_unit_test(test_wire_exact),
};

static const server_kind kinds[] = {
    {{"test_sync_flags", TF_STACK_TESTS(tests)}, NULL},
    {{"test_sync_flags_strict", TF_STACK_TESTS(strict_tests)}, &strict},
};

int main(void)
{
    return tf_stack_run_groups(kinds, sizeof kinds / sizeof kinds[0], sizeof kinds[0], group_setup);
}
