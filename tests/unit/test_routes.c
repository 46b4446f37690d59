/* test_routes.c - what the route files decide without a service
 * (services/gateway/gw_routes_int.h): the views they answer with, so that
 * nothing but the named fields leaves (an account's password above all),
 * the folder counts merged into an account, and the path and query values
 * refused with 400 before any call. The routes themselves, over real
 * services, are the e2e suites' (tests/e2e). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "gw_routes_int.h"
#include "shared/err.h"

static void routes_set(sh_val *m, const char *key, sh_val *v)
{
    assert_int_equal(sh_val_set_cstr(m, key, v), SH_OK);
}

/* routes_keys returns the keys of map m, in order, as the README writes
 * an object: "{a, b, c}". */
static const char *routes_keys(const sh_val *m)
{
    static char text[1024];
    assert_int_equal(sh_val_type_of(m), SH_VAL_MAP);
    size_t o = 0;
    text[o++] = '{';
    for (size_t i = 0; i < sh_val_len(m); i++) {
        size_t klen;
        const char *k = sh_val_key_at(m, i, &klen);
        int n = snprintf(text + o, sizeof text - o, "%s%.*s", i ? ", " : "", (int)klen, k);
        assert_true(n > 0 && (size_t)n < sizeof text - o - 1);
        o += (size_t)n;
    }
    text[o++] = '}';
    text[o] = '\0';
    return text;
}

static void test_pick(void **state)
{
    (void)state;
    sh_val *src = sh_val_new_map();
    routes_set(src, "b", sh_val_new_int(2));
    routes_set(src, "a", sh_val_new_cstr("x"));
    sh_val *nested = sh_val_new_array();
    assert_int_equal(sh_val_push(nested, sh_val_new_cstr("deep")), SH_OK);
    routes_set(src, "list", nested);
    routes_set(src, "secret", sh_val_new_cstr("hidden"));

    static const char *const names[] = {"a", "missing", "list", "b", NULL};
    sh_val *v = gw__routes_pick(src, names);
    /* The fields named and present, in the order of the names. */
    assert_string_equal(routes_keys(v), "{a, list, b}");
    assert_string_equal(sh_val_get_str(v, "a", NULL), "x");
    assert_int_equal(sh_val_int(sh_val_get(v, "b")), 2);
    /* A deep copy: the view outlives its source. */
    sh_val_free(src);
    assert_string_equal(sh_val_str(sh_val_at(sh_val_get(v, "list"), 0), NULL), "deep");
    sh_val_free(v);

    /* What is not a map yields an empty view. */
    static const char *const one[] = {"a", NULL};
    v = gw__routes_pick(NULL, one);
    assert_string_equal(routes_keys(v), "{}");
    sh_val_free(v);
    sh_val *arr = sh_val_new_array();
    v = gw__routes_pick(arr, one);
    assert_string_equal(routes_keys(v), "{}");
    sh_val_free(v);
    sh_val_free(arr);
}

static void test_copy(void **state)
{
    (void)state;
    sh_val *dst = sh_val_new_map();
    routes_set(dst, "success", sh_val_new_bool(true));
    routes_set(dst, "count", sh_val_new_int(0));
    sh_val *src = sh_val_new_map();
    routes_set(src, "queued", sh_val_new_array());
    routes_set(src, "count", sh_val_new_int(7));
    routes_set(src, "other", sh_val_new_nil());
    static const char *const names[] = {"queued", "count", "absent", NULL};
    assert_int_equal(gw__routes_copy(dst, src, names), SH_OK);
    /* Added after what dst held; a name dst has is replaced. */
    assert_string_equal(routes_keys(dst), "{success, count, queued}");
    assert_int_equal(sh_val_int(sh_val_get(dst, "count")), 7);
    assert_true(sh_val_bool(sh_val_get(dst, "success")));
    sh_val_free(src);
    sh_val_free(dst);
}

/* An account as services/gateway/README.md gives it. */
static const char routes_account[] =
    "{id, emailAddress, imapHost, imapPort, security, username, folders, tlsVerify, syncStatus, "
    "errorMessage, lastSyncedAt, nextSyncAt, consecutiveFailures, createdAt, updatedAt}";

static void test_account_view(void **state)
{
    (void)state;
    sh_val *acc = sh_val_new_map();
    /* What a coordinator may hold beside the public fields comes first, so
     * that order alone cannot hide it. */
    routes_set(acc, "password", sh_val_new_cstr("hunter2"));
    routes_set(acc, "passwordSealed", sh_val_new_bin("\x01\x02", 2));
    routes_set(acc, "leaseToken", sh_val_new_cstr("t"));
    char names[sizeof routes_account];
    memcpy(names, routes_account, sizeof names);
    for (char *save, *f = strtok_r(names, "{, }", &save); f; f = strtok_r(NULL, "{, }", &save))
        routes_set(acc, f, sh_val_new_cstr(f));
    routes_set(acc, "internal", sh_val_new_int(1));
    sh_val *v = gw__routes_account_view(acc);
    assert_string_equal(routes_keys(v), routes_account);
    for (size_t i = 0; i < sh_val_len(v); i++)
        assert_string_equal(sh_val_str(sh_val_value_at(v, i), NULL), sh_val_key_at(v, i, NULL));
    assert_null(sh_val_get(v, "password"));
    assert_null(sh_val_get(v, "passwordSealed"));
    sh_val_free(v);
    sh_val_free(acc);

    /* Fields the account lacks are left out, not made up. */
    acc = sh_val_new_map();
    routes_set(acc, "id", sh_val_new_cstr("a1"));
    routes_set(acc, "password", sh_val_new_cstr("hunter2"));
    routes_set(acc, "syncStatus", sh_val_new_cstr("idle"));
    v = gw__routes_account_view(acc);
    assert_string_equal(routes_keys(v), "{id, syncStatus}");
    sh_val_free(v);
    sh_val_free(acc);
}

static void test_account_status(void **state)
{
    (void)state;
    static const char *const ok[] = {"idle", "queued", "syncing", "ok", "error", "auth_error"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_true(gw__routes_account_status_ok(ok[i]));
    static const char *const bad[] = {"",     "IDLE",     "idle ", " ok", "errors",
                                      "auth", "error,ok", "all",   "null"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (gw__routes_account_status_ok(bad[i]))
            fail_msg("\"%s\" taken", bad[i]);
}

/* routes_folders returns an account view with the folder names given
 * (NULL-ended; names NULL: no folders field). */
static sh_val *routes_folders(const char *const *names)
{
    sh_val *view = sh_val_new_map();
    routes_set(view, "id", sh_val_new_cstr("a1"));
    if (names) {
        sh_val *arr = sh_val_new_array();
        for (size_t i = 0; names[i]; i++)
            assert_int_equal(sh_val_push(arr, sh_val_new_cstr(names[i])), SH_OK);
        routes_set(view, "folders", arr);
    }
    return view;
}

static sh_val *routes_count(const char *name, int64_t total, int64_t unread)
{
    sh_val *c = sh_val_new_map();
    routes_set(c, "name", sh_val_new_cstr(name));
    routes_set(c, "total", sh_val_new_int(total));
    routes_set(c, "unread", sh_val_new_int(unread));
    return c;
}

static void routes_expect_folder(const sh_val *view, size_t i, const char *name, int64_t total,
                                 int64_t unread)
{
    const sh_val *f = sh_val_at(sh_val_get(view, "folders"), i);
    assert_string_equal(sh_val_get_str(f, "name", NULL), name);
    if (total < 0) {
        /* No counts: the name only. */
        assert_int_equal(sh_val_len(f), 1);
        return;
    }
    assert_int_equal(sh_val_len(f), 3);
    assert_int_equal(sh_val_int(sh_val_get(f, "total")), total);
    assert_int_equal(sh_val_int(sh_val_get(f, "unread")), unread);
}

static void test_folder_counts(void **state)
{
    (void)state;
    static const char *const names[] = {"INBOX", "Sent", "Entw\xc3\xbcrfe", NULL};
    sh_val *counts = sh_val_new_map();
    sh_val *list = sh_val_new_array();
    /* In another order, with a folder the account does not list. */
    assert_int_equal(sh_val_push(list, routes_count("Sent", 5, 2)), SH_OK);
    assert_int_equal(sh_val_push(list, routes_count("Archive", 99, 99)), SH_OK);
    assert_int_equal(sh_val_push(list, routes_count("INBOX", 10, 1)), SH_OK);
    routes_set(counts, "folders", list);

    sh_val *view = routes_folders(names);
    assert_int_equal(gw__routes_folder_counts(view, counts), SH_OK);
    assert_int_equal(sh_val_len(sh_val_get(view, "folders")), 3);
    routes_expect_folder(view, 0, "INBOX", 10, 1);
    routes_expect_folder(view, 1, "Sent", 5, 2);
    routes_expect_folder(view, 2, "Entw\xc3\xbcrfe", 0, 0); /* not counted yet */
    assert_string_equal(sh_val_get_str(view, "id", NULL), "a1");
    sh_val_free(view);

    /* The sync-worker did not answer: names only. */
    view = routes_folders(names);
    assert_int_equal(gw__routes_folder_counts(view, NULL), SH_OK);
    assert_int_equal(sh_val_len(sh_val_get(view, "folders")), 3);
    routes_expect_folder(view, 0, "INBOX", -1, -1);
    routes_expect_folder(view, 2, "Entw\xc3\xbcrfe", -1, -1);
    sh_val_free(view);

    /* No folders, or an empty list: INBOX. */
    static const char *const empty[] = {NULL};
    view = routes_folders(NULL);
    assert_int_equal(gw__routes_folder_counts(view, counts), SH_OK);
    assert_int_equal(sh_val_len(sh_val_get(view, "folders")), 1);
    routes_expect_folder(view, 0, "INBOX", 10, 1);
    sh_val_free(view);
    view = routes_folders(empty);
    assert_int_equal(gw__routes_folder_counts(view, NULL), SH_OK);
    assert_int_equal(sh_val_len(sh_val_get(view, "folders")), 1);
    routes_expect_folder(view, 0, "INBOX", -1, -1);
    sh_val_free(view);

    /* A name that is not a string is passed over. */
    view = routes_folders(names);
    sh_val *odd = sh_val_new_array();
    assert_int_equal(sh_val_push(odd, sh_val_new_int(3)), SH_OK);
    assert_int_equal(sh_val_push(odd, sh_val_new_cstr("Sent")), SH_OK);
    routes_set(view, "folders", odd);
    assert_int_equal(gw__routes_folder_counts(view, counts), SH_OK);
    assert_int_equal(sh_val_len(sh_val_get(view, "folders")), 1);
    routes_expect_folder(view, 0, "Sent", 5, 2);
    sh_val_free(view);

    /* A counts answer without folders counts nothing. */
    sh_val *blank = sh_val_new_map();
    view = routes_folders(names);
    assert_int_equal(gw__routes_folder_counts(view, blank), SH_OK);
    routes_expect_folder(view, 1, "Sent", 0, 0);
    sh_val_free(view);
    sh_val_free(blank);
    sh_val_free(counts);
}

static void test_uid(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        long long uid;
    } ok[] = {
        {"1", 1}, {"9", 9}, {"42", 42}, {"4294967295", 4294967295LL}, {"1000000000", 1000000000}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        long long uid = -1;
        assert_true(gw__routes_uid_parse(ok[i].s, &uid));
        assert_int_equal(uid, ok[i].uid);
    }
    static const char *const bad[] = {
        "",    "0",   "00",  "01",  "4294967296", "9999999999", "10000000000",
        "-1",  "+1",  " 1",  "1 ",  "1a",         "1.0",        "0x10",
        "1e3", "abc", "1-2", "1:2", "_1",         "\xd9\xa3",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long long uid = -7;
        if (gw__routes_uid_parse(bad[i], &uid))
            fail_msg("uid \"%s\" taken as %lld", bad[i], uid);
        assert_int_equal(uid, -7); /* untouched */
    }
}

static void test_cron_batch(void **state)
{
    (void)state;
    assert_int_equal(gw__routes_cron_batch("1"), 1);
    assert_int_equal(gw__routes_cron_batch("50"), 50);
    assert_int_equal(gw__routes_cron_batch("999"), 999);
    assert_int_equal(gw__routes_cron_batch("1000"), GW_ROUTES_CRON_BATCH_MAX);
    assert_int_equal(gw__routes_cron_batch("0010"), 10);
    static const char *const bad[] = {"",   "0",  "0000", "1001", "9999", "10000", "-1",  "+5",
                                      " 5", "5 ", "5x",   "1e3",  "2.5",  "abc",   "0x1F"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (gw__routes_cron_batch(bad[i]) != -1)
            fail_msg("batchSize \"%s\" taken", bad[i]);
}

/* Idempotency-Key values: the syntax of ids, else a message naming the
 * header and what is wrong. */
static void test_request_id(void **state)
{
    (void)state;
    assert_null(gw__routes_request_id_check("6f1c2a9e-3b7d-4c1a-9e2f-0a1b2c3d4e5f"));
    assert_null(gw__routes_request_id_check("a"));
    assert_null(gw__routes_request_id_check("job.create:42_x"));
    char big[130];
    memset(big, 'k', 128);
    big[128] = '\0';
    assert_null(gw__routes_request_id_check(big));
    big[128] = 'k';
    big[129] = '\0';
    assert_non_null(strstr(gw__routes_request_id_check(big), "1 to 128"));
    assert_non_null(strstr(gw__routes_request_id_check(""), "1 to 128"));
    const char *const bad[] = {"a b", "a/b", "k\xc3\xbc", "{x}", "a\tb", NULL};
    for (int i = 0; bad[i]; i++) {
        const char *why = gw__routes_request_id_check(bad[i]);
        assert_non_null(why);
        assert_non_null(strstr(why, "Idempotency-Key"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pick),          cmocka_unit_test(test_copy),
        cmocka_unit_test(test_account_view),  cmocka_unit_test(test_account_status),
        cmocka_unit_test(test_folder_counts), cmocka_unit_test(test_uid),
        cmocka_unit_test(test_cron_batch),    cmocka_unit_test(test_request_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
