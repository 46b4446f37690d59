/* gw_router.h - the route table: method, path pattern (":id", and ":uid"
 * after it, stand for one path segment each) and handler, ending in a row whose pattern is NULL. */
#ifndef GW_ROUTER_H
#define GW_ROUTER_H

#include <stddef.h>

typedef struct gw_req gw_req;
typedef void (*gw_route_fn)(gw_req *r);

enum gw_method {
    GW_GET,
    GW_HEAD,
    GW_POST,
    GW_PUT,
    GW_DELETE,
    GW_PATCH,
    GW_OPTIONS,
    GW_OTHER,
    GW_METHOD_COUNT
};

enum {
    GW_ROUTE_AUTH = 1, /* needs a token when tokens are set */
    GW_ROUTE_BODY = 2, /* takes a JSON object body */
    GW_ROUTE_SEED = 4, /* errors in the seeds' {"success": false, "error": ...} shape */
    GW_ROUTE_CRON = 8, /* needs CRON_SECRET (not the API token); CRON_LOOPBACK_ONLY applies */
};

/* The flags' high byte: what a scoped token must cover to open the route,
 * an enum gw_scope_kind (gw_token.h); 0, GW_SCOPE_NONE: no scoped token does. */
#define GW_ROUTE_SCOPE(kind)     ((unsigned)(kind) << 8)
#define GW_ROUTE_SCOPE_OF(flags) ((int)(((flags) >> 8) & 0xff))

typedef struct gw_route {
    int method; /* GW_GET rows also answer HEAD */
    const char *pattern;
    gw_route_fn fn;
    unsigned flags;
} gw_route;

enum { GW_MATCH_OK, GW_MATCH_NOT_FOUND, GW_MATCH_BAD_METHOD };

#define GW_ALLOW_MAX 64

/* Parameter segments a pattern may have. */
#define GW_PARAMS_MAX 2

typedef struct gw_match {
    const gw_route *route; /* GW_MATCH_OK only */
    int pattern;           /* index of the pattern (metrics), -1 when none matched */
    const char *param;     /* the :id segment (not NUL-terminated) */
    size_t param_len;
    const char *param2; /* the second parameter segment, or NULL */
    size_t param2_len;
    char allow[GW_ALLOW_MAX]; /* GW_MATCH_BAD_METHOD: the Allow header */
} gw_match;

/* Rows a route table may have. */
#define GW_ROUTES_MAX 128

/* gw_router_init makes table (ending in a row whose pattern is NULL) the
 * one matched, and indexes its distinct patterns; call once before serving.
 * Returns 0, or -1 when the table has more than GW_ROUTES_MAX rows. */
int gw_router_init(const gw_route *table);

/* gw_router_match finds the route of method and path. */
int gw_router_match(int method, const char *path, gw_match *m);

/* Distinct patterns, for labelling metrics. */
size_t gw_router_npatterns(void);
const char *gw_router_pattern(size_t i);

/* gw_method_parse maps a method name to enum gw_method. */
int gw_method_parse(const char *name);
const char *gw_method_name(int method);

#endif
