/* auth.c - bearer token checks, in time independent of the tokens' bytes. */
#include "gw_auth.h"

#include <string.h>
#include <strings.h>

#include "gw_router.h"
#include "gw_token.h"
#include "shared/util.h"

static bool auth_equal(const char *token, const char *given, size_t glen)
{
    return token && sh_secret_equal(token, strlen(token), given, glen);
}

/* auth_bearer finds the token of an "Authorization: Bearer <token>" value,
 * blanks around it trimmed; false when there is none. */
static bool auth_bearer(const char *authorization, const char **token, size_t *len)
{
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
        return false;
    const char *t = authorization + 7;
    while (*t == ' ' || *t == '\t')
        t++;
    size_t n = strlen(t);
    while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    *token = t;
    *len = n;
    return n > 0;
}

int gw_auth_check(const gw_config *cfg, int method, const char *authorization)
{
    if (!cfg->api_token && !cfg->ro_token)
        return GW_AUTH_OK;
    const char *t;
    size_t len;
    if (!auth_bearer(authorization, &t, &len))
        return GW_AUTH_MISSING;
    /* Both comparisons always run, so timing tells nothing of which matched. */
    bool full = auth_equal(cfg->api_token, t, len);
    bool ro = auth_equal(cfg->ro_token, t, len);
    if (full)
        return GW_AUTH_OK;
    if (ro)
        return (method == GW_GET || method == GW_HEAD) ? GW_AUTH_OK : GW_AUTH_READ_ONLY;
    return GW_AUTH_BAD;
}

static bool auth_reads(int method)
{
    return method == GW_GET || method == GW_HEAD;
}

int gw_auth_request(const gw_config *cfg, const gw_auth_ask *ask, int64_t now_ms, gw_token *tok)
{
    gw_token scratch;
    gw_token *t = tok ? tok : &scratch;
    t->n = 0;
    if (!cfg->api_token && !cfg->ro_token)
        return GW_AUTH_OK;
    const char *s;
    size_t len;
    if (ask->authorization) {
        if (!auth_bearer(ask->authorization, &s, &len))
            return GW_AUTH_MISSING;
        int rc = gw_auth_check(cfg, ask->method, ask->authorization);
        if (rc != GW_AUTH_BAD)
            return rc;
    } else if (ask->access_token && *ask->access_token) {
        /* A URL ends in logs and histories: no write, and no long-lived token, goes in one. */
        if (!auth_reads(ask->method))
            return GW_AUTH_WRITE;
        s = ask->access_token;
        len = strlen(s);
    } else {
        return GW_AUTH_MISSING;
    }
    const sh_key *keys[2] = {&cfg->token_keys[0], &cfg->token_keys[1]};
    switch (gw_token_verify(keys, cfg->ntoken_keys, s, len, now_ms, t)) {
    case GW_TOKEN_OK:
        break;
    case GW_TOKEN_EXPIRED:
        t->n = 0;
        return GW_AUTH_EXPIRED;
    default:
        return GW_AUTH_BAD;
    }
    int rc = !auth_reads(ask->method) ? GW_AUTH_WRITE
             : ask->scope == GW_SCOPE_HANDLER || gw_token_covers(t, ask->scope, ask->id)
                 ? GW_AUTH_OK
                 : GW_AUTH_UNCOVERED;
    if (rc != GW_AUTH_OK)
        t->n = 0;
    return rc;
}

int gw_auth_cron(const gw_config *cfg, const char *authorization)
{
    const char *t;
    size_t len;
    if (!cfg->cron_secret)
        return GW_AUTH_DISABLED;
    if (!auth_bearer(authorization, &t, &len))
        return GW_AUTH_MISSING;
    return auth_equal(cfg->cron_secret, t, len) ? GW_AUTH_OK : GW_AUTH_BAD;
}
