/* test_mailstore.c - mailstore.c against a private Redis: a folder's state,
 * message writes and their unseen set, index and flag reads (across the
 * module's pipeline chunks), removal of messages, folders and accounts,
 * hostile ids, names and sizes, error replies, and Redis going away and
 * coming back. */
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

static long long zcard(const char *key)
{
    return tf_mail_int(ST, tf_mail_cmd1("ZCARD", key));
}

static long long exists(const char *key)
{
    return tf_mail_int(ST, tf_mail_cmd1("EXISTS", key));
}

/* zscore is the score of member uid in key, -1 when absent. */
static long long zscore(const char *key, uint32_t uid)
{
    sh_cmd *c = tf_mail_cmd1("ZSCORE", key);
    sh_cmd_int(c, uid);
    return tf_mail_int(ST, c);
}

static void msg_key(char *buf, const char *acct, const char *folder, uint32_t uv, uint32_t uid)
{
    assert_true(sync_key_message(buf, SYNC_KEY_MAX, acct, folder, uv, uid) > 0);
}

static void idx_key(char *buf, const char *acct, const char *folder, uint32_t uv)
{
    assert_true(sync_key_index(buf, SYNC_KEY_MAX, acct, folder, uv) > 0);
}

static void unseen_key(char *buf, const char *acct, const char *folder, uint32_t uv)
{
    assert_true(sync_key_unseen(buf, SYNC_KEY_MAX, acct, folder, uv) > 0);
}

/* check_field checks that field of hash key holds want. */
static void check_field(const char *key, const char *field, const char *want)
{
    char buf[256];
    assert_int_equal(tf_mail_hget(ST, key, field, buf, sizeof buf), 0);
    assert_string_equal(buf, want);
}

/* A folder never synced reads as zeros; a state written reads back whole,
 * with the extremes of each field, and names the folder as synced. */
static void test_state_round_trip(void **state)
{
    (void)state;
    sync_folder_state s;
    sh_error err;
    memset(&s, 0xff, sizeof s);
    assert_int_equal(sync_mail_state_get(ST, "a1", "INBOX", &s, &err), SH_OK);
    assert_int_equal(s.uidvalidity, 0);
    assert_int_equal(s.uidnext, 0);
    assert_int_equal(s.highestmodseq, 0);
    assert_int_equal(s.last_full_check, 0);

    /* RFC 7162 mod-sequences are 63-bit. */
    sync_folder_state w = {.uidvalidity = UINT32_MAX,
                           .uidnext = UINT32_MAX - 1,
                           .highestmodseq = INT64_MAX,
                           .last_full_check = 1767225600123LL};
    assert_int_equal(sync_mail_state_set(ST, "a1", "Sent Items", &w, &err), SH_OK);
    assert_int_equal(sync_mail_state_get(ST, "a1", "Sent Items", &s, &err), SH_OK);
    assert_int_equal(s.uidvalidity, UINT32_MAX);
    assert_int_equal(s.uidnext, UINT32_MAX - 1);
    assert_true(s.highestmodseq == (uint64_t)INT64_MAX);
    assert_int_equal(s.last_full_check, 1767225600123LL);

    char set[SYNC_KEY_MAX];
    assert_true(sync_key_folders(set, sizeof set, "a1") > 0);
    sh_cmd *c = tf_mail_cmd1("SISMEMBER", set);
    sh_cmd_str(c, "Sent Items");
    assert_int_equal(tf_mail_int(ST, c), 1);
    /* Another account and another folder are not touched. */
    assert_int_equal(sync_mail_state_get(ST, "a2", "Sent Items", &s, &err), SH_OK);
    assert_int_equal(s.uidvalidity, 0);
    assert_int_equal(sync_mail_state_get(ST, "a1", "INBOX", &s, &err), SH_OK);
    assert_int_equal(s.uidvalidity, 0);

    /* A later state replaces the earlier one. */
    w.uidnext = 7;
    w.highestmodseq = 3;
    assert_int_equal(sync_mail_state_set(ST, "a1", "Sent Items", &w, &err), SH_OK);
    assert_int_equal(sync_mail_state_get(ST, "a1", "Sent Items", &s, &err), SH_OK);
    assert_int_equal(s.uidnext, 7);
    assert_int_equal(s.highestmodseq, 3);
}

static void test_flags_seen(void **state)
{
    (void)state;
    assert_true(sync_mail_flags_seen("\\Seen"));
    assert_true(sync_mail_flags_seen("\\Flagged \\Seen"));
    assert_true(sync_mail_flags_seen("\\Seen \\Answered"));
    assert_true(sync_mail_flags_seen("$Junk \\Seen $Work"));
    assert_false(sync_mail_flags_seen(NULL));
    assert_false(sync_mail_flags_seen(""));
    assert_false(sync_mail_flags_seen("\\Seenx"));
    assert_false(sync_mail_flags_seen("x\\Seen"));
    assert_false(sync_mail_flags_seen("\\Seenx \\Flagged x\\Seen"));
    assert_false(sync_mail_flags_seen("\\seen")); /* flags are case-sensitive as stored */
    assert_true(sync_mail_flags_seen("x\\Seen \\Seen"));
}

/* A message write sets every field, the index and the unseen set; written
 * again it changes nothing; written seen it leaves the unseen set. */
static void test_put_message(void **state)
{
    (void)state;
    char key[SYNC_KEY_MAX], idx[SYNC_KEY_MAX], unseen[SYNC_KEY_MAX];
    msg_key(key, "a1", "INBOX", 9, 42);
    idx_key(idx, "a1", "INBOX", 9);
    unseen_key(unseen, "a1", "INBOX", 9);

    tf_mail_put(ST, "a1", "INBOX", 9, 42, "\\Flagged");
    check_field(key, "uid", "42");
    check_field(key, "uidvalidity", "9");
    check_field(key, "size", "1042");
    check_field(key, "subject", "Message 42");
    check_field(key, "folder", "INBOX");
    check_field(key, "flags", "\\Flagged");
    check_field(key, "cc", "");
    assert_int_equal(zscore(idx, 42), 42);
    assert_int_equal(zscore(unseen, 42), 42);

    tf_mail_put(ST, "a1", "INBOX", 9, 42, "\\Flagged");
    assert_int_equal(zcard(idx), 1);
    assert_int_equal(zcard(unseen), 1);
    assert_int_equal(tf_mail_int(ST, tf_mail_cmd1("HLEN", key)), 12);

    tf_mail_put(ST, "a1", "INBOX", 9, 42, "\\Seen \\Flagged");
    assert_int_equal(zcard(idx), 1);
    assert_int_equal(zcard(unseen), 0);

    /* Absent text fields (NULL) are stored as "". */
    sync_msg m = {.uid = 43, .flags = ""};
    sh_cmd *cmds[SYNC_MAIL_PUT_CMDS];
    sh_error err;
    assert_int_equal(sync_mail_put_cmds("a1", "INBOX", 9, &m, cmds), SH_OK);
    assert_int_equal(sync_mail_run(ST, cmds, SYNC_MAIL_PUT_CMDS, &err), SH_OK);
    msg_key(key, "a1", "INBOX", 9, 43);
    check_field(key, "subject", "");
    assert_int_equal(zscore(unseen, 43), 43);
}

/* A flag update changes the flags and the unseen set, nothing else. */
static void test_flags_cmds(void **state)
{
    (void)state;
    char key[SYNC_KEY_MAX], unseen[SYNC_KEY_MAX];
    msg_key(key, "a1", "INBOX", 9, 5);
    unseen_key(unseen, "a1", "INBOX", 9);
    tf_mail_put(ST, "a1", "INBOX", 9, 5, "");
    assert_int_equal(zcard(unseen), 1);

    sh_cmd *cmds[SYNC_MAIL_FLAGS_CMDS];
    sh_error err;
    assert_int_equal(sync_mail_flags_cmds("a1", "INBOX", 9, 5, "\\Seen $Work", cmds), SH_OK);
    assert_int_equal(sync_mail_run(ST, cmds, SYNC_MAIL_FLAGS_CMDS, &err), SH_OK);
    check_field(key, "flags", "\\Seen $Work");
    assert_int_equal(zcard(unseen), 0);
    check_field(key, "subject", "Message 5");

    assert_int_equal(sync_mail_flags_cmds("a1", "INBOX", 9, 5, "$Work", cmds), SH_OK);
    assert_int_equal(sync_mail_run(ST, cmds, SYNC_MAIL_FLAGS_CMDS, &err), SH_OK);
    assert_int_equal(zscore(unseen, 5), 5);
}

/* The index is numeric and ascending; counts and flags follow the stored
 * messages, across more than one pipeline chunk (500 per chunk). */
static void test_index_count_flags(void **state)
{
    (void)state;
    sh_error err;
    uint32_t *uids = NULL;
    size_t n = 99;
    assert_int_equal(sync_mail_index(ST, "a1", "INBOX", 9, &uids, &n, &err), SH_OK);
    assert_int_equal(n, 0);
    free(uids);

    const uint32_t some[] = {100, 2, 10, UINT32_MAX, 1};
    for (size_t i = 0; i < 5; i++)
        tf_mail_put(ST, "a1", "INBOX", 9, some[i], some[i] % 2 ? "\\Seen" : "");
    assert_int_equal(sync_mail_index(ST, "a1", "INBOX", 9, &uids, &n, &err), SH_OK);
    assert_int_equal(n, 5);
    const uint32_t want[] = {1, 2, 10, 100, UINT32_MAX};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(uids[i], want[i]);
    free(uids);
    /* One window of the index: by UID, at most max of them. */
    assert_int_equal(sync_mail_index_range(ST, "a1", "INBOX", 9, 2, 100, 10, &uids, &n, &err),
                     SH_OK);
    assert_int_equal(n, 3);
    assert_int_equal(uids[0], 2);
    assert_int_equal(uids[2], 100);
    free(uids);
    assert_int_equal(sync_mail_index_range(ST, "a1", "INBOX", 9, 0, UINT32_MAX, 2, &uids, &n, &err),
                     SH_OK);
    assert_int_equal(n, 2);
    assert_int_equal(uids[1], 2);
    free(uids);
    assert_int_equal(
        sync_mail_index_range(ST, "a1", "INBOX", 9, 101, UINT32_MAX, 9, &uids, &n, &err), SH_OK);
    assert_int_equal(n, 1);
    assert_int_equal(uids[0], UINT32_MAX);
    free(uids);
    long long count = -1;
    assert_int_equal(sync_mail_count(ST, "a1", "INBOX", 9, &count, &err), SH_OK);
    assert_int_equal(count, 5);
    assert_int_equal(sync_mail_count(ST, "a1", "INBOX", 8, &count, &err), SH_OK);
    assert_int_equal(count, 0);

    /* 1,200 messages: flags read back in order, absent ones NULL. */
    for (uint32_t u = 1000; u < 2200; u++)
        tf_mail_put(ST, "a1", "Big", 3, u, u % 3 ? "\\Seen" : "\\Flagged");
    uint32_t ask[1300];
    for (size_t i = 0; i < 1300; i++)
        ask[i] = (uint32_t)(2250 - i); /* 2250 down to 951: 100 absent */
    char **flags = NULL;
    assert_int_equal(sync_mail_flags(ST, "a1", "Big", 3, ask, 1300, &flags, &err), SH_OK);
    size_t present = 0;
    for (size_t i = 0; i < 1300; i++) {
        if (ask[i] < 1000 || ask[i] >= 2200) {
            assert_null(flags[i]);
            continue;
        }
        present++;
        assert_non_null(flags[i]);
        assert_string_equal(flags[i], ask[i] % 3 ? "\\Seen" : "\\Flagged");
    }
    assert_int_equal(present, 1200);
    sync_mail_flags_free(flags, 1300);
    sync_mail_flags_free(NULL, 3);
    assert_int_equal(sync_mail_flags(ST, "a1", "Big", 3, NULL, 0, &flags, &err), SH_OK);
    sync_mail_flags_free(flags, 0);
    assert_int_equal(sync_mail_count(ST, "a1", "Big", 3, &count, &err), SH_OK);
    assert_int_equal(count, 1200);
}

/* Removal takes the messages, their index and unseen entries, and nothing
 * else; UIDs never stored are harmless. */
static void test_remove(void **state)
{
    (void)state;
    sh_error err;
    char idx[SYNC_KEY_MAX], unseen[SYNC_KEY_MAX], key[SYNC_KEY_MAX];
    idx_key(idx, "a1", "INBOX", 4);
    unseen_key(unseen, "a1", "INBOX", 4);
    for (uint32_t u = 1; u <= 1200; u++)
        tf_mail_put(ST, "a1", "INBOX", 4, u, u % 2 ? "" : "\\Seen");
    tf_mail_put(ST, "a1", "Other", 4, 7, "");
    assert_int_equal(zcard(unseen), 600);

    /* 1..1100 and 5,000..5,099, never stored: three chunks. */
    uint32_t gone[1200];
    for (uint32_t i = 0; i < 1100; i++)
        gone[i] = i + 1;
    for (uint32_t i = 0; i < 100; i++)
        gone[1100 + i] = 5000 + i;
    assert_int_equal(sync_mail_remove(ST, "a1", "INBOX", 4, gone, 1200, &err), SH_OK);
    assert_int_equal(zcard(idx), 100);
    assert_int_equal(zcard(unseen), 50);
    msg_key(key, "a1", "INBOX", 4, 1100);
    assert_int_equal(exists(key), 0);
    msg_key(key, "a1", "INBOX", 4, 1101);
    assert_int_equal(exists(key), 1);
    msg_key(key, "a1", "Other", 4, 7);
    assert_int_equal(exists(key), 1);
    uint32_t *uids = NULL;
    size_t n = 0;
    assert_int_equal(sync_mail_index(ST, "a1", "INBOX", 4, &uids, &n, &err), SH_OK);
    assert_int_equal(n, 100);
    assert_int_equal(uids[0], 1101);
    free(uids);
    assert_int_equal(sync_mail_remove(ST, "a1", "INBOX", 4, gone, 0, &err), SH_OK);
}

/* Dropping a folder under one UIDVALIDITY leaves the folder's other
 * UIDVALIDITY and the other folders; its pending changes go with it. */
static void test_drop_folder(void **state)
{
    (void)state;
    sh_error err;
    char key[SYNC_KEY_MAX], pending[SYNC_KEY_MAX], idx[SYNC_KEY_MAX];
    for (uint32_t u = 1; u <= 30; u++) {
        tf_mail_put(ST, "a1", "INBOX", 1, u, "");
        tf_mail_put(ST, "a1", "INBOX", 2, u, "");
        tf_mail_put(ST, "a1", "Archive", 1, u, "");
    }
    assert_true(sync_key_pending(pending, sizeof pending, "a1", "INBOX") > 0);
    sh_cmd *c = tf_mail_cmd1("HSET", pending);
    sh_cmd_str(c, "3");
    sh_cmd_str(c, "+:1:5");
    assert_int_equal(tf_mail_int(ST, c), 1);

    assert_int_equal(sync_mail_drop_folder(ST, "a1", "INBOX", 1, &err), SH_OK);
    /* 30 messages + index + unseen for each of the two left */
    assert_int_equal(tf_mail_keys(ST, "a1"), 64);
    assert_int_equal(exists(pending), 0);
    msg_key(key, "a1", "INBOX", 1, 1);
    assert_int_equal(exists(key), 0);
    idx_key(idx, "a1", "INBOX", 2);
    assert_int_equal(zcard(idx), 30);
    idx_key(idx, "a1", "Archive", 1);
    assert_int_equal(zcard(idx), 30);
    /* Dropping what is not there is no error. */
    assert_int_equal(sync_mail_drop_folder(ST, "a1", "INBOX", 1, &err), SH_OK);
}

/* An account's drop takes every key of it, over many SCAN rounds, and
 * counts them; accounts whose ids share its beginning keep theirs. */
static void test_drop_account(void **state)
{
    (void)state;
    sh_error err;
    for (uint32_t u = 1; u <= 1500; u++)
        tf_mail_put(ST, "a1", "INBOX", 1, u, "");
    tf_mail_folder(ST, "a1", "INBOX", 1, 1501, 9);
    tf_mail_put(ST, "a10", "INBOX", 1, 1, "");
    tf_mail_put(ST, "a1.x", "INBOX", 1, 1, "");
    tf_mail_put(ST, "b", "INBOX", 1, 1, "");
    long long deleted = -1;
    /* 1,500 messages, index, state, folders set; unseen too */
    assert_int_equal(sync_mail_drop_account(ST, "a1", &deleted, &err), SH_OK);
    assert_int_equal(deleted, 1504);
    assert_int_equal(tf_mail_int(ST, sh_cmd_new("DBSIZE")), 9);
    assert_int_equal(sync_mail_drop_account(ST, "a1", &deleted, &err), SH_OK);
    assert_int_equal(deleted, 0);
    assert_int_equal(sync_mail_drop_account(ST, "a*", &deleted, &err), SH_EINVAL);
    assert_int_equal(sync_mail_drop_account(ST, "", &deleted, &err), SH_EINVAL);
    assert_int_equal(tf_mail_int(ST, sh_cmd_new("DBSIZE")), 9);
}

/* The accounts with mail are found in one walk, keys of other prefixes
 * aside; the drop of a set of them takes every key of each and nothing of
 * the rest. */
static void test_accounts_and_their_drop(void **state)
{
    (void)state;
    sh_error err;
    for (uint32_t u = 1; u <= 1200; u++)
        tf_mail_put(ST, "a1", "INBOX", 1, u, "");
    tf_mail_put(ST, "a10", "INBOX", 1, 1, "");
    tf_mail_put(ST, "a2", "INBOX", 1, 1, "");
    tf_mail_put(ST, "b", "Archive", 7, 3, "");
    sh_cmd *c = sh_cmd_new("SET");
    sh_cmd_str(c, "account:{a1}");
    sh_cmd_str(c, "not mail");
    tf_mail_int(ST, c);
    sh_val *accts = NULL;
    assert_int_equal(sync_mail_accounts(ST, &accts, &err), SH_OK);
    assert_int_equal(sh_val_len(accts), 4);
    const char *want[] = {"a1", "a10", "a2", "b"};
    for (size_t i = 0; i < 4; i++)
        assert_non_null(sh_val_get(accts, want[i]));
    sh_val_free(accts);
    long long before = tf_mail_int(ST, sh_cmd_new("DBSIZE"));
    sh_val *gone = sh_val_new_map();
    sh_val_set_cstr(gone, "a1", sh_val_new_nil());
    sh_val_set_cstr(gone, "b", sh_val_new_nil());
    long long deleted = -1;
    assert_int_equal(sync_mail_drop_accounts(ST, gone, &deleted, &err), SH_OK);
    sh_val_free(gone);
    /* a1: 1,200 hashes, index, unseen; b: one hash, index, unseen */
    assert_int_equal(deleted, 1205);
    assert_int_equal(tf_mail_int(ST, sh_cmd_new("DBSIZE")), before - 1205);
    assert_int_equal(sync_mail_accounts(ST, &accts, &err), SH_OK);
    assert_int_equal(sh_val_len(accts), 2);
    assert_non_null(sh_val_get(accts, "a10"));
    assert_non_null(sh_val_get(accts, "a2"));
    sh_val_free(accts);
    gone = sh_val_new_map();
    assert_int_equal(sync_mail_drop_accounts(ST, gone, &deleted, &err), SH_OK);
    assert_int_equal(deleted, 0);
    sh_val_free(gone);
}

/* Ids and names that do not fit a key are refused with a message, and
 * nothing is written; the largest ones that fit and long, odd text are
 * stored intact. */
static void test_hostile_ids_and_sizes(void **state)
{
    (void)state;
    char longid[200], longname[600];
    memset(longid, 'a', 129);
    longid[129] = '\0';
    memset(longname, 'F', 500);
    longname[500] = '\0';
    sync_folder_state s;
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(sync_mail_state_get(ST, longid, "INBOX", &s, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "too long"));
    assert_int_equal(sync_mail_state_get(ST, "a1", longname, &s, &err), SH_EINVAL);
    assert_int_equal(sync_mail_state_set(ST, "a1", longname, &s, &err), SH_EINVAL);
    assert_int_equal(sync_mail_state_get(ST, "bad id", "INBOX", &s, &err), SH_EINVAL);
    uint32_t *uids = NULL;
    size_t n = 0;
    assert_int_equal(sync_mail_index(ST, "a1", longname, 1, &uids, &n, &err), SH_EINVAL);
    assert_null(uids);
    long long count;
    assert_int_equal(sync_mail_count(ST, longid, "INBOX", 1, &count, &err), SH_EINVAL);
    uint32_t one = 1;
    assert_int_equal(sync_mail_remove(ST, "a1", longname, 1, &one, 1, &err), SH_EINVAL);
    assert_int_equal(sync_mail_drop_folder(ST, "a1", longname, 1, &err), SH_EINVAL);
    sync_msg m = {.uid = 1, .flags = ""};
    sh_cmd *cmds[SYNC_MAIL_PUT_CMDS] = {NULL, NULL, NULL};
    assert_int_equal(sync_mail_put_cmds("a1", longname, 1, &m, cmds), SH_EINVAL);
    assert_null(cmds[0]);
    assert_int_equal(sync_mail_put_cmds("bad id", "INBOX", 1, &m, cmds), SH_EINVAL);
    sh_cmd *fc[SYNC_MAIL_FLAGS_CMDS];
    assert_int_equal(sync_mail_flags_cmds("a1", longname, 1, 1, "", fc), SH_EINVAL);
    assert_int_equal(tf_mail_int(ST, sh_cmd_new("DBSIZE")), 0);

    /* The longest id and folder name the API lets through fit. */
    memset(longid, 'z', 128);
    longid[128] = '\0';
    char folder[201];
    memset(folder, 'x', 200);
    folder[200] = '\0';
    folder[3] = ':';
    folder[4] = '{';
    char text[5000];
    for (size_t i = 0; i < sizeof text - 1; i++)
        text[i] = "h\xc3\xa9llo \"{}*:\r\n"[i % 14];
    text[sizeof text - 1] = '\0';
    sync_msg big = {.uid = UINT32_MAX, .flags = "\\Seen", .size = UINT32_MAX, .subject = text};
    assert_int_equal(sync_mail_put_cmds(longid, folder, UINT32_MAX, &big, cmds), SH_OK);
    assert_int_equal(sync_mail_run(ST, cmds, SYNC_MAIL_PUT_CMDS, &err), SH_OK);
    char key[SYNC_KEY_MAX], buf[6000];
    msg_key(key, longid, folder, UINT32_MAX, UINT32_MAX);
    assert_int_equal(tf_mail_hget(ST, key, "subject", buf, sizeof buf), 0);
    assert_string_equal(buf, text);
    check_field(key, "size", "4294967295");
    assert_int_equal(sync_mail_index(ST, longid, folder, UINT32_MAX, &uids, &n, &err), SH_OK);
    assert_int_equal(n, 1);
    assert_int_equal(uids[0], UINT32_MAX);
    free(uids);
    long long deleted = 0;
    assert_int_equal(sync_mail_drop_account(ST, longid, &deleted, &err), SH_OK);
    assert_int_equal(deleted, 2); /* message and index; seen: no unseen set */
}

/* A Redis error reply fails the pipeline with Redis's words; every
 * command is freed either way (the sanitizer build checks). */
static void test_error_reply(void **state)
{
    (void)state;
    char skey[SYNC_KEY_MAX];
    assert_true(sync_key_state(skey, sizeof skey, "a1", "INBOX") > 0);
    sh_cmd *c = tf_mail_cmd1("SET", skey);
    sh_cmd_str(c, "not a hash");
    sh_reply *r = NULL;
    sh_error err;
    assert_int_equal(sh_store_call(ST, c, &r, &err), SH_OK);
    sh_reply_free(r);
    sync_folder_state s = {.uidvalidity = 1};
    sh_error_clear(&err);
    assert_int_equal(sync_mail_state_set(ST, "a1", "INBOX", &s, &err), SH_EINTERNAL);
    assert_non_null(strstr(err.msg, "WRONGTYPE"));
    assert_int_not_equal(sync_mail_state_get(ST, "a1", "INBOX", &s, &err), SH_OK);
    assert_int_equal(sync_mail_run(ST, NULL, 0, &err), SH_OK);
    assert_int_equal(sync_mail_recv(ST, 0, &err), SH_OK);
}

/* wait_ok retries state_get until Redis answers again (the store backs
 * off up to a second between attempts). */
static int wait_ok(void)
{
    sync_folder_state s;
    sh_error err;
    int rc = SH_EUNAVAIL;
    for (int i = 0; i < 100 && rc != SH_OK; i++) {
        rc = sync_mail_state_get(ST, "a1", "INBOX", &s, &err);
        if (rc)
            tf_sleep_ms(50);
    }
    return rc;
}

/* Redis gone: every call fails with SH_EUNAVAIL and says so, frees what it
 * was given, and the store works again once Redis is back. A batch sent
 * ahead whose replies are lost fails its receive. */
static void test_redis_gone_and_back(void **state)
{
    (void)state;
    tf_mail_put(ST, "a1", "INBOX", 1, 1, "");
    int port = tf_mail_the()->redis.port;
    tf_redis_kill(&tf_mail_the()->redis);

    sync_folder_state s;
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(sync_mail_state_get(ST, "a1", "INBOX", &s, &err), SH_EUNAVAIL);
    assert_true(err.msg[0] != '\0');
    sync_msg m = {.uid = 2, .flags = ""};
    sh_cmd *cmds[SYNC_MAIL_PUT_CMDS];
    assert_int_equal(sync_mail_put_cmds("a1", "INBOX", 1, &m, cmds), SH_OK);
    assert_int_equal(sync_mail_run(ST, cmds, SYNC_MAIL_PUT_CMDS, &err), SH_EUNAVAIL);
    uint32_t *uids = NULL;
    size_t n = 0;
    assert_int_equal(sync_mail_index(ST, "a1", "INBOX", 1, &uids, &n, &err), SH_EUNAVAIL);
    uint32_t ask = 1;
    char **flags = (char **)&ask;
    assert_int_equal(sync_mail_flags(ST, "a1", "INBOX", 1, &ask, 1, &flags, &err), SH_EUNAVAIL);
    assert_null(flags);
    long long deleted = 0;
    assert_int_equal(sync_mail_drop_account(ST, "a1", &deleted, &err), SH_EUNAVAIL);

    assert_int_equal(tf_redis_start(&tf_mail_the()->redis, port), 0);
    assert_int_equal(wait_ok(), SH_OK);
    tf_mail_put(ST, "a1", "INBOX", 1, 2, "");
    assert_int_equal(sync_mail_index(ST, "a1", "INBOX", 1, &uids, &n, &err), SH_OK);
    assert_int_equal(n, 1); /* the restarted Redis holds only what came after */
    free(uids);

    /* Lost between send and receive. */
    m.uid = 3;
    assert_int_equal(sync_mail_put_cmds("a1", "INBOX", 1, &m, cmds), SH_OK);
    kill(tf_mail_the()->redis.pid, SIGSTOP);
    assert_int_equal(sync_mail_send(ST, cmds, SYNC_MAIL_PUT_CMDS, &err), SH_OK);
    sh_error_clear(&err);
    assert_int_not_equal(sync_mail_recv(ST, SYNC_MAIL_PUT_CMDS, &err), SH_OK);
    assert_true(err.msg[0] != '\0');
    kill(tf_mail_the()->redis.pid, SIGCONT);
    assert_int_equal(wait_ok(), SH_OK);
    long long count = 0;
    assert_int_equal(sync_mail_count(ST, "a1", "INBOX", 1, &count, &err), SH_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_state_round_trip, tf_mail_each),
        cmocka_unit_test(test_flags_seen),
        cmocka_unit_test_setup(test_put_message, tf_mail_each),
        cmocka_unit_test_setup(test_flags_cmds, tf_mail_each),
        cmocka_unit_test_setup(test_index_count_flags, tf_mail_each),
        cmocka_unit_test_setup(test_remove, tf_mail_each),
        cmocka_unit_test_setup(test_drop_folder, tf_mail_each),
        cmocka_unit_test_setup(test_drop_account, tf_mail_each),
        cmocka_unit_test_setup(test_accounts_and_their_drop, tf_mail_each),
        cmocka_unit_test_setup(test_hostile_ids_and_sizes, tf_mail_each),
        cmocka_unit_test_setup(test_error_reply, tf_mail_each),
        cmocka_unit_test_setup(test_redis_gone_and_back, tf_mail_each),
    };
    return cmocka_run_group_tests(tests, tf_mail_setup, tf_mail_teardown);
}
