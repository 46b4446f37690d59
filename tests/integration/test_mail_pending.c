/* test_mail_pending.c - mail_pending.c against a private Redis: read/unread
 * changes stored at once and queued for the server (one per message, the
 * last one winning, with the folder's UIDVALIDITY and mod-sequence of the
 * moment), taken for a push, forgotten or counted as put off only while no
 * newer change replaced them, entries that cannot be read, the reason of a
 * refusal, and a Redis that stops answering. */
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

#include "keys.h"
#include "mail_fixture.h"
#include "mailstore.h"

#define ST (tf_mail_the()->st)

static void pending_key(char *buf, const char *folder)
{
    assert_true(sync_key_pending(buf, SYNC_KEY_MAX, "a1", folder) > 0);
}

/* entry returns the raw pending entry of uid in folder ("" when none). */
static const char *entry(const char *folder, uint32_t uid)
{
    static char buf[128];
    char key[SYNC_KEY_MAX], field[16];
    pending_key(key, folder);
    snprintf(field, sizeof field, "%u", (unsigned)uid);
    tf_mail_hget(ST, key, field, buf, sizeof buf);
    return buf;
}

static void stored_flags(const char *folder, uint32_t uv, uint32_t uid, char *buf, size_t len)
{
    char key[SYNC_KEY_MAX];
    assert_true(sync_key_message(key, sizeof key, "a1", folder, uv, uid) > 0);
    assert_int_equal(tf_mail_hget(ST, key, "flags", buf, len), 0);
}

static bool unseen(const char *folder, uint32_t uv, uint32_t uid)
{
    char key[SYNC_KEY_MAX];
    assert_true(sync_key_unseen(key, sizeof key, "a1", folder, uv) > 0);
    sh_cmd *c = tf_mail_cmd1("ZSCORE", key);
    sh_cmd_int(c, uid);
    return tf_mail_int(ST, c) == (long long)uid;
}

static void set_seen(const char *folder, uint32_t uid, bool seen)
{
    sh_val *m = NULL;
    sh_error err;
    assert_int_equal(sync_mail_set_seen(ST, "a1", folder, uid, seen, &m, &err), SH_OK);
    sh_val_free(m);
}

/* take reads the pending changes of folder, sorted by UID. */
static int pending_cmp(const void *a, const void *b)
{
    const sync_pending *x = a, *y = b;
    return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static sync_pending *take(const char *folder, size_t *n)
{
    sync_pending *p = NULL;
    sh_error err;
    assert_int_equal(sync_mail_pending(ST, "a1", folder, &p, n, &err), SH_OK);
    assert_non_null(p);
    qsort(p, *n, sizeof *p, pending_cmp);
    return p;
}

/* A change is stored at once (flags, unseen set, flagError cleared) and
 * queued with the folder's UIDVALIDITY and mod-sequence; the message comes
 * back with its new flags, the others of it kept in order. */
static void test_set_seen_stores_and_queues(void **state)
{
    (void)state;
    tf_mail_put(ST, "a1", "INBOX", 7, 3, "$Work \\Flagged");
    tf_mail_put(ST, "a1", "INBOX", 7, 4, "\\Seen $Work");
    tf_mail_folder(ST, "a1", "INBOX", 7, 5, 120);
    sh_error err;
    assert_int_equal(sync_mail_flag_error(ST, "a1", "INBOX", 7, 3, "refused", &err), SH_OK);

    sh_val *m = NULL;
    assert_int_equal(sync_mail_set_seen(ST, "a1", "INBOX", 3, true, &m, &err), SH_OK);
    assert_int_equal(sh_val_int(sh_val_get(m, "uid")), 3);
    const sh_val *flags = sh_val_get(m, "flags");
    assert_int_equal(sh_val_len(flags), 3);
    assert_string_equal(sh_val_str(sh_val_at(flags, 2), NULL), "\\Seen");
    assert_null(sh_val_get(m, "flagError"));
    sh_val_free(m);
    char buf[128];
    stored_flags("INBOX", 7, 3, buf, sizeof buf);
    assert_string_equal(buf, "$Work \\Flagged \\Seen");
    assert_false(unseen("INBOX", 7, 3));
    assert_string_equal(entry("INBOX", 3), "+:7:120");

    /* Marking read what is read keeps one \Seen. */
    set_seen("INBOX", 4, true);
    stored_flags("INBOX", 7, 4, buf, sizeof buf);
    assert_string_equal(buf, "$Work \\Seen");
    assert_string_equal(entry("INBOX", 4), "+:7:120");

    set_seen("INBOX", 4, false);
    stored_flags("INBOX", 7, 4, buf, sizeof buf);
    assert_string_equal(buf, "$Work");
    assert_true(unseen("INBOX", 7, 4));
    assert_string_equal(entry("INBOX", 4), "-:7:120");
}

/* Nothing is stored or queued for a message that is not there. */
static void test_set_seen_not_found(void **state)
{
    (void)state;
    sh_val *m = NULL;
    sh_error err;
    tf_mail_put(ST, "a1", "INBOX", 7, 3, "");
    assert_int_equal(sync_mail_set_seen(ST, "a1", "INBOX", 3, true, &m, &err), SH_ENOTFOUND);
    tf_mail_folder(ST, "a1", "INBOX", 7, 5, 120);
    assert_int_equal(sync_mail_set_seen(ST, "a1", "INBOX", 9, true, &m, &err), SH_ENOTFOUND);
    assert_int_equal(sync_mail_set_seen(ST, "a1", "INBOX", 0, true, &m, &err), SH_ENOTFOUND);
    assert_int_equal(sync_mail_set_seen(ST, "a1", "INBOX", (1LL << 32) + 3, true, &m, &err),
                     SH_ENOTFOUND);
    assert_int_equal(sync_mail_set_seen(ST, "a1", "Drafts", 3, true, &m, &err), SH_ENOTFOUND);
    assert_int_equal(sync_mail_set_seen(ST, "bad id", "INBOX", 3, true, &m, &err), SH_EINVAL);
    assert_null(m);
    char key[SYNC_KEY_MAX];
    pending_key(key, "INBOX");
    assert_int_equal(tf_mail_int(ST, tf_mail_cmd1("EXISTS", key)), 0);
    assert_true(unseen("INBOX", 7, 3));
}

/* One entry per message: the last change wins, each carrying the folder's
 * mod-sequence when it was made; every folder has its own. */
static void test_last_change_wins(void **state)
{
    (void)state;
    for (uint32_t u = 1; u <= 3; u++)
        tf_mail_put(ST, "a1", "INBOX", 7, u, "");
    tf_mail_put(ST, "a1", "Archive", 2, 1, "");
    tf_mail_folder(ST, "a1", "INBOX", 7, 4, 10);
    tf_mail_folder(ST, "a1", "Archive", 2, 2, 5);
    set_seen("INBOX", 1, true);
    set_seen("INBOX", 2, true);
    set_seen("Archive", 1, true);
    tf_mail_folder(ST, "a1", "INBOX", 7, 4, 20); /* a sync ran meanwhile */
    set_seen("INBOX", 1, false);
    set_seen("INBOX", 1, true);
    set_seen("INBOX", 1, false);

    size_t n = 0;
    sync_pending *p = take("INBOX", &n);
    assert_int_equal(n, 2);
    assert_int_equal(p[0].uid, 1);
    assert_false(p[0].seen);
    assert_int_equal(p[0].uidvalidity, 7);
    assert_int_equal(p[0].modseq, 20);
    assert_int_equal(p[0].attempts, 0);
    assert_string_equal(p[0].value, "-:7:20");
    assert_int_equal(p[1].uid, 2);
    assert_true(p[1].seen);
    assert_int_equal(p[1].modseq, 10);
    free(p);
    p = take("Archive", &n);
    assert_int_equal(n, 1);
    assert_int_equal(p[0].uidvalidity, 2);
    assert_int_equal(p[0].modseq, 5);
    free(p);
    p = take("Drafts", &n);
    assert_int_equal(n, 0);
    free(p);
}

/* Done forgets exactly the change that was pushed: one made since stays. */
static void test_done_only_the_pushed_change(void **state)
{
    (void)state;
    tf_mail_put(ST, "a1", "INBOX", 7, 1, "");
    tf_mail_put(ST, "a1", "INBOX", 7, 2, "");
    tf_mail_folder(ST, "a1", "INBOX", 7, 3, 10);
    set_seen("INBOX", 1, true);
    set_seen("INBOX", 2, true);
    size_t n = 0;
    sync_pending *p = take("INBOX", &n);
    assert_int_equal(n, 2);
    /* While uid 2 is pushed, the app marks it unread again. */
    tf_mail_folder(ST, "a1", "INBOX", 7, 3, 11);
    set_seen("INBOX", 2, false);
    sh_error err;
    assert_int_equal(sync_mail_pending_done(ST, "a1", "INBOX", &p[0], &err), SH_OK);
    assert_int_equal(sync_mail_pending_done(ST, "a1", "INBOX", &p[1], &err), SH_OK);
    free(p);
    assert_string_equal(entry("INBOX", 1), "");
    assert_string_equal(entry("INBOX", 2), "-:7:11");
    p = take("INBOX", &n);
    assert_int_equal(n, 1);
    assert_false(p[0].seen);
    /* Done twice is harmless. */
    assert_int_equal(sync_mail_pending_done(ST, "a1", "INBOX", &p[0], &err), SH_OK);
    assert_int_equal(sync_mail_pending_done(ST, "a1", "INBOX", &p[0], &err), SH_OK);
    free(p);
    p = take("INBOX", &n);
    assert_int_equal(n, 0);
    free(p);
}

/* A put-off push counts its attempts in the entry, which stays pending;
 * a newer change starts again from none. */
static void test_retry_counts_attempts(void **state)
{
    (void)state;
    tf_mail_put(ST, "a1", "INBOX", 7, 1, "");
    tf_mail_folder(ST, "a1", "INBOX", 7, 2, 10);
    set_seen("INBOX", 1, true);
    sh_error err;
    for (int i = 1; i <= 3; i++) {
        size_t n = 0;
        sync_pending *p = take("INBOX", &n);
        assert_int_equal(n, 1);
        assert_int_equal(p[0].attempts, i - 1);
        assert_true(p[0].seen);
        assert_int_equal(p[0].modseq, 10);
        assert_int_equal(sync_mail_pending_retry(ST, "a1", "INBOX", &p[0], &err), SH_OK);
        free(p);
        char want[32];
        snprintf(want, sizeof want, "+:7:10:%d", i);
        assert_string_equal(entry("INBOX", 1), want);
    }
    size_t n = 0;
    sync_pending *p = take("INBOX", &n);
    set_seen("INBOX", 1, false);
    /* The stale retry does not overwrite the newer change. */
    assert_int_equal(sync_mail_pending_retry(ST, "a1", "INBOX", &p[0], &err), SH_OK);
    free(p);
    assert_string_equal(entry("INBOX", 1), "-:7:10");
    p = take("INBOX", &n);
    assert_int_equal(p[0].attempts, 0);
    /* An entry that was put off is forgotten by done all the same. */
    assert_int_equal(sync_mail_pending_retry(ST, "a1", "INBOX", &p[0], &err), SH_OK);
    free(p);
    p = take("INBOX", &n);
    assert_int_equal(sync_mail_pending_done(ST, "a1", "INBOX", &p[0], &err), SH_OK);
    free(p);
    assert_string_equal(entry("INBOX", 1), "");
}

/* Entries that cannot be read are passed over, not pushed. */
static void test_unreadable_entries_skipped(void **state)
{
    (void)state;
    char key[SYNC_KEY_MAX];
    pending_key(key, "INBOX");
    static const char *const bad[][2] = {
        {"1", "x:7:10"},    {"2", "+:7"},    {"3", "+"}, {"0", "+:7:10"},   {"abc", "+:7:10"},
        {"4", "+:7:10:-1"}, {"5", "+:x:10"}, {"6", ""},  {"7", "+:7:10:2"}, {"8", "-:7:10"},
    };
    sh_cmd *c = tf_mail_cmd1("HSET", key);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sh_cmd_str(c, bad[i][0]);
        sh_cmd_str(c, bad[i][1]);
    }
    char longv[100];
    memset(longv, '9', sizeof longv - 1);
    longv[0] = '+';
    longv[1] = ':';
    longv[sizeof longv - 1] = '\0';
    sh_cmd_str(c, "10");
    sh_cmd_str(c, longv);
    assert_int_equal(tf_mail_int(ST, c), 11);
    size_t n = 0;
    sync_pending *p = take("INBOX", &n);
    assert_int_equal(n, 2);
    assert_int_equal(p[0].uid, 7);
    assert_true(p[0].seen);
    assert_int_equal(p[0].attempts, 2);
    assert_int_equal(p[1].uid, 8);
    assert_false(p[1].seen);
    free(p);
}

/* The reason of a refusal goes on a stored message only. */
static void test_flag_error(void **state)
{
    (void)state;
    tf_mail_put(ST, "a1", "INBOX", 7, 1, "");
    sh_error err;
    char key[SYNC_KEY_MAX], buf[128];
    assert_int_equal(sync_mail_flag_error(ST, "a1", "INBOX", 7, 1, "NO [CANNOT] x", &err), SH_OK);
    assert_true(sync_key_message(key, sizeof key, "a1", "INBOX", 7, 1) > 0);
    assert_int_equal(tf_mail_hget(ST, key, "flagError", buf, sizeof buf), 0);
    assert_string_equal(buf, "NO [CANNOT] x");
    assert_int_equal(sync_mail_flag_error(ST, "a1", "INBOX", 7, 2, "NO", &err), SH_OK);
    assert_true(sync_key_message(key, sizeof key, "a1", "INBOX", 7, 2) > 0);
    assert_int_equal(tf_mail_int(ST, tf_mail_cmd1("EXISTS", key)), 0);
    assert_int_equal(sync_mail_flag_error(ST, "a1", "INBOX", 8, 1, "NO", &err), SH_OK);
    assert_int_equal(tf_mail_int(ST, sh_cmd_new("DBSIZE")), 3);
}

/* A Redis that stops answering fails each call with a message and a
 * change made meanwhile is not stored; what was pending is still pending
 * once it answers again, and the scripts run after Redis lost them
 * (SCRIPT FLUSH). */
static void test_redis_stalled(void **state)
{
    (void)state;
    tf_mail_put(ST, "a1", "INBOX", 7, 1, "");
    tf_mail_folder(ST, "a1", "INBOX", 7, 2, 10);
    set_seen("INBOX", 1, true);
    size_t n = 0;
    sync_pending *p = take("INBOX", &n);
    assert_int_equal(n, 1);

    pid_t pid = tf_mail_the()->redis.pid;
    kill(pid, SIGSTOP);
    sh_error err;
    sh_error_clear(&err);
    sh_val *m = NULL;
    assert_int_not_equal(sync_mail_set_seen(ST, "a1", "INBOX", 1, false, &m, &err), SH_OK);
    assert_null(m);
    assert_true(err.msg[0] != '\0');
    sync_pending *q = (sync_pending *)&n;
    assert_int_not_equal(sync_mail_pending(ST, "a1", "INBOX", &q, &n, &err), SH_OK);
    assert_null(q);
    assert_int_equal(n, 0);
    kill(pid, SIGCONT);
    int rc = SH_EUNAVAIL;
    for (int i = 0; i < 60 && rc != SH_OK; i++) {
        rc = sync_mail_pending(ST, "a1", "INBOX", &q, &n, &err);
        if (rc)
            tf_sleep_ms(50);
    }
    assert_int_equal(rc, SH_OK);
    assert_int_equal(n, 1);
    assert_string_equal(q[0].value, "+:7:10");
    free(q);
    char buf[64];
    stored_flags("INBOX", 7, 1, buf, sizeof buf);
    assert_string_equal(buf, "\\Seen");

    sh_reply *r = NULL;
    assert_int_equal(sh_store_call(ST, tf_mail_cmd1("SCRIPT", "FLUSH"), &r, &err), SH_OK);
    sh_reply_free(r);
    assert_int_equal(sync_mail_pending_retry(ST, "a1", "INBOX", &p[0], &err), SH_OK);
    assert_string_equal(entry("INBOX", 1), "+:7:10:1");
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_set_seen_stores_and_queues, tf_mail_each),
        cmocka_unit_test_setup(test_set_seen_not_found, tf_mail_each),
        cmocka_unit_test_setup(test_last_change_wins, tf_mail_each),
        cmocka_unit_test_setup(test_done_only_the_pushed_change, tf_mail_each),
        cmocka_unit_test_setup(test_retry_counts_attempts, tf_mail_each),
        cmocka_unit_test_setup(test_unreadable_entries_skipped, tf_mail_each),
        cmocka_unit_test_setup(test_flag_error, tf_mail_each),
        cmocka_unit_test_setup(test_redis_stalled, tf_mail_each),
    };
    return cmocka_run_group_tests(tests, tf_mail_setup, tf_mail_teardown);
}
