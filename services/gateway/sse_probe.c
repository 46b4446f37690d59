/* sse_probe.c - the typed events the gateway makes itself, sampled every
 * second by one thread: health (a ping to every replica of every service;
 * sent when a state changes, and to each new stream), metrics (request rate
 * and latency from the metrics module) and streams (the progress record ids
 * being streamed, when they change, and to each new stream). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw_http.h"
#include "gw_json.h"
#include "gw_metrics.h"
#include "gw_sse_int.h"
#include "shared/log.h"
#include "shared/util.h"

enum { PROBE_UNKNOWN, PROBE_UP, PROBE_REDIS_DOWN, PROBE_DOWN };

static const char *const probe_states[] = {"unknown", "up", "redis_down", "down"};

static void probe_ping_done(void *arg, int rc, sh_val *result, const sh_error *err)
{
    (void)err;
    gw__sse_replica *rp = arg;
    gw__sse_probe *p = rp->probe;
    pthread_mutex_lock(&p->mu);
    /* A service that answers "unavailable" is up and cannot reach Redis. */
    rp->state = rc == SH_OK ? PROBE_UP : rc == SH_EUNAVAIL ? PROBE_REDIS_DOWN : PROBE_DOWN;
    rp->inflight = false;
    pthread_mutex_unlock(&p->mu);
    sh_val_free(result);
    atomic_fetch_sub(&p->pending, 1);
}

static void probe_pings(gw__sse_probe *p)
{
    for (int i = 0; i < p->nreplicas; i++) {
        gw__sse_replica *rp = &p->replicas[i];
        pthread_mutex_lock(&p->mu);
        bool busy = rp->inflight;
        rp->inflight = true;
        pthread_mutex_unlock(&p->mu);
        if (busy)
            continue;
        atomic_fetch_add(&p->pending, 1);
        sh_val *nil = sh_val_new_nil();
        int rc = nil ? sh_rpc_call_async(rp->rpc, "ping", nil, SSE_PING_MS, probe_ping_done, rp)
                     : SH_ENOMEM;
        sh_val_free(nil);
        if (rc != SH_OK) {
            atomic_fetch_sub(&p->pending, 1);
            pthread_mutex_lock(&p->mu);
            rp->inflight = false;
            rp->state = PROBE_DOWN;
            pthread_mutex_unlock(&p->mu);
        }
    }
}

/* probe_health_fields writes the health data of states: SH_OK or
 * SH_ENOMEM. */
static int probe_health_fields(const gw__sse_probe *p, const int *states, sh_buf *out)
{
    bool all = true;
    int rc = sh_buf_puts(out, ",\"services\":[");
    for (int i = 0; i < p->nreplicas; i++) {
        const gw__sse_replica *rp = &p->replicas[i];
        all = all && states[i] == PROBE_UP;
        rc |= sh_buf_printf(out, "%s{\"service\":\"%s\",\"url\":", i ? "," : "",
                            gw_service_name(rp->svc));
        rc |= gw_json_write_str(out, rp->url, strlen(rp->url));
        rc |= sh_buf_printf(out, ",\"status\":\"%s\",\"up\":%s}", probe_states[states[i]],
                            states[i] == PROBE_UP || states[i] == PROBE_REDIS_DOWN ? "true"
                                                                                   : "false");
    }
    rc |= sh_buf_printf(out, "],\"ready\":%s", all ? "true" : "false");
    return rc ? SH_ENOMEM : SH_OK;
}

static void probe_states_copy(gw__sse_probe *p, int *states)
{
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->nreplicas; i++)
        states[i] = p->replicas[i].state;
    pthread_mutex_unlock(&p->mu);
}

static void probe_health(gw__sse_probe *p)
{
    int states[SSE_REPLICAS_MAX];
    probe_states_copy(p, states);
    if (memcmp(states, p->sent, sizeof(int) * (size_t)p->nreplicas) == 0)
        return;
    memcpy(p->sent, states, sizeof(int) * (size_t)p->nreplicas);
    sh_buf b;
    sh_buf_init(&b);
    if (probe_health_fields(p, states, &b) == SH_OK)
        gw__sse_events_emit(p->reg, GW__SSE_HEALTH, b.data, b.len, NULL, false);
    else
        p->sent[0] = -1; /* sent again at the next sample */
    sh_buf_fini(&b);
}

/* probe_quantile: the upper bound (ms) of the bucket holding quantile q of
 * the n requests counted in d. */
static double probe_quantile(const uint64_t *d, uint64_t n, double q)
{
    uint64_t want = (uint64_t)(q * (double)n + 0.999999), cum = 0;
    for (int b = 0; b <= GW_METRICS_BUCKETS; b++) {
        cum += d[b];
        if (cum >= want)
            return gw_metrics_bound(b) * 1000.0;
    }
    return gw_metrics_bound(GW_METRICS_BUCKETS) * 1000.0;
}

static void probe_metrics(gw__sse_probe *p, int64_t now)
{
    uint64_t req, sum, buckets[GW_METRICS_BUCKETS + 1], d[GW_METRICS_BUCKETS + 1];
    gw_metrics_totals(&req, &sum, buckets);
    double secs = (double)(now - p->last_ms) / 1000.0;
    uint64_t n = req - p->last_requests;
    for (int b = 0; b <= GW_METRICS_BUCKETS; b++)
        d[b] = buckets[b] - p->last_buckets[b];
    sh_buf b;
    sh_buf_init(&b);
    int rc = sh_buf_printf(&b, ",\"requests\":%llu,\"requestsPerSecond\":%.3f,\"sseClients\":%lld",
                           (unsigned long long)req, secs > 0 ? (double)n / secs : 0.0,
                           (long long)gw_metrics_sse_clients());
    if (n)
        rc |= sh_buf_printf(&b,
                            ",\"latencyMs\":{\"count\":%llu,\"mean\":%.3f,\"p50\":%g,\"p95\":%g,"
                            "\"p99\":%g}",
                            (unsigned long long)n, (double)(sum - p->last_sum_ns) / 1e6 / (double)n,
                            probe_quantile(d, n, 0.5), probe_quantile(d, n, 0.95),
                            probe_quantile(d, n, 0.99));
    else
        rc |= sh_buf_puts(&b, ",\"latencyMs\":{\"count\":0,\"mean\":null,\"p50\":null,\"p95\":null,"
                              "\"p99\":null}");
    if (rc == SH_OK)
        gw__sse_events_emit(p->reg, GW__SSE_METRICS, b.data, b.len, NULL, false);
    sh_buf_fini(&b);
    p->last_requests = req;
    p->last_sum_ns = sum;
    memcpy(p->last_buckets, buckets, sizeof buckets);
    p->last_ms = now;
}

/* probe_streams_fields lists the ids of reg's topics and, in "clients",
 * how many streams each has (registry lock held), so that a client can
 * tell its own streams from others': SH_OK or SH_ENOMEM. */
static int probe_streams_fields(gw__sse_registry *reg, sh_buf *out)
{
    size_t n = 0;
    sh_buf clients;
    sh_buf_init(&clients);
    int rc = sh_buf_puts(out, ",\"ids\":[");
    rc |= sh_buf_puts(&clients, ",\"clients\":{");
    for (size_t b = 0; b < SSE_BUCKETS; b++)
        for (gw__sse_topic *t = reg->buckets[b]; t; t = t->hnext, n++)
            if (n < SSE_STREAM_IDS_MAX) {
                size_t k = 0;
                for (const gw__sse_stream *st = t->streams; st; st = st->next)
                    k++;
                if (n) {
                    rc |= sh_buf_append(out, ",", 1);
                    rc |= sh_buf_append(&clients, ",", 1);
                }
                rc |= gw_json_write_str(out, t->id, strlen(t->id));
                rc |= gw_json_write_str(&clients, t->id, strlen(t->id));
                rc |= sh_buf_printf(&clients, ":%zu", k);
            }
    rc |= sh_buf_printf(out, "],\"count\":%zu", n);
    rc |= sh_buf_append(&clients, "}", 1);
    if (!rc)
        rc = sh_buf_append(out, clients.data, clients.len);
    sh_buf_fini(&clients);
    return rc ? SH_ENOMEM : SH_OK;
}

static void probe_streams(gw__sse_probe *p, gw__sse_stream *only)
{
    gw__sse_registry *reg = p->reg;
    sh_buf b;
    sh_buf_init(&b);
    pthread_mutex_lock(&reg->mu);
    if (only || reg->topics_gen != p->streams_gen) {
        if (probe_streams_fields(reg, &b) == SH_OK) {
            if (!only)
                p->streams_gen = reg->topics_gen;
            gw__sse_events_emit(reg, GW__SSE_STREAMS, b.data, b.len, only, true);
        }
    }
    pthread_mutex_unlock(&reg->mu);
    sh_buf_fini(&b);
}

void gw__sse_probe_greet(gw__sse_probe *p, gw__sse_stream *st)
{
    int states[SSE_REPLICAS_MAX];
    probe_states_copy(p, states);
    sh_buf b;
    sh_buf_init(&b);
    if (probe_health_fields(p, states, &b) == SH_OK)
        gw__sse_events_emit(p->reg, GW__SSE_HEALTH, b.data, b.len, st, false);
    sh_buf_fini(&b);
    probe_streams(p, st);
}

static void *probe_main(void *arg)
{
    gw__sse_probe *p = arg;
    int64_t next = sh_mono_ms();
    while (!atomic_load(&p->stop)) {
        int64_t now = sh_mono_ms();
        if (now < next) {
            int64_t wait = next - now < 50 ? next - now : 50;
            struct timespec ts = {0, (long)wait * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        next = now + SSE_PROBE_MS;
        probe_health(p); /* the answers to the last round of pings */
        probe_pings(p);
        probe_metrics(p, now);
        probe_streams(p, NULL);
    }
    return NULL;
}

/* probe_add_replicas makes a client for each URL of the list urls. */
static int probe_add_replicas(gw__sse_probe *p, int svc, const char *urls, sh_error *err)
{
    const char *s = urls;
    while (s && *s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (len) {
            if (p->nreplicas == SSE_REPLICAS_MAX)
                return sh_error_set(err, SH_EINVAL, "more than %d service URLs", SSE_REPLICAS_MAX);
            gw__sse_replica *rp = &p->replicas[p->nreplicas];
            snprintf(rp->url, sizeof rp->url, "%.*s", (int)len, s);
            rp->probe = p;
            rp->svc = svc;
            int rc = sh_rpc_client_new(rp->url, SSE_PING_MS, 0, &rp->rpc, err);
            if (rc != SH_OK)
                return rc;
            p->nreplicas++;
        }
        s = end ? end + 1 : NULL;
    }
    return SH_OK;
}

int gw__sse_probe_start(gw__sse_probe *p, gw__sse_registry *reg, const char *const *urls,
                        sh_error *err)
{
    p->reg = reg;
    pthread_mutex_init(&p->mu, NULL);
    p->last_ms = sh_mono_ms();
    gw_metrics_totals(&p->last_requests, &p->last_sum_ns, p->last_buckets);
    for (int svc = 0; svc < GW_SVC_COUNT; svc++) {
        int rc = probe_add_replicas(p, svc, urls[svc], err);
        if (rc != SH_OK)
            return rc;
    }
    if (pthread_create(&p->thread, NULL, probe_main, p) != 0)
        return sh_error_set(err, SH_EINTERNAL, "cannot start the health probe thread");
    p->started = true;
    return SH_OK;
}

void gw__sse_probe_stop(gw__sse_probe *p)
{
    atomic_store(&p->stop, true);
    if (p->started)
        pthread_join(p->thread, NULL);
    p->started = false;
}

void gw__sse_probe_fini(gw__sse_probe *p)
{
    if (!p->reg)
        return; /* never started */
    gw__sse_probe_stop(p);
    /* Freeing a client waits for its pings in flight. */
    for (int i = 0; i < SSE_REPLICAS_MAX; i++) {
        sh_rpc_client_free(p->replicas[i].rpc);
        p->replicas[i].rpc = NULL;
    }
    pthread_mutex_destroy(&p->mu);
    p->reg = NULL;
}
