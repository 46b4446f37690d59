/* oauth.c - the OAuth2 provider presets (one table), the token endpoint
 * URL rule and the sealed secret's map (see shared/oauth.h). */
#include "shared/oauth.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "shared/msg.h"

/* Microsoft 365 takes XOAUTH2 only; Google both; a custom server is
 * asked for the standard mechanism (RFC 7628) first. */
static const sh_oauth_provider oauth_providers[] = {
    {"google", "https://oauth2.googleapis.com/token", "https://mail.google.com/",
     "XOAUTH2 OAUTHBEARER"},
    {"microsoft", "https://login.microsoftonline.com/common/oauth2/v2.0/token",
     "https://outlook.office.com/IMAP.AccessAsUser.All offline_access", "XOAUTH2 OAUTHBEARER"},
    {"custom", NULL, NULL, "OAUTHBEARER XOAUTH2"},
    {NULL, NULL, NULL, NULL},
};

const sh_oauth_provider *sh_oauth_provider_find(const char *name)
{
    for (const sh_oauth_provider *p = oauth_providers; name && p->name; p++)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

bool sh_oauth_url_host(const char *url, char *host, size_t cap)
{
    const char *h = NULL;
    if (url && strncasecmp(url, "https://", 8) == 0)
        h = url + 8;
    else if (url && strncasecmp(url, "http://", 7) == 0)
        h = url + 7;
    if (!h)
        return false;
    size_t n = strcspn(h, "/?#");
    if (memchr(h, '@', n) || n == 0 || n >= cap)
        return false; /* no credentials in the URL */
    memcpy(host, h, n);
    host[n] = '\0';
    char *colon = host[0] == '[' ? strstr(host, "]:") : strrchr(host, ':');
    if (colon)
        colon[host[0] == '[' ? 1 : 0] = '\0';
    return host[0] != '\0';
}

bool sh_oauth_url_ok(const char *url)
{
    if (!url || strpbrk(url, " \t\r\n"))
        return false;
    char host[256];
    if (!sh_oauth_url_host(url, host, sizeof host))
        return false;
    if (strncasecmp(url, "https://", 8) == 0)
        return true;
    if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
        return true;
    unsigned a, b, c, d;
    char extra;
    return sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &extra) == 4 && a == 127 && b < 256 &&
           c < 256 && d < 256;
}

bool sh_oauth_parse_time(const char *s, size_t len, int64_t *ms)
{
    char buf[40];
    if (!s || len < 20 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int used = 0;
    if (sscanf(buf, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &used) != 6 ||
        used != 19 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    const char *p = buf + used;
    long frac = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                frac = frac * 10 + (*p - '0');
        if (digits == 0)
            return false;
        for (; digits < 3; digits++)
            frac *= 10;
    }
    if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
        return false;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || t < 0)
        return false;
    *ms = (int64_t)t * 1000 + frac;
    return true;
}

/* The map's fields, in the order of sh_oauth_secret. */
static const char *const oauth_fields[] = {
    "provider", "clientId", "clientSecret", "refreshToken", "tokenUrl", "scope", "accessToken",
};
#define OAUTH_NFIELDS (sizeof oauth_fields / sizeof oauth_fields[0])

static const char **oauth_slot(sh_oauth_secret *s, size_t i)
{
    const char **slots[OAUTH_NFIELDS] = {&s->provider,      &s->client_id, &s->client_secret,
                                         &s->refresh_token, &s->token_url, &s->scope,
                                         &s->access_token};
    return slots[i];
}

int sh_oauth_secret_read(const void *plain, size_t len, sh_val **map, sh_oauth_secret *s,
                         sh_error *err)
{
    memset(s, 0, sizeof *s);
    *map = NULL;
    sh_val *m = NULL;
    if (sh_msg_unpack(plain, len, NULL, &m, NULL) != SH_OK || sh_val_type_of(m) != SH_VAL_MAP) {
        sh_val_free(m);
        return sh_error_set(err, SH_EINVAL, "the account's OAuth2 secret is not a map");
    }
    for (size_t i = 0; i < OAUTH_NFIELDS; i++) {
        const char *v = sh_val_get_str(m, oauth_fields[i], NULL);
        *oauth_slot(s, i) = v && v[0] ? v : NULL;
    }
    const sh_val *e = sh_val_get(m, "expiresAt");
    s->expires_ms = sh_val_type_of(e) == SH_VAL_INT ? sh_val_int(e) : 0;
    *map = m;
    return SH_OK;
}

int sh_oauth_secret_pack(const sh_oauth_secret *s, sh_buf *out)
{
    sh_val *m = sh_val_new_map();
    int rc = m ? SH_OK : SH_ENOMEM;
    sh_oauth_secret copy = *s;
    for (size_t i = 0; !rc && i < OAUTH_NFIELDS; i++) {
        const char *v = *oauth_slot(&copy, i);
        if (v && v[0])
            rc = sh_val_set_cstr(m, oauth_fields[i], sh_val_new_cstr(v));
    }
    if (!rc && s->expires_ms > 0)
        rc = sh_val_set_cstr(m, "expiresAt", sh_val_new_int(s->expires_ms));
    if (!rc)
        rc = sh_msg_pack(m, out);
    sh_val_free(m);
    return rc ? SH_ENOMEM : SH_OK;
}

bool sh_oauth_secret_managed(const sh_oauth_secret *s)
{
    return s->refresh_token && s->client_id && s->token_url;
}
