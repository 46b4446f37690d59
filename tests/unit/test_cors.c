/* test_cors.c - the origins of CORS_ORIGINS (services/gateway/cors.c): the
 * syntax accepted and refused at start-up, "*" refused with its own reason,
 * and the exact, byte-for-byte match of a request's Origin. The headers a
 * real server adds are checked in test_http.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "gw_cors.h"

static void test_accepted(void **state)
{
    (void)state;
    gw_cors c;
    sh_error err;
    static const char *const ok[] = {
        "https://app.example.com", "http://localhost:3000",           "http://127.0.0.1:8080",
        "http://[::1]:3000",       "https://a-b.example.co.uk:65535", "http://x",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        sh_error_clear(&err);
        if (gw_cors_parse(ok[i], &c, &err) != SH_OK)
            fail_msg("\"%s\" refused: %s", ok[i], err.msg);
        assert_int_equal(c.n, 1);
        assert_true(gw_cors_allowed(&c, ok[i]));
    }
    /* Unset: no origin at all. */
    assert_int_equal(gw_cors_parse(NULL, &c, &err), SH_OK);
    assert_int_equal(c.n, 0);
    assert_false(gw_cors_allowed(&c, "http://x"));
    assert_false(gw_cors_allowed(&c, NULL));
}

static void test_list(void **state)
{
    (void)state;
    gw_cors c;
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(
        gw_cors_parse(" https://app.example.com , http://localhost:3000,http://[::1]:8", &c, &err),
        SH_OK);
    assert_int_equal(c.n, 3);
    assert_true(gw_cors_allowed(&c, "https://app.example.com"));
    assert_true(gw_cors_allowed(&c, "http://localhost:3000"));
    assert_true(gw_cors_allowed(&c, "http://[::1]:8"));
    /* Exact: no prefix, suffix, other scheme, port, case or blank. */
    static const char *const no[] = {
        "https://app.example.co",
        "https://app.example.com.evil.com",
        "http://app.example.com",
        "https://app.example.com:443",
        "https://APP.example.com",
        "https://app.example.com/",
        " https://app.example.com",
        "https://app.example.com ",
        "http://localhost:30001",
        "http://localhost",
        "null",
        "",
        "https://app.example.com, http://localhost:3000",
    };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (gw_cors_allowed(&c, no[i]))
            fail_msg("\"%s\" allowed", no[i]);

    /* The most origins, and one more. */
    char list[64 * (GW_CORS_ORIGINS_MAX + 1)];
    size_t n = 0;
    for (int i = 0; i < GW_CORS_ORIGINS_MAX; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%shttp://h%d", i ? "," : "", i);
    assert_int_equal(gw_cors_parse(list, &c, &err), SH_OK);
    assert_int_equal(c.n, GW_CORS_ORIGINS_MAX);
    assert_true(gw_cors_allowed(&c, "http://h31"));
    snprintf(list + n, sizeof list - n, ",http://h99");
    assert_int_equal(gw_cors_parse(list, &c, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "CORS_ORIGINS"));
}

static void test_refused(void **state)
{
    (void)state;
    gw_cors c;
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(gw_cors_parse("*", &c, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "CORS_ORIGINS"));
    assert_non_null(strstr(err.msg, "\"*\""));
    assert_int_equal(gw_cors_parse("https://a.example, *", &c, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "\"*\""));

    static const char *const bad[] = {
        "app.example.com",
        "ftp://app.example.com",
        "https://",
        "https://app.example.com/",
        "https://app.example.com/path",
        "https://*.example.com",
        "https://App.example.com",
        "HTTPS://app.example.com",
        "https://app.example.com:",
        "https://app.example.com:123456",
        "https://app.example.com:8x",
        "https://a b",
        "https://user@app.example.com",
        "https://app.example.com?x",
        "http://[::1",
        "http://[]:80",
        "http://[::1]x",
        "https://a.example,",
        ",https://a.example",
        "https://a.example,,https://b.example",
        "null",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sh_error_clear(&err);
        if (gw_cors_parse(bad[i], &c, &err) != SH_EINVAL)
            fail_msg("\"%s\" accepted", bad[i]);
        if (!strstr(err.msg, "CORS_ORIGINS"))
            fail_msg("\"%s\": the error does not name CORS_ORIGINS: %s", bad[i], err.msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
