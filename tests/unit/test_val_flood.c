/* test_val_flood.c - map keys chosen to collide cannot make building a map
 * quadratic: 150,000 keys that all fall in one slot under the unseeded
 * FNV-1a the map index once used (made here, meet in the middle) take no
 * more than 3 times as long as 150,000 ordinary keys, as a JSON body
 * (gw_json_parse) and inserted one by one (sh_val_set). Best of 3 of each,
 * interleaved, so that a noisy machine slows both alike. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw_json.h"
#include "shared/buf.h"
#include "shared/err.h"
#include "shared/val.h"

#ifndef FLOOD_KEYS
#define FLOOD_KEYS 150000
#endif
#define FLOOD_KEYLEN 7  /* 3 characters of prefix, 4 of suffix */
#define FLOOD_BITS   20 /* the index of 150,000 keys has 2^19 slots */
#define FLOOD_RATIO  3.0
#define FLOOD_ROUNDS 3

#define FNV_BASIS  1469598103934665603ull
#define FNV_PRIME  1099511628211ull
#define FLOOD_MASK ((1ull << FLOOD_BITS) - 1)

static const char flood_abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

/* The hash the map index used before it was seeded. */
static uint64_t flood_fnv(const char *k, size_t len)
{
    uint64_t h = FNV_BASIS;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)k[i]) * FNV_PRIME;
    return h;
}

/* flood_colliding fills keys (FLOOD_KEYS * FLOOD_KEYLEN bytes) with
 * distinct keys whose FNV-1a agrees in its low FLOOD_BITS bits. The low
 * bits of FNV-1a depend only on the low bits of its state, and each step
 * can be undone (the prime is odd), so: every 3-character prefix's state,
 * indexed; then, from the target, each 4-character suffix run backwards
 * gives the state a prefix must reach, and every prefix with that state
 * makes a colliding key. */
static void flood_colliding(char *keys)
{
    uint64_t inv = FNV_PRIME; /* the prime's inverse mod 2^64, by Newton */
    for (int i = 0; i < 6; i++)
        inv *= 2 - FNV_PRIME * inv;
    size_t nprefix = 64 * 64 * 64;
    int32_t *head = malloc(sizeof(int32_t) << FLOOD_BITS);
    int32_t *next = malloc(sizeof(int32_t) * nprefix);
    assert_non_null(head);
    assert_non_null(next);
    memset(head, 0xff, sizeof(int32_t) << FLOOD_BITS);
    for (size_t p = 0; p < nprefix; p++) {
        char pre[3] = {flood_abc[p >> 12], flood_abc[(p >> 6) & 63], flood_abc[p & 63]};
        uint64_t s = flood_fnv(pre, 3) & FLOOD_MASK;
        next[p] = head[s];
        head[s] = (int32_t)p;
    }
    const uint64_t target = flood_fnv("target", 6) & FLOOD_MASK;
    size_t n = 0;
    for (uint32_t suf = 0; n < FLOOD_KEYS && suf < (1u << 24); suf++) {
        char tail[4] = {flood_abc[suf >> 18], flood_abc[(suf >> 12) & 63],
                        flood_abc[(suf >> 6) & 63], flood_abc[suf & 63]};
        uint64_t h = target;
        for (int i = 3; i >= 0; i--)
            h = ((h * inv) & FLOOD_MASK) ^ (unsigned char)tail[i];
        for (int32_t p = head[h]; p >= 0 && n < FLOOD_KEYS; p = next[p]) {
            char *k = keys + n * FLOOD_KEYLEN;
            k[0] = flood_abc[p >> 12];
            k[1] = flood_abc[(p >> 6) & 63];
            k[2] = flood_abc[p & 63];
            memcpy(k + 3, tail, 4);
            n++;
        }
    }
    assert_int_equal(n, FLOOD_KEYS);
    free(head);
    free(next);
}

/* flood_ordinary fills keys with distinct keys spread as any are: i times
 * an odd constant, in 42 bits, as 7 characters. */
static void flood_ordinary(char *keys)
{
    for (uint64_t i = 0; i < FLOOD_KEYS; i++) {
        uint64_t v = (i * 0x9E3779B97F4A7C15ull) & ((1ull << 42) - 1);
        for (int c = 0; c < FLOOD_KEYLEN; c++)
            keys[i * FLOOD_KEYLEN + (size_t)c] = flood_abc[(v >> (6 * c)) & 63];
    }
}

/* flood_body makes the JSON object {"key":0,...} of keys. */
static void flood_body(const char *keys, sh_buf *b)
{
    sh_buf_puts(b, "{");
    for (size_t i = 0; i < FLOOD_KEYS; i++)
        sh_buf_printf(b, "%s\"%.*s\":0", i ? "," : "", FLOOD_KEYLEN, keys + i * FLOOD_KEYLEN);
    sh_buf_puts(b, "}");
}

static double flood_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double flood_time_json(const sh_buf *body)
{
    char msg[256];
    sh_val *v = NULL;
    double t0 = flood_now();
    int rc = gw_json_parse(body->data, body->len, &v, msg, sizeof msg);
    double t = flood_now() - t0;
    assert_int_equal(rc, 0);
    assert_int_equal(sh_val_len(v), FLOOD_KEYS);
    sh_val_free(v);
    return t;
}

static double flood_time_set(const char *keys)
{
    sh_val *m = sh_val_new_map();
    double t0 = flood_now();
    for (size_t i = 0; i < FLOOD_KEYS; i++)
        assert_int_equal(sh_val_set(m, keys + i * FLOOD_KEYLEN, FLOOD_KEYLEN, sh_val_new_int(0)),
                         SH_OK);
    double t = flood_now() - t0;
    assert_int_equal(sh_val_len(m), FLOOD_KEYS);
    sh_val_free(m);
    return t;
}

static void test_colliding_keys_are_not_quadratic(void **state)
{
    (void)state;
    char *bad = malloc(FLOOD_KEYS * FLOOD_KEYLEN), *good = malloc(FLOOD_KEYS * FLOOD_KEYLEN);
    assert_non_null(bad);
    assert_non_null(good);
    flood_colliding(bad);
    flood_ordinary(good);
    /* They do collide under the old hash, and the body fits GATEWAY_MAX_BODY. */
    uint64_t slot = flood_fnv(bad, FLOOD_KEYLEN) & FLOOD_MASK;
    for (size_t i = 1; i < FLOOD_KEYS; i++)
        assert_int_equal(flood_fnv(bad + i * FLOOD_KEYLEN, FLOOD_KEYLEN) & FLOOD_MASK, slot);
    sh_buf bad_body, good_body;
    sh_buf_init(&bad_body);
    sh_buf_init(&good_body);
    flood_body(bad, &bad_body);
    flood_body(good, &good_body);
    assert_true(bad_body.len < 2u * 1024 * 1024);

    double json_bad = 1e9, json_good = 1e9, set_bad = 1e9, set_good = 1e9;
    for (int r = 0; r < FLOOD_ROUNDS; r++) {
        double t;
        if ((t = flood_time_json(&good_body)) < json_good)
            json_good = t;
        if ((t = flood_time_json(&bad_body)) < json_bad)
            json_bad = t;
        if ((t = flood_time_set(good)) < set_good)
            set_good = t;
        if ((t = flood_time_set(bad)) < set_bad)
            set_bad = t;
    }
    print_message("JSON body of %d keys: colliding %.3f s, ordinary %.3f s (x%.2f)\n", FLOOD_KEYS,
                  json_bad, json_good, json_bad / json_good);
    print_message("sh_val_set of %d keys: colliding %.3f s, ordinary %.3f s (x%.2f)\n", FLOOD_KEYS,
                  set_bad, set_good, set_bad / set_good);
    assert_true(json_bad <= FLOOD_RATIO * json_good);
    assert_true(set_bad <= FLOOD_RATIO * set_good);
    sh_buf_fini(&bad_body);
    sh_buf_fini(&good_body);
    free(bad);
    free(good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_colliding_keys_are_not_quadratic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
