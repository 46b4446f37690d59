/* router.c - the route table and path matching. Matching walks the table
 * once: a path that fits a pattern under another method yields 405 with the
 * methods that pattern does take. */
#include "gw_router.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "gw_dashboard.h"
#include "gw_openapi.h"
#include "gw_routes.h"
#include "gw_token.h"

static const gw_route router_table[] = {
    {GW_GET, "/api/progress/:id", gw_route_progress_get,
     GW_ROUTE_AUTH | GW_ROUTE_SCOPE(GW_SCOPE_PROGRESS)},
    {GW_POST, "/api/progress/:id", gw_route_progress_update, GW_ROUTE_AUTH | GW_ROUTE_BODY},
    {GW_DELETE, "/api/progress/:id", gw_route_progress_delete, GW_ROUTE_AUTH},
    {GW_GET, "/api/progress/:id/log", gw_route_progress_log_list,
     GW_ROUTE_AUTH | GW_ROUTE_SCOPE(GW_SCOPE_PROGRESS)},
    {GW_POST, "/api/progress/:id/log", gw_route_progress_log_append, GW_ROUTE_AUTH | GW_ROUTE_BODY},
    {GW_GET, "/api/progress/:id/stream", gw_route_progress_stream,
     GW_ROUTE_AUTH | GW_ROUTE_SCOPE(GW_SCOPE_PROGRESS)},
    {GW_POST, "/api/jobs", gw_route_job_create, GW_ROUTE_AUTH | GW_ROUTE_BODY},
    {GW_GET, "/api/jobs/:id", gw_route_job_get, GW_ROUTE_AUTH | GW_ROUTE_SCOPE(GW_SCOPE_JOB)},
    {GW_PUT, "/api/jobs/:id", gw_route_job_update, GW_ROUTE_AUTH | GW_ROUTE_BODY},
    {GW_GET, "/api/conversations/:id/job", gw_route_conversation_job, GW_ROUTE_AUTH},
    {GW_GET, "/api/queue", gw_route_queue_list,
     GW_ROUTE_AUTH | GW_ROUTE_SEED | GW_ROUTE_SCOPE(GW_SCOPE_QUEUE)},
    {GW_POST, "/api/queue/claim", gw_route_queue_claim,
     GW_ROUTE_AUTH | GW_ROUTE_BODY | GW_ROUTE_SEED},
    {GW_POST, "/api/queue/renew", gw_route_queue_renew,
     GW_ROUTE_AUTH | GW_ROUTE_BODY | GW_ROUTE_SEED},
    {GW_POST, "/api/queue/release", gw_route_queue_release,
     GW_ROUTE_AUTH | GW_ROUTE_BODY | GW_ROUTE_SEED},
    {GW_POST, "/api/queue/status", gw_route_queue_status,
     GW_ROUTE_AUTH | GW_ROUTE_BODY | GW_ROUTE_SEED},
    {GW_POST, "/api/queue/reserve", gw_route_queue_reserve,
     GW_ROUTE_AUTH | GW_ROUTE_BODY | GW_ROUTE_SEED},
    {GW_POST, "/api/queue/reserve/release", gw_route_queue_unreserve,
     GW_ROUTE_AUTH | GW_ROUTE_BODY | GW_ROUTE_SEED},
    {GW_POST, "/api/accounts", gw_route_account_create, GW_ROUTE_AUTH | GW_ROUTE_BODY},
    {GW_GET, "/api/accounts", gw_route_account_list,
     GW_ROUTE_AUTH | GW_ROUTE_SCOPE(GW_SCOPE_ACCOUNTS)},
    {GW_GET, "/api/accounts/:id", gw_route_account_get,
     GW_ROUTE_AUTH | GW_ROUTE_SCOPE(GW_SCOPE_ACCOUNT)},
    {GW_PATCH, "/api/accounts/:id", gw_route_account_update, GW_ROUTE_AUTH | GW_ROUTE_BODY},
    {GW_DELETE, "/api/accounts/:id", gw_route_account_delete, GW_ROUTE_AUTH},
    {GW_POST, "/api/accounts/:id/sync", gw_route_account_sync, GW_ROUTE_AUTH},
    {GW_GET, "/api/accounts/:id/messages", gw_route_messages_list,
     GW_ROUTE_AUTH | GW_ROUTE_SCOPE(GW_SCOPE_ACCOUNT)},
    {GW_GET, "/api/accounts/:id/messages/:uid", gw_route_message_get,
     GW_ROUTE_AUTH | GW_ROUTE_SCOPE(GW_SCOPE_ACCOUNT)},
    {GW_POST, "/api/accounts/:id/messages/:uid/read", gw_route_message_read, GW_ROUTE_AUTH},
    {GW_POST, "/api/accounts/:id/messages/:uid/unread", gw_route_message_unread, GW_ROUTE_AUTH},
    {GW_GET, "/api/events", gw_route_events, GW_ROUTE_AUTH | GW_ROUTE_SCOPE(GW_SCOPE_HANDLER)},
    {GW_POST, "/api/tokens", gw_route_tokens_create, GW_ROUTE_AUTH | GW_ROUTE_BODY},
    {GW_POST, "/api/cron/sync-emails", gw_route_cron_sync, GW_ROUTE_CRON | GW_ROUTE_SEED},
    {GW_GET, "/api/cron/sync-emails", gw_route_cron_status, GW_ROUTE_CRON | GW_ROUTE_SEED},
    {GW_GET, "/healthz", gw_route_healthz, 0},
    {GW_GET, "/readyz", gw_route_readyz, 0},
    {GW_GET, "/metrics", gw_route_metrics, GW_ROUTE_AUTH},
    {GW_GET, "/openapi.json", gw_route_openapi, 0},
    {GW_GET, "/dashboard", gw_route_dashboard, 0},
    {GW_GET, "/dashboard/:file", gw_route_dashboard_file, 0},
    {0, NULL, NULL, 0},
};

#define ROUTER_ROWS (sizeof router_table / sizeof router_table[0] - 1)

/* router_pattern_of[i]: index among distinct patterns of row i. */
static int router_pattern_of[ROUTER_ROWS];
static const char *router_patterns[ROUTER_ROWS];
static size_t router_npatterns;

static const char *const router_methods[GW_METHOD_COUNT] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER",
};

void gw_router_init(void)
{
    router_npatterns = 0;
    for (size_t i = 0; i < ROUTER_ROWS; i++) {
        size_t j = 0;
        while (j < router_npatterns && strcmp(router_patterns[j], router_table[i].pattern) != 0)
            j++;
        if (j == router_npatterns)
            router_patterns[router_npatterns++] = router_table[i].pattern;
        router_pattern_of[i] = (int)j;
    }
}

const gw_route *gw_router_table(void)
{
    return router_table;
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
    for (size_t i = 0; i < ROUTER_ROWS; i++) {
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
