/* test_metrics.c - the gateway's counters (services/gateway/metrics.c) and
 * their Prometheus text exposition (format 0.0.4): request counts by route,
 * method and status, the latency histogram, the stream gauges, and the
 * shape of every line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_metrics.h"
#include "gw_router.h"
#include "gw_routes.h"
#include "shared/err.h"

#define MS 1000000ull /* nanoseconds */

static int metrics_setup(void **state)
{
    (void)state;
    gw_router_init(gw_route_table);
    gw_metrics_init();
    return 0;
}

/* metrics_text renders the exposition as a new C string (caller frees). */
static char *metrics_text(void)
{
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(gw_metrics_render(&b), SH_OK);
    char *s = sh_buf_steal(&b, NULL);
    assert_non_null(s);
    return s;
}

/* metrics_value finds the sample whose name and labels are exactly series
 * and returns its value; -1 when there is none. */
static double metrics_value(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        assert_non_null(end);
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        line = end + 1;
    }
    return -1;
}

static int metrics_pattern(const char *pattern)
{
    for (size_t i = 0; i < gw_router_npatterns(); i++)
        if (strcmp(gw_router_pattern(i), pattern) == 0)
            return (int)i;
    fail_msg("no pattern %s", pattern);
    return -1;
}

static void test_empty(void **state)
{
    (void)state;
    char *t = metrics_text();
    /* No request yet: the families are declared, no series appear. */
    assert_non_null(strstr(t, "# TYPE gateway_http_requests_total counter\n"));
    assert_non_null(strstr(t, "# TYPE gateway_http_request_duration_seconds histogram\n"));
    assert_null(strstr(t, "gateway_http_requests_total{"));
    assert_null(strstr(t, "gateway_http_request_duration_seconds_bucket"));
    assert_true(metrics_value(t, "gateway_sse_clients") == 0);
    assert_true(metrics_value(t, "gateway_sse_events_sent_total") == 0);
    assert_true(metrics_value(t, "gateway_sse_gap_rereads_total") == 0);
    free(t);
}

static void test_requests(void **state)
{
    (void)state;
    int health = metrics_pattern("/healthz");
    int jobs = metrics_pattern("/api/jobs/:id");
    gw_metrics_request(health, GW_GET, 200, 1 * MS);
    gw_metrics_request(health, GW_GET, 200, 2 * MS);
    gw_metrics_request(health, GW_HEAD, 200, 1 * MS);
    gw_metrics_request(jobs, GW_PUT, 404, 3 * MS);
    gw_metrics_request(jobs, GW_PUT, 418, 3 * MS); /* not a listed status */
    gw_metrics_request(-1, GW_GET, 404, 1 * MS);   /* matched no route */
    gw_metrics_request(jobs, 99, 405, 1 * MS);     /* out of range: OTHER */
    gw_metrics_request(jobs, GW_OTHER, 405, 1 * MS);
    char *t = metrics_text();
    assert_true(metrics_value(t, "gateway_http_requests_total{route=\"/healthz\",method=\"GET\","
                                 "status=\"200\"}") == 2);
    assert_true(metrics_value(t, "gateway_http_requests_total{route=\"/healthz\",method=\"HEAD\","
                                 "status=\"200\"}") == 1);
    assert_true(metrics_value(t, "gateway_http_requests_total{route=\"/api/jobs/:id\","
                                 "method=\"PUT\",status=\"404\"}") == 1);
    assert_true(metrics_value(t, "gateway_http_requests_total{route=\"/api/jobs/:id\","
                                 "method=\"PUT\",status=\"other\"}") == 1);
    assert_true(metrics_value(t, "gateway_http_requests_total{route=\"unmatched\","
                                 "method=\"GET\",status=\"404\"}") == 1);
    assert_true(metrics_value(t, "gateway_http_requests_total{route=\"/api/jobs/:id\","
                                 "method=\"OTHER\",status=\"405\"}") == 2);
    /* Nothing counted where nothing happened. */
    assert_true(metrics_value(t, "gateway_http_requests_total{route=\"/healthz\",method=\"GET\","
                                 "status=\"500\"}") == -1);
    assert_true(metrics_value(t, "gateway_http_requests_total{route=\"/readyz\",method=\"GET\","
                                 "status=\"200\"}") == -1);
    free(t);
}

static void test_histogram(void **state)
{
    (void)state;
    int p = metrics_pattern("/api/queue");
    gw_metrics_request(p, GW_GET, 200, 400000);     /* 0.4 ms */
    gw_metrics_request(p, GW_GET, 200, 1 * MS);     /* on the 1 ms bound: in it */
    gw_metrics_request(p, GW_GET, 200, 1 * MS + 1); /* just above */
    gw_metrics_request(p, GW_GET, 200, 300 * MS);   /* 0.3 s */
    gw_metrics_request(p, GW_GET, 200, 10000 * MS); /* above every bound */
    char *t = metrics_text();
    static const struct {
        const char *le;
        double count;
    } want[] = {
        {"0.0005", 1}, {"0.001", 2}, {"0.0025", 3}, {"0.005", 3}, {"0.01", 3},
        {"0.025", 3},  {"0.05", 3},  {"0.1", 3},    {"0.25", 3},  {"0.5", 4},
        {"1", 4},      {"2.5", 4},   {"5", 4},      {"+Inf", 5},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char series[160];
        snprintf(series, sizeof series,
                 "gateway_http_request_duration_seconds_bucket{route=\"/api/queue\",le=\"%s\"}",
                 want[i].le);
        double got = metrics_value(t, series);
        if (got != want[i].count)
            fail_msg("%s: %g, not %g", series, got, want[i].count);
    }
    assert_true(metrics_value(t, "gateway_http_request_duration_seconds_count{route=\"/api/"
                                 "queue\"}") == 5);
    double sum =
        metrics_value(t, "gateway_http_request_duration_seconds_sum{route=\"/api/queue\"}");
    assert_true(sum > 10.30239 && sum < 10.30241); /* printed with %.6f */
    /* Routes without requests have no histogram. */
    assert_null(strstr(t, "duration_seconds_bucket{route=\"/metrics\""));
    free(t);
}

static void test_sse_gauges(void **state)
{
    (void)state;
    gw_metrics_sse_clients_add(3);
    gw_metrics_sse_clients_add(-1);
    assert_int_equal(gw_metrics_sse_clients(), 2);
    for (int i = 0; i < 5; i++)
        gw_metrics_sse_event_sent();
    gw_metrics_sse_gap_reread();
    char *t = metrics_text();
    assert_true(metrics_value(t, "gateway_sse_clients") == 2);
    assert_true(metrics_value(t, "gateway_sse_events_sent_total") == 5);
    assert_true(metrics_value(t, "gateway_sse_gap_rereads_total") == 1);
    free(t);
    gw_metrics_sse_clients_add(-2);
}

/* test_every_route_labelled: each pattern of the router has series of its
 * own, labelled with the pattern. */
static void test_every_route_labelled(void **state)
{
    (void)state;
    size_t n = gw_router_npatterns();
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k <= i; k++)
            gw_metrics_request((int)i, GW_POST, 201, 1 * MS);
    char *t = metrics_text();
    for (size_t i = 0; i < n; i++) {
        char series[200];
        snprintf(series, sizeof series,
                 "gateway_http_requests_total{route=\"%s\",method=\"POST\",status=\"201\"}",
                 gw_router_pattern(i));
        if (metrics_value(t, series) != (double)(i + 1))
            fail_msg("%s: %g, not %zu", series, metrics_value(t, series), i + 1);
    }
    free(t);
}

/* metrics_check_format checks every line: comments are HELP or TYPE of a
 * known type, given once and before the family's samples; a sample is
 * name{labels} value, of the family last declared. */
static void metrics_check_format(const char *text)
{
    assert_true(strlen(text) > 0);
    assert_int_equal(text[strlen(text) - 1], '\n');
    char family[128] = "";
    int families = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        char l[512];
        size_t len = (size_t)(end - line);
        assert_true(len > 0 && len < sizeof l);
        memcpy(l, line, len);
        l[len] = '\0';
        line = end + 1;
        if (strncmp(l, "# HELP ", 7) == 0) {
            char name[128];
            assert_int_equal(sscanf(l + 7, "%127s", name), 1);
            assert_string_not_equal(name, family);
            snprintf(family, sizeof family, "%s", name);
            families++;
            continue;
        }
        if (strncmp(l, "# TYPE ", 7) == 0) {
            char name[128], type[32];
            assert_int_equal(sscanf(l + 7, "%127s %31s", name, type), 2);
            assert_string_equal(name, family);
            if (strcmp(type, "counter") && strcmp(type, "gauge") && strcmp(type, "histogram"))
                fail_msg("type %s", type);
            continue;
        }
        assert_true(l[0] != '#');
        size_t fl = strlen(family);
        if (strncmp(l, family, fl) != 0)
            fail_msg("\"%s\" outside its family %s", l, family);
        const char *rest = l + fl;
        if (strncmp(rest, "_bucket", 7) == 0 || strncmp(rest, "_count", 6) == 0 ||
            strncmp(rest, "_sum", 4) == 0)
            rest = strpbrk(rest, "{ ");
        if (*rest == '{') {
            const char *close = strchr(rest, '}');
            assert_non_null(close);
            /* label="value" pairs, comma-separated. */
            for (const char *p = rest + 1; p < close;) {
                const char *eq = strchr(p, '=');
                assert_true(eq && eq < close && eq[1] == '"');
                const char *q = strchr(eq + 2, '"');
                assert_true(q && q < close);
                p = q + 1;
                if (*p == ',')
                    p++;
            }
            rest = close + 1;
        }
        assert_int_equal(*rest, ' ');
        char *num_end;
        strtod(rest + 1, &num_end);
        assert_true(num_end > rest + 1 && *num_end == '\0');
    }
    assert_int_equal(families, 5);
}

static void test_format(void **state)
{
    (void)state;
    char *t = metrics_text();
    metrics_check_format(t);
    free(t);
    gw_metrics_request(metrics_pattern("/readyz"), GW_GET, 503, 2 * MS);
    gw_metrics_request(-1, GW_OPTIONS, 405, 1);
    t = metrics_text();
    metrics_check_format(t);
    free(t);
}

int main(void)
{
    /* Each test starts from zero: gw_metrics_init resets every counter. */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_empty, metrics_setup),
        cmocka_unit_test_setup(test_requests, metrics_setup),
        cmocka_unit_test_setup(test_histogram, metrics_setup),
        cmocka_unit_test_setup(test_sse_gauges, metrics_setup),
        cmocka_unit_test_setup(test_every_route_labelled, metrics_setup),
        cmocka_unit_test_setup(test_format, metrics_setup),
        cmocka_unit_test_setup(test_empty, metrics_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
