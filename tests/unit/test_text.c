/* test_text.c - strict UTF-8 cleaning (RFC 3629, U+FFFD per maximal
 * subpart) and the bound of error text (libshared text.c), every class of
 * invalid input, and error messages made with sh_error_set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "shared/err.h"
#include "shared/text.h"

#define R "\xef\xbf\xbd" /* U+FFFD */

static void expect(const char *in, size_t len, const char *want)
{
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sh_utf8_clean(&b, in, len, 4096), SH_OK);
    assert_string_equal(b.data ? b.data : "", want);
    sh_buf_fini(&b);
    char out[600];
    sh_text_bound(out, sizeof out, in, len);
    assert_string_equal(out, want);
    /* Valid exactly when nothing was replaced by U+FFFD. */
    size_t bad = 9999;
    bool valid = sh_utf8_valid(in, len, &bad);
    assert_int_equal(valid, strstr(want, R) == NULL || (strstr(in, R) != NULL));
    if (!valid)
        assert_true(bad < len);
}

static void test_valid(void **state)
{
    (void)state;
    expect("plain text", 10, "plain text");
    expect("\xc2\xa0\xc3\xa9", 4, "\xc2\xa0\xc3\xa9");                 /* U+00A0, U+00E9 */
    expect("\xdf\xbf", 2, "\xdf\xbf");                                 /* U+07FF */
    expect("\xe0\xa0\x80\xe2\x82\xac", 6, "\xe0\xa0\x80\xe2\x82\xac"); /* U+0800, euro */
    expect("\xed\x9f\xbf\xee\x80\x80", 6, "\xed\x9f\xbf\xee\x80\x80"); /* around the surrogates */
    expect("\xef\xbf\xbf", 3, "\xef\xbf\xbf");                         /* U+FFFF */
    expect("\xf0\x90\x80\x80", 4, "\xf0\x90\x80\x80");                 /* U+10000 */
    expect("\xf4\x8f\xbf\xbf", 4, "\xf4\x8f\xbf\xbf");                 /* U+10FFFF */
}

static void test_controls(void **state)
{
    (void)state;
    expect("a\x01\tb\r\n\x7f", 7, "a  b   ");
    expect("a\0b", 3, "a b");
    expect("\xc2\x80\xc2\x9f", 4, "  "); /* C1 controls */
}

static void test_overlong(void **state)
{
    (void)state;
    expect("\xc0\xaf", 2, R R);             /* "/" in 2 bytes */
    expect("\xc1\xbf", 2, R R);             /* U+007F in 2 bytes */
    expect("\xe0\x80\xaf", 3, R R R);       /* "/" in 3 bytes */
    expect("\xe0\x9f\xbf", 3, R R R);       /* U+07FF in 3 bytes */
    expect("\xf0\x80\x80\xaf", 4, R R R R); /* "/" in 4 bytes */
    expect("\xf0\x8f\xbf\xbf", 4, R R R R); /* U+FFFF in 4 bytes */
}

static void test_surrogates(void **state)
{
    (void)state;
    expect("\xed\xa0\x80", 3, R R R);                   /* U+D800 */
    expect("\xed\xbf\xbf", 3, R R R);                   /* U+DFFF */
    expect("\xed\xa0\xbd\xed\xb2\xa9", 6, R R R R R R); /* a CESU-8 pair */
}

static void test_out_of_range(void **state)
{
    (void)state;
    expect("\xf4\x90\x80\x80", 4, R R R R);       /* U+110000 */
    expect("\xf5\x80\x80\x80", 4, R R R R);       /* lead F5 */
    expect("\xf8\x88\x80\x80\x80", 5, R R R R R); /* 5-byte form */
    expect("\xfe\xff", 2, R R);
}

static void test_truncated_and_stray(void **state)
{
    (void)state;
    expect("\xe2\x82", 2, R);      /* cut at the end: one U+FFFD */
    expect("\xe2\x82x", 3, R "x"); /* cut by ASCII */
    expect("\xf0\x9f\x93", 3, R);
    expect("\xf0\x9f\x93\xc3\xa9", 5, R "\xc3\xa9"); /* cut by another character */
    expect("\x80", 1, R);                            /* a lone continuation byte */
    expect("a\xbf\xbf"
           "b",
           4, "a" R R "b");
    expect("\xc3", 1, R);
}

static void test_cut_on_boundary(void **state)
{
    (void)state;
    /* sh_utf8_clean stops before the character that does not fit. */
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sh_utf8_clean(&b, "ab\xe2\x82\xac", 5, 4), SH_OK);
    assert_string_equal(b.data, "ab");
    sh_buf_reset(&b);
    assert_int_equal(sh_utf8_clean(&b, "abcdef", 6, 4), SH_OK);
    assert_string_equal(b.data, "abcd");
    sh_buf_fini(&b);
    /* sh_text_bound: to the buffer, and never past SH_TEXT_ERROR_MAX. */
    char small[6];
    assert_int_equal(sh_text_bound(small, sizeof small, "abcd\xc3\xa9", 6), 4);
    assert_string_equal(small, "abcd");
    char in[2000], out[2000];
    for (size_t i = 0; i < sizeof in; i += 2)
        memcpy(in + i, "\xc3\xa9", 2);
    size_t n = sh_text_bound(out, sizeof out, in, sizeof in);
    assert_int_equal(n, SH_TEXT_ERROR_MAX);
    assert_int_equal(strlen(out), SH_TEXT_ERROR_MAX);
    assert_int_equal((unsigned char)out[n - 2], 0xc3);
    memset(in, 0xff, sizeof in); /* each byte grows to three */
    n = sh_text_bound(out, sizeof out, in, sizeof in);
    assert_true(n <= SH_TEXT_ERROR_MAX && n % 3 == 0);
}

static void test_error_messages_are_clean(void **state)
{
    (void)state;
    sh_error err;
    sh_error_set(&err, SH_EPROTO, "IMAP login refused: %s", "bad\r\n\xed\xa0\x80 user\x1b[31m");
    assert_string_equal(err.msg, "IMAP login refused: bad  " R R R " user [31m");
    /* Cut by the message's size inside a character: no half of it stays. */
    char big[400];
    memset(big, 'x', sizeof big);
    memcpy(big + 250, "\xe2\x82\xac\xe2\x82\xac", 6);
    big[sizeof big - 1] = '\0';
    sh_error_set(&err, SH_EPROTO, "%s", big);
    assert_true(strlen(err.msg) < sizeof err.msg);
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sh_utf8_clean(&b, err.msg, strlen(err.msg), 4096), SH_OK);
    assert_string_equal(b.data, err.msg);
    sh_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),           cmocka_unit_test(test_controls),
        cmocka_unit_test(test_overlong),        cmocka_unit_test(test_surrogates),
        cmocka_unit_test(test_out_of_range),    cmocka_unit_test(test_truncated_and_stray),
        cmocka_unit_test(test_cut_on_boundary), cmocka_unit_test(test_error_messages_are_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
