/* test_sync_keys.c - the sync-worker's Redis key names (keys.c): each
 * builder's exact bytes under libshared's mail prefix with the account id
 * as the hash tag, the lengths returned, ids the registry refuses, buffers
 * one byte short, and the longest ids and folder names the worker lets
 * through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <string.h>

#include "keys.h"
#include "shared/keys.h"

/* expect_key checks that a builder returned the length of want, wrote
 * want, and that the key belongs to the sync-worker in the registry. */
static void expect_key(int n, const char *buf, const char *want)
{
    assert_string_equal(buf, want);
    assert_int_equal(n, (int)strlen(want));
    assert_string_equal(sh_key_owner(buf, strlen(buf)), SH_OWNER_SYNC);
}

static void test_names(void **state)
{
    (void)state;
    char k[SYNC_KEY_MAX];
    expect_key(sync_key_state(k, sizeof k, "a1", "INBOX"), k, "mail:{a1}:state:INBOX");
    expect_key(sync_key_index(k, sizeof k, "a1", "INBOX", 7), k, "mail:{a1}:idx:INBOX:7");
    expect_key(sync_key_message(k, sizeof k, "a1", "INBOX", 7, 42), k, "mail:{a1}:m:INBOX:7:42");
    expect_key(sync_key_unseen(k, sizeof k, "a1", "INBOX", 7), k, "mail:{a1}:unseen:INBOX:7");
    expect_key(sync_key_pending(k, sizeof k, "a1", "INBOX"), k, "mail:{a1}:pending:INBOX");
    expect_key(sync_key_folders(k, sizeof k, "a1"), k, "mail:{a1}:folders");
    expect_key(sync_key_account_pattern(k, sizeof k, "a1"), k, "mail:{a1}:*");
    /* Numbers are unsigned and whole up to the 32-bit maximum. */
    expect_key(sync_key_message(k, sizeof k, "a", "F", UINT32_MAX, UINT32_MAX), k,
               "mail:{a}:m:F:4294967295:4294967295");
    expect_key(sync_key_index(k, sizeof k, "a", "F", 0), k, "mail:{a}:idx:F:0");
    /* Folder names are UTF-8 and kept byte for byte, spaces and quotes too. */
    expect_key(sync_key_state(k, sizeof k, "a", "Entw\xc3\xbcrfe"), k,
               "mail:{a}:state:Entw\xc3\xbcrfe");
    expect_key(sync_key_index(k, sizeof k, "a", "Sent Items", 3), k, "mail:{a}:idx:Sent Items:3");
    expect_key(sync_key_pending(k, sizeof k, "a", "\"q\""), k, "mail:{a}:pending:\"q\"");
    /* Every character the id syntax allows. */
    expect_key(sync_key_folders(k, sizeof k, "Az09._:-"), k, "mail:{Az09._:-}:folders");
}

/* Ids outside [A-Za-z0-9._:-]{1,128} are refused by every builder, above
 * all those that would move the hash tag or widen the SCAN pattern. */
/* The account of a mail key is its hash tag; keys of other prefixes, and
 * tags that make no id, have none. */
static void test_account_of(void **state)
{
    (void)state;
    char id[32], k[SYNC_KEY_MAX];
    expect_key(sync_key_all_pattern(k, sizeof k), k, "mail:{*");
    assert_int_equal(sync_key_account_of("mail:{a1}:m:INBOX:1:2", 21, id, sizeof id), 2);
    assert_string_equal(id, "a1");
    assert_int_equal(sync_key_account_of("mail:{a.b-c}:folders", 20, id, sizeof id), 5);
    assert_string_equal(id, "a.b-c");
    const char *bad[] = {"mail:a1:x",    "mail:{}:x",    "mail:{a1",
                         "account:{a1}", "mail:{a b}:x", "mail:"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(sync_key_account_of(bad[i], strlen(bad[i]), id, sizeof id), -1);
    /* The length given is the key's, NUL or not. */
    assert_int_equal(sync_key_account_of("mail:{a1}", 8, id, sizeof id), -1);
    assert_int_equal(sync_key_account_of("mail:{abcdef}", 13, id, 4), -1);
}

static void test_hostile_ids(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",     "a}b", "a{b",      "}",    "a b",  "a*",    "a?",        "a[b]",
        "x\ny", "a/b", "\xc3\xa9", "a\\b", "a\"b", "a\x7f", "tab\there", NULL,
    };
    for (size_t i = 0; bad[i]; i++) {
        char k[SYNC_KEY_MAX];
        memcpy(k, "untouched", 10);
        assert_int_equal(sync_key_state(k, sizeof k, bad[i], "INBOX"), -1);
        assert_int_equal(sync_key_index(k, sizeof k, bad[i], "INBOX", 1), -1);
        assert_int_equal(sync_key_message(k, sizeof k, bad[i], "INBOX", 1, 1), -1);
        assert_int_equal(sync_key_unseen(k, sizeof k, bad[i], "INBOX", 1), -1);
        assert_int_equal(sync_key_pending(k, sizeof k, bad[i], "INBOX"), -1);
        assert_int_equal(sync_key_folders(k, sizeof k, bad[i]), -1);
        assert_int_equal(sync_key_account_pattern(k, sizeof k, bad[i]), -1);
        /* Nothing is written for an id refused before formatting. */
        assert_string_equal(k, "untouched");
    }
    /* An id with a NUL inside is read up to the NUL, as a C string. */
    char k[SYNC_KEY_MAX];
    expect_key(sync_key_folders(k, sizeof k, "ab\0cd"), k, "mail:{ab}:folders");
}

static void test_lengths(void **state)
{
    (void)state;
    char id[SH_ID_MAX + 2];
    memset(id, 'i', sizeof id);
    id[SH_ID_MAX] = '\0';
    char folder[201];
    memset(folder, 'f', 200);
    folder[200] = '\0';
    /* The largest key keys.h promises to fit: a 128-byte id, a 200-byte
     * folder and two 32-bit numbers. */
    char k[SYNC_KEY_MAX];
    int n = sync_key_message(k, sizeof k, id, folder, UINT32_MAX, UINT32_MAX);
    assert_int_equal(n, 6 + SH_ID_MAX + 1 + 3 + 200 + 22);
    assert_true(n < SYNC_KEY_MAX);
    assert_int_equal((int)strlen(k), n);
    /* One byte more of id is refused. */
    id[SH_ID_MAX] = 'i';
    id[SH_ID_MAX + 1] = '\0';
    assert_int_equal(sync_key_message(k, sizeof k, id, folder, 1, 1), -1);
    assert_int_equal(sync_key_account_pattern(k, sizeof k, id), -1);

    /* A buffer exactly one byte short of the key and its NUL is refused,
     * the exact size is enough. */
    const char *want = "mail:{a1}:m:INBOX:7:42";
    size_t len = strlen(want);
    char small[64];
    assert_int_equal(sync_key_message(small, len, "a1", "INBOX", 7, 42), -1);
    assert_int_equal(sync_key_message(small, len + 1, "a1", "INBOX", 7, 42), (int)len);
    assert_string_equal(small, want);
    assert_int_equal(sync_key_folders(small, 0, "a1"), -1);
    assert_int_equal(sync_key_account_pattern(small, strlen("mail:{a1}:*"), "a1"), -1);

    /* A folder name longer than a key can hold is refused, not cut: a cut
     * name would be another folder's key. */
    char huge[SYNC_KEY_MAX + 16];
    memset(huge, 'h', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    char big[4 * SYNC_KEY_MAX];
    assert_int_equal(sync_key_state(big, sizeof big, "a", huge), -1);
    assert_int_equal(sync_key_index(big, sizeof big, "a", huge, 1), -1);
    assert_int_equal(sync_key_message(big, sizeof big, "a", huge, 1, 1), -1);
    assert_int_equal(sync_key_unseen(big, sizeof big, "a", huge, 1), -1);
    assert_int_equal(sync_key_pending(big, sizeof big, "a", huge), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_account_of),
        cmocka_unit_test(test_hostile_ids),
        cmocka_unit_test(test_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
