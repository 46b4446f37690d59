/* test_imap_sasl.c - imap_sasl.c: the JSON challenge of a refused OAuth2
 * sign-in, found in the reply text and decoded (the exchange itself runs
 * against Dovecot in tests/e2e/test_oauth.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <string.h>

#include "imap_int.h"

static void test_challenge_found_and_decoded(void **state)
{
    char out[300];
    /* {"status":"invalid_token","schemes":"bearer","scope":"mail"} */
    const char *reply = "+ eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NoZW1lcyI6ImJlYXJlciIsInNjb3BlIj"
                        "oibWFpbCJ9\r\nA3 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n";
    sync__imap_sasl_challenge(reply, strlen(reply), out, sizeof out);
    assert_string_equal(out,
                        "{\"status\":\"invalid_token\",\"schemes\":\"bearer\",\"scope\":\"mail\"}");
    /* After untagged lines too. */
    const char *later = "* OK still here\r\n+ eyJzdGF0dXMiOiI0MDEifQ==\r\nA4 NO no\r\n";
    sync__imap_sasl_challenge(later, strlen(later), out, sizeof out);
    assert_string_equal(out, "{\"status\":\"401\"}");
}

static void test_no_challenge(void **state)
{
    char out[64] = "x";
    const char *reply = "A3 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n";
    sync__imap_sasl_challenge(reply, strlen(reply), out, sizeof out);
    assert_string_equal(out, "");
    sync__imap_sasl_challenge("+ !!!\r\n", 7, out, sizeof out);
    assert_string_equal(out, "");
    sync__imap_sasl_challenge("", 0, out, sizeof out);
    assert_string_equal(out, "");
}

static void test_control_characters_and_bound(void **state)
{
    char out[8];
    /* "a\nb\x01cdefghij" */
    const char *reply = "+ YQpiAWNkZWZnaGlq\r\n";
    sync__imap_sasl_challenge(reply, strlen(reply), out, sizeof out);
    assert_string_equal(out, "a b cde");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_challenge_found_and_decoded),
        cmocka_unit_test(test_no_challenge),
        cmocka_unit_test(test_control_characters_and_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
