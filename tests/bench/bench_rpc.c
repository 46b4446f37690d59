/* bench_rpc.c - load generator for the progress service over nng req/rep:
 * N threads, each with its own client, call progress.update on its own record
 * for a fixed time and report throughput and latency in one parseable line:
 *
 *   rpc clients=32 ops=123456 ops_per_s=12345.6 p50_ms=1.234 p99_ms=4.567 errors=0
 *
 * Usage: bench_rpc [-m progress|claim] [-u URL] [-c CLIENTS] [-d SECONDS] [-w WARMUP_SECONDS]
 *                  [-p ID_PREFIX] [-s SHARED_CLIENTS]
 * With -s N the callers share N RPC clients, as the threads of one process
 * do (their calls then batch); by default each caller has its own.
 * Mode progress (default) calls progress.update; mode claim calls claim then
 * claim.release on the coordinator, one pair per operation counted.
 * URL defaults to $PROGRESS_RPC_URL, then tcp://127.0.0.1:7101. Calls are
 * signed with $RPC_SECRET when it is set (msgmac.h), as the services'. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shared/err.h"
#include "shared/msg.h"
#include "shared/msgmac.h"
#include "shared/rpc.h"
#include "shared/val.h"

#define BENCH_MAX_CLIENTS 1024
#define BENCH_TIMEOUT_MS  5000

typedef struct bench_opts {
    const char *mode;
    const char *url;
    const char *prefix;
    int clients;
    int sockets; /* RPC clients the callers share; 0: one each */
    double seconds;
    double warmup;
} bench_opts;

typedef struct bench_thread {
    pthread_t tid;
    int idx;
    const bench_opts *opts;
    sh_rpc_client *client;
    /* Latencies in microseconds of the calls made after the warm-up. */
    uint32_t *lat;
    size_t nlat, caplat;
    uint64_t errors;
    char first_error[300];
} bench_thread;

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench_record(bench_thread *t, uint32_t us)
{
    if (t->nlat == t->caplat) {
        size_t ncap = t->caplat ? t->caplat * 2 : 65536;
        uint32_t *n = realloc(t->lat, ncap * sizeof *n);
        if (n == NULL)
            return SH_ENOMEM;
        t->lat = n;
        t->caplat = ncap;
    }
    t->lat[t->nlat++] = us;
    return SH_OK;
}

/* bench_args builds {id: "<prefix><idx>", fields: {currentStep: step}}. */
static sh_val *bench_args(const char *prefix, int idx, int64_t step)
{
    char id[160];
    snprintf(id, sizeof id, "%s%d", prefix, idx);
    sh_val *args = sh_val_new_map();
    sh_val *fields = sh_val_new_map();
    if (args == NULL || fields == NULL)
        goto fail;
    if (sh_val_set_cstr(fields, "currentStep", sh_val_new_int(step)) != SH_OK)
        goto fail;
    if (sh_val_set_cstr(args, "id", sh_val_new_cstr(id)) != SH_OK)
        goto fail;
    if (sh_val_set_cstr(args, "fields", fields) != SH_OK)
        goto fail_args;
    return args;
fail:
    sh_val_free(fields);
fail_args:
    sh_val_free(args);
    return NULL;
}

/* bench_claim_pair claims an item of this thread and releases it. */
static int bench_claim_pair(bench_thread *t, int64_t step, sh_error *err)
{
    char sq[160], bot[32];
    snprintf(sq, sizeof sq, "%s%d-%d", t->opts->prefix, t->idx, (int)(step % 64));
    snprintf(bot, sizeof bot, "bench%d", t->idx);
    sh_val *args = sh_val_new_map(), *res = NULL;
    sh_val_set_cstr(args, "sq", sh_val_new_cstr(sq));
    sh_val_set_cstr(args, "botId", sh_val_new_cstr(bot));
    int rc = sh_rpc_call(t->client, "claim", args, BENCH_TIMEOUT_MS, &res, err);
    sh_val_free(args);
    if (rc != SH_OK)
        return rc;
    const sh_val *claim = sh_val_get(res, "claim");
    int64_t token = sh_val_int(sh_val_get(claim, "token"));
    bool claimed = sh_val_bool(sh_val_get(res, "claimed"));
    sh_val_free(res);
    if (!claimed)
        return sh_error_set(err, SH_ECONFLICT, "%s was held by someone else", sq);
    args = sh_val_new_map();
    sh_val_set_cstr(args, "sq", sh_val_new_cstr(sq));
    sh_val_set_cstr(args, "botId", sh_val_new_cstr(bot));
    sh_val_set_cstr(args, "token", sh_val_new_int(token));
    rc = sh_rpc_call(t->client, "claim.release", args, BENCH_TIMEOUT_MS, &res, err);
    sh_val_free(args);
    sh_val_free(res);
    return rc;
}

static void *bench_thread_main(void *arg)
{
    bench_thread *t = arg;
    double start = bench_now();
    double measure_from = start + t->opts->warmup;
    double end = measure_from + t->opts->seconds;
    int64_t step = 0;

    for (;;) {
        double t0 = bench_now();
        if (t0 >= end)
            break;
        sh_error err;
        sh_error_clear(&err);
        int rc;
        if (strcmp(t->opts->mode, "claim") == 0) {
            rc = bench_claim_pair(t, ++step, &err);
        } else {
            sh_val *args = bench_args(t->opts->prefix, t->idx, ++step);
            if (args == NULL) {
                t->errors++;
                break;
            }
            sh_val *result = NULL;
            rc = sh_rpc_call(t->client, "progress.update", args, BENCH_TIMEOUT_MS, &result, &err);
            sh_val_free(args);
            sh_val_free(result);
        }
        double t1 = bench_now();
        if (rc != SH_OK) {
            if (t->errors++ == 0)
                snprintf(t->first_error, sizeof t->first_error, "%s: %s", sh_err_name(rc), err.msg);
            if (rc == SH_EUNAVAIL || rc == SH_ETIMEDOUT || rc == SH_ECLOSED)
                usleep(10000);
            continue;
        }
        if (t0 >= measure_from) {
            double us = (t1 - t0) * 1e6;
            if (bench_record(t, us > 4e9 ? UINT32_MAX : (uint32_t)us) != SH_OK) {
                t->errors++;
                break;
            }
        }
    }
    return NULL;
}

static int bench_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static double bench_pct(const uint32_t *sorted, size_t n, double p)
{
    if (n == 0)
        return 0.0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    if (i >= n)
        i = n - 1;
    return (double)sorted[i] / 1000.0;
}

static void bench_usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-m progress|claim] [-u URL] [-c CLIENTS] [-d SECONDS] [-w WARMUP_SECONDS]\n"
            "       [-p ID_PREFIX] [-s SHARED_CLIENTS]\n"
            "  -s N: the callers share N RPC clients (calls of one client batch);\n"
            "        default one client per caller\n"
            "  URL defaults to $PROGRESS_RPC_URL, then tcp://127.0.0.1:7101\n",
            argv0);
}

int main(int argc, char **argv)
{
    bench_opts o = {
        .mode = "progress",
        .url = getenv("PROGRESS_RPC_URL"),
        .prefix = "bench-",
        .clients = 1,
        .seconds = 10.0,
        .warmup = 1.0,
    };
    if (o.url == NULL || o.url[0] == '\0')
        o.url = "tcp://127.0.0.1:7101";
    int opt;
    while ((opt = getopt(argc, argv, "m:u:c:s:d:w:p:h")) != -1) {
        switch (opt) {
        case 'm':
            o.mode = optarg;
            break;
        case 'u':
            o.url = optarg;
            break;
        case 'c':
            o.clients = atoi(optarg);
            break;
        case 's':
            o.sockets = atoi(optarg);
            break;
        case 'd':
            o.seconds = atof(optarg);
            break;
        case 'w':
            o.warmup = atof(optarg);
            break;
        case 'p':
            o.prefix = optarg;
            break;
        default:
            bench_usage(argv[0]);
            return opt == 'h' ? 0 : 2;
        }
    }
    if ((strcmp(o.mode, "progress") != 0 && strcmp(o.mode, "claim") != 0) || o.clients < 1 ||
        o.clients > BENCH_MAX_CLIENTS || o.seconds <= 0 || o.warmup < 0 || strlen(o.prefix) > 100) {
        bench_usage(argv[0]);
        return 2;
    }

    /* Signed as the services are, with the RPC_SECRET of the environment. */
    sh_error merr;
    if (sh_msgmac_setup(getenv("RPC_SECRET"), SH_MSGMAC_WINDOW_DEFAULT, &merr) != SH_OK) {
        fprintf(stderr, "bench_rpc: %s\n", merr.msg);
        return 2;
    }
    int status = 1;
    int started = 0;
    bench_thread *th = calloc((size_t)o.clients, sizeof *th);
    if (th == NULL) {
        fprintf(stderr, "bench_rpc: out of memory\n");
        return 1;
    }
    for (int i = 0; i < o.clients; i++) {
        sh_error err;
        sh_error_clear(&err);
        th[i].idx = i;
        th[i].opts = &o;
        if (o.sockets > 0 && i >= o.sockets) {
            th[i].client = th[i % o.sockets].client;
            continue;
        }
        int rc = sh_rpc_client_new(o.url, BENCH_TIMEOUT_MS, SH_MSG_DEFAULT_MAX_BYTES, &th[i].client,
                                   &err);
        if (rc != SH_OK) {
            fprintf(stderr, "bench_rpc: client for %s: %s (%s)\n", o.url, sh_err_name(rc), err.msg);
            goto done;
        }
    }
    double t_start = bench_now();
    for (int i = 0; i < o.clients; i++) {
        int rc = pthread_create(&th[i].tid, NULL, bench_thread_main, &th[i]);
        if (rc != 0) {
            fprintf(stderr, "bench_rpc: pthread_create: %s\n", strerror(rc));
            break;
        }
        started++;
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i].tid, NULL);
    double elapsed = bench_now() - t_start - o.warmup;
    if (started != o.clients)
        goto done;

    size_t total = 0;
    uint64_t errors = 0;
    const char *first_error = NULL;
    for (int i = 0; i < o.clients; i++) {
        total += th[i].nlat;
        errors += th[i].errors;
        if (first_error == NULL && th[i].errors)
            first_error = th[i].first_error;
    }
    uint32_t *all = malloc((total ? total : 1) * sizeof *all);
    if (all == NULL) {
        fprintf(stderr, "bench_rpc: out of memory\n");
        goto done;
    }
    size_t off = 0;
    for (int i = 0; i < o.clients; i++) {
        if (th[i].nlat)
            memcpy(all + off, th[i].lat, th[i].nlat * sizeof *all);
        off += th[i].nlat;
    }
    qsort(all, total, sizeof *all, bench_cmp_u32);
    if (elapsed <= 0)
        elapsed = o.seconds;
    printf("rpc mode=%s clients=%d ops=%zu ops_per_s=%.1f p50_ms=%.3f p99_ms=%.3f errors=%" PRIu64
           "\n",
           o.mode, o.clients, total, (double)total / elapsed, bench_pct(all, total, 0.50),
           bench_pct(all, total, 0.99), errors);
    fflush(stdout);
    if (first_error != NULL)
        fprintf(stderr, "bench_rpc: first error: %s\n", first_error);
    free(all);
    status = (total > 0) ? 0 : 1;

done:
    for (int i = 0; i < o.clients; i++) {
        if (o.sockets <= 0 || i < o.sockets)
            sh_rpc_client_free(th[i].client);
        free(th[i].lat);
    }
    free(th);
    return status;
}
