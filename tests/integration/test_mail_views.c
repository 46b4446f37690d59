/* test_mail_views.c - mail_views.c against a private Redis: a folder's
 * messages a page at a time (newest first, the cursor, the last page), the
 * message as the API shows it, messages not found, arguments no message can
 * match, and every folder's counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "mail_fixture.h"
#include "mailstore.h"

#define ST (tf_mail_the()->st)

/* page lists a page, checks its UIDs are want[0..n-1] and returns its
 * nextCursor (0 for nil). */
static long long page(const char *folder, long long limit, long long cursor, const uint32_t *want,
                      size_t n)
{
    sh_val *res = NULL;
    sh_error err;
    assert_int_equal(sync_mail_list(ST, "a1", folder, limit, cursor, &res, &err), SH_OK);
    const sh_val *msgs = sh_val_get(res, "messages");
    assert_int_equal(sh_val_type_of(msgs), SH_VAL_ARRAY);
    assert_int_equal(sh_val_len(msgs), n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sh_val_int(sh_val_get(sh_val_at(msgs, i), "uid")), want[i]);
    const sh_val *next = sh_val_get(res, "nextCursor");
    assert_non_null(next);
    long long v = sh_val_type_of(next) == SH_VAL_NIL ? 0 : sh_val_int(next);
    if (v)
        assert_int_equal(sh_val_type_of(next), SH_VAL_INT);
    sh_val_free(res);
    return v;
}

/* A folder never synced is an empty page, not an error. */
static void test_list_never_synced(void **state)
{
    (void)state;
    tf_mail_put(ST, "a1", "INBOX", 5, 1, ""); /* stored, but no state */
    assert_int_equal(page("INBOX", 10, 0, NULL, 0), 0);
    assert_int_equal(page("Nowhere", 10, 0, NULL, 0), 0);
}

/* Pages run from the highest UID down, numerically, each cursor starting
 * below the last UID shown; the last page has no cursor, also when it is
 * exactly full. */
static void test_list_pages(void **state)
{
    (void)state;
    const uint32_t uids[] = {3, 5, 9, 12, 40, 41, 100, 1000};
    for (size_t i = 0; i < 8; i++)
        tf_mail_put(ST, "a1", "INBOX", 7, uids[i], "");
    tf_mail_folder(ST, "a1", "INBOX", 7, 1001, 1);

    const uint32_t p1[] = {1000, 100, 41}, p2[] = {40, 12, 9}, p3[] = {5, 3};
    assert_int_equal(page("INBOX", 3, 0, p1, 3), 41);
    assert_int_equal(page("INBOX", 3, 41, p2, 3), 9);
    assert_int_equal(page("INBOX", 3, 9, p3, 2), 0);
    /* Exactly full: nothing after it. */
    assert_int_equal(page("INBOX", 2, 9, p3, 2), 0);
    assert_int_equal(page("INBOX", 1, 9, p3, 1), 5);
    /* A cursor between UIDs, below all of them, above all of them. */
    const uint32_t from11[] = {9, 5, 3};
    assert_int_equal(page("INBOX", 50, 11, from11, 3), 0);
    assert_int_equal(page("INBOX", 50, 3, NULL, 0), 0);
    assert_int_equal(page("INBOX", 50, 1, NULL, 0), 0);
    const uint32_t all[] = {1000, 100, 41, 40, 12, 9, 5, 3};
    assert_int_equal(page("INBOX", 50, 5000, all, 8), 0);
    assert_int_equal(page("INBOX", 8, 0, all, 8), 0);
    assert_int_equal(page("INBOX", 7, 0, all, 7), 5);
}

/* Only the folder's current UIDVALIDITY is shown; a UID whose message
 * hash is gone (removed while listing) is left out of the page. */
static void test_list_current_uidvalidity(void **state)
{
    (void)state;
    tf_mail_put(ST, "a1", "INBOX", 1, 50, "");
    tf_mail_put(ST, "a1", "INBOX", 2, 3, "");
    tf_mail_put(ST, "a1", "INBOX", 2, 4, "");
    tf_mail_folder(ST, "a1", "INBOX", 2, 5, 1);
    const uint32_t want[] = {4, 3};
    assert_int_equal(page("INBOX", 10, 0, want, 2), 0);

    char key[SYNC_KEY_MAX];
    assert_true(sync_key_message(key, sizeof key, "a1", "INBOX", 2, 4) > 0);
    assert_int_equal(tf_mail_int(ST, tf_mail_cmd1("DEL", key)), 1);
    assert_int_equal(page("INBOX", 10, 0, want + 1, 1), 0);
}

/* A limit below one shows nothing rather than everything. */
static void test_list_bad_limit(void **state)
{
    (void)state;
    for (uint32_t u = 1; u <= 5; u++)
        tf_mail_put(ST, "a1", "INBOX", 1, u, "");
    tf_mail_folder(ST, "a1", "INBOX", 1, 6, 1);
    sh_val *res = NULL;
    sh_error err;
    for (long long limit = 0; limit >= -3; limit--) {
        int rc = sync_mail_list(ST, "a1", "INBOX", limit, 0, &res, &err);
        if (rc == SH_OK) {
            assert_int_equal(sh_val_len(sh_val_get(res, "messages")), 0);
            sh_val_free(res);
            res = NULL;
        } else {
            assert_int_equal(rc, SH_EINVAL);
            assert_null(res);
        }
    }
    char longid[200];
    memset(longid, 'a', 150);
    longid[150] = '\0';
    assert_int_equal(sync_mail_list(ST, longid, "INBOX", 5, 0, &res, &err), SH_EINVAL);
    assert_null(res);
    assert_int_equal(sync_mail_list(ST, "bad id", "INBOX", 5, 0, &res, &err), SH_EINVAL);
}

/* The message as the API shows it: numbers as integers, flags as an
 * array, text as stored, flagError only once set. */
static void test_get_view(void **state)
{
    (void)state;
    tf_mail_put(ST, "a1", "Sent Items", 77, 12, "\\Seen  $Work \\Flagged");
    tf_mail_put(ST, "a1", "Sent Items", 77, 13, "");
    tf_mail_folder(ST, "a1", "Sent Items", 77, 14, 3);
    sh_val *m = NULL;
    sh_error err;
    assert_int_equal(sync_mail_get(ST, "a1", "Sent Items", 12, &m, &err), SH_OK);
    assert_int_equal(sh_val_type_of(sh_val_get(m, "uid")), SH_VAL_INT);
    assert_int_equal(sh_val_int(sh_val_get(m, "uid")), 12);
    assert_int_equal(sh_val_int(sh_val_get(m, "uidvalidity")), 77);
    assert_int_equal(sh_val_int(sh_val_get(m, "size")), 1012);
    assert_string_equal(sh_val_get_str(m, "subject", NULL), "Message 12");
    assert_string_equal(sh_val_get_str(m, "folder", NULL), "Sent Items");
    assert_string_equal(sh_val_get_str(m, "from", NULL), "Sender <s@example.com>");
    assert_string_equal(sh_val_get_str(m, "internalDate", NULL), "2026-01-02T03:04:05Z");
    assert_string_equal(sh_val_get_str(m, "cc", NULL), "");
    const sh_val *flags = sh_val_get(m, "flags");
    assert_int_equal(sh_val_type_of(flags), SH_VAL_ARRAY);
    assert_int_equal(sh_val_len(flags), 3); /* the doubled space makes no empty flag */
    assert_string_equal(sh_val_str(sh_val_at(flags, 0), NULL), "\\Seen");
    assert_string_equal(sh_val_str(sh_val_at(flags, 1), NULL), "$Work");
    assert_string_equal(sh_val_str(sh_val_at(flags, 2), NULL), "\\Flagged");
    assert_null(sh_val_get(m, "flagError"));
    sh_val_free(m);

    assert_int_equal(sync_mail_get(ST, "a1", "Sent Items", 13, &m, &err), SH_OK);
    assert_int_equal(sh_val_type_of(sh_val_get(m, "flags")), SH_VAL_ARRAY);
    assert_int_equal(sh_val_len(sh_val_get(m, "flags")), 0);
    sh_val_free(m);

    assert_int_equal(sync_mail_flag_error(ST, "a1", "Sent Items", 77, 13, "NO [CANNOT] no", &err),
                     SH_OK);
    assert_int_equal(sync_mail_get(ST, "a1", "Sent Items", 13, &m, &err), SH_OK);
    assert_string_equal(sh_val_get_str(m, "flagError", NULL), "NO [CANNOT] no");
    sh_val_free(m);
}

/* Not found: a UID not stored, a folder never synced, a message of an old
 * UIDVALIDITY, and UIDs no message can have (0, beyond 32 bits: not the
 * message their low 32 bits name). */
static void test_get_not_found(void **state)
{
    (void)state;
    tf_mail_put(ST, "a1", "INBOX", 1, 1, "");
    tf_mail_put(ST, "a1", "INBOX", 2, 2, "");
    tf_mail_folder(ST, "a1", "INBOX", 2, 3, 1);
    sh_val *m = NULL;
    sh_error err;
    assert_int_equal(sync_mail_get(ST, "a1", "INBOX", 2, &m, &err), SH_OK);
    sh_val_free(m);
    m = NULL;
    const long long absent[] = {3, 1, 0, -2, (1LL << 32) + 2, -((1LL << 32) - 2)};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
        sh_error_clear(&err);
        assert_int_equal(sync_mail_get(ST, "a1", "INBOX", absent[i], &m, &err), SH_ENOTFOUND);
        assert_null(m);
        assert_true(err.msg[0] != '\0');
    }
    assert_int_equal(sync_mail_get(ST, "a1", "Drafts", 2, &m, &err), SH_ENOTFOUND);
    assert_int_equal(sync_mail_get(ST, "a2", "INBOX", 2, &m, &err), SH_ENOTFOUND);
    assert_int_equal(sync_mail_get(ST, "bad id", "INBOX", 2, &m, &err), SH_EINVAL);
}

/* find_folder returns the entry of name in a counts reply, or NULL. */
static const sh_val *find_folder(const sh_val *res, const char *name)
{
    const sh_val *fs = sh_val_get(res, "folders");
    for (size_t i = 0; i < sh_val_len(fs); i++)
        if (strcmp(sh_val_get_str(sh_val_at(fs, i), "name", NULL), name) == 0)
            return sh_val_at(fs, i);
    return NULL;
}

/* Every folder synced at least once, with its total and unread at its
 * current UIDVALIDITY; other accounts and old UIDVALIDITYs do not count. */
static void test_counts(void **state)
{
    (void)state;
    sh_val *res = NULL;
    sh_error err;
    assert_int_equal(sync_mail_counts(ST, "a1", &res, &err), SH_OK);
    assert_int_equal(sh_val_type_of(sh_val_get(res, "folders")), SH_VAL_ARRAY);
    assert_int_equal(sh_val_len(sh_val_get(res, "folders")), 0);
    sh_val_free(res);

    for (uint32_t u = 1; u <= 10; u++)
        tf_mail_put(ST, "a1", "INBOX", 3, u, u <= 4 ? "" : "\\Seen");
    for (uint32_t u = 1; u <= 20; u++)
        tf_mail_put(ST, "a1", "INBOX", 2, u, "");
    tf_mail_put(ST, "a1", "Entw\xc3\xbcrfe", 1, 1, "$Draft");
    tf_mail_put(ST, "a2", "INBOX", 3, 1, "");
    tf_mail_folder(ST, "a1", "INBOX", 3, 11, 1);
    tf_mail_folder(ST, "a1", "Entw\xc3\xbcrfe", 1, 2, 1);
    tf_mail_folder(ST, "a1", "Empty", 8, 1, 1);
    assert_int_equal(sync_mail_counts(ST, "a1", &res, &err), SH_OK);
    assert_int_equal(sh_val_len(sh_val_get(res, "folders")), 3);
    const sh_val *f = find_folder(res, "INBOX");
    assert_non_null(f);
    assert_int_equal(sh_val_int(sh_val_get(f, "total")), 10);
    assert_int_equal(sh_val_int(sh_val_get(f, "unread")), 4);
    f = find_folder(res, "Entw\xc3\xbcrfe");
    assert_non_null(f);
    assert_int_equal(sh_val_int(sh_val_get(f, "total")), 1);
    assert_int_equal(sh_val_int(sh_val_get(f, "unread")), 1);
    f = find_folder(res, "Empty");
    assert_non_null(f);
    assert_int_equal(sh_val_int(sh_val_get(f, "total")), 0);
    assert_int_equal(sh_val_int(sh_val_get(f, "unread")), 0);
    sh_val_free(res);

    /* A name in the set whose state is gone is left out. */
    char skey[SYNC_KEY_MAX];
    assert_true(sync_key_state(skey, sizeof skey, "a1", "Empty") > 0);
    assert_int_equal(tf_mail_int(ST, tf_mail_cmd1("DEL", skey)), 1);
    assert_int_equal(sync_mail_counts(ST, "a1", &res, &err), SH_OK);
    assert_int_equal(sh_val_len(sh_val_get(res, "folders")), 2);
    assert_null(find_folder(res, "Empty"));
    sh_val_free(res);
    assert_int_equal(sync_mail_counts(ST, "bad id", &res, &err), SH_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_list_never_synced, tf_mail_each),
        cmocka_unit_test_setup(test_list_pages, tf_mail_each),
        cmocka_unit_test_setup(test_list_current_uidvalidity, tf_mail_each),
        cmocka_unit_test_setup(test_list_bad_limit, tf_mail_each),
        cmocka_unit_test_setup(test_get_view, tf_mail_each),
        cmocka_unit_test_setup(test_get_not_found, tf_mail_each),
        cmocka_unit_test_setup(test_counts, tf_mail_each),
    };
    return cmocka_run_group_tests(tests, tf_mail_setup, tf_mail_teardown);
}
