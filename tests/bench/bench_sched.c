/* bench_sched.c - scheduler figures for many accounts: creates N accounts
 * through the coordinator (several threads), reads Redis's memory before
 * and after, then times ticks of the schedule. Prints parseable lines:
 *
 *   accounts n=100000 create_per_s=... redis_bytes_per_account=...
 *   tick n=100000 batch=5 ticks=60 p50_ms=... p99_ms=... max_ms=...
 *
 * Usage: bench_sched -u COORDINATOR_URL -r REDIS_URL -n ACCOUNTS [-b BATCH] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/msgmac.h"
#include "shared/rpc.h"
#include "shared/store.h"
#include "shared/util.h"

#define BS_THREADS 16

typedef struct bs_thread {
    pthread_t tid;
    sh_rpc_client *c;
    int from, to, errors;
    char first_error[300];
} bs_thread;

static void *bs_create(void *p)
{
    bs_thread *t = p;
    for (int i = t->from; i < t->to; i++) {
        char email[64];
        snprintf(email, sizeof email, "user%d@example.com", i);
        sh_val *f = sh_val_new_map(), *res = NULL;
        sh_val_set_cstr(f, "emailAddress", sh_val_new_cstr(email));
        sh_val_set_cstr(f, "imapHost", sh_val_new_cstr("imap.example.com"));
        sh_val_set_cstr(f, "imapPort", sh_val_new_int(993));
        sh_val_set_cstr(f, "security", sh_val_new_cstr("tls"));
        sh_val_set_cstr(f, "username", sh_val_new_cstr(email));
        sh_val_set_cstr(f, "password", sh_val_new_cstr("a-password-of-24-chars.."));
        sh_error err;
        if (sh_rpc_call(t->c, "account.create", f, 10000, &res, &err) != SH_OK && !t->errors++)
            snprintf(t->first_error, sizeof t->first_error, "%s", err.msg);
        sh_val_free(f);
        sh_val_free(res);
    }
    return NULL;
}

static long long bs_used_memory(sh_store *s)
{
    sh_cmd *c = sh_cmd_new("INFO");
    sh_cmd_str(c, "memory");
    sh_reply *r = NULL;
    sh_error err;
    long long v = -1;
    if (sh_store_run(s, c, &r, &err) == SH_OK) {
        const char *p = strstr(sh_reply_string(r, NULL), "used_memory:");
        if (p)
            v = atoll(p + strlen("used_memory:"));
    }
    sh_reply_free(r);
    sh_cmd_free(c);
    return v;
}

static int bs_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const char *url = NULL, *redis = NULL;
    int n = 10000, batch = 5, opt;
    while ((opt = getopt(argc, argv, "u:r:n:b:")) != -1) {
        if (opt == 'u')
            url = optarg;
        else if (opt == 'r')
            redis = optarg;
        else if (opt == 'n')
            n = atoi(optarg);
        else if (opt == 'b')
            batch = atoi(optarg);
        else
            return 2;
    }
    if (!url || !redis || n < 1) {
        fprintf(stderr, "usage: bench_sched -u COORDINATOR_URL -r REDIS_URL -n N [-b BATCH]\n");
        return 2;
    }
    sh_error err;
    sh_redis_url ru;
    sh_store *store = NULL;
    /* Signed as the services are, with the RPC_SECRET of the environment. */
    if (sh_msgmac_setup(getenv("RPC_SECRET"), SH_MSGMAC_WINDOW_DEFAULT, &err) ||
        sh_redis_url_parse(redis, &ru, &err) || sh_store_new(&ru, NULL, &store, &err)) {
        fprintf(stderr, "bench_sched: %s\n", err.msg);
        return 1;
    }
    long long before = bs_used_memory(store);
    bs_thread th[BS_THREADS];
    int64_t t0 = sh_mono_ms();
    for (int i = 0; i < BS_THREADS; i++) {
        memset(&th[i], 0, sizeof th[i]);
        th[i].from = (int)((long long)n * i / BS_THREADS);
        th[i].to = (int)((long long)n * (i + 1) / BS_THREADS);
        if (sh_rpc_client_new(url, 10000, 0, &th[i].c, &err) != SH_OK) {
            fprintf(stderr, "bench_sched: %s\n", err.msg);
            return 1;
        }
        pthread_create(&th[i].tid, NULL, bs_create, &th[i]);
    }
    int errors = 0;
    for (int i = 0; i < BS_THREADS; i++) {
        pthread_join(th[i].tid, NULL);
        if (th[i].errors && !errors)
            fprintf(stderr, "bench_sched: first error: %s\n", th[i].first_error);
        errors += th[i].errors;
    }
    double secs = (double)(sh_mono_ms() - t0) / 1000.0;
    long long after = bs_used_memory(store);
    printf("accounts n=%d create_per_s=%.0f redis_bytes_per_account=%.0f errors=%d\n", n,
           n / (secs > 0 ? secs : 1), (double)(after - before) / n, errors);

    /* One tick per minute of an hour, with the clock driven from here. */
    int ticks = 60;
    double *ms = calloc((size_t)ticks, sizeof *ms);
    long long base = sh_now_ms() / 60000 * 60000;
    long long queued = 0;
    for (int i = 0; i < ticks; i++) {
        sh_val *a = sh_val_new_map(), *res = NULL;
        sh_val_set_cstr(a, "now", sh_val_new_int(base + (long long)i * 60000 + 1000));
        sh_val_set_cstr(a, "batchSize", sh_val_new_int(batch));
        int64_t s0 = sh_mono_ms();
        struct timespec a0, a1;
        clock_gettime(CLOCK_MONOTONIC, &a0);
        int rc = sh_rpc_call(th[0].c, "sched.tick", a, 10000, &res, &err);
        clock_gettime(CLOCK_MONOTONIC, &a1);
        (void)s0;
        ms[i] = (double)(a1.tv_sec - a0.tv_sec) * 1e3 + (double)(a1.tv_nsec - a0.tv_nsec) / 1e6;
        if (rc != SH_OK) {
            fprintf(stderr, "bench_sched: tick: %s\n", err.msg);
            errors++;
        }
        queued += (long long)sh_val_len(sh_val_get(res, "queued"));
        sh_val_free(a);
        sh_val_free(res);
    }
    qsort(ms, (size_t)ticks, sizeof *ms, bs_cmp);
    printf("tick n=%d batch=%d ticks=%d queued=%lld p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n", n,
           batch, ticks, queued, ms[ticks / 2], ms[ticks * 99 / 100], ms[ticks - 1]);
    free(ms);
    for (int i = 0; i < BS_THREADS; i++)
        sh_rpc_client_free(th[i].c);
    sh_store_free(store);
    sh_rpc_fini();
    return errors ? 1 : 0;
}
