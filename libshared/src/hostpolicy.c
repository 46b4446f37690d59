/* hostpolicy.c - the connect policy of hostpolicy.h: the operator's lists
 * parsed once into CIDR ranges and names, and each address (IPv4-mapped
 * IPv6 taken as IPv4) checked against them and the built-in ranges. */
#include "shared/hostpolicy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HP_NAME_MAX 253

/* An address range: 16 bytes (IPv4 as IPv4-mapped IPv6) and a prefix
 * length over those 128 bits. */
typedef struct hp_range {
    unsigned char a[16];
    int bits;
} hp_range;

typedef struct hp_list {
    hp_range *ranges;
    size_t nranges;
    char **names;
    size_t nnames;
} hp_list;

struct sh_hostpolicy {
    hp_list allow, deny;
    char allow_var[64], deny_var[64];
};

/* A built-in range and what it is, for messages; range is cidr parsed,
 * once per process (hp_builtins_parse). */
typedef struct hp_builtin {
    const char *cidr;
    const char *what;
    hp_range range;
} hp_builtin;

/* Never connected to: instance metadata services and link-local
 * addresses (which they live on), and "this host" addresses. */
static hp_builtin hp_never[] = {
    {.cidr = "169.254.0.0/16", .what = "a link-local or metadata address"},
    {.cidr = "fe80::/10", .what = "a link-local address"},
    {.cidr = "100.100.100.200/32", .what = "a metadata address"},
    {.cidr = "fd00:ec2::254/128", .what = "a metadata address"},
    {.cidr = "0.0.0.0/8", .what = "an unspecified address"},
    {.cidr = "::/128", .what = "an unspecified address"},
    {.cidr = NULL},
};

/* Connected to only when the allow list names them. */
static hp_builtin hp_private[] = {
    {.cidr = "127.0.0.0/8", .what = "a loopback address"},
    {.cidr = "::1/128", .what = "a loopback address"},
    {.cidr = "10.0.0.0/8", .what = "a private address"},
    {.cidr = "172.16.0.0/12", .what = "a private address"},
    {.cidr = "192.168.0.0/16", .what = "a private address"},
    {.cidr = "100.64.0.0/10", .what = "a shared (carrier-grade NAT) address"},
    {.cidr = "fc00::/7", .what = "a private address"},
    {.cidr = NULL},
};

/* hp_parse_addr reads an IPv4 or IPv6 literal (brackets allowed around
 * IPv6) into 16 bytes; *v4 tells which it was. */
static bool hp_parse_addr(const char *s, size_t len, unsigned char out[16], bool *v4)
{
    char buf[INET6_ADDRSTRLEN + 2];
    if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
        s++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    struct in_addr a4;
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a4, 4);
        *v4 = true;
        return true;
    }
    *v4 = false;
    return inet_pton(AF_INET6, buf, out) == 1;
}

/* hp_parse_range reads "addr" or "addr/bits". */
static bool hp_parse_range(const char *s, size_t len, hp_range *r)
{
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    bool v4;
    if (!hp_parse_addr(s, alen, r->a, &v4))
        return false;
    int max = v4 ? 32 : 128, bits = max;
    if (slash) {
        const char *p = slash + 1, *end = s + len;
        if (p == end || end - p > 3)
            return false;
        bits = 0;
        for (; p < end; p++) {
            if (!isdigit((unsigned char)*p))
                return false;
            bits = bits * 10 + (*p - '0');
        }
        if (bits > max)
            return false;
    }
    r->bits = v4 ? bits + 96 : bits;
    return true;
}

static bool hp_in_range(const hp_range *r, const unsigned char a[16])
{
    int full = r->bits / 8, rest = r->bits % 8;
    if (memcmp(r->a, a, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (r->a[full] & mask) == (a[full] & mask);
}

/* hp_name_ok: letters, digits, '-', '.', '_' (what a DNS name holds). */
static bool hp_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > HP_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '-' && c != '.' && c != '_')
            return false;
    }
    return true;
}

/* hp_name_eq compares host names without case or a final dot. */
static bool hp_name_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la && a[la - 1] == '.')
        la--;
    if (lb && b[lb - 1] == '.')
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}

static void hp_list_fini(hp_list *l)
{
    for (size_t i = 0; i < l->nnames; i++)
        free(l->names[i]);
    free(l->names);
    free(l->ranges);
    memset(l, 0, sizeof *l);
}

static int hp_list_parse(hp_list *l, const char *text, const char *var, sh_error *err)
{
    size_t cap = 1;
    for (const char *p = text ? text : ""; *p; p++)
        cap += *p == ',';
    l->ranges = calloc(cap, sizeof *l->ranges);
    l->names = calloc(cap, sizeof *l->names);
    if (!l->ranges || !l->names)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    const char *p = text ? text : "";
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        size_t len = (size_t)(b - a);
        if (len > 0) {
            if (hp_parse_range(a, len, &l->ranges[l->nranges])) {
                l->nranges++;
            } else if (hp_name_ok(a, len) && strspn(a, "0123456789.") < len) {
                if (!(l->names[l->nnames] = strndup(a, len)))
                    return sh_error_set(err, SH_ENOMEM, "out of memory");
                l->nnames++;
            } else {
                return sh_error_set(err, SH_EINVAL,
                                    "%s: \"%.*s\" is not a host name, an IP address or a CIDR "
                                    "range (like 10.0.0.0/8 or fd00::/8)",
                                    var, (int)(len > 80 ? 80 : len), a);
            }
        }
        p = *end ? end + 1 : end;
    }
    return SH_OK;
}

int sh_hostpolicy_new(const char *allow, const char *deny, const char *allow_var,
                      const char *deny_var, sh_hostpolicy **out, sh_error *err)
{
    *out = NULL;
    sh_hostpolicy *p = calloc(1, sizeof *p);
    if (!p)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    snprintf(p->allow_var, sizeof p->allow_var, "%s", allow_var ? allow_var : "the allow list");
    snprintf(p->deny_var, sizeof p->deny_var, "%s", deny_var ? deny_var : "the deny list");
    int rc = hp_list_parse(&p->allow, allow, p->allow_var, err);
    if (!rc)
        rc = hp_list_parse(&p->deny, deny, p->deny_var, err);
    if (rc) {
        sh_hostpolicy_free(p);
        return rc;
    }
    *out = p;
    return SH_OK;
}

void sh_hostpolicy_free(sh_hostpolicy *p)
{
    if (!p)
        return;
    hp_list_fini(&p->allow);
    hp_list_fini(&p->deny);
    free(p);
}

static bool hp_list_has(const hp_list *l, const char *host, const unsigned char a[16])
{
    for (size_t i = 0; i < l->nranges; i++)
        if (hp_in_range(&l->ranges[i], a))
            return true;
    for (size_t i = 0; host && i < l->nnames; i++)
        if (hp_name_eq(l->names[i], host))
            return true;
    return false;
}

static pthread_once_t hp_builtins_once = PTHREAD_ONCE_INIT;

static void hp_builtins_parse(void)
{
    hp_builtin *tables[] = {hp_never, hp_private};
    for (size_t k = 0; k < 2; k++)
        for (hp_builtin *t = tables[k]; t->cidr; t++)
            if (!hp_parse_range(t->cidr, strlen(t->cidr), &t->range))
                abort(); /* a typo in the tables above */
}

/* hp_builtin_of returns what a built-in table says of a, or NULL. */
static const char *hp_builtin_of(const hp_builtin *t, const unsigned char a[16])
{
    pthread_once(&hp_builtins_once, hp_builtins_parse);
    for (size_t i = 0; t[i].cidr; i++)
        if (hp_in_range(&t[i].range, a))
            return t[i].what;
    return NULL;
}

/* hp_bytes_of reads sa into 16 bytes and its text. */
static bool hp_bytes_of(const struct sockaddr *sa, unsigned char a[16], char text[INET6_ADDRSTRLEN])
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        memset(a, 0, 10);
        a[10] = a[11] = 0xff;
        memcpy(a + 12, &s4->sin_addr, 4);
        inet_ntop(AF_INET, &s4->sin_addr, text, INET6_ADDRSTRLEN);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        memcpy(a, &s6->sin6_addr, 16);
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, 12) == 0)
            inet_ntop(AF_INET, a + 12, text, INET6_ADDRSTRLEN);
        else
            inet_ntop(AF_INET6, &s6->sin6_addr, text, INET6_ADDRSTRLEN);
        return true;
    }
    return false;
}

int sh_hostpolicy_check_addr(const sh_hostpolicy *p, const char *host, const struct sockaddr *sa,
                             sh_error *err)
{
    unsigned char a[16];
    char text[INET6_ADDRSTRLEN] = "";
    if (!hp_bytes_of(sa, a, text))
        return sh_error_set(err, SH_EINVAL, "host %.100s: not an IP address", host);
    bool literal = strcmp(host, text) == 0;
    char who[200];
    if (literal)
        snprintf(who, sizeof who, "host %s is", text);
    else
        snprintf(who, sizeof who, "host %.100s resolves to %s,", host, text);
    const char *what = hp_builtin_of(hp_never, a);
    if (what)
        return sh_error_set(err, SH_EINVAL, "%s %s; never connected to", who, what);
    if (p && hp_list_has(&p->allow, host, a))
        return SH_OK;
    if (p && hp_list_has(&p->deny, host, a))
        return sh_error_set(err, SH_EINVAL, "%s listed in %s; refused", who, p->deny_var);
    if ((what = hp_builtin_of(hp_private, a)))
        return sh_error_set(err, SH_EINVAL, "%s %s; refused unless %s allows it (e.g. %s)", who,
                            what, p ? p->allow_var : "the allow list", text);
    return SH_OK;
}

int sh_hostpolicy_resolve(const sh_hostpolicy *p, const char *host, int port, sh_hostaddr *out,
                          size_t *n, sh_error *err)
{
    *n = 0;
    char name[HP_NAME_MAX + 1];
    size_t len = strlen(host);
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    if (len == 0 || len > HP_NAME_MAX)
        return sh_error_set(err, SH_EINVAL, "invalid host name");
    memcpy(name, host, len);
    name[len] = '\0';
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(name, service, &hints, &res);
    if (g != 0)
        return sh_error_set(err, SH_EUNAVAIL, "cannot resolve %.100s: %s", name, gai_strerror(g));
    int rc = SH_OK;
    bool refused = false;
    for (struct addrinfo *ai = res; ai && *n < SH_HOSTADDR_MAX; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof out[0].sa)
            continue;
        sh_error e;
        if (sh_hostpolicy_check_addr(p, name, ai->ai_addr, &e) != SH_OK) {
            if (!refused && err)
                *err = e;
            refused = true;
            continue;
        }
        sh_hostaddr *h = &out[*n];
        memset(h, 0, sizeof *h);
        memcpy(&h->sa, ai->ai_addr, ai->ai_addrlen);
        h->len = ai->ai_addrlen;
        unsigned char bytes[16];
        hp_bytes_of(ai->ai_addr, bytes, h->text);
        /* The same address twice (one per socket type) is kept once. */
        bool dup = false;
        for (size_t i = 0; i < *n && !dup; i++)
            dup = out[i].len == h->len && memcmp(&out[i].sa, &h->sa, h->len) == 0;
        if (!dup)
            (*n)++;
    }
    freeaddrinfo(res);
    if (*n == 0)
        rc = refused ? SH_EINVAL
                     : sh_error_set(err, SH_EUNAVAIL, "cannot resolve %.100s: no address", name);
    else if (err)
        sh_error_clear(err);
    return rc;
}
