/* gw_cors.h - cross-origin requests from browsers (CORS_ORIGINS): which
 * origins may read the gateway's replies, and the headers that tell a
 * browser so. Unset, no reply carries a CORS header. */
#ifndef GW_CORS_H
#define GW_CORS_H

#include <stdbool.h>
#include <stddef.h>

#include "shared/err.h"

#define GW_CORS_ORIGINS_MAX 32
/* Access-Control-Max-Age of a preflight's answer, in seconds. */
#define GW_CORS_MAX_AGE       "600"
#define GW_CORS_ALLOW_HEADERS "Authorization, Content-Type, Last-Event-ID"

/* The origins of CORS_ORIGINS, each pointing into the setting's value. */
typedef struct gw_cors {
    size_t n;
    struct {
        const char *p;
        size_t len;
    } origin[GW_CORS_ORIGINS_MAX];
} gw_cors;

/* gw_cors_parse reads list (comma-separated exact origins, blanks around
 * each ignored: "https://app.example.com,http://localhost:3000") into out,
 * which points into list. An origin is http or https, "://", a host of
 * letters, digits, '-' and '.' (or a bracketed IPv6 address) and an
 * optional port, nothing after it: "*", a path, a trailing '/' or upper-case
 * letters (browsers send origins in lower case) are refused with SH_EINVAL
 * and err naming CORS_ORIGINS and the origin. */
int gw_cors_parse(const char *list, gw_cors *out, sh_error *err);

/* gw_cors_allowed reports whether origin (an Origin header, or NULL) is one
 * of c's, byte for byte. */
bool gw_cors_allowed(const gw_cors *c, const char *origin);

#endif
