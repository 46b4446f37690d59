/* test_auth.c - the gateway's bearer tokens (services/gateway/auth.c): which
 * token opens which method, the cron secret apart from both, the parsing of
 * the Authorization value, and that every comparison of a secret is made in
 * constant time (sh_secret_equal), for both tokens on every request; scoped
 * tokens: where they are taken from (header, access_token), what they open
 * and how each refusal is told apart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_auth.h"
#include "gw_router.h"
#include "gw_token.h"
#include "shared/secret.h"
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

#define AUTH_NOW 1800000000000LL

/* auth_scoped_cfg: both API tokens and a signing key (and a previous one). */
static gw_config auth_scoped_cfg(void)
{
    gw_config c = auth_cfg(auth_full, auth_ro, NULL);
    sh_error err;
    assert_int_equal(
        sh_key_parse("112233445566778899aabbccddeeff00112233445566778899aabbccddeeff01", "K",
                     &c.token_keys[0], &err),
        SH_OK);
    assert_int_equal(
        sh_key_parse("a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf", "K",
                     &c.token_keys[1], &err),
        SH_OK);
    c.ntoken_keys = 2;
    return c;
}

/* auth_mint returns a token of the scopes (comma-separated) under key. */
static char *auth_mint(const sh_key *key, int64_t expires, const char *scopes)
{
    gw_token t;
    memset(&t, 0, sizeof t);
    t.expires_ms = expires;
    for (const char *p = scopes; *p;) {
        size_t n = strcspn(p, ",");
        assert_int_equal(gw_scope_parse(p, n, &t.scope[t.n++]), SH_OK);
        p += n + (p[n] == ',');
    }
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(gw_token_mint(key, &t, &b), SH_OK);
    size_t len;
    return sh_buf_steal(&b, &len);
}

static int auth_ask(const gw_config *c, int method, const char *authz, const char *query, int scope,
                    const char *id, gw_token *t)
{
    gw_auth_ask ask = {method, authz, query, scope, id};
    return gw_auth_request(c, &ask, AUTH_NOW, t);
}

static void test_scoped_tokens(void **state)
{
    (void)state;
    gw_config c = auth_scoped_cfg();
    char *tok = auth_mint(&c.token_keys[0], AUTH_NOW + 1000, "progress:p1,job:j1");
    char bearer[GW_TOKEN_MAX_LEN + 16];
    snprintf(bearer, sizeof bearer, "Bearer %s", tok);
    gw_token t;

    /* Header or query, on what the scopes cover; the token is handed back.
     * In the header it still costs both comparisons with the static tokens,
     * so timing does not tell it apart from them. */
    auth_compares = 0;
    assert_int_equal(auth_ask(&c, GW_GET, bearer, NULL, GW_SCOPE_PROGRESS, "p1", &t), GW_AUTH_OK);
    assert_int_equal(auth_compares, 2);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.scope[1].id, "j1");
    assert_int_equal(auth_ask(&c, GW_HEAD, NULL, tok, GW_SCOPE_PROGRESS, "p1", &t), GW_AUTH_OK);
    assert_int_equal(auth_ask(&c, GW_GET, NULL, tok, GW_SCOPE_JOB, "j1", &t), GW_AUTH_OK);
    assert_int_equal(auth_ask(&c, GW_GET, NULL, tok, GW_SCOPE_HANDLER, NULL, &t), GW_AUTH_OK);
    assert_int_equal(t.n, 2);
    /* Another record, kind, or a route no scope opens. */
    assert_int_equal(auth_ask(&c, GW_GET, bearer, NULL, GW_SCOPE_PROGRESS, "p2", &t),
                     GW_AUTH_UNCOVERED);
    assert_int_equal(t.n, 0);
    assert_int_equal(auth_ask(&c, GW_GET, NULL, tok, GW_SCOPE_JOB, "p1", &t), GW_AUTH_UNCOVERED);
    assert_int_equal(auth_ask(&c, GW_GET, NULL, tok, GW_SCOPE_QUEUE, NULL, &t), GW_AUTH_UNCOVERED);
    assert_int_equal(auth_ask(&c, GW_GET, NULL, tok, GW_SCOPE_NONE, "p1", &t), GW_AUTH_UNCOVERED);
    /* Never a write, whatever it covers, by header or query. */
    static const int writes[] = {GW_POST, GW_PUT, GW_DELETE, GW_PATCH, GW_OPTIONS, GW_OTHER};
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
        assert_int_equal(auth_ask(&c, writes[i], bearer, NULL, GW_SCOPE_PROGRESS, "p1", &t),
                         GW_AUTH_WRITE);
        assert_int_equal(auth_ask(&c, writes[i], NULL, tok, GW_SCOPE_PROGRESS, "p1", &t),
                         GW_AUTH_WRITE);
        assert_int_equal(t.n, 0);
    }
    /* The query takes scoped tokens only: never API_TOKEN in a URL. */
    assert_int_equal(auth_ask(&c, GW_GET, NULL, auth_full, GW_SCOPE_PROGRESS, "p1", &t),
                     GW_AUTH_BAD);
    assert_int_equal(auth_ask(&c, GW_GET, NULL, auth_ro, GW_SCOPE_PROGRESS, "p1", &t), GW_AUTH_BAD);
    assert_int_equal(auth_ask(&c, GW_GET, NULL, "", GW_SCOPE_PROGRESS, "p1", &t), GW_AUTH_MISSING);
    assert_int_equal(auth_ask(&c, GW_GET, NULL, NULL, GW_SCOPE_PROGRESS, "p1", &t),
                     GW_AUTH_MISSING);
    /* The header wins over the query: a bad header is not saved by a good query. */
    assert_int_equal(auth_ask(&c, GW_GET, "Bearer nope", tok, GW_SCOPE_PROGRESS, "p1", &t),
                     GW_AUTH_BAD);
    assert_int_equal(auth_ask(&c, GW_GET, "Basic x", tok, GW_SCOPE_PROGRESS, "p1", &t),
                     GW_AUTH_MISSING);
    /* The static tokens are as they were, with a token in the query or not. */
    assert_int_equal(
        auth_ask(&c, GW_POST, "Bearer full-token-0123456789", tok, GW_SCOPE_NONE, NULL, &t),
        GW_AUTH_OK);
    assert_int_equal(t.n, 0);
    assert_int_equal(
        auth_ask(&c, GW_POST, "Bearer read-only-token-abcdef", NULL, GW_SCOPE_NONE, NULL, &t),
        GW_AUTH_READ_ONLY);
    /* Expired, tampered with, from the previous key, from an unknown key. */
    assert_int_equal(gw_auth_request(&c,
                                     &(gw_auth_ask){GW_GET, bearer, NULL, GW_SCOPE_PROGRESS, "p1"},
                                     AUTH_NOW + 1000, &t),
                     GW_AUTH_EXPIRED);
    assert_int_equal(t.n, 0);
    /* Expired counts before what it covers or the method. */
    assert_int_equal(gw_auth_request(&c, &(gw_auth_ask){GW_POST, bearer, NULL, GW_SCOPE_NONE, NULL},
                                     AUTH_NOW + 5000, &t),
                     GW_AUTH_EXPIRED);
    tok[3] = tok[3] == 'A' ? 'B' : 'A';
    assert_int_equal(auth_ask(&c, GW_GET, NULL, tok, GW_SCOPE_PROGRESS, "p1", &t), GW_AUTH_BAD);
    free(tok);
    tok = auth_mint(&c.token_keys[1], AUTH_NOW + 1000, "queue");
    assert_int_equal(auth_ask(&c, GW_GET, NULL, tok, GW_SCOPE_QUEUE, NULL, &t), GW_AUTH_OK);
    c.ntoken_keys = 1;
    assert_int_equal(auth_ask(&c, GW_GET, NULL, tok, GW_SCOPE_QUEUE, NULL, &t), GW_AUTH_BAD);
    /* No signing key: scoped tokens are refused, the static ones still work. */
    c.ntoken_keys = 0;
    free(tok);
    tok = auth_mint(&c.token_keys[0], AUTH_NOW + 1000, "queue");
    assert_int_equal(auth_ask(&c, GW_GET, NULL, tok, GW_SCOPE_QUEUE, NULL, &t), GW_AUTH_BAD);
    assert_int_equal(
        auth_ask(&c, GW_GET, "Bearer read-only-token-abcdef", NULL, GW_SCOPE_QUEUE, NULL, NULL),
        GW_AUTH_OK);
    free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_without_tokens), cmocka_unit_test(test_full_token),
        cmocka_unit_test(test_read_only_token),     cmocka_unit_test(test_header_parsing),
        cmocka_unit_test(test_cron_secret),         cmocka_unit_test(test_constant_time),
        cmocka_unit_test(test_scoped_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
