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

int gw_auth_check(const gw_config *cfg, int method, const char *authorization)
{
    if (!cfg->api_token && !cfg->ro_token)
        return GW_AUTH_OK;
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
        return GW_AUTH_MISSING;
    const char *t = authorization + 7;
    while (*t == ' ' || *t == '\t')
        t++;
    size_t len = strlen(t);
    while (len && (t[len - 1] == ' ' || t[len - 1] == '\t'))
        len--;
    if (len == 0)
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
