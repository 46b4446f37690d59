/* gw_metrics.h - counters of the gateway in Prometheus text format. Every
 * update is one relaxed atomic add: nothing on a request's path takes a
 * lock. Storage is static; gw_metrics_init sizes nothing: it sets every
 * counter to zero, before serving (and in tests, again, to reset). */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stdint.h>

#include "shared/buf.h"

void gw_metrics_init(void);

/* gw_metrics_request counts one answered request: pattern is an index of
 * gw_router_pattern (-1 for paths that matched none), method an enum
 * gw_method, ns the time from headers read to response queued. */
void gw_metrics_request(int pattern, int method, int status, uint64_t ns);

void gw_metrics_sse_clients_add(int delta);
void gw_metrics_sse_event_sent(void);
void gw_metrics_sse_gap_reread(void);
int64_t gw_metrics_sse_clients(void);

/* Buckets of the latency histogram (the last one, above every bound, not
 * counted here). */
#define GW_METRICS_BUCKETS 13

/* gw_metrics_totals reads the totals over every route: requests answered,
 * the sum of their times, and buckets[0..GW_METRICS_BUCKETS] (the last: above
 * every bound), not cumulative. gw_metrics_bound is bucket i's upper bound
 * in seconds. */
void gw_metrics_totals(uint64_t *requests, uint64_t *sum_ns, uint64_t buckets[]);
double gw_metrics_bound(int i);

/* gw_metrics_render appends the exposition text to out. */
int gw_metrics_render(sh_buf *out);

/* Monotonic nanoseconds, for request timing. */
uint64_t gw_metrics_now_ns(void);

#endif
