/* account_auth.c - the `auth` field of an account: an OAuth2 sign-in in
 * place of a password, checked, sealed (a msgpack map of its secrets, see
 * shared/oauth.h, where a password account keeps its sealed password) and
 * described in the hash by public fields only: authType, authProvider,
 * authExpiresAt (ms) and authVersion (changes with every write of the
 * secret, so that a token refresh can compare-and-set on it). */
#include <stdio.h>
#include <string.h>

#include "ops.h"
#include "shared/oauth.h"
#include "shared/util.h"

#define AUTH_CLIENT_MAX 1024
#define AUTH_TOKEN_MAX  8192
#define AUTH_URL_MAX    2048
#define AUTH_SCOPE_MAX  1024

typedef struct auth_field {
    const char *name;
    size_t max;
} auth_field;

static const auth_field auth_strings[] = {
    {"provider", 32},
    {"clientId", AUTH_CLIENT_MAX},
    {"clientSecret", AUTH_CLIENT_MAX},
    {"refreshToken", AUTH_TOKEN_MAX},
    {"tokenUrl", AUTH_URL_MAX},
    {"scope", AUTH_SCOPE_MAX},
    {"accessToken", AUTH_TOKEN_MAX},
    {NULL, 0},
};

static bool auth_printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* auth_check_map checks the auth object: known fields of the right types,
 * then one of the two forms. */
static int auth_check_map(const sh_val *auth, sh_error *err)
{
    if (sh_val_type_of(auth) != SH_VAL_MAP)
        return sh_error_set(err, SH_EINVAL, "field \"auth\" must be an object");
    for (size_t i = 0; i < sh_val_len(auth); i++) {
        const char *k = sh_val_key_at(auth, i, NULL);
        const sh_val *v = sh_val_value_at(auth, i);
        if (strcmp(k, "type") == 0 || strcmp(k, "expiresAt") == 0)
            continue;
        const auth_field *f = auth_strings;
        while (f->name && strcmp(f->name, k) != 0)
            f++;
        if (!f->name)
            return sh_error_set(err, SH_EINVAL,
                                "unknown field \"auth.%.40s\" (allowed: type, provider, clientId, "
                                "clientSecret, refreshToken, tokenUrl, scope, accessToken, "
                                "expiresAt)",
                                k);
        size_t len;
        const char *s = sh_val_str(v, &len);
        if (sh_val_type_of(v) != SH_VAL_STR || len == 0 || len > f->max || !auth_printable(s, len))
            return sh_error_set(err, SH_EINVAL,
                                "field \"auth.%s\" must be a string of 1..%zu printable "
                                "characters",
                                f->name, f->max);
    }
    const char *type = sh_val_get_str(auth, "type", NULL);
    if (!type || strcmp(type, "oauth2") != 0)
        return sh_error_set(err, SH_EINVAL, "field \"auth.type\" must be \"oauth2\"");
    const char *provider = sh_val_get_str(auth, "provider", NULL);
    const sh_oauth_provider *p = sh_oauth_provider_find(provider);
    if (provider && !p)
        return sh_error_set(err, SH_EINVAL,
                            "field \"auth.provider\" must be \"google\", \"microsoft\" or "
                            "\"custom\"");
    const char *url = sh_val_get_str(auth, "tokenUrl", NULL);
    if (url && !sh_oauth_url_ok(url))
        return sh_error_set(err, SH_EINVAL,
                            "field \"auth.tokenUrl\" must be an https:// URL (http:// only on a "
                            "loopback host)");
    if (url && (!p || p->token_url))
        return sh_error_set(err, SH_EINVAL,
                            "field \"auth.tokenUrl\" is for provider \"custom\" only (google and "
                            "microsoft have theirs)");
    const sh_val *exp = sh_val_get(auth, "expiresAt");
    size_t elen;
    const char *es = exp ? sh_val_str(exp, &elen) : NULL;
    int64_t ms;
    if (exp && (sh_val_type_of(exp) != SH_VAL_STR || !sh_oauth_parse_time(es, elen, &ms)))
        return sh_error_set(err, SH_EINVAL,
                            "field \"auth.expiresAt\" must be an ISO 8601 UTC time like "
                            "2026-01-01T10:00:00Z");
    bool has_access = sh_val_get(auth, "accessToken") != NULL;
    if (has_access != (exp != NULL))
        return sh_error_set(err, SH_EINVAL, "field \"auth.%s\" is required with auth.%s",
                            has_access ? "expiresAt" : "accessToken",
                            has_access ? "accessToken" : "expiresAt");
    bool managed = sh_val_get(auth, "refreshToken") || sh_val_get(auth, "clientId") ||
                   sh_val_get(auth, "clientSecret");
    if (!managed && !has_access)
        return sh_error_set(err, SH_EINVAL,
                            "field \"auth\" needs provider, clientId and refreshToken (managed) "
                            "or accessToken and expiresAt (supplied by the app)");
    if (managed) {
        if (!p)
            return sh_error_set(err, SH_EINVAL, "field \"auth.provider\" is required");
        static const char *const need[] = {"clientId", "refreshToken", NULL};
        for (size_t i = 0; need[i]; i++)
            if (!sh_val_get(auth, need[i]))
                return sh_error_set(err, SH_EINVAL, "field \"auth.%s\" is required", need[i]);
        if (!p->token_url && !url)
            return sh_error_set(err, SH_EINVAL,
                                "field \"auth.tokenUrl\" is required for provider \"custom\"");
    }
    return SH_OK;
}

int coord_auth_check(const sh_val *fields, bool create, sh_error *err)
{
    const sh_val *auth = sh_val_get(fields, "auth");
    if (auth && sh_val_get(fields, "password"))
        return sh_error_set(err, SH_EINVAL,
                            "field \"auth\": an account signs in with a password or with OAuth2, "
                            "not both (leave out \"password\")");
    if (create && !auth && !sh_val_get(fields, "password"))
        return sh_error_set(err, SH_EINVAL, "field \"password\" (or \"auth\") is required");
    return auth ? auth_check_map(auth, err) : SH_OK;
}

int coord_auth_seal(const sh_key *key, const char *id, const sh_val *auth, sh_buf *blob,
                    sh_error *err)
{
    const sh_oauth_provider *p = sh_oauth_provider_find(sh_val_get_str(auth, "provider", NULL));
    sh_oauth_secret s = {
        .provider = p ? p->name : NULL,
        .client_id = sh_val_get_str(auth, "clientId", NULL),
        .client_secret = sh_val_get_str(auth, "clientSecret", NULL),
        .refresh_token = sh_val_get_str(auth, "refreshToken", NULL),
        .token_url = sh_val_get_str(auth, "tokenUrl", NULL),
        .scope = sh_val_get_str(auth, "scope", NULL),
        .access_token = sh_val_get_str(auth, "accessToken", NULL),
    };
    if (p && p->token_url)
        s.token_url = p->token_url;
    if (p && !s.scope)
        s.scope = p->scope;
    size_t elen;
    const char *es = sh_val_get_str(auth, "expiresAt", &elen);
    if (es)
        sh_oauth_parse_time(es, elen, &s.expires_ms);
    sh_buf plain;
    sh_buf_init_secret(&plain);
    int rc = sh_oauth_secret_pack(&s, &plain);
    if (!rc)
        rc = sh_seal(key, plain.data, plain.len, id, blob);
    sh_buf_fini(&plain);
    return rc ? sh_error_set(err, rc, "cannot seal the OAuth2 secrets") : SH_OK;
}

void coord_auth_add_fields(sh_cmd *c, const sh_val *fields)
{
    const sh_val *auth = sh_val_get(fields, "auth");
    if (!auth && !sh_val_get(fields, "password"))
        return;
    char version[17];
    sh_random_hex(version, 8);
    sh_cmd_str(c, "authVersion");
    sh_cmd_str(c, version);
    sh_cmd_str(c, "authType");
    sh_cmd_str(c, auth ? "oauth2" : "password");
    const char *provider = auth ? sh_val_get_str(auth, "provider", NULL) : NULL;
    sh_cmd_str(c, "authProvider");
    sh_cmd_str(c, provider ? provider : "");
    size_t elen;
    const char *es = auth ? sh_val_get_str(auth, "expiresAt", &elen) : NULL;
    int64_t ms = 0;
    sh_cmd_str(c, "authExpiresAt");
    if (es && sh_oauth_parse_time(es, elen, &ms))
        sh_cmd_int(c, ms);
    else
        sh_cmd_str(c, "");
    /* A new sign-in starts without the refresh backoff of the old one. */
    sh_cmd_str(c, "authFailures");
    sh_cmd_str(c, "0");
    sh_cmd_str(c, "authRetryAt");
    sh_cmd_str(c, "0");
}
