/* test_err.c - the error codes of err.h: their wire names (the contract
 * between services), descriptions, the mapping back from a name, and
 * sh_error's formatting and truncation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <string.h>

#include "shared/err.h"

static const struct {
    int code;
    const char *name;
} wire[] = {
    {SH_OK, "ok"},
    {SH_EINVAL, "invalid_argument"},
    {SH_ENOTFOUND, "not_found"},
    {SH_ECONFLICT, "conflict"},
    {SH_ELEASE, "lease_lost"},
    {SH_ETOOBIG, "too_large"},
    {SH_EPROTO, "malformed"},
    {SH_EUNAVAIL, "unavailable"},
    {SH_ETIMEDOUT, "timeout"},
    {SH_ENOMEM, "no_memory"},
    {SH_EINTERNAL, "internal"},
    {SH_ENOOP, "unknown_operation"},
    {SH_ECLOSED, "closed"},
    {SH_ELIMIT, "limit_exceeded"},
    {SH_EAUTH, "unauthenticated"},
    {SH_EUNKNOWN, "outcome_unknown"},
};
#define NWIRE (sizeof wire / sizeof wire[0])

static void test_wire_names_are_the_contract(void **state)
{
    (void)state;
    for (size_t i = 0; i < NWIRE; i++) {
        assert_string_equal(sh_err_name(wire[i].code), wire[i].name);
        assert_int_equal(sh_err_from_name(wire[i].name, strlen(wire[i].name)), wire[i].code);
    }
}

static void test_every_code_has_its_own_name_and_text(void **state)
{
    (void)state;
    for (size_t i = 0; i < NWIRE; i++) {
        const char *text = sh_strerror(wire[i].code);
        assert_non_null(text);
        assert_true(strlen(text) > 0);
        assert_string_not_equal(text, "unknown error");
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(sh_err_name(wire[i].code), sh_err_name(wire[j].code));
            assert_string_not_equal(text, sh_strerror(wire[j].code));
        }
    }
    assert_string_equal(sh_strerror(SH_ENOTFOUND), "not found");
    assert_string_equal(sh_strerror(SH_OK), "success");
}

static void test_unknown_codes(void **state)
{
    (void)state;
    int unknown[] = {1, 42, -16, -1000, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        assert_string_equal(sh_strerror(unknown[i]), "unknown error");
        /* Sent on the wire as an internal error: the peer knows the name. */
        assert_string_equal(sh_err_name(unknown[i]), "internal");
    }
}

static void test_names_are_matched_whole_and_by_length(void **state)
{
    (void)state;
    /* The length bounds the name: no NUL needed, the rest ignored. */
    assert_int_equal(sh_err_from_name("not_found!!", 9), SH_ENOTFOUND);
    assert_int_equal(sh_err_from_name("timeoutXYZ", 7), SH_ETIMEDOUT);
    /* Prefixes, extensions, case and empty names are unknown. */
    assert_int_equal(sh_err_from_name("not_foun", 8), SH_EINTERNAL);
    assert_int_equal(sh_err_from_name("not_found_", 10), SH_EINTERNAL);
    assert_int_equal(sh_err_from_name("NOT_FOUND", 9), SH_EINTERNAL);
    assert_int_equal(sh_err_from_name("", 0), SH_EINTERNAL);
    assert_int_equal(sh_err_from_name("o", 1), SH_EINTERNAL);
    assert_int_equal(sh_err_from_name("okay", 4), SH_EINTERNAL);
    assert_int_equal(sh_err_from_name("ok", 2), SH_OK);
    /* A NUL inside the given length is part of the name. */
    assert_int_equal(sh_err_from_name("conflict\0", 9), SH_EINTERNAL);
}

static void test_set_formats_and_returns_the_code(void **state)
{
    (void)state;
    sh_error e;
    sh_error_clear(&e);
    assert_int_equal(sh_error_set(&e, SH_ECONFLICT, "claim %s held by %d", "acct-1", 7),
                     SH_ECONFLICT);
    assert_int_equal(e.code, SH_ECONFLICT);
    assert_string_equal(e.msg, "claim acct-1 held by 7");
    /* Without a place to put it, the code still comes back. */
    assert_int_equal(sh_error_set(NULL, SH_ELEASE, "lease %d", 3), SH_ELEASE);
}

static void test_set_replaces_and_clear_resets(void **state)
{
    (void)state;
    sh_error e;
    sh_error_set(&e, SH_EINVAL, "a long first message that is longer than the second");
    sh_error_set(&e, SH_ENOTFOUND, "short");
    assert_int_equal(e.code, SH_ENOTFOUND);
    assert_string_equal(e.msg, "short");
    sh_error_clear(&e);
    assert_int_equal(e.code, SH_OK);
    assert_string_equal(e.msg, "");
    sh_error_clear(NULL); /* harmless */
}

static void test_long_messages_are_truncated(void **state)
{
    (void)state;
    char big[1000];
    memset(big, 'm', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sh_error e;
    memset(&e, 0x7f, sizeof e);
    assert_int_equal(sh_error_set(&e, SH_ETOOBIG, "field: %s", big), SH_ETOOBIG);
    assert_int_equal(strlen(e.msg), sizeof e.msg - 1);
    assert_memory_equal(e.msg, "field: mmm", 10);
    assert_int_equal(e.msg[sizeof e.msg - 2], 'm');
    assert_int_equal(e.code, SH_ETOOBIG);
}

static void test_a_message_may_quote_the_one_it_replaces(void **state)
{
    (void)state;
    /* Callers wrap an error with context: err's own text as an argument. */
    sh_error e;
    sh_error_set(&e, SH_EPROTO, "truncated map at byte %d", 17);
    assert_int_equal(sh_error_set(&e, SH_EPROTO, "bad reply to %s: %s", "progress.get", e.msg),
                     SH_EPROTO);
    assert_string_equal(e.msg, "bad reply to progress.get: truncated map at byte 17");
    /* Also when the result is cut to the buffer. */
    char pad[300];
    memset(pad, 'p', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    sh_error_set(&e, SH_EINVAL, "inner");
    sh_error_set(&e, SH_EINVAL, "%s%s", e.msg, pad);
    assert_memory_equal(e.msg, "innerppp", 8);
    assert_int_equal(strlen(e.msg), sizeof e.msg - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_names_are_the_contract),
        cmocka_unit_test(test_every_code_has_its_own_name_and_text),
        cmocka_unit_test(test_unknown_codes),
        cmocka_unit_test(test_names_are_matched_whole_and_by_length),
        cmocka_unit_test(test_set_formats_and_returns_the_code),
        cmocka_unit_test(test_set_replaces_and_clear_resets),
        cmocka_unit_test(test_long_messages_are_truncated),
        cmocka_unit_test(test_a_message_may_quote_the_one_it_replaces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
