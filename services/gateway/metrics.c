/* metrics.c - request counters by route, method and status, a latency
 * histogram by route, and the event-stream gauges, rendered as Prometheus
 * text (format 0.0.4). */
#include "gw_metrics.h"

#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

#include "gw_router.h"
#include "shared/err.h"

#define METRICS_PATTERNS 32 /* distinct patterns + "unmatched" */

static const int metrics_statuses[] = {200, 201, 202, 204, 400, 401, 403, 404,
                                       405, 409, 413, 415, 500, 503, 0};
#define METRICS_NSTATUS (sizeof metrics_statuses / sizeof metrics_statuses[0])

static const double metrics_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,    0.25,  0.5,    1,     2.5,  5};
#define METRICS_NBUCKETS (sizeof metrics_bounds / sizeof metrics_bounds[0])
_Static_assert(METRICS_NBUCKETS == GW_METRICS_BUCKETS, "GW_METRICS_BUCKETS is the bucket count");
static uint64_t metrics_bounds_ns[METRICS_NBUCKETS];

static _Atomic uint64_t metrics_requests[METRICS_PATTERNS][GW_METHOD_COUNT][METRICS_NSTATUS];
static _Atomic uint64_t metrics_other_status[METRICS_PATTERNS][GW_METHOD_COUNT]; /* unlisted */
/* Non-cumulative bucket counts; the last slot is above every bound. */
static _Atomic uint64_t metrics_buckets[METRICS_PATTERNS][METRICS_NBUCKETS + 1];
static _Atomic uint64_t metrics_sum_ns[METRICS_PATTERNS];
static _Atomic int64_t metrics_sse_clients;
static _Atomic uint64_t metrics_sse_events;
static _Atomic uint64_t metrics_sse_gaps;

void gw_metrics_init(void)
{
    for (size_t i = 0; i < METRICS_NBUCKETS; i++)
        metrics_bounds_ns[i] = (uint64_t)(metrics_bounds[i] * 1e9 + 0.5);
    for (size_t p = 0; p < METRICS_PATTERNS; p++) {
        for (size_t m = 0; m < GW_METHOD_COUNT; m++) {
            for (size_t s = 0; s < METRICS_NSTATUS; s++)
                atomic_store_explicit(&metrics_requests[p][m][s], 0, memory_order_relaxed);
            atomic_store_explicit(&metrics_other_status[p][m], 0, memory_order_relaxed);
        }
        for (size_t b = 0; b <= METRICS_NBUCKETS; b++)
            atomic_store_explicit(&metrics_buckets[p][b], 0, memory_order_relaxed);
        atomic_store_explicit(&metrics_sum_ns[p], 0, memory_order_relaxed);
    }
    atomic_store_explicit(&metrics_sse_clients, 0, memory_order_relaxed);
    atomic_store_explicit(&metrics_sse_events, 0, memory_order_relaxed);
    atomic_store_explicit(&metrics_sse_gaps, 0, memory_order_relaxed);
}

uint64_t gw_metrics_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t metrics_slot(int pattern)
{
    size_t n = gw_router_npatterns();
    if (pattern < 0 || (size_t)pattern >= n || n >= METRICS_PATTERNS)
        return n < METRICS_PATTERNS ? n : METRICS_PATTERNS - 1;
    return (size_t)pattern;
}

static const char *metrics_label(size_t slot)
{
    const char *p = gw_router_pattern(slot);
    return p ? p : "unmatched";
}

void gw_metrics_request(int pattern, int method, int status, uint64_t ns)
{
    size_t slot = metrics_slot(pattern);
    if (method < 0 || method >= GW_METHOD_COUNT)
        method = GW_OTHER;
    size_t si = 0;
    while (metrics_statuses[si] && metrics_statuses[si] != status)
        si++;
    if (metrics_statuses[si])
        atomic_fetch_add_explicit(&metrics_requests[slot][method][si], 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&metrics_other_status[slot][method], 1, memory_order_relaxed);
    size_t b = 0;
    while (b < METRICS_NBUCKETS && ns > metrics_bounds_ns[b])
        b++;
    atomic_fetch_add_explicit(&metrics_buckets[slot][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&metrics_sum_ns[slot], ns, memory_order_relaxed);
}

void gw_metrics_sse_clients_add(int delta)
{
    atomic_fetch_add_explicit(&metrics_sse_clients, delta, memory_order_relaxed);
}

int64_t gw_metrics_sse_clients(void)
{
    return atomic_load_explicit(&metrics_sse_clients, memory_order_relaxed);
}

void gw_metrics_sse_event_sent(void)
{
    atomic_fetch_add_explicit(&metrics_sse_events, 1, memory_order_relaxed);
}

void gw_metrics_sse_gap_reread(void)
{
    atomic_fetch_add_explicit(&metrics_sse_gaps, 1, memory_order_relaxed);
}

static uint64_t metrics_load(_Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}

void gw_metrics_totals(uint64_t *requests, uint64_t *sum_ns, uint64_t buckets[])
{
    *requests = 0;
    *sum_ns = 0;
    for (size_t b = 0; b <= METRICS_NBUCKETS; b++)
        buckets[b] = 0;
    for (size_t p = 0; p < METRICS_PATTERNS; p++) {
        for (size_t b = 0; b <= METRICS_NBUCKETS; b++) {
            uint64_t n = metrics_load(&metrics_buckets[p][b]);
            buckets[b] += n;
            *requests += n;
        }
        *sum_ns += metrics_load(&metrics_sum_ns[p]);
    }
}

double gw_metrics_bound(int i)
{
    return i >= 0 && (size_t)i < METRICS_NBUCKETS ? metrics_bounds[i]
                                                  : metrics_bounds[METRICS_NBUCKETS - 1];
}

int gw_metrics_render(sh_buf *out)
{
    int rc = SH_OK;
    size_t slots = gw_router_npatterns() + 1;
    if (slots > METRICS_PATTERNS)
        slots = METRICS_PATTERNS;

    rc |= sh_buf_puts(out, "# HELP gateway_http_requests_total HTTP requests answered.\n"
                           "# TYPE gateway_http_requests_total counter\n");
    for (size_t p = 0; p < slots; p++) {
        for (int m = 0; m < GW_METHOD_COUNT; m++) {
            for (size_t s = 0; metrics_statuses[s]; s++) {
                uint64_t n = metrics_load(&metrics_requests[p][m][s]);
                if (n)
                    rc |= sh_buf_printf(out,
                                        "gateway_http_requests_total{route=\"%s\",method=\"%s\","
                                        "status=\"%d\"} %llu\n",
                                        metrics_label(p), gw_method_name(m), metrics_statuses[s],
                                        (unsigned long long)n);
            }
            uint64_t other = metrics_load(&metrics_other_status[p][m]);
            if (other)
                rc |= sh_buf_printf(out,
                                    "gateway_http_requests_total{route=\"%s\",method=\"%s\","
                                    "status=\"other\"} %llu\n",
                                    metrics_label(p), gw_method_name(m), (unsigned long long)other);
        }
    }

    rc |= sh_buf_puts(out, "# HELP gateway_http_request_duration_seconds Time from request "
                           "headers to response, by route.\n"
                           "# TYPE gateway_http_request_duration_seconds histogram\n");
    for (size_t p = 0; p < slots; p++) {
        uint64_t cum = 0;
        uint64_t counts[METRICS_NBUCKETS + 1];
        for (size_t b = 0; b <= METRICS_NBUCKETS; b++)
            counts[b] = metrics_load(&metrics_buckets[p][b]);
        uint64_t total = 0;
        for (size_t b = 0; b <= METRICS_NBUCKETS; b++)
            total += counts[b];
        if (!total)
            continue;
        const char *label = metrics_label(p);
        for (size_t b = 0; b < METRICS_NBUCKETS; b++) {
            cum += counts[b];
            rc |= sh_buf_printf(out,
                                "gateway_http_request_duration_seconds_bucket{route=\"%s\","
                                "le=\"%g\"} %llu\n",
                                label, metrics_bounds[b], (unsigned long long)cum);
        }
        rc |= sh_buf_printf(out,
                            "gateway_http_request_duration_seconds_bucket{route=\"%s\","
                            "le=\"+Inf\"} %llu\n"
                            "gateway_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                            "gateway_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                            label, (unsigned long long)total, label,
                            (double)metrics_load(&metrics_sum_ns[p]) / 1e9, label,
                            (unsigned long long)total);
    }

    rc |= sh_buf_printf(
        out,
        "# HELP gateway_sse_clients Open event streams.\n"
        "# TYPE gateway_sse_clients gauge\n"
        "gateway_sse_clients %lld\n"
        "# HELP gateway_sse_events_sent_total Progress, log and delete events written to "
        "streams.\n"
        "# TYPE gateway_sse_events_sent_total counter\n"
        "gateway_sse_events_sent_total %llu\n"
        "# HELP gateway_sse_gap_rereads_total Records re-read because events were lost.\n"
        "# TYPE gateway_sse_gap_rereads_total counter\n"
        "gateway_sse_gap_rereads_total %llu\n",
        (long long)gw_metrics_sse_clients(), (unsigned long long)metrics_load(&metrics_sse_events),
        (unsigned long long)metrics_load(&metrics_sse_gaps));
    return rc ? SH_ENOMEM : SH_OK;
}
