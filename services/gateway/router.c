/* router.c - path matching against the route table given to
 * gw_router_init (routes_table.c holds the gateway's). Matching walks the
 * table once: a path that fits a pattern under another method yields 405
 * with the methods that pattern does take. */
#include "gw_router.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const gw_route *router_table;
static size_t router_rows;
/* router_pattern_of[i]: index among distinct patterns of row i. */
static int router_pattern_of[GW_ROUTES_MAX];
static const char *router_patterns[GW_ROUTES_MAX];
static size_t router_npatterns;

static const char *const router_methods[GW_METHOD_COUNT] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER",
};

int gw_router_init(const gw_route *table)
{
    size_t rows = 0;
    while (table[rows].pattern)
        if (++rows > GW_ROUTES_MAX)
            return -1;
    router_table = table;
    router_rows = rows;
    router_npatterns = 0;
    for (size_t i = 0; i < rows; i++) {
        size_t j = 0;
        while (j < router_npatterns && strcmp(router_patterns[j], router_table[i].pattern) != 0)
            j++;
        if (j == router_npatterns)
            router_patterns[router_npatterns++] = router_table[i].pattern;
        router_pattern_of[i] = (int)j;
    }
    return 0;
}

size_t gw_router_npatterns(void)
{
    return router_npatterns;
}

const char *gw_router_pattern(size_t i)
{
    return i < router_npatterns ? router_patterns[i] : NULL;
}

int gw_method_parse(const char *name)
{
    for (int i = 0; i < GW_OTHER; i++)
        if (strcmp(name, router_methods[i]) == 0)
            return i;
    return GW_OTHER;
}

const char *gw_method_name(int method)
{
    return method >= 0 && method < GW_METHOD_COUNT ? router_methods[method] : "OTHER";
}

/* router_fit matches path against pattern; each ":name" segment captures
 * one non-empty path segment, the first into param[0], the second into
 * param[1]. */
static bool router_fit(const char *pattern, const char *path, const char **param, size_t *plen)
{
    const char *p = pattern, *s = path;
    int k = 0;
    while (*p) {
        if (p[0] == ':' && p[-1] == '/') {
            const char *end = strchr(s, '/');
            size_t n = end ? (size_t)(end - s) : strlen(s);
            if (n == 0 || k >= GW_PARAMS_MAX)
                return false;
            param[k] = s;
            plen[k] = n;
            k++;
            s += n;
            while (*p && *p != '/')
                p++;
            continue;
        }
        if (*p != *s)
            return false;
        p++;
        s++;
    }
    return *s == '\0';
}

static void router_allow_add(char *allow, const char *method)
{
    size_t n = strlen(allow);
    if (strstr(allow, method))
        return;
    snprintf(allow + n, GW_ALLOW_MAX - n, "%s%s", n ? ", " : "", method);
}

int gw_router_match(int method, const char *path, gw_match *m)
{
    memset(m, 0, sizeof *m);
    m->pattern = -1;
    bool path_known = false;
    for (size_t i = 0; i < router_rows; i++) {
        const gw_route *rt = &router_table[i];
        const char *param[GW_PARAMS_MAX] = {NULL, NULL};
        size_t plen[GW_PARAMS_MAX] = {0, 0};
        if (!router_fit(rt->pattern, path, param, plen))
            continue;
        if (!path_known)
            m->pattern = router_pattern_of[i];
        path_known = true;
        if (rt->method == method || (rt->method == GW_GET && method == GW_HEAD)) {
            m->route = rt;
            m->pattern = router_pattern_of[i];
            m->param = param[0];
            m->param_len = plen[0];
            m->param2 = param[1];
            m->param2_len = plen[1];
            return GW_MATCH_OK;
        }
        router_allow_add(m->allow, router_methods[rt->method]);
        if (rt->method == GW_GET)
            router_allow_add(m->allow, "HEAD");
    }
    return path_known ? GW_MATCH_BAD_METHOD : GW_MATCH_NOT_FOUND;
}
