/* test_auth.c - the gateway's bearer tokens (services/gateway/auth.c): which
 * token opens which method, the cron secret apart from both, the parsing of
 * the Authorization value, and that every comparison of a secret is made in
 * constant time (sh_secret_equal), for both tokens on every request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <string.h>

#include "gw_auth.h"
#include "gw_router.h"
#include "shared/util.h"

/* The test links with --wrap=sh_secret_equal: auth.c's calls come here, are
 * counted and go on to the real comparison. (The names are the linker's.) */
bool __real_sh_secret_equal(const char *a, size_t alen, const char *b, size_t blen);
bool __wrap_sh_secret_equal(const char *a, size_t alen, const char *b, size_t blen);

static int auth_compares;

bool __wrap_sh_secret_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    auth_compares++;
    return __real_sh_secret_equal(a, alen, b, blen);
}

static const char auth_full[] = "full-token-0123456789";
static const char auth_ro[] = "read-only-token-abcdef";
static const char auth_cron[] = "cron-secret-0123456789abcdef";

static gw_config auth_cfg(const char *api, const char *ro, const char *cron)
{
    gw_config c;
    memset(&c, 0, sizeof c);
    c.api_token = api;
    c.ro_token = ro;
    c.cron_secret = cron;
    return c;
}

static void test_open_without_tokens(void **state)
{
    (void)state;
    gw_config c = auth_cfg(NULL, NULL, NULL);
    for (int m = 0; m < GW_METHOD_COUNT; m++) {
        assert_int_equal(gw_auth_check(&c, m, NULL), GW_AUTH_OK);
        assert_int_equal(gw_auth_check(&c, m, "Bearer anything"), GW_AUTH_OK);
        assert_int_equal(gw_auth_check(&c, m, "garbage"), GW_AUTH_OK);
    }
}

static void test_full_token(void **state)
{
    (void)state;
    gw_config c = auth_cfg(auth_full, NULL, NULL);
    for (int m = 0; m < GW_METHOD_COUNT; m++) {
        assert_int_equal(gw_auth_check(&c, m, "Bearer full-token-0123456789"), GW_AUTH_OK);
        assert_int_equal(gw_auth_check(&c, m, NULL), GW_AUTH_MISSING);
        assert_int_equal(gw_auth_check(&c, m, "Bearer full-token-012345678"), GW_AUTH_BAD);
        assert_int_equal(gw_auth_check(&c, m, "Bearer full-token-01234567890"), GW_AUTH_BAD);
        assert_int_equal(gw_auth_check(&c, m, "Bearer Full-token-0123456789"), GW_AUTH_BAD);
        assert_int_equal(gw_auth_check(&c, m, "Bearer read-only-token-abcdef"), GW_AUTH_BAD);
    }
}

static void test_read_only_token(void **state)
{
    (void)state;
    gw_config c = auth_cfg(auth_full, auth_ro, NULL);
    const char *ro = "Bearer read-only-token-abcdef";
    assert_int_equal(gw_auth_check(&c, GW_GET, ro), GW_AUTH_OK);
    assert_int_equal(gw_auth_check(&c, GW_HEAD, ro), GW_AUTH_OK);
    static const int writes[] = {GW_POST, GW_PUT, GW_DELETE, GW_PATCH, GW_OPTIONS, GW_OTHER};
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
        assert_int_equal(gw_auth_check(&c, writes[i], ro), GW_AUTH_READ_ONLY);
        assert_int_equal(gw_auth_check(&c, writes[i], "Bearer full-token-0123456789"), GW_AUTH_OK);
        assert_int_equal(gw_auth_check(&c, writes[i], "Bearer nope"), GW_AUTH_BAD);
    }

    /* The read-only token alone still closes the gateway to others. */
    c = auth_cfg(NULL, auth_ro, NULL);
    assert_int_equal(gw_auth_check(&c, GW_GET, NULL), GW_AUTH_MISSING);
    assert_int_equal(gw_auth_check(&c, GW_GET, "Bearer full-token-0123456789"), GW_AUTH_BAD);
    assert_int_equal(gw_auth_check(&c, GW_GET, ro), GW_AUTH_OK);
    assert_int_equal(gw_auth_check(&c, GW_POST, ro), GW_AUTH_READ_ONLY);

    /* One token set as both: the full one wins. */
    c = auth_cfg(auth_full, auth_full, NULL);
    assert_int_equal(gw_auth_check(&c, GW_DELETE, "Bearer full-token-0123456789"), GW_AUTH_OK);
}

/* test_header_parsing: "Bearer" in any case, one space (RFC 6750 2.1) and
 * blanks around the token; anything else is no bearer token at all. */
static void test_header_parsing(void **state)
{
    (void)state;
    gw_config c = auth_cfg(auth_full, NULL, NULL);
    static const char *const ok[] = {
        "Bearer full-token-0123456789",     "bearer full-token-0123456789",
        "BEARER full-token-0123456789",     "bEaReR full-token-0123456789",
        "Bearer   full-token-0123456789",   "Bearer full-token-0123456789  ",
        "Bearer \tfull-token-0123456789\t", "Bearer full-token-0123456789 \t ",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (gw_auth_check(&c, GW_POST, ok[i]) != GW_AUTH_OK)
            fail_msg("\"%s\" refused", ok[i]);

    static const char *const missing[] = {
        "",
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "Bearer \t ",
        "Bearerfull-token-0123456789",
        "Bearer\tfull-token-0123456789",
        " Bearer full-token-0123456789",
        "Basic full-token-0123456789",
        "Token full-token-0123456789",
        "full-token-0123456789",
        "Bear full-token-0123456789",
    };
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++)
        if (gw_auth_check(&c, GW_GET, missing[i]) != GW_AUTH_MISSING)
            fail_msg("\"%s\" not taken as missing", missing[i]);

    /* Blanks inside are part of what was given, which then does not match. */
    assert_int_equal(gw_auth_check(&c, GW_GET, "Bearer full-token 0123456789"), GW_AUTH_BAD);
    assert_int_equal(
        gw_auth_check(&c, GW_GET, "Bearer full-token-0123456789 full-token-0123456789"),
        GW_AUTH_BAD);
    assert_int_equal(gw_auth_check(&c, GW_GET, "Bearer \"full-token-0123456789\""), GW_AUTH_BAD);
}

static void test_cron_secret(void **state)
{
    (void)state;
    /* Unset: the cron routes are off, whatever is sent. */
    gw_config c = auth_cfg(auth_full, NULL, NULL);
    assert_int_equal(gw_auth_cron(&c, NULL), GW_AUTH_DISABLED);
    assert_int_equal(gw_auth_cron(&c, "Bearer full-token-0123456789"), GW_AUTH_DISABLED);

    c = auth_cfg(auth_full, auth_ro, auth_cron);
    assert_int_equal(gw_auth_cron(&c, "Bearer cron-secret-0123456789abcdef"), GW_AUTH_OK);
    assert_int_equal(gw_auth_cron(&c, "bearer  cron-secret-0123456789abcdef "), GW_AUTH_OK);
    assert_int_equal(gw_auth_cron(&c, NULL), GW_AUTH_MISSING);
    assert_int_equal(gw_auth_cron(&c, "Bearer "), GW_AUTH_MISSING);
    assert_int_equal(gw_auth_cron(&c, "Basic cron-secret-0123456789abcdef"), GW_AUTH_MISSING);
    assert_int_equal(gw_auth_cron(&c, "Bearer cron-secret-0123456789abcde"), GW_AUTH_BAD);
    /* The API tokens open no cron route... */
    assert_int_equal(gw_auth_cron(&c, "Bearer full-token-0123456789"), GW_AUTH_BAD);
    assert_int_equal(gw_auth_cron(&c, "Bearer read-only-token-abcdef"), GW_AUTH_BAD);
    /* ...and the cron secret no API route. */
    assert_int_equal(gw_auth_check(&c, GW_GET, "Bearer cron-secret-0123456789abcdef"), GW_AUTH_BAD);
    /* Without API tokens the API is open, the cron routes still are not. */
    c = auth_cfg(NULL, NULL, auth_cron);
    assert_int_equal(gw_auth_check(&c, GW_POST, NULL), GW_AUTH_OK);
    assert_int_equal(gw_auth_cron(&c, NULL), GW_AUTH_MISSING);
}

/* test_constant_time: every secret is compared by sh_secret_equal, and with
 * both tokens set both comparisons run whichever matches, so the time taken
 * tells nothing of which one did. */
static void test_constant_time(void **state)
{
    (void)state;
    gw_config c = auth_cfg(auth_full, auth_ro, auth_cron);
    static const char *const given[] = {
        "Bearer full-token-0123456789",
        "Bearer read-only-token-abcdef",
        "Bearer wrong",
        "Bearer full-token-0123456789-and-more",
    };
    for (size_t i = 0; i < sizeof given / sizeof given[0]; i++) {
        auth_compares = 0;
        (void)gw_auth_check(&c, GW_GET, given[i]);
        if (auth_compares != 2)
            fail_msg("\"%s\": %d comparisons, not 2", given[i], auth_compares);
    }
    c = auth_cfg(auth_full, NULL, auth_cron);
    auth_compares = 0;
    assert_int_equal(gw_auth_check(&c, GW_GET, "Bearer wrong"), GW_AUTH_BAD);
    assert_int_equal(auth_compares, 1);

    auth_compares = 0;
    assert_int_equal(gw_auth_cron(&c, "Bearer wrong"), GW_AUTH_BAD);
    assert_int_equal(gw_auth_cron(&c, "Bearer cron-secret-0123456789abcdef"), GW_AUTH_OK);
    assert_int_equal(auth_compares, 2);

    /* Nothing to compare when no token was given. */
    auth_compares = 0;
    assert_int_equal(gw_auth_check(&c, GW_GET, NULL), GW_AUTH_MISSING);
    assert_int_equal(gw_auth_cron(&c, "Bearer "), GW_AUTH_MISSING);
    assert_int_equal(auth_compares, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_without_tokens), cmocka_unit_test(test_full_token),
        cmocka_unit_test(test_read_only_token),     cmocka_unit_test(test_header_parsing),
        cmocka_unit_test(test_cron_secret),         cmocka_unit_test(test_constant_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
