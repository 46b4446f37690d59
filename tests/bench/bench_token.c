/* bench_token.c - what checking a scoped token costs the gateway, beside
 * references measured in the same run, in one parseable line:
 *
 *   token verify_ns=612.3 verify32_ns=... request_ns=... mac_ns=... equal_ns=... errors=0
 *
 * verify: gw_token_verify of a token of two scopes; verify32: of the
 * largest token (32 scopes of 128-character ids); request: gw_auth_request
 * of that two-scope token in an Authorization header, as every request
 * with one pays (both comparisons with the static tokens, then the
 * verification and the scope check); mac: one MAC (sh_mac, keyed BLAKE2b) over
 * the same bytes the two-scope verification authenticates; equal: the
 * constant-time comparison of a 64-character token, as API_TOKEN is
 * checked. errors counts verifications that did not succeed (must be 0).
 *
 * Usage: bench_token [-d SECONDS_PER_FIGURE] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gw_auth.h"
#include "gw_router.h"
#include "gw_token.h"
#include "shared/secret.h"
#include "shared/util.h"

#define BENCH_NOW   1800000000000LL
#define BENCH_KEY   "6bc10f9a22de4173880e5db439a2f716"
#define BENCH_KEY2  "04e3771cb9502a8fd6639e31c845fa07"
#define BENCH_API   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define BENCH_BATCH 1024

static volatile unsigned long bench_sink;
static unsigned long bench_errors;

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct bench_case {
    const sh_key *const *keys;
    const char *token;
    size_t len;
    const gw_config *cfg;
    const gw_auth_ask *ask;
    const sh_key *key;
    const char *given;
} bench_case;

static void bench_verify(const bench_case *c)
{
    gw_token t;
    if (gw_token_verify(c->keys, 2, c->token, c->len, BENCH_NOW, &t) != GW_TOKEN_OK)
        bench_errors++;
    bench_sink += t.n;
}

static void bench_request(const bench_case *c)
{
    gw_token t;
    if (gw_auth_request(c->cfg, c->ask, BENCH_NOW, &t) != GW_AUTH_OK)
        bench_errors++;
    bench_sink += t.n;
}

static void bench_mac(const bench_case *c)
{
    unsigned char mac[SH_MAC_BYTES];
    sh_mac(c->key, c->token, c->len, mac);
    bench_sink += mac[0];
}

static void bench_equal(const bench_case *c)
{
    bench_sink += sh_secret_equal(BENCH_API, 64, c->given, 64);
}

/* bench_run calls fn for seconds (after a tenth of that unrecorded) and
 * returns the mean ns per call. */
static double bench_run(void (*fn)(const bench_case *), const bench_case *c, double seconds)
{
    double warm_end = bench_now() + seconds / 10;
    while (bench_now() < warm_end)
        for (int i = 0; i < BENCH_BATCH; i++)
            fn(c);
    unsigned long calls = 0;
    double t0 = bench_now(), t1;
    do {
        for (int i = 0; i < BENCH_BATCH; i++)
            fn(c);
        calls += BENCH_BATCH;
        t1 = bench_now();
    } while (t1 - t0 < seconds);
    return (t1 - t0) * 1e9 / (double)calls;
}

static char *bench_mint(const sh_key *key, size_t n, size_t idlen)
{
    gw_token t;
    memset(&t, 0, sizeof t);
    t.expires_ms = BENCH_NOW + 3600000;
    t.n = n;
    for (size_t i = 0; i < n; i++) {
        t.scope[i].kind = i % 2 ? GW_SCOPE_JOB : GW_SCOPE_PROGRESS;
        snprintf(t.scope[i].id, sizeof t.scope[i].id, "%0*zu", (int)idlen, i);
    }
    sh_buf b;
    sh_buf_init(&b);
    if (gw_token_mint(key, &t, &b) != SH_OK) {
        fprintf(stderr, "bench_token: mint failed\n");
        exit(1);
    }
    size_t len;
    return sh_buf_steal(&b, &len);
}

int main(int argc, char **argv)
{
    double seconds = 2;
    int opt;
    while ((opt = getopt(argc, argv, "d:")) != -1) {
        if (opt != 'd' || (seconds = atof(optarg)) <= 0) {
            fprintf(stderr, "usage: bench_token [-d SECONDS_PER_FIGURE]\n");
            return 2;
        }
    }
    sh_key cur, prev;
    sh_error err;
    if (sh_key_parse(BENCH_KEY BENCH_KEY, "TOKEN_SIGNING_KEY", &cur, &err) != SH_OK ||
        sh_key_parse(BENCH_KEY2 BENCH_KEY2, "TOKEN_SIGNING_KEY_PREVIOUS", &prev, &err) != SH_OK) {
        fprintf(stderr, "bench_token: %s\n", err.msg);
        return 1;
    }
    /* A rotation under way: the token verifies with the current key, the
     * previous one is there too, as in the costliest configuration. */
    const sh_key *keys[2] = {&cur, &prev};
    char *small = bench_mint(&cur, 2, 36); /* uuid-sized ids */
    char *large = bench_mint(&cur, GW_TOKEN_SCOPES_MAX, SH_ID_MAX);

    gw_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.api_token = BENCH_API;
    cfg.ro_token = BENCH_API "-read-only";
    cfg.token_keys[0] = cur;
    cfg.token_keys[1] = prev;
    cfg.ntoken_keys = 2;
    char authz[256];
    snprintf(authz, sizeof authz, "Bearer %s", small);
    char id[64];
    snprintf(id, sizeof id, "%036d", 0);
    gw_auth_ask ask = {GW_GET, authz, NULL, GW_SCOPE_PROGRESS, id};

    /* The bytes the MAC covers: the token's first part. */
    size_t payload = (size_t)(strchr(small, '.') - small);
    char given[65];
    memcpy(given, BENCH_API, 65);
    given[63] = 'x'; /* a wrong token of the right length: the whole length is compared */

    bench_case vs = {keys, small, strlen(small), NULL, NULL, &cur, given};
    bench_case vl = {keys, large, strlen(large), NULL, NULL, &cur, given};
    bench_case rq = {keys, small, strlen(small), &cfg, &ask, &cur, given};
    bench_case hm = {keys, small, payload, NULL, NULL, &cur, given};

    double verify = bench_run(bench_verify, &vs, seconds);
    double verify32 = bench_run(bench_verify, &vl, seconds);
    double request = bench_run(bench_request, &rq, seconds);
    double mac = bench_run(bench_mac, &hm, seconds);
    double equal = bench_run(bench_equal, &vs, seconds);
    printf("token verify_ns=%.1f verify32_ns=%.1f request_ns=%.1f mac_ns=%.1f equal_ns=%.1f "
           "token_bytes=%zu token32_bytes=%zu errors=%lu\n",
           verify, verify32, request, mac, equal, strlen(small), strlen(large), bench_errors);
    free(small);
    free(large);
    return 0;
}
