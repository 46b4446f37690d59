/* auth.c - bearer token checks, in time independent of the tokens' bytes. */
#include "gw_auth.h"

#include <string.h>
#include <strings.h>

#include "gw_router.h"
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
