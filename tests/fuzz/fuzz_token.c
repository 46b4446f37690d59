/* fuzz_token.c - libFuzzer harness of the credentials and resume ids a
 * request carries: the Authorization header (gw_auth_check), a scoped token
 * (gw_token_verify; the payload is also signed here with the test key, so
 * the decoder behind the MAC is reached), the access_token scrubbing of
 * logged URLs, and the Last-Event-ID of record and mail streams.
 * The first byte picks what the rest is fed to. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw_auth.h"
#include "gw_router.h"
#include "gw_sse.h"
#include "gw_sse_int.h"
#include "gw_token.h"
#include "shared/b64.h"
#include "shared/secret.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_token(const sh_key *key, const char *s, size_t len)
{
    const sh_key *keys[2] = {key, NULL};
    gw_token t;
    int rc = gw_token_verify(keys, 2, s, len, 1000, &t);
    if (rc == GW_TOKEN_BAD) {
        if (t.n != 0)
            abort();
        return;
    }
    if (t.n == 0 || t.n > GW_TOKEN_SCOPES_MAX)
        abort();
    for (size_t i = 0; i < t.n; i++) {
        char text[16 + SH_ID_MAX];
        gw_scope_format(t.scope[i].kind, t.scope[i].id, text, sizeof text);
        gw_scope back;
        /* A scope read from a token reads again from its text. */
        if (gw_scope_parse(text, strlen(text), &back) != SH_OK || back.kind != t.scope[i].kind)
            abort();
        (void)gw_token_covers(&t, t.scope[i].kind, t.scope[i].id);
    }
}

/* fuzz_signed signs payload with key as gw_token_mint does and verifies it. */
static void fuzz_signed(const sh_key *key, const uint8_t *payload, size_t n)
{
    sh_buf tok;
    sh_buf_init(&tok);
    sh_b64url_encode(payload, n, &tok);
    unsigned char mac[SH_MAC_BYTES];
    sh_mac(key, tok.data ? tok.data : "", tok.len, mac);
    sh_buf_append(&tok, ".", 1);
    sh_b64url_encode(mac, sizeof mac, &tok);
    if (tok.data)
        fuzz_check_token(key, tok.data, tok.len);
    sh_buf_fini(&tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sh_key key;
    static int ready;
    if (!ready) {
        sh_error err;
        if (sh_key_parse("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                         "TOKEN_SIGNING_KEY", &key, &err) != SH_OK)
            abort();
        ready = 1;
    }
    if (size == 0 || size > GW_TOKEN_MAX_LEN + 64)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    switch (mode % 6) {
    case 0: /* a token as sent */
        fuzz_check_token(&key, s, size);
        break;
    case 1: { /* a payload after the version and key id, signed */
        sh_buf p;
        sh_buf_init(&p);
        sh_buf_printf(&p, "1,%u,", (unsigned)key.id);
        sh_buf_append(&p, data, size);
        if (p.data)
            fuzz_signed(&key, (const uint8_t *)p.data, p.len);
        sh_buf_fini(&p);
        break;
    }
    case 2: /* a whole payload, signed */
        fuzz_signed(&key, data, size);
        break;
    case 3: { /* an Authorization header */
        gw_config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.api_token = "full-token-0123456789";
        cfg.ro_token = "read-token-0123456789";
        int rc = gw_auth_check(&cfg, size % 2 ? GW_GET : GW_POST, s);
        if (rc == GW_AUTH_OK && !strstr(s, cfg.api_token) && !strstr(s, cfg.ro_token))
            abort();
        break;
    }
    case 4: { /* a URL logged with its access_token hidden */
        char out[512];
        memset(out, 0x55, sizeof out);
        gw_token_scrub(s, out, sizeof out);
        if (!memchr(out, '\0', sizeof out))
            abort();
        break;
    }
    default: { /* Last-Event-ID of a record stream and of a mail stream */
        int64_t v = -1;
        if (gw__sse_last_id_parse(s, &v) && v < 0)
            abort();
        char last[GW_SSE_MAIL_ID_MAX];
        if (gw__sse_mail_last_check(s, last, sizeof last) && strcmp(last, s) != 0)
            abort();
        break;
    }
    }
    free(s);
    return 0;
}
