/* gw_auth.h - bearer tokens: API_TOKEN allows every request,
 * API_READ_ONLY_TOKEN only GET and HEAD; with neither set all is open. The
 * cron routes take CRON_SECRET and nothing else: a cron caller needs no API
 * token, and an API token opens no cron route. */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include "gw_config.h"

enum gw_auth_result {
    GW_AUTH_OK,
    GW_AUTH_MISSING,   /* 401: no bearer token given */
    GW_AUTH_BAD,       /* 401: a token that matches neither */
    GW_AUTH_READ_ONLY, /* 403: the read-only token on a method that writes */
    GW_AUTH_DISABLED,  /* 503: CRON_SECRET is not set */
};

/* gw_auth_check judges the Authorization header value (or NULL) for a
 * request with method (enum gw_method). */
int gw_auth_check(const gw_config *cfg, int method, const char *authorization);

/* gw_auth_cron judges the Authorization header value (or NULL) of a cron
 * route against CRON_SECRET: GW_AUTH_OK, _MISSING, _BAD or _DISABLED. */
int gw_auth_cron(const gw_config *cfg, const char *authorization);

#endif
