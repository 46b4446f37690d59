/* test_token.c - scoped tokens (services/gateway/token.c): minted and
 * verified, refused once expired, refused after any change to any part,
 * with a wrong key, or in any malformed shape; the previous key during a
 * rotation; scope syntax and which scope covers which route; the MAC
 * checked in constant time (sh_mac_verify); access_token scrubbed from text
 * bound for a log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_token.h"
#include "shared/secret.h"

/* The test links with --wrap=sh_mac_verify: token.c's checks come here, are
 * counted and go on to the real, constant-time comparison. */
bool __real_sh_mac_verify(const sh_key *key, const void *data, size_t len,
                          const unsigned char mac[SH_MAC_BYTES]);
bool __wrap_sh_mac_verify(const sh_key *key, const void *data, size_t len,
                          const unsigned char mac[SH_MAC_BYTES]);

static int token_mac_checks;

bool __wrap_sh_mac_verify(const sh_key *key, const void *data, size_t len,
                          const unsigned char mac[SH_MAC_BYTES])
{
    token_mac_checks++;
    return __real_sh_mac_verify(key, data, len, mac);
}

#define NOW 1800000000000LL /* ms */

static sh_key token_key_a, token_key_b, token_key_c;

static void token_key(const char *hex, sh_key *k)
{
    sh_error err;
    sh_error_clear(&err);
    if (sh_key_parse(hex, "TEST_KEY", k, &err) != SH_OK)
        fail_msg("key: %s", err.msg);
}

static int token_setup(void **state)
{
    (void)state;
    token_key("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", &token_key_a);
    token_key("f0e1d2c3b4a5968778695a4b3c2d1e0f00112233445566778899aabbccddeeff", &token_key_b);
    token_key("5555555555555555555555555555555555555555555555555555555555555555", &token_key_c);
    return 0;
}

static void token_scopes(gw_token *t, int64_t expires, const char *const *scopes)
{
    memset(t, 0, sizeof *t);
    t->expires_ms = expires;
    for (; *scopes; scopes++) {
        assert_int_equal(gw_scope_parse(*scopes, strlen(*scopes), &t->scope[t->n]), SH_OK);
        t->n++;
    }
}

/* token_mint returns the token of scopes under key, expiring at expires. */
static char *token_mint(const sh_key *key, int64_t expires, const char *const *scopes)
{
    gw_token t;
    token_scopes(&t, expires, scopes);
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(gw_token_mint(key, &t, &b), SH_OK);
    size_t n;
    return sh_buf_steal(&b, &n);
}

static int token_verify(const sh_key *k0, const sh_key *k1, const char *s, int64_t now,
                        gw_token *out)
{
    const sh_key *keys[2] = {k0, k1};
    return gw_token_verify(keys, 2, s, strlen(s), now, out);
}

static void test_round_trip(void **state)
{
    (void)state;
    static const char *const scopes[] = {
        "progress:sess-1", "job:j.7_x:y-z", "account:acc1", "accounts", "queue", "events", NULL};
    char *tok = token_mint(&token_key_a, NOW + 60000, scopes);
    /* Compact and URL-safe: base64url, one dot, no padding. */
    for (const char *p = tok; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            fail_msg("token has '%c': %s", *p, tok);
    assert_non_null(strchr(tok, '.'));
    assert_ptr_equal(strchr(tok, '.'), strrchr(tok, '.'));
    assert_true(strlen(tok) < 200);

    gw_token t;
    token_mac_checks = 0;
    assert_int_equal(token_verify(&token_key_a, NULL, tok, NOW, &t), GW_TOKEN_OK);
    assert_int_equal(token_mac_checks, 1);
    assert_int_equal(t.expires_ms, NOW + 60000);
    assert_int_equal(t.n, 6);
    assert_int_equal(t.scope[0].kind, GW_SCOPE_PROGRESS);
    assert_string_equal(t.scope[0].id, "sess-1");
    assert_int_equal(t.scope[1].kind, GW_SCOPE_JOB);
    assert_string_equal(t.scope[1].id, "j.7_x:y-z");
    assert_int_equal(t.scope[2].kind, GW_SCOPE_ACCOUNT);
    assert_string_equal(t.scope[2].id, "acc1");
    assert_int_equal(t.scope[3].kind, GW_SCOPE_ACCOUNTS);
    assert_string_equal(t.scope[3].id, "");
    assert_int_equal(t.scope[4].kind, GW_SCOPE_QUEUE);
    assert_int_equal(t.scope[5].kind, GW_SCOPE_EVENTS);

    /* Two mints of the same scopes and expiry are the same token; another
     * expiry or key gives another. */
    char *same = token_mint(&token_key_a, NOW + 60000, scopes);
    char *later = token_mint(&token_key_a, NOW + 60001, scopes);
    char *other = token_mint(&token_key_b, NOW + 60000, scopes);
    assert_string_equal(tok, same);
    assert_string_not_equal(tok, later);
    assert_string_not_equal(tok, other);
    free(same);
    free(later);
    free(other);
    free(tok);

    /* The most scopes, each of the longest id, still fit. */
    char ids[GW_TOKEN_SCOPES_MAX][16 + SH_ID_MAX];
    const char *many[GW_TOKEN_SCOPES_MAX + 1];
    for (int i = 0; i < GW_TOKEN_SCOPES_MAX; i++) {
        snprintf(ids[i], sizeof ids[i], "account:%0*d", SH_ID_MAX, i);
        many[i] = ids[i];
    }
    many[GW_TOKEN_SCOPES_MAX] = NULL;
    tok = token_mint(&token_key_a, NOW + 1, many);
    assert_true(strlen(tok) <= GW_TOKEN_MAX_LEN);
    assert_int_equal(token_verify(&token_key_a, NULL, tok, NOW, &t), GW_TOKEN_OK);
    assert_int_equal(t.n, GW_TOKEN_SCOPES_MAX);
    assert_string_equal(t.scope[31].id, ids[31] + 8);
    free(tok);

    /* None, or more than the most, is not minted. */
    gw_token none;
    memset(&none, 0, sizeof none);
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(gw_token_mint(&token_key_a, &none, &b), SH_EINVAL);
    none.n = GW_TOKEN_SCOPES_MAX + 1;
    assert_int_equal(gw_token_mint(&token_key_a, &none, &b), SH_EINVAL);
    assert_int_equal(b.len, 0);
    sh_buf_fini(&b);
}

static void test_expiry(void **state)
{
    (void)state;
    static const char *const scopes[] = {"queue", NULL};
    char *tok = token_mint(&token_key_a, NOW + 1000, scopes);
    gw_token t;
    assert_int_equal(token_verify(&token_key_a, NULL, tok, NOW, &t), GW_TOKEN_OK);
    assert_int_equal(token_verify(&token_key_a, NULL, tok, NOW + 999, &t), GW_TOKEN_OK);
    assert_int_equal(token_verify(&token_key_a, NULL, tok, NOW + 1000, &t), GW_TOKEN_EXPIRED);
    assert_int_equal(token_verify(&token_key_a, NULL, tok, NOW + 86400000, &t), GW_TOKEN_EXPIRED);
    /* Expired and signed with another key is just bad. */
    assert_int_equal(token_verify(&token_key_b, NULL, tok, NOW + 1000, &t), GW_TOKEN_BAD);
    assert_int_equal(t.n, 0);
    free(tok);
}

/* test_tamper_every_byte: changing any one character of a token, to any
 * other character of the alphabet, makes it bad (base64url is decoded
 * strictly, so no two spellings of one token exist). */
static void test_tamper_every_byte(void **state)
{
    (void)state;
    static const char *const scopes[] = {"progress:abc", "job:j1", NULL};
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";
    char *tok = token_mint(&token_key_a, NOW + 60000, scopes);
    size_t len = strlen(tok);
    gw_token t;
    size_t tried = 0;
    for (size_t i = 0; i < len; i++) {
        char saved = tok[i];
        for (const char *c = alphabet; *c; c++) {
            if (*c == saved)
                continue;
            tok[i] = *c;
            int rc = token_verify(&token_key_a, &token_key_b, tok, NOW, &t);
            if (rc != GW_TOKEN_BAD)
                fail_msg("byte %zu changed to '%c' still verifies (%d): %s", i, *c, rc, tok);
            tried++;
        }
        tok[i] = saved;
    }
    assert_true(tried > len * 60);
    assert_int_equal(token_verify(&token_key_a, NULL, tok, NOW, &t), GW_TOKEN_OK);

    /* Cut, lengthened, parts swapped or dropped. */
    char buf[GW_TOKEN_MAX_LEN * 2];
    const char *dot = strchr(tok, '.');
    size_t plen = (size_t)(dot - tok);
    for (size_t n = 0; n < len; n++) {
        snprintf(buf, sizeof buf, "%.*s", (int)n, tok);
        assert_int_equal(token_verify(&token_key_a, NULL, buf, NOW, &t), GW_TOKEN_BAD);
    }
    static const char *const tails[] = {"A", "=", ".", "AA", "AAAA", " ", "\n", NULL};
    for (size_t k = 0; tails[k]; k++) {
        snprintf(buf, sizeof buf, "%s%s", tok, tails[k]);
        assert_int_equal(token_verify(&token_key_a, NULL, buf, NOW, &t), GW_TOKEN_BAD);
        snprintf(buf, sizeof buf, "%s%s", tails[k], tok);
        assert_int_equal(token_verify(&token_key_a, NULL, buf, NOW, &t), GW_TOKEN_BAD);
    }
    snprintf(buf, sizeof buf, "%s.%.*s", dot + 1, (int)plen, tok);
    assert_int_equal(token_verify(&token_key_a, NULL, buf, NOW, &t), GW_TOKEN_BAD);
    snprintf(buf, sizeof buf, "%.*s", (int)plen, tok);
    assert_int_equal(token_verify(&token_key_a, NULL, buf, NOW, &t), GW_TOKEN_BAD);
    assert_int_equal(token_verify(&token_key_a, NULL, dot, NOW, &t), GW_TOKEN_BAD);

    /* The payload of one token with the MAC of another. */
    static const char *const more[] = {"progress:abc", "job:j1", "queue", NULL};
    char *wider = token_mint(&token_key_a, NOW + 60000, more);
    snprintf(buf, sizeof buf, "%.*s%s", (int)(strchr(wider, '.') - wider), wider, dot);
    assert_int_equal(token_verify(&token_key_a, NULL, buf, NOW, &t), GW_TOKEN_BAD);
    free(wider);
    free(tok);
}

/* token_forge signs payload (raw text) with key as a token would be: what a
 * holder of the key could send, to check that verification refuses
 * malformed payloads even under a good MAC. */
static char *token_forge(const sh_key *key, const char *payload)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    sh_buf b;
    sh_buf_init(&b);
    const unsigned char *p = (const unsigned char *)payload;
    size_t n = strlen(payload);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        size_t k = n - i >= 3 ? 4 : n - i + 1;
        for (size_t j = 0; j < k; j++)
            sh_buf_append(&b, &b64[(v >> (18 - 6 * j)) & 63], 1);
    }
    unsigned char mac[SH_MAC_BYTES];
    sh_mac(key, b.data, b.len, mac);
    sh_buf_append(&b, ".", 1);
    for (size_t i = 0; i < sizeof mac; i += 3) {
        uint32_t v = (uint32_t)mac[i] << 16 | (i + 1 < sizeof mac ? (uint32_t)mac[i + 1] << 8 : 0) |
                     (i + 2 < sizeof mac ? mac[i + 2] : 0);
        size_t k = sizeof mac - i >= 3 ? 4 : sizeof mac - i + 1;
        for (size_t j = 0; j < k; j++)
            sh_buf_append(&b, &b64[(v >> (18 - 6 * j)) & 63], 1);
    }
    size_t len;
    return sh_buf_steal(&b, &len);
}

static void test_malformed(void **state)
{
    (void)state;
    gw_token t;
    /* The forger's own encoding agrees with the gateway's. */
    char good[64];
    snprintf(good, sizeof good, "1,%u,%lld,queue", (unsigned)token_key_a.id, NOW + 5);
    char *tok = token_forge(&token_key_a, good);
    assert_int_equal(token_verify(&token_key_a, NULL, tok, NOW, &t), GW_TOKEN_OK);
    free(tok);

    /* Signed, but not a payload the gateway writes. */
    static const char *const payloads[] = {
        "",
        "1",
        "1,",
        "2,%u,1900000000000,queue",
        "1,%u,1900000000000",
        "1,%u,1900000000000,",
        "1,%u,1900000000000,queue,",
        "1,%u,1900000000000,,queue",
        "1,%u,,queue",
        "1,%u,-5,queue",
        "1,%u,01900000000000,queue",
        "1,%u,99999999999999999999999,queue",
        "1,%u,1900000000000x,queue",
        "1,%u,1900000000000,queues",
        "1,%u,1900000000000,queue:x",
        "1,%u,1900000000000,progress",
        "1,%u,1900000000000,progress:",
        "1,%u,1900000000000,progress:a b",
        "1,%u,1900000000000,progress:a/b",
        "1,%u,1900000000000,Progress:a",
        "1,%u,1900000000000,accounts:x",
        "1,%u,1900000000000,admin",
        "1,%u,1900000000000,queue\n",
        " 1,%u,1900000000000,queue",
    };
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        char p[256];
        snprintf(p, sizeof p, payloads[i], (unsigned)token_key_a.id);
        tok = token_forge(&token_key_a, p);
        int rc = token_verify(&token_key_a, NULL, tok, NOW, &t);
        if (rc != GW_TOKEN_BAD)
            fail_msg("payload \"%s\" verifies (%d)", p, rc);
        assert_int_equal(t.n, 0);
        free(tok);
    }
    /* 33 scopes, and an id one byte too long. */
    sh_buf p;
    sh_buf_init(&p);
    sh_buf_printf(&p, "1,%u,1900000000000", (unsigned)token_key_a.id);
    for (int i = 0; i < GW_TOKEN_SCOPES_MAX + 1; i++)
        sh_buf_printf(&p, ",job:j%d", i);
    tok = token_forge(&token_key_a, p.data);
    assert_int_equal(token_verify(&token_key_a, NULL, tok, NOW, &t), GW_TOKEN_BAD);
    free(tok);
    sh_buf_fini(&p);
    char longid[SH_ID_MAX + 64];
    snprintf(longid, sizeof longid, "1,%u,1900000000000,job:%0*d", (unsigned)token_key_a.id,
             SH_ID_MAX + 1, 7);
    tok = token_forge(&token_key_a, longid);
    assert_int_equal(token_verify(&token_key_a, NULL, tok, NOW, &t), GW_TOKEN_BAD);
    free(tok);

    /* Not a token at all. */
    static const char *const junk[] = {
        "",
        ".",
        "..",
        "a.b",
        "abc",
        "Bearer x",
        "%00",
        "\xff\xfe.\xfd",
        "MSwx.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "MSwx.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "MSwx.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        assert_int_equal(token_verify(&token_key_a, &token_key_b, junk[i], NOW, &t), GW_TOKEN_BAD);
    /* Longer than any token: refused before any MAC is computed. */
    char huge[GW_TOKEN_MAX_LEN + 2];
    memset(huge, 'A', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    token_mac_checks = 0;
    assert_int_equal(token_verify(&token_key_a, NULL, huge, NOW, &t), GW_TOKEN_BAD);
    assert_int_equal(token_mac_checks, 0);
    /* No key at all: nothing verifies. */
    static const char *const scopes[] = {"queue", NULL};
    tok = token_mint(&token_key_a, NOW + 5, scopes);
    assert_int_equal(gw_token_verify(NULL, 0, tok, strlen(tok), NOW, &t), GW_TOKEN_BAD);
    free(tok);
}

static void test_keys_and_rotation(void **state)
{
    (void)state;
    static const char *const scopes[] = {"progress:p1", NULL};
    char *old = token_mint(&token_key_a, NOW + 5000, scopes);
    char *fresh = token_mint(&token_key_b, NOW + 5000, scopes);
    gw_token t;
    /* Before the rotation: the key A alone. */
    assert_int_equal(token_verify(&token_key_a, NULL, old, NOW, &t), GW_TOKEN_OK);
    assert_int_equal(token_verify(&token_key_a, NULL, fresh, NOW, &t), GW_TOKEN_BAD);
    /* During it: B current, A previous; both verify, in either slot. */
    assert_int_equal(token_verify(&token_key_b, &token_key_a, old, NOW, &t), GW_TOKEN_OK);
    assert_int_equal(token_verify(&token_key_b, &token_key_a, fresh, NOW, &t), GW_TOKEN_OK);
    assert_int_equal(token_verify(&token_key_a, &token_key_b, fresh, NOW, &t), GW_TOKEN_OK);
    /* The key id chooses the key: one MAC per token, not one per key. */
    token_mac_checks = 0;
    assert_int_equal(token_verify(&token_key_b, &token_key_a, old, NOW, &t), GW_TOKEN_OK);
    assert_int_equal(token_mac_checks, token_key_a.id == token_key_b.id ? 2 : 1);
    /* After it: A is gone. */
    assert_int_equal(token_verify(&token_key_b, NULL, old, NOW, &t), GW_TOKEN_BAD);
    assert_int_equal(token_verify(&token_key_b, NULL, fresh, NOW, &t), GW_TOKEN_OK);
    /* A wrong key with the same id as the signer's is still wrong. */
    sh_key same_id = token_key_c;
    same_id.id = token_key_a.id;
    assert_int_equal(token_verify(&same_id, NULL, old, NOW, &t), GW_TOKEN_BAD);
    assert_int_equal(token_verify(&token_key_c, NULL, old, NOW, &t), GW_TOKEN_BAD);
    free(old);
    free(fresh);
}

static void test_scope_syntax(void **state)
{
    (void)state;
    gw_scope sc;
    static const char *const ok[] = {"progress:a", "job:j-1", "account:x.y_z:w",
                                     "accounts",   "queue",   NULL};
    for (size_t i = 0; ok[i]; i++)
        if (gw_scope_parse(ok[i], strlen(ok[i]), &sc) != SH_OK)
            fail_msg("\"%s\" refused", ok[i]);
    static const char *const bad[] = {
        "",           "progress",     "progress:", "progress:a b", "job",    "account",
        "accounts:1", "queue:1",      "Queue",     "queue ",       " queue", "admin",
        "progress:é", "progress:a,b", "*",         "progress:*",   NULL};
    for (size_t i = 0; bad[i]; i++)
        if (gw_scope_parse(bad[i], strlen(bad[i]), &sc) != SH_EINVAL)
            fail_msg("\"%s\" accepted", bad[i]);
    /* Only len bytes are read. */
    assert_int_equal(gw_scope_parse("queue,job:1", 5, &sc), SH_OK);
    assert_int_equal(sc.kind, GW_SCOPE_QUEUE);
    assert_int_equal(gw_scope_parse("job:12345", 5, &sc), SH_OK);
    assert_string_equal(sc.id, "1");

    char out[64];
    gw_scope_format(GW_SCOPE_PROGRESS, "p1", out, sizeof out);
    assert_string_equal(out, "progress:p1");
    gw_scope_format(GW_SCOPE_ACCOUNTS, "ignored", out, sizeof out);
    assert_string_equal(out, "accounts");
    gw_scope_format(GW_SCOPE_QUEUE, NULL, out, sizeof out);
    assert_string_equal(out, "queue");
    gw_scope_format(GW_SCOPE_ACCOUNT, "a1", out, 6);
    assert_string_equal(out, "accou");
}

static void test_scope_matching(void **state)
{
    (void)state;
    gw_token t;
    static const char *const one[] = {"progress:p1", "job:j1", "account:a1", NULL};
    token_scopes(&t, NOW, one);
    assert_true(gw_token_covers(&t, GW_SCOPE_PROGRESS, "p1"));
    assert_false(gw_token_covers(&t, GW_SCOPE_PROGRESS, "p2"));
    assert_false(gw_token_covers(&t, GW_SCOPE_PROGRESS, "p"));
    assert_false(gw_token_covers(&t, GW_SCOPE_PROGRESS, "p10"));
    assert_false(gw_token_covers(&t, GW_SCOPE_PROGRESS, NULL));
    assert_false(gw_token_covers(&t, GW_SCOPE_PROGRESS, "j1"));
    assert_true(gw_token_covers(&t, GW_SCOPE_JOB, "j1"));
    assert_false(gw_token_covers(&t, GW_SCOPE_JOB, "p1"));
    assert_true(gw_token_covers(&t, GW_SCOPE_ACCOUNT, "a1"));
    assert_false(gw_token_covers(&t, GW_SCOPE_ACCOUNT, "a2"));
    /* One account is not every account, nor the queue. */
    assert_false(gw_token_covers(&t, GW_SCOPE_ACCOUNTS, NULL));
    assert_false(gw_token_covers(&t, GW_SCOPE_ACCOUNTS, "a1"));
    assert_false(gw_token_covers(&t, GW_SCOPE_QUEUE, NULL));
    /* Routes no scope opens, and those whose handler judges. */
    assert_false(gw_token_covers(&t, GW_SCOPE_NONE, "p1"));
    assert_false(gw_token_covers(&t, GW_SCOPE_HANDLER, "p1"));

    static const char *const wide[] = {"accounts", "queue", NULL};
    token_scopes(&t, NOW, wide);
    assert_true(gw_token_covers(&t, GW_SCOPE_ACCOUNTS, NULL));
    assert_true(gw_token_covers(&t, GW_SCOPE_ACCOUNT, "any-account"));
    assert_true(gw_token_covers(&t, GW_SCOPE_QUEUE, NULL));
    assert_false(gw_token_covers(&t, GW_SCOPE_PROGRESS, "p1"));
    assert_false(gw_token_covers(&t, GW_SCOPE_JOB, "j1"));
    assert_false(gw_token_covers(&t, GW_SCOPE_NONE, NULL));

    /* A job id is not a progress id, even when spelled alike. */
    static const char *const alike[] = {"job:x", NULL};
    token_scopes(&t, NOW, alike);
    assert_false(gw_token_covers(&t, GW_SCOPE_PROGRESS, "x"));
    assert_false(gw_token_covers(&t, GW_SCOPE_ACCOUNT, "x"));
}

static void test_scrub(void **state)
{
    (void)state;
    char out[256];
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"GET /api/progress/p1/stream?access_token=MSwx.abc HTTP/1.1",
         "GET /api/progress/p1/stream?access_token=[redacted] HTTP/1.1"},
        {"/x?a=1&access_token=MSwx.abc&lastEventId=4",
         "/x?a=1&access_token=[redacted]&lastEventId=4"},
        {"?ACCESS_TOKEN=abc", "?ACCESS_TOKEN=[redacted]"},
        {"access_token=", "access_token=[redacted]"},
        {"a access_token=x access_token=y", "a access_token=[redacted] access_token=[redacted]"},
        {"url=\"/s?access_token=t#f\"", "url=\"/s?access_token=[redacted]#f\""},
        {"no token here", "no token here"},
        {"access_toke=abc", "access_toke=abc"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gw_token_scrub(cases[i].in, out, sizeof out);
        assert_string_equal(out, cases[i].out);
    }
    /* Truncated, the token still does not show, and out stays terminated. */
    for (size_t n = 1; n < 40; n++) {
        char small[40];
        memset(small, 'x', sizeof small);
        gw_token_scrub("?access_token=SECRETSECRET&b=2", small, n);
        assert_true(strlen(small) < n);
        assert_null(strstr(small, "SECRET"));
        assert_null(strstr(small, "SEC"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_tamper_every_byte), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_keys_and_rotation), cmocka_unit_test(test_scope_syntax),
        cmocka_unit_test(test_scope_matching),    cmocka_unit_test(test_scrub),
    };
    return cmocka_run_group_tests(tests, token_setup, NULL);
}
