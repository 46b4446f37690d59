/* url.c - parsing of REDIS_URL / KV_URL into an sh_redis_url. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/store.h"

static int url_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* url_copy_decoded copies src[0..len) into dst, undoing %XX escapes. */
static int url_copy_decoded(char *dst, size_t cap, const char *src, size_t len, const char *what,
                            sh_error *err)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)src[i];
        if (c == '%') {
            int h, l;
            h = i + 1 < len ? url_hex(src[i + 1]) : -1;
            l = i + 2 < len ? url_hex(src[i + 2]) : -1;
            if (h < 0 || l < 0)
                return sh_error_set(err, SH_EINVAL, "REDIS_URL: bad %%-escape in %s", what);
            c = h * 16 + l;
            i += 2;
        }
        if (o + 1 >= cap)
            return sh_error_set(err, SH_EINVAL, "REDIS_URL: %s is too long", what);
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return SH_OK;
}

static int url_parse_int(const char *s, size_t len, long lo, long hi, long *out)
{
    if (len == 0 || len > 9)
        return -1;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* url_parse_hostport reads "host[:port]" or "[v6]:port" in p..end, the
 * nth host of the URL (counted from 1 in messages). */
static int url_parse_hostport(const char *p, const char *end, sh_redis_host *h, int nth,
                              sh_error *err)
{
    const char *portp = NULL;
    size_t hlen;
    h->port = 6379;
    if (p < end && *p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (!close)
            return sh_error_set(err, SH_EINVAL, "REDIS_URL: unclosed '[' in IPv6 host");
        hlen = (size_t)(close - p - 1);
        if (hlen >= sizeof h->host)
            return sh_error_set(err, SH_EINVAL, "REDIS_URL: host is too long");
        memcpy(h->host, p + 1, hlen);
        h->host[hlen] = '\0';
        if (close + 1 < end) {
            if (close[1] != ':')
                return sh_error_set(err, SH_EINVAL, "REDIS_URL: junk after IPv6 host");
            portp = close + 2;
        }
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        hlen = (size_t)((colon ? colon : end) - p);
        if (hlen >= sizeof h->host)
            return sh_error_set(err, SH_EINVAL, "REDIS_URL: host is too long");
        memcpy(h->host, p, hlen);
        h->host[hlen] = '\0';
        if (colon)
            portp = colon + 1;
    }
    if (!h->host[0])
        return sh_error_set(
            err, SH_EINVAL,
            nth > 1 ? "REDIS_URL: host %d of the list is empty" : "REDIS_URL has no host", nth);
    if (portp) {
        long port;
        if (url_parse_int(portp, (size_t)(end - portp), 1, 65535, &port))
            return sh_error_set(err, SH_EINVAL, "REDIS_URL: port must be 1..65535, got \"%.*s\"",
                                (int)(end - portp), portp);
        h->port = (int)port;
    }
    return SH_OK;
}

/* url_parse_query handles "db=N&password=P&user=U" of unix socket URLs. */
static int url_parse_query(const char *q, sh_redis_url *u, sh_error *err)
{
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        if (!eq)
            return sh_error_set(err, SH_EINVAL, "REDIS_URL: query parameter without '='");
        size_t klen = (size_t)(eq - q), vlen = len - klen - 1;
        const char *v = eq + 1;
        long n;
        int rc = SH_OK;
        if (klen == 2 && memcmp(q, "db", 2) == 0) {
            if (url_parse_int(v, vlen, 0, 1000000, &n))
                return sh_error_set(err, SH_EINVAL, "REDIS_URL: db must be a number >= 0");
            u->db = (int)n;
        } else if (klen == 8 && memcmp(q, "password", 8) == 0) {
            rc = url_copy_decoded(u->password, sizeof u->password, v, vlen, "password", err);
        } else if (klen == 4 && memcmp(q, "user", 4) == 0) {
            rc = url_copy_decoded(u->user, sizeof u->user, v, vlen, "user", err);
        } else {
            return sh_error_set(err, SH_EINVAL, "REDIS_URL: unknown query parameter \"%.*s\"",
                                (int)klen, q);
        }
        if (rc)
            return rc;
        q += len + (amp ? 1 : 0);
    }
    return SH_OK;
}

int sh_redis_url_parse(const char *url, sh_redis_url *u, sh_error *err)
{
    memset(u, 0, sizeof *u);
    u->port = 6379;
    if (!url || !*url)
        return sh_error_set(err, SH_EINVAL, "REDIS_URL is empty");
    static const char *unix_schemes[] = {"unix://", "redis+unix://", "redis-socket://", NULL};
    for (int i = 0; unix_schemes[i]; i++) {
        size_t sl = strlen(unix_schemes[i]);
        if (strncmp(url, unix_schemes[i], sl) != 0)
            continue;
        const char *path = url + sl;
        const char *q = strchr(path, '?');
        size_t plen = q ? (size_t)(q - path) : strlen(path);
        if (plen == 0 || path[0] != '/')
            return sh_error_set(err, SH_EINVAL,
                                "REDIS_URL: a unix socket URL needs an absolute path "
                                "(unix:///run/redis.sock)");
        if (plen >= sizeof u->path)
            return sh_error_set(err, SH_EINVAL, "REDIS_URL: socket path is too long");
        memcpy(u->path, path, plen);
        u->unix_socket = true;
        return q ? url_parse_query(q + 1, u, err) : SH_OK;
    }
    const char *rest;
    if (strncmp(url, "redis://", 8) == 0) {
        rest = url + 8;
    } else if (strncmp(url, "rediss://", 9) == 0) {
        rest = url + 9;
        u->tls = true;
    } else {
        return sh_error_set(err, SH_EINVAL,
                            "REDIS_URL must start with redis://, rediss:// or unix://, got "
                            "\"%.16s...\"",
                            url);
    }
    const char *end = rest + strcspn(rest, "/?");
    const char *at = NULL;
    for (const char *p = rest; p < end; p++)
        if (*p == '@')
            at = p; /* the last '@': passwords may contain an escaped one */
    const char *hostpart = rest;
    if (at) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        int rc;
        if (colon) {
            rc = url_copy_decoded(u->user, sizeof u->user, rest, (size_t)(colon - rest), "user",
                                  err);
            if (!rc)
                rc = url_copy_decoded(u->password, sizeof u->password, colon + 1,
                                      (size_t)(at - colon - 1), "password", err);
        } else {
            /* "redis://secret@host": a lone credential is a password. */
            rc = url_copy_decoded(u->password, sizeof u->password, rest, (size_t)(at - rest),
                                  "password", err);
        }
        if (rc)
            return rc;
        hostpart = at + 1;
    }
    if (hostpart == end)
        return sh_error_set(err, SH_EINVAL, "REDIS_URL has no host");
    while (hostpart <= end) {
        const char *comma = memchr(hostpart, ',', (size_t)(end - hostpart));
        const char *seg_end = comma ? comma : end;
        if (u->nhosts == SH_URL_HOSTS_MAX)
            return sh_error_set(err, SH_EINVAL, "REDIS_URL lists more than %d hosts",
                                SH_URL_HOSTS_MAX);
        int rc = url_parse_hostport(hostpart, seg_end, &u->hosts[u->nhosts], u->nhosts + 1, err);
        if (rc)
            return rc;
        u->nhosts++;
        hostpart = seg_end + 1;
    }
    memcpy(u->host, u->hosts[0].host, sizeof u->host);
    u->port = u->hosts[0].port;
    if (*end == '/') {
        const char *db = end + 1;
        size_t dlen = strcspn(db, "?");
        long n;
        if (dlen > 0) {
            if (url_parse_int(db, dlen, 0, 1000000, &n))
                return sh_error_set(err, SH_EINVAL,
                                    "REDIS_URL: database must be a number, got \"%.*s\"", (int)dlen,
                                    db);
            u->db = (int)n;
        }
        end = db + dlen;
    }
    if (*end == '?')
        return url_parse_query(end + 1, u, err);
    return SH_OK;
}

void sh_redis_url_display(const sh_redis_url *u, char *buf, size_t len)
{
    char cred[SH_URL_FIELD_MAX + 8] = "";
    if (u->user[0] || u->password[0])
        snprintf(cred, sizeof cred, "%.200s%s@", u->user, u->password[0] ? ":***" : "");
    if (u->unix_socket) {
        snprintf(buf, len, "unix://%s?db=%d%s", u->path, u->db,
                 cred[0] ? " (with credentials)" : "");
        return;
    }
    char hosts[1024] = "";
    size_t o = 0;
    int n = u->nhosts > 0 ? u->nhosts : 1;
    for (int i = 0; i < n && o < sizeof hosts; i++) {
        const char *h = u->nhosts > 0 ? u->hosts[i].host : u->host;
        int port = u->nhosts > 0 ? u->hosts[i].port : u->port;
        int w = snprintf(hosts + o, sizeof hosts - o,
                         strchr(h, ':') ? "%s[%.200s]:%d" : "%s%.200s:%d", i ? "," : "", h, port);
        if (w < 0)
            break;
        o += (size_t)w;
    }
    snprintf(buf, len, "%s://%s%s/%d", u->tls ? "rediss" : "redis", cred, hosts, u->db);
}
