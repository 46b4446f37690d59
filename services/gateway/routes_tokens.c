/* routes_tokens.c - POST /api/tokens: scoped tokens for browsers, minted
 * for a caller holding API_TOKEN (a page's own server, which hands the token
 * to the page). Nothing is stored: the token carries its scopes and expiry. */
#include <stdio.h>
#include <string.h>

#include "gw_json.h"
#include "gw_routes.h"
#include "gw_token.h"
#include "shared/util.h"

/* routes_tokens_scopes reads the body's "scopes" into t; false when it has
 * replied 400 naming the problem. */
static bool routes_tokens_scopes(gw_req *r, const sh_val *scopes, gw_token *t)
{
    if (!scopes || sh_val_type_of(scopes) != SH_VAL_ARRAY) {
        gw_req_reply_error(r, 400,
                           "\"scopes\" must be an array of scopes such as "
                           "\"progress:<id>\", \"job:<id>\", \"account:<id>\", "
                           "\"accounts\" or \"queue\"");
        return false;
    }
    size_t n = sh_val_len(scopes);
    if (n == 0) {
        gw_req_reply_error(r, 400, "\"scopes\" is empty: a token needs at least one scope");
        return false;
    }
    if (n > GW_TOKEN_SCOPES_MAX) {
        gw_req_reply_error(r, 400, "\"scopes\" has %zu scopes: at most %d are allowed", n,
                           GW_TOKEN_SCOPES_MAX);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const sh_val *v = sh_val_at(scopes, i);
        size_t len = 0;
        const char *s = sh_val_type_of(v) == SH_VAL_STR ? sh_val_str(v, &len) : NULL;
        if (!s) {
            gw_req_reply_error(r, 400, "scope %zu is not a string", i + 1);
            return false;
        }
        if (gw_scope_parse(s, len, &t->scope[i]) != SH_OK) {
            gw_req_reply_error(r, 400,
                               "unknown or malformed scope \"%.*s\": scopes are progress:<id>, "
                               "job:<id>, account:<id>, accounts and queue",
                               (int)(len > 160 ? 160 : len), s);
            return false;
        }
    }
    t->n = n;
    return true;
}

void gw_route_tokens_create(gw_req *r)
{
    const gw_config *cfg = gw_req_app(r)->cfg;
    if (!cfg->ntoken_keys) {
        gw_req_reply_error(r, 503, "TOKEN_SIGNING_KEY is not set: scoped tokens are disabled");
        return;
    }
    sh_val *body = gw_req_take_body(r);
    for (size_t i = 0; i < sh_val_len(body); i++) {
        size_t klen;
        const char *k = sh_val_key_at(body, i, &klen);
        if (!(klen == 6 && memcmp(k, "scopes", 6) == 0) &&
            !(klen == 10 && memcmp(k, "ttlSeconds", 10) == 0)) {
            gw_req_reply_error(r, 400, "unknown field \"%.*s\": send scopes and ttlSeconds",
                               (int)(klen > 64 ? 64 : klen), k);
            sh_val_free(body);
            return;
        }
    }
    gw_token t;
    memset(&t, 0, sizeof t);
    const sh_val *ttl = sh_val_get(body, "ttlSeconds");
    if (!ttl || sh_val_type_of(ttl) != SH_VAL_INT || sh_val_int(ttl) < 1 ||
        sh_val_int(ttl) > cfg->token_max_ttl_s) {
        gw_req_reply_error(r, 400,
                           "\"ttlSeconds\" must be an integer from 1 to %lld (TOKEN_MAX_TTL)",
                           cfg->token_max_ttl_s);
        sh_val_free(body);
        return;
    }
    bool ok = routes_tokens_scopes(r, sh_val_get(body, "scopes"), &t);
    int64_t ttl_s = sh_val_int(ttl);
    sh_val_free(body);
    if (!ok)
        return;
    t.expires_ms = sh_now_ms() + ttl_s * 1000;
    sh_buf tok, out;
    sh_buf_init(&tok);
    sh_buf_init(&out);
    char iso[SH_ISO_LEN];
    sh_iso8601(t.expires_ms, iso);
    int rc = gw_token_mint(&cfg->token_keys[0], &t, &tok);
    if (rc == SH_OK) {
        sh_buf_puts(&out, "{\"token\":");
        gw_json_write_str(&out, tok.data, tok.len);
        sh_buf_printf(&out, ",\"expiresAt\":\"%s\",\"scopes\":[", iso);
        for (size_t i = 0; i < t.n; i++) {
            char s[16 + SH_ID_MAX];
            gw_scope_format(t.scope[i].kind, t.scope[i].id, s, sizeof s);
            sh_buf_puts(&out, i ? "," : "");
            gw_json_write_str(&out, s, strlen(s));
        }
        rc = sh_buf_puts(&out, "]}");
    }
    sh_buf_fini(&tok);
    if (rc != SH_OK) {
        sh_buf_fini(&out);
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    gw_req_reply_raw(r, 201, "application/json", &out);
}
