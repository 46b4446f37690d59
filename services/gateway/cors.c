/* cors.c - the origins of CORS_ORIGINS: their syntax and the exact match of
 * a request's Origin against them. The headers themselves are added where
 * replies are sent (http.c). */
#include "gw_cors.h"

#include <string.h>

static bool cors_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

/* cors_valid checks one origin of n bytes. */
static bool cors_valid(const char *s, size_t n)
{
    size_t i;
    if (n > 7 && memcmp(s, "http://", 7) == 0)
        i = 7;
    else if (n > 8 && memcmp(s, "https://", 8) == 0)
        i = 8;
    else
        return false;
    size_t host = i;
    if (s[i] == '[') {
        while (i < n && s[i] != ']') {
            char c = s[i];
            if (i > host && !(cors_host_char(c) || c == ':'))
                return false;
            i++;
        }
        if (i == n || i == host + 1)
            return false;
        i++;
    } else {
        while (i < n && cors_host_char(s[i]))
            i++;
        if (i == host)
            return false;
    }
    if (i == n)
        return true;
    if (s[i] != ':' || i + 1 == n || n - i - 1 > 5)
        return false;
    for (i++; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

int gw_cors_parse(const char *list, gw_cors *out, sh_error *err)
{
    memset(out, 0, sizeof *out);
    if (!list)
        return SH_OK;
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *e = end;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        size_t n = (size_t)(e - p);
        if (n == 1 && *p == '*')
            return sh_error_set(err, SH_EINVAL,
                                "CORS_ORIGINS must list exact origins: \"*\" would let every "
                                "site read the API's replies");
        if (n == 0 || n > 255 || !cors_valid(p, n))
            return sh_error_set(err, SH_EINVAL,
                                "CORS_ORIGINS: \"%.*s\" is not an origin (scheme://host[:port] "
                                "in lower case, http or https, no path, comma-separated)",
                                (int)(n > 200 ? 200 : n), p);
        if (out->n == GW_CORS_ORIGINS_MAX)
            return sh_error_set(err, SH_EINVAL, "CORS_ORIGINS lists more than %d origins",
                                GW_CORS_ORIGINS_MAX);
        out->origin[out->n].p = p;
        out->origin[out->n].len = n;
        out->n++;
        if (!comma)
            return SH_OK;
        p = comma + 1;
    }
}

bool gw_cors_allowed(const gw_cors *c, const char *origin)
{
    if (!origin)
        return false;
    size_t n = strlen(origin);
    for (size_t i = 0; i < c->n; i++)
        if (c->origin[i].len == n && memcmp(c->origin[i].p, origin, n) == 0)
            return true;
    return false;
}
