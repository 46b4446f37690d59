/* test_b64.c - shared/b64.h: RFC 4648 test vectors both ways, padding
 * optional on decode, bad characters refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <string.h>

#include "shared/b64.h"
#include "shared/err.h"

static void test_vectors(void **state)
{
    static const char *const v[][2] = {{"", ""},
                                       {"f", "Zg=="},
                                       {"fo", "Zm8="},
                                       {"foo", "Zm9v"},
                                       {"foob", "Zm9vYg=="},
                                       {"fooba", "Zm9vYmE="},
                                       {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        sh_buf b;
        sh_buf_init(&b);
        assert_int_equal(sh_b64_encode(v[i][0], strlen(v[i][0]), &b), SH_OK);
        assert_int_equal(b.len, strlen(v[i][1]));
        assert_memory_equal(b.data ? b.data : "", v[i][1], b.len);
        sh_buf_reset(&b);
        assert_int_equal(sh_b64_decode(v[i][1], strlen(v[i][1]), &b), SH_OK);
        assert_int_equal(b.len, strlen(v[i][0]));
        assert_memory_equal(b.data ? b.data : "", v[i][0], b.len);
        sh_buf_fini(&b);
    }
}

static void test_decode_edges(void **state)
{
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sh_b64_decode("Zm9vYg", 6, &b), SH_OK);
    assert_int_equal(b.len, 4);
    sh_buf_reset(&b);
    /* {"status":"401"} as Dovecot sends it. */
    const char *ch = "eyJzdGF0dXMiOiI0MDEifQ==";
    assert_int_equal(sh_b64_decode(ch, strlen(ch), &b), SH_OK);
    assert_memory_equal(b.data, "{\"status\":\"401\"}", b.len);
    sh_buf_reset(&b);
    assert_int_equal(sh_b64_decode("Zm9v!", 5, &b), SH_EINVAL);
    assert_int_equal(sh_b64_decode("Zm 9v", 5, &b), SH_EINVAL);
    sh_buf_fini(&b);
}

/* base64url, unpadded, decoded strictly: one spelling per value. */
static void test_url(void **state)
{
    (void)state;
    const unsigned char raw[] = {0xfb, 0xff, 0xbf, 0x00, 0x3e};
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sh_b64url_encode(raw, sizeof raw, &b), SH_OK);
    assert_int_equal(b.len, 7);
    assert_memory_equal(b.data, "-_-_AD4", 7);
    unsigned char out[8];
    size_t n = 0;
    assert_true(sh_b64url_decode(b.data, b.len, out, sizeof out, &n));
    assert_int_equal(n, sizeof raw);
    assert_memory_equal(out, raw, n);
    assert_false(sh_b64url_decode(b.data, b.len, out, 4, &n)); /* no room */
    assert_false(sh_b64url_decode("-_-_AD5", 7, out, 8, &n));  /* unused bits set */
    assert_false(sh_b64url_decode("Zm9v+", 5, out, 8, &n));    /* n % 4 == 1 */
    assert_false(sh_b64url_decode("Zm9vYg==", 8, out, 8, &n)); /* padding */
    assert_false(sh_b64url_decode("Zm/v", 4, out, 8, &n));     /* standard alphabet */
    assert_true(sh_b64url_decode("", 0, out, 8, &n) && n == 0);
    sh_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_decode_edges),
        cmocka_unit_test(test_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
