/* test_router.c - the gateway's route table (services/gateway/routes_table.c)
 * as router.c matches it: every route matches its paths and methods with its parameters, HEAD
 * follows GET, a known path under another method is 405 with the methods it
 * takes, and every near miss is 404. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "gw_router.h"
#include "gw_routes.h"
#include "gw_token.h"
#include "shared/keys.h"

/* One route as the README lists it: a concrete path of it, what it calls,
 * its flags and the parameter segments the path carries. */
typedef struct router_case {
    int method;
    const char *pattern;
    const char *path;
    gw_route_fn fn;
    unsigned flags;
    const char *param, *param2;
} router_case;

#define AUTH     GW_ROUTE_AUTH
#define BODY     GW_ROUTE_BODY
#define SEED     GW_ROUTE_SEED
#define CRON     GW_ROUTE_CRON
#define SCOPE(k) GW_ROUTE_SCOPE(GW_SCOPE_##k)

static const router_case router_cases[] = {
    {GW_GET, "/api/progress/:id", "/api/progress/s1", gw_route_progress_get, AUTH | SCOPE(PROGRESS),
     "s1", NULL},
    {GW_POST, "/api/progress/:id", "/api/progress/s1", gw_route_progress_update, AUTH | BODY, "s1",
     NULL},
    {GW_DELETE, "/api/progress/:id", "/api/progress/s1", gw_route_progress_delete, AUTH, "s1",
     NULL},
    {GW_GET, "/api/progress/:id/log", "/api/progress/a.b_c:d-e/log", gw_route_progress_log_list,
     AUTH | SCOPE(PROGRESS), "a.b_c:d-e", NULL},
    {GW_POST, "/api/progress/:id/log", "/api/progress/s1/log", gw_route_progress_log_append,
     AUTH | BODY, "s1", NULL},
    {GW_GET, "/api/progress/:id/stream", "/api/progress/s1/stream", gw_route_progress_stream,
     AUTH | SCOPE(PROGRESS), "s1", NULL},
    {GW_POST, "/api/jobs", "/api/jobs", gw_route_job_create, AUTH | BODY, NULL, NULL},
    {GW_GET, "/api/jobs/:id", "/api/jobs/j-7", gw_route_job_get, AUTH | SCOPE(JOB), "j-7", NULL},
    {GW_PUT, "/api/jobs/:id", "/api/jobs/j-7", gw_route_job_update, AUTH | BODY, "j-7", NULL},
    {GW_GET, "/api/conversations/:id/job", "/api/conversations/c9/job", gw_route_conversation_job,
     AUTH, "c9", NULL},
    {GW_GET, "/api/queue", "/api/queue", gw_route_queue_list, AUTH | SEED | SCOPE(QUEUE), NULL,
     NULL},
    {GW_POST, "/api/queue/claim", "/api/queue/claim", gw_route_queue_claim, AUTH | BODY | SEED,
     NULL, NULL},
    {GW_POST, "/api/queue/renew", "/api/queue/renew", gw_route_queue_renew, AUTH | BODY | SEED,
     NULL, NULL},
    {GW_POST, "/api/queue/release", "/api/queue/release", gw_route_queue_release,
     AUTH | BODY | SEED, NULL, NULL},
    {GW_POST, "/api/queue/status", "/api/queue/status", gw_route_queue_status, AUTH | BODY | SEED,
     NULL, NULL},
    {GW_POST, "/api/queue/reserve", "/api/queue/reserve", gw_route_queue_reserve,
     AUTH | BODY | SEED, NULL, NULL},
    {GW_POST, "/api/queue/reserve/release", "/api/queue/reserve/release", gw_route_queue_unreserve,
     AUTH | BODY | SEED, NULL, NULL},
    {GW_POST, "/api/accounts", "/api/accounts", gw_route_account_create, AUTH | BODY, NULL, NULL},
    {GW_GET, "/api/accounts", "/api/accounts", gw_route_account_list, AUTH | SCOPE(ACCOUNTS), NULL,
     NULL},
    {GW_GET, "/api/accounts/:id", "/api/accounts/acc1", gw_route_account_get, AUTH | SCOPE(ACCOUNT),
     "acc1", NULL},
    {GW_PATCH, "/api/accounts/:id", "/api/accounts/acc1", gw_route_account_update, AUTH | BODY,
     "acc1", NULL},
    {GW_DELETE, "/api/accounts/:id", "/api/accounts/acc1", gw_route_account_delete, AUTH, "acc1",
     NULL},
    {GW_POST, "/api/accounts/:id/sync", "/api/accounts/acc1/sync", gw_route_account_sync, AUTH,
     "acc1", NULL},
    {GW_GET, "/api/accounts/:id/messages", "/api/accounts/acc1/messages", gw_route_messages_list,
     AUTH | SCOPE(ACCOUNT), "acc1", NULL},
    {GW_GET, "/api/accounts/:id/messages/:uid", "/api/accounts/acc1/messages/42",
     gw_route_message_get, AUTH | SCOPE(ACCOUNT), "acc1", "42"},
    {GW_POST, "/api/accounts/:id/messages/:uid/read", "/api/accounts/acc1/messages/42/read",
     gw_route_message_read, AUTH, "acc1", "42"},
    {GW_POST, "/api/accounts/:id/messages/:uid/unread", "/api/accounts/acc1/messages/7/unread",
     gw_route_message_unread, AUTH, "acc1", "7"},
    {GW_POST, "/api/tokens", "/api/tokens", gw_route_tokens_create, AUTH | BODY, NULL, NULL},
    {GW_POST, "/api/cron/sync-emails", "/api/cron/sync-emails", gw_route_cron_sync, CRON | SEED,
     NULL, NULL},
    {GW_GET, "/api/cron/sync-emails", "/api/cron/sync-emails", gw_route_cron_status, CRON | SEED,
     NULL, NULL},
    {GW_GET, "/healthz", "/healthz", gw_route_healthz, 0, NULL, NULL},
    {GW_GET, "/readyz", "/readyz", gw_route_readyz, 0, NULL, NULL},
    {GW_GET, "/metrics", "/metrics", gw_route_metrics, AUTH, NULL, NULL},
};

#define NCASES (sizeof router_cases / sizeof router_cases[0])

static int router_setup(void **state)
{
    (void)state;
    gw_router_init(gw_route_table);
    return 0;
}

static void router_expect_param(const char *got, size_t len, const char *want)
{
    if (!want) {
        assert_null(got);
        assert_int_equal(len, 0);
        return;
    }
    assert_non_null(got);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(got, want, len);
}

static void router_expect_found(const router_case *c, int method)
{
    gw_match m;
    int rc = gw_router_match(method, c->path, &m);
    if (rc != GW_MATCH_OK)
        fail_msg("%s %s: %d, not a match", gw_method_name(method), c->path, rc);
    assert_ptr_equal(m.route->fn, c->fn);
    assert_int_equal(m.route->flags, c->flags);
    assert_int_equal(m.route->method, c->method);
    assert_string_equal(m.route->pattern, c->pattern);
    assert_string_equal(gw_router_pattern((size_t)m.pattern), c->pattern);
    router_expect_param(m.param, m.param_len, c->param);
    router_expect_param(m.param2, m.param2_len, c->param2);
}

static void test_every_route(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES; i++) {
        router_expect_found(&router_cases[i], router_cases[i].method);
        /* GET rows answer HEAD with the same handler. */
        if (router_cases[i].method == GW_GET)
            router_expect_found(&router_cases[i], GW_HEAD);
    }
}

/* test_patterns_reachable: each distinct pattern of the table is matched by
 * a path built from it, so no row is shadowed by an earlier one, and
 * patterns are not listed twice. */
static void test_patterns_reachable(void **state)
{
    (void)state;
    size_t n = gw_router_npatterns();
    assert_true(n >= 24);
    assert_null(gw_router_pattern(n));
    for (size_t i = 0; i < n; i++) {
        const char *pat = gw_router_pattern(i);
        assert_non_null(pat);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(pat, gw_router_pattern(j));
        char path[256];
        size_t o = 0;
        for (const char *p = pat; *p && o + 3 < sizeof path;) {
            if (*p == ':' && p[-1] == '/') {
                memcpy(path + o, "p1", 2);
                o += 2;
                while (*p && *p != '/')
                    p++;
            } else {
                path[o++] = *p++;
            }
        }
        path[o] = '\0';
        gw_match m;
        int rc = GW_MATCH_NOT_FOUND;
        for (int meth = 0; meth < GW_OTHER && rc != GW_MATCH_OK; meth++)
            rc = gw_router_match(meth, path, &m);
        assert_int_equal(rc, GW_MATCH_OK);
        assert_int_equal(m.pattern, (int)i);
        assert_string_equal(m.route->pattern, pat);
    }
    /* Initialising again changes nothing. */
    gw_router_init(gw_route_table);
    assert_int_equal(gw_router_npatterns(), n);
}

static void router_expect_405(int method, const char *path, const char *pattern, const char *allow)
{
    gw_match m;
    int rc = gw_router_match(method, path, &m);
    if (rc != GW_MATCH_BAD_METHOD)
        fail_msg("%s %s: %d, not 405", gw_method_name(method), path, rc);
    assert_null(m.route);
    assert_string_equal(gw_router_pattern((size_t)m.pattern), pattern);
    assert_string_equal(m.allow, allow);
}

static void test_wrong_method(void **state)
{
    (void)state;
    router_expect_405(GW_PUT, "/api/progress/s1", "/api/progress/:id", "GET, HEAD, POST, DELETE");
    router_expect_405(GW_PATCH, "/api/progress/s1/log", "/api/progress/:id/log", "GET, HEAD, POST");
    router_expect_405(GW_POST, "/api/progress/s1/stream", "/api/progress/:id/stream", "GET, HEAD");
    router_expect_405(GW_GET, "/api/jobs", "/api/jobs", "POST");
    router_expect_405(GW_HEAD, "/api/jobs", "/api/jobs", "POST");
    router_expect_405(GW_DELETE, "/api/jobs/j1", "/api/jobs/:id", "GET, HEAD, PUT");
    router_expect_405(GW_GET, "/api/queue/claim", "/api/queue/claim", "POST");
    router_expect_405(GW_POST, "/api/queue", "/api/queue", "GET, HEAD");
    router_expect_405(GW_DELETE, "/api/accounts", "/api/accounts", "POST, GET, HEAD");
    router_expect_405(GW_PUT, "/api/accounts/a1", "/api/accounts/:id", "GET, HEAD, PATCH, DELETE");
    router_expect_405(GW_GET, "/api/accounts/a1/sync", "/api/accounts/:id/sync", "POST");
    router_expect_405(GW_GET, "/api/accounts/a1/messages/3/read",
                      "/api/accounts/:id/messages/:uid/read", "POST");
    router_expect_405(GW_DELETE, "/api/cron/sync-emails", "/api/cron/sync-emails",
                      "POST, GET, HEAD");
    router_expect_405(GW_POST, "/healthz", "/healthz", "GET, HEAD");
    router_expect_405(GW_OPTIONS, "/metrics", "/metrics", "GET, HEAD");
    router_expect_405(GW_OTHER, "/readyz", "/readyz", "GET, HEAD");
}

static void test_not_found(void **state)
{
    (void)state;
    static const char *const misses[] = {
        "",
        "/",
        "api/jobs",
        "/api",
        "/api/",
        "/api/progress",
        "/api/progress/",
        "/api/progress/s1/",
        "/api/progress//log",
        "/api/progress/s1/log/",
        "/api/progress/s1/logs",
        "/api/progress/s1/stream/x",
        "/api/progress/s1/other",
        "/API/progress/s1",
        "/api/Progress/s1",
        "/api/jobs/",
        "/api/jobsx",
        "/api/jobs/j1/",
        "/api/jobs/j1/x",
        "/api/conversations/c1",
        "/api/conversations//job",
        "/api/conversations/c1/job/",
        "/api/queue/",
        "/api/queue/x",
        "/api/queue/claim/",
        "/api/queue/claims",
        "/api/queue/reserve/",
        "/api/queue/reserve/release/",
        "/api/queue/reserve/x",
        "/api/accounts/",
        "/api/accounts/a1/",
        "/api/accounts/a1/sync/",
        "/api/accounts/a1/messages/",
        "/api/accounts/a1/messages//read",
        "/api/accounts/a1/messages/3/",
        "/api/accounts/a1/messages/3/seen",
        "/api/accounts/a1/messages/3/read/",
        "/api/accounts/a1/messages/3/read/x",
        "/api/cron",
        "/api/cron/",
        "/api/cron/sync-emails/",
        "/api/cron/sync-email",
        "/healthz/",
        "/healthzz",
        "/health",
        "/readyz/x",
        "/metrics/",
        "//healthz",
        "/api//jobs",
    };
    for (size_t i = 0; i < sizeof misses / sizeof misses[0]; i++) {
        for (int meth = 0; meth < GW_METHOD_COUNT; meth++) {
            gw_match m;
            int rc = gw_router_match(meth, misses[i], &m);
            if (rc != GW_MATCH_NOT_FOUND)
                fail_msg("%s \"%s\": %d, not 404", gw_method_name(meth), misses[i], rc);
            assert_null(m.route);
            assert_int_equal(m.pattern, -1);
            assert_string_equal(m.allow, "");
        }
    }
}

/* test_segments: a parameter is one whole segment, taken as it is; whether
 * it is a valid id is for sh_id_valid, which the server applies next. */
static void test_segments(void **state)
{
    (void)state;
    gw_match m;
    assert_int_equal(gw_router_match(GW_GET, "/api/progress/a%2Fb", &m), GW_MATCH_OK);
    router_expect_param(m.param, m.param_len, "a%2Fb");
    assert_false(sh_id_valid(m.param, m.param_len));

    assert_int_equal(gw_router_match(GW_GET, "/api/progress/a b/log", &m), GW_MATCH_OK);
    assert_ptr_equal(m.route->fn, gw_route_progress_log_list);
    router_expect_param(m.param, m.param_len, "a b");
    assert_false(sh_id_valid(m.param, m.param_len));

    /* A decoded slash splits the path: no route takes three segments there. */
    assert_int_equal(gw_router_match(GW_GET, "/api/progress/a/b", &m), GW_MATCH_NOT_FOUND);

    char path[300], id[SH_ID_MAX + 2];
    memset(id, 'x', sizeof id - 1);
    id[SH_ID_MAX] = '\0';
    snprintf(path, sizeof path, "/api/jobs/%s", id);
    assert_int_equal(gw_router_match(GW_GET, path, &m), GW_MATCH_OK);
    assert_int_equal(m.param_len, SH_ID_MAX);
    assert_true(sh_id_valid(m.param, m.param_len));
    id[SH_ID_MAX] = 'x';
    id[SH_ID_MAX + 1] = '\0';
    snprintf(path, sizeof path, "/api/jobs/%s", id);
    assert_int_equal(gw_router_match(GW_GET, path, &m), GW_MATCH_OK);
    assert_int_equal(m.param_len, SH_ID_MAX + 1);
    assert_false(sh_id_valid(m.param, m.param_len));

    /* The :uid segment is captured as the second parameter, whatever it
     * holds; routes_messages.c checks it is a UID. */
    assert_int_equal(gw_router_match(GW_POST, "/api/accounts/a1/messages/0x1/unread", &m),
                     GW_MATCH_OK);
    router_expect_param(m.param, m.param_len, "a1");
    router_expect_param(m.param2, m.param2_len, "0x1");

    /* A literal segment matches in full, never as a prefix. */
    assert_int_equal(gw_router_match(GW_GET, "/api/conversations/c1/jobs", &m), GW_MATCH_NOT_FOUND);
}

/* test_most_specific: paths that extend another route's path reach their
 * own route, whichever comes first in the table. */
static void test_most_specific(void **state)
{
    (void)state;
    gw_match m;
    assert_int_equal(gw_router_match(GW_POST, "/api/queue/reserve/release", &m), GW_MATCH_OK);
    assert_ptr_equal(m.route->fn, gw_route_queue_unreserve);
    assert_int_equal(gw_router_match(GW_POST, "/api/queue/reserve", &m), GW_MATCH_OK);
    assert_ptr_equal(m.route->fn, gw_route_queue_reserve);
    assert_int_equal(gw_router_match(GW_POST, "/api/queue/release", &m), GW_MATCH_OK);
    assert_ptr_equal(m.route->fn, gw_route_queue_release);
    assert_int_equal(gw_router_match(GW_GET, "/api/accounts/a1/messages", &m), GW_MATCH_OK);
    assert_ptr_equal(m.route->fn, gw_route_messages_list);
    assert_null(m.param2);
    assert_int_equal(gw_router_match(GW_GET, "/api/accounts/a1/messages/9", &m), GW_MATCH_OK);
    assert_ptr_equal(m.route->fn, gw_route_message_get);
    assert_int_equal(gw_router_match(GW_GET, "/api/accounts/messages", &m), GW_MATCH_OK);
    assert_ptr_equal(m.route->fn, gw_route_account_get); /* "messages" is an id here */
    router_expect_param(m.param, m.param_len, "messages");
}

static void test_methods(void **state)
{
    (void)state;
    static const char *const names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    for (int i = 0; i < GW_OTHER; i++) {
        assert_int_equal(gw_method_parse(names[i]), i);
        assert_string_equal(gw_method_name(i), names[i]);
    }
    /* Methods are case-sensitive (RFC 9110 9.1). */
    assert_int_equal(gw_method_parse("get"), GW_OTHER);
    assert_int_equal(gw_method_parse("TRACE"), GW_OTHER);
    assert_int_equal(gw_method_parse(""), GW_OTHER);
    assert_int_equal(gw_method_parse("GETX"), GW_OTHER);
    assert_string_equal(gw_method_name(GW_OTHER), "OTHER");
    assert_string_equal(gw_method_name(-1), "OTHER");
    assert_string_equal(gw_method_name(GW_METHOD_COUNT), "OTHER");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_route),  cmocka_unit_test(test_patterns_reachable),
        cmocka_unit_test(test_wrong_method), cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_segments),     cmocka_unit_test(test_most_specific),
        cmocka_unit_test(test_methods),
    };
    return cmocka_run_group_tests(tests, router_setup, NULL);
}
