/* test_sync_dovecot.c - the sync-worker against a real Dovecot: Redis,
 * progress, coordinator and sync-worker run as processes; an account made
 * through the coordinator is synced (1,000 generated messages, envelopes and
 * flags as generated), then a second IMAP client adds, flags and deletes
 * messages and the next sync follows; a wrong password ends in auth_error;
 * a deleted account's mail is dropped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "shared/util.h"
#include "sync_stack.h"

#define NMSG 1000

static tf_stack st;
static char account_id[160];

static int group_setup(void **state)
{
    const tf_stack_opts opts = {
        .name = "test_sync_dovecot", .messages = NMSG, .fetch_batch = 200, .command_timeout = 20};
    *state = &st;
    return tf_stack_start(&st, &opts);
}

static void test_initial_sync(void **state)
{
    tf_sync_end end;
    const tf_account acct = {.password = "secret"};
    tf_stack_create_account(&st, &acct, account_id, sizeof account_id);
    int64_t t0 = sh_mono_ms();
    tf_stack_sync_and_wait(&st, account_id, "ok", &end);
    fprintf(stderr, "initial sync of %d messages: %lld ms\n", NMSG, (long long)(sh_mono_ms() - t0));

    sh_val *all = tf_stack_list_all(&st, account_id, NULL, 300);
    assert_int_equal(sh_val_len(all), NMSG);
    static bool seen[NMSG + 1];
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

    /* A second sync with no change stores nothing twice. */
    tf_stack_sync_and_wait(&st, account_id, "ok", NULL);
    all = tf_stack_list_all(&st, account_id, NULL, 300);
    assert_int_equal(sh_val_len(all), NMSG);
    sh_val_free(all);
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
    char out[4096];
    assert_int_equal(tf_dovecot_imap(&st.dove, cmds, out, sizeof out), 0);
    tf_stack_sync_and_wait(&st, account_id, "ok", NULL);

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

    sh_val *a = sh_val_new_map();
    tf_put_str(a, "accountId", account_id);
    sh_val_set_cstr(a, "uid", sh_val_new_int(2));
    sh_error err;
    res = NULL;
    assert_int_equal(sh_rpc_call(st.worker, "messages.get", a, 5000, &res, &err), SH_ENOTFOUND);
    sh_val_free(a);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_initial_sync),
        cmocka_unit_test(test_incremental),
        cmocka_unit_test(test_deleted_account),
        cmocka_unit_test(test_wrong_password),
    };
    return cmocka_run_group_tests(tests, group_setup, tf_stack_teardown);
}
