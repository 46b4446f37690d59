/* test_gw_config.c - the gateway's settings (services/gateway/config.c):
 * the defaults of its README, the listen address, the rule that a
 * non-loopback address needs a token, and bad values refused with a message
 * naming the setting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "gw_config.h"
#include "shared/log.h"

static const char *const config_vars[] = {
    "GATEWAY_LISTEN",
    "API_TOKEN",
    "API_READ_ONLY_TOKEN",
    "CRON_SECRET",
    "CRON_LOOPBACK_ONLY",
    "PROGRESS_RPC_URL",
    "COORDINATOR_RPC_URL",
    "SYNC_WORKER_RPC_URL",
    "PROGRESS_EVENTS_URL",
    "RPC_TIMEOUT_MS",
    "RPC_BATCH_INFLIGHT",
    "RPC_BATCH_MAX_CALLS",
    "RPC_BATCH_MAX_BYTES",
    "GATEWAY_MAX_BODY",
    "GATEWAY_THREADS",
    "GATEWAY_MAX_CONNECTIONS",
    "GATEWAY_CONNECTION_MEMORY",
    "GATEWAY_MAX_CONNECTIONS_PER_ADDRESS",
    "GATEWAY_MAX_STREAMS",
    "GATEWAY_MAX_STREAMS_PER_ADDRESS",
    "GATEWAY_STREAM_BUFFER",
    "GATEWAY_HEAD_TIMEOUT",
    "SSE_HEARTBEAT_SECONDS",
    "GATEWAY_DRAIN_MS",
    "CORS_ORIGINS",
    "TOKEN_SIGNING_KEY",
    "TOKEN_SIGNING_KEY_PREVIOUS",
    "TOKEN_MAX_TTL",
    "LOG_LEVEL",
    NULL,
};

/* The integer settings: default and bounds as the README gives them. */
static const struct {
    const char *name;
    size_t off;
    long long def, min, max;
} config_ints[] = {
    {"RPC_TIMEOUT_MS", offsetof(gw_config, rpc_timeout_ms), 3000, 10, 600000},
    {"RPC_BATCH_INFLIGHT", offsetof(gw_config, batch_inflight), 4, 1, 64},
    {"RPC_BATCH_MAX_CALLS", offsetof(gw_config, batch_calls), 64, 1, 1024},
    {"RPC_BATCH_MAX_BYTES", offsetof(gw_config, batch_bytes), 262144, 1024, 67108864},
    {"GATEWAY_MAX_BODY", offsetof(gw_config, max_body), 2162688, 1024, 1073741824},
    {"GATEWAY_THREADS", offsetof(gw_config, threads), 2, 1, 256},
    {"GATEWAY_MAX_CONNECTIONS", offsetof(gw_config, max_connections), 4096, 1, 1000000},
    {"GATEWAY_CONNECTION_MEMORY", offsetof(gw_config, conn_memory), 8192, 4096, 1048576},
    {"GATEWAY_STREAM_BUFFER", offsetof(gw_config, stream_buffer), 262144, 16384, 16777216},
    {"GATEWAY_HEAD_TIMEOUT", offsetof(gw_config, head_timeout_s), 10, 1, 300},
    {"SSE_HEARTBEAT_SECONDS", offsetof(gw_config, heartbeat_s), 15, 1, 3600},
    {"GATEWAY_DRAIN_MS", offsetof(gw_config, drain_ms), 500, 0, 5000},
    {"TOKEN_MAX_TTL", offsetof(gw_config, token_max_ttl_s), 3600, 1, 86400},
};
#define NINTS (sizeof config_ints / sizeof config_ints[0])

static long long config_int(const gw_config *c, size_t i)
{
    long long v;
    memcpy(&v, (const char *)c + config_ints[i].off, sizeof v);
    return v;
}

static void config_refused(const char *name, const char *value, const char *words);

static int config_clear(void **state)
{
    (void)state;
    for (size_t i = 0; config_vars[i]; i++)
        unsetenv(config_vars[i]);
    return 0;
}

static void test_defaults(void **state)
{
    (void)state;
    gw_config c;
    sh_error err;
    assert_int_equal(gw_config_load(&c, &err), SH_OK);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_false(c.ipv6);
    assert_true(c.loopback);
    const struct sockaddr_in *in = (const struct sockaddr_in *)&c.addr;
    assert_int_equal(c.addrlen, sizeof *in);
    assert_int_equal(in->sin_family, AF_INET);
    assert_int_equal(ntohs(in->sin_port), 8080);
    assert_int_equal(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK);
    assert_null(c.api_token);
    assert_null(c.ro_token);
    assert_null(c.cron_secret);
    assert_false(c.cron_loopback_only);
    assert_string_equal(c.rpc_url, "tcp://127.0.0.1:7101");
    assert_string_equal(c.events_url, "tcp://127.0.0.1:7102");
    assert_string_equal(c.coord_url, "tcp://127.0.0.1:7111");
    assert_string_equal(c.sync_url, "tcp://127.0.0.1:7121");
    assert_int_equal(c.max_body, GW_DEFAULT_MAX_BODY);
    assert_int_equal(c.conn_timeout_s, 60);
    for (size_t i = 0; i < NINTS; i++)
        if (config_int(&c, i) != config_ints[i].def)
            fail_msg("%s: %lld, not %lld", config_ints[i].name, config_int(&c, i),
                     config_ints[i].def);
    assert_string_equal(c.log_level_name, "info");
    assert_int_equal(c.log_level, SH_LOG_INFO);
    assert_null(c.cors_origins);
    assert_int_equal(c.cors.n, 0);
    assert_int_equal(c.ntoken_keys, 0);

    /* An empty variable is an unset one (VAR= in a compose file). */
    setenv("GATEWAY_LISTEN", "", 1);
    setenv("LOG_LEVEL", "", 1);
    setenv("API_TOKEN", "", 1);
    setenv("GATEWAY_THREADS", "", 1);
    assert_int_equal(gw_config_load(&c, &err), SH_OK);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_int_equal(c.log_level, SH_LOG_INFO);
    assert_null(c.api_token);
    assert_int_equal(c.threads, 2);
}

static void test_values(void **state)
{
    (void)state;
    setenv("GATEWAY_LISTEN", "[::1]:9090", 1);
    setenv("API_TOKEN", "tok-full-0123456789", 1);
    setenv("API_READ_ONLY_TOKEN", "tok-ro-0123456789", 1);
    setenv("CRON_SECRET", "0123456789abcdef", 1);
    setenv("CRON_LOOPBACK_ONLY", "true", 1);
    setenv("PROGRESS_RPC_URL", "tcp://127.0.0.1:1,tcp://127.0.0.1:2", 1);
    setenv("SSE_HEARTBEAT_SECONDS", "30", 1);
    setenv("LOG_LEVEL", "debug", 1);
    gw_config c;
    sh_error err;
    assert_int_equal(gw_config_load(&c, &err), SH_OK);
    assert_true(c.ipv6);
    assert_true(c.loopback);
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&c.addr;
    assert_int_equal(in6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(in6->sin6_port), 9090);
    assert_string_equal(c.api_token, "tok-full-0123456789");
    assert_string_equal(c.ro_token, "tok-ro-0123456789");
    assert_string_equal(c.cron_secret, "0123456789abcdef");
    assert_true(c.cron_loopback_only);
    assert_string_equal(c.rpc_url, "tcp://127.0.0.1:1,tcp://127.0.0.1:2");
    assert_int_equal(c.log_level, SH_LOG_DEBUG);
    /* Streams' heartbeats come well within the idle timeout. */
    assert_int_equal(c.heartbeat_s, 30);
    assert_int_equal(c.conn_timeout_s, 70);

    /* Secrets never show in the description of the settings. */
    char *d = gw_config_describe(&c);
    assert_non_null(d);
    assert_null(strstr(d, "tok-full-0123456789"));
    assert_null(strstr(d, "tok-ro-0123456789"));
    assert_null(strstr(d, "0123456789abcdef"));
    assert_non_null(strstr(d, "API_TOKEN=<secret>"));
    assert_non_null(strstr(d, "GATEWAY_LISTEN=[::1]:9090"));
    free(d);
}

/* test_token_rules: API tokens of 16 characters or more, that differ, and
 * not the example value of deploy/.env.example; each refusal names it. */
static void expect_refused(const char *words)
{
    gw_config c;
    sh_error err;
    assert_int_equal(gw_config_load(&c, &err), SH_EINVAL);
    if (!strstr(err.msg, words))
        fail_msg("\"%s\" lacks \"%s\"", err.msg, words);
}

static void test_token_rules(void **state)
{
    (void)state;
    gw_config c;
    sh_error err;
    setenv("API_TOKEN", "0123456789abcde", 1); /* 15 */
    expect_refused("API_TOKEN is too short (15 characters, at least 16)");
    setenv("API_TOKEN", "0123456789abcdef", 1); /* 16 */
    assert_int_equal(gw_config_load(&c, &err), SH_OK);
    setenv("API_READ_ONLY_TOKEN", "short-ro", 1);
    expect_refused("API_READ_ONLY_TOKEN is too short");
    setenv("API_READ_ONLY_TOKEN", "0123456789abcdef", 1);
    expect_refused("API_TOKEN and API_READ_ONLY_TOKEN must differ");
    setenv("API_READ_ONLY_TOKEN", "fedcba9876543210", 1);
    assert_int_equal(gw_config_load(&c, &err), SH_OK);
    unsetenv("API_READ_ONLY_TOKEN");
    /* deploy/.env.example's value, and any other of its example values. */
    setenv("API_TOKEN", "change-me", 1);
    expect_refused("API_TOKEN is still the example value of deploy/.env.example");
    setenv("API_TOKEN", "change-me-progress-0000", 1);
    expect_refused("example value");
    setenv("API_READ_ONLY_TOKEN", "change-me-admin-0000", 1);
    setenv("API_TOKEN", "0123456789abcdef", 1);
    expect_refused("API_READ_ONLY_TOKEN is still the example value");
    unsetenv("API_READ_ONLY_TOKEN");
    unsetenv("API_TOKEN");
}

/* test_listen_needs_token: the gateway listens beyond loopback only behind a
 * token. */
static void test_listen_needs_token(void **state)
{
    (void)state;
    gw_config c;
    sh_error err;
    setenv("GATEWAY_LISTEN", "0.0.0.0:8080", 1);
    assert_int_equal(gw_config_load(&c, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "GATEWAY_LISTEN"));
    assert_non_null(strstr(err.msg, "API_TOKEN"));
    /* A cron secret is no API token. */
    setenv("CRON_SECRET", "0123456789abcdef", 1);
    assert_int_equal(gw_config_load(&c, &err), SH_EINVAL);
    setenv("API_READ_ONLY_TOKEN", "ro-token-0123456789", 1);
    assert_int_equal(gw_config_load(&c, &err), SH_OK);
    assert_false(c.loopback);
    unsetenv("API_READ_ONLY_TOKEN");
    setenv("API_TOKEN", "full-token-0123456789", 1);
    assert_int_equal(gw_config_load(&c, &err), SH_OK);
    assert_false(c.loopback);
    unsetenv("API_TOKEN");

    /* All of 127.0.0.0/8 is loopback. */
    setenv("GATEWAY_LISTEN", "127.1.2.3:80", 1);
    assert_int_equal(gw_config_load(&c, &err), SH_OK);
    assert_true(c.loopback);
    setenv("GATEWAY_LISTEN", "[::]:8080", 1);
    assert_int_equal(gw_config_load(&c, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "GATEWAY_LISTEN"));
}

/* test_int_bounds: each integer setting takes its bounds (the README's
 * ranges) and refuses one beyond either. */
static void test_int_bounds(void **state)
{
    (void)state;
    for (size_t i = 0; i < NINTS; i++) {
        char text[32], words[80];
        long long edges[2] = {config_ints[i].min, config_ints[i].max};
        for (int e = 0; e < 2; e++) {
            config_clear(NULL);
            snprintf(text, sizeof text, "%lld", edges[e]);
            setenv(config_ints[i].name, text, 1);
            gw_config c;
            sh_error err;
            if (gw_config_load(&c, &err) != SH_OK)
                fail_msg("%s=%s refused: %s", config_ints[i].name, text, err.msg);
            assert_int_equal(config_int(&c, i), edges[e]);
        }
        snprintf(words, sizeof words, "between %lld and %lld", config_ints[i].min,
                 config_ints[i].max);
        snprintf(text, sizeof text, "%lld", config_ints[i].min - 1);
        config_refused(config_ints[i].name, text, words);
        snprintf(text, sizeof text, "%lld", config_ints[i].max + 1);
        config_refused(config_ints[i].name, text, words);
    }
    config_clear(NULL);
}

static void config_refused_also(const char *name, const char *value, const char *words);

/* test_stream_limits: the stream cap is three quarters of the connections
 * unless set, and below them; an address's streams below its connections. */
static void test_stream_limits(void **state)
{
    (void)state;
    gw_config c;
    sh_error err;
    assert_int_equal(gw_config_load(&c, &err), SH_OK);
    assert_int_equal(c.max_streams, 0);
    assert_int_equal(c.stream_cap, 3072);
    assert_int_equal(c.max_streams_per_addr, 64);
    assert_int_equal(c.max_conns_per_addr, 256);
    setenv("GATEWAY_MAX_CONNECTIONS", "3", 1);
    assert_int_equal(gw_config_load(&c, &err), SH_OK);
    assert_int_equal(c.stream_cap, 2);
    setenv("GATEWAY_MAX_STREAMS", "3", 1);
    assert_int_equal(gw_config_load(&c, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "GATEWAY_MAX_STREAMS (3) must be less than "
                                    "GATEWAY_MAX_CONNECTIONS (3)"));
    setenv("GATEWAY_MAX_STREAMS", "1", 1);
    assert_int_equal(gw_config_load(&c, &err), SH_OK);
    assert_int_equal(c.stream_cap, 1);
    config_clear(NULL);
    setenv("GATEWAY_MAX_CONNECTIONS_PER_ADDRESS", "64", 1);
    assert_int_equal(gw_config_load(&c, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "GATEWAY_MAX_STREAMS_PER_ADDRESS (64) must be less than "
                                    "GATEWAY_MAX_CONNECTIONS_PER_ADDRESS (64)"));
    setenv("GATEWAY_MAX_STREAMS_PER_ADDRESS", "0", 1);
    assert_int_equal(gw_config_load(&c, &err), SH_OK);
    setenv("GATEWAY_MAX_STREAMS_PER_ADDRESS", "1000", 1);
    setenv("GATEWAY_MAX_CONNECTIONS_PER_ADDRESS", "0", 1);
    assert_int_equal(gw_config_load(&c, &err), SH_OK);
    assert_int_equal(c.max_conns_per_addr, 0);
    config_refused("GATEWAY_MAX_STREAMS", "-1", "between 0 and 1000000");
    config_refused("GATEWAY_MAX_CONNECTIONS_PER_ADDRESS", "x",
                   "GATEWAY_MAX_CONNECTIONS_PER_ADDRESS");
    config_clear(NULL);
}

static void config_refused(const char *name, const char *value, const char *words)
{
    config_clear(NULL);
    config_refused_also(name, value, words);
}

/* config_refused_also is config_refused without clearing the other settings. */
static void config_refused_also(const char *name, const char *value, const char *words)
{
    setenv(name, value, 1);
    gw_config c;
    sh_error err;
    if (gw_config_load(&c, &err) != SH_EINVAL)
        fail_msg("%s=%s accepted", name, value);
    if (!strstr(err.msg, name) || !strstr(err.msg, words))
        fail_msg("%s=%s: \"%s\" lacks the name or \"%s\"", name, value, err.msg, words);
}

static void test_bad_values(void **state)
{
    (void)state;
    config_refused("GATEWAY_LISTEN", "localhost", "host:port");
    config_refused("GATEWAY_LISTEN", "::1:8080", "host:port");
    config_refused("GATEWAY_LISTEN", "[::1]8080", "host:port");
    config_refused("GATEWAY_LISTEN", "[::1", "host:port");
    config_refused("GATEWAY_LISTEN", ":8080", "needs a host");
    config_refused("GATEWAY_LISTEN", "[]:8080", "needs a host");
    config_refused("GATEWAY_LISTEN", "127.0.0.1:", "port between 1 and 65535");
    config_refused("GATEWAY_LISTEN", "127.0.0.1:0", "port between 1 and 65535");
    config_refused("GATEWAY_LISTEN", "127.0.0.1:65536", "port between 1 and 65535");
    config_refused("GATEWAY_LISTEN", "127.0.0.1:80x", "port between 1 and 65535");
    config_refused("GATEWAY_LISTEN", "127.0.0.1:-1", "port between 1 and 65535");
    config_refused("GATEWAY_LISTEN", "[::1]:http", "port between 1 and 65535");
    config_refused("CRON_SECRET", "too-short", "too short");
    config_refused("CRON_LOOPBACK_ONLY", "sometimes", "true or false");
    config_refused("RPC_TIMEOUT_MS", "3s", "integer");
    config_refused("GATEWAY_MAX_BODY", "2MiB", "integer");
    config_refused("LOG_LEVEL", "verbose", "debug, info, warn or error");
}

/* test_browser_settings: CORS_ORIGINS parsed, "*" and malformed origins
 * refused; the signing keys parsed, the current one first, and refused when
 * malformed or when only the previous one is set. */
static void test_browser_settings(void **state)
{
    (void)state;
    static const char key[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    static const char prev[] = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
    setenv("CORS_ORIGINS", "https://app.example.com, http://localhost:3000", 1);
    setenv("TOKEN_SIGNING_KEY", key, 1);
    gw_config c;
    sh_error err;
    assert_int_equal(gw_config_load(&c, &err), SH_OK);
    assert_int_equal(c.cors.n, 2);
    assert_true(gw_cors_allowed(&c.cors, "http://localhost:3000"));
    assert_int_equal(c.ntoken_keys, 1);
    assert_int_equal(c.token_keys[0].bytes[1], 0x11);
    /* The key is a secret: the settings line does not show it. */
    char *line = gw_config_describe(&c);
    assert_null(strstr(line, key));
    assert_non_null(strstr(line, "https://app.example.com"));
    free(line);
    setenv("TOKEN_SIGNING_KEY_PREVIOUS", prev, 1);
    assert_int_equal(gw_config_load(&c, &err), SH_OK);
    assert_int_equal(c.ntoken_keys, 2);
    assert_int_equal(c.token_keys[0].bytes[1], 0x11);
    assert_int_equal(c.token_keys[1].bytes[1], 0xee);

    config_refused("CORS_ORIGINS", "*", "\"*\"");
    config_refused("CORS_ORIGINS", "https://a.example, *", "\"*\"");
    config_refused("CORS_ORIGINS", "https://a.example/", "not an origin");
    config_refused("CORS_ORIGINS", "a.example", "not an origin");
    config_refused("TOKEN_SIGNING_KEY", "abc", "64 hex characters");
    config_refused("TOKEN_SIGNING_KEY",
                   "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", "not hex");
    config_refused("TOKEN_SIGNING_KEY_PREVIOUS", key, "TOKEN_SIGNING_KEY is not");
    config_clear(NULL);
    setenv("TOKEN_SIGNING_KEY", key, 1);
    config_refused_also("TOKEN_SIGNING_KEY_PREVIOUS", "0011", "64 hex characters");
}

static struct sockaddr_storage config_sa(int family, const char *addr)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_family = (sa_family_t)family;
    void *dst = family == AF_INET ? (void *)&((struct sockaddr_in *)&ss)->sin_addr
                                  : (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
    assert_int_equal(inet_pton(family, addr, dst), 1);
    return ss;
}

static bool config_loopback(int family, const char *addr)
{
    struct sockaddr_storage ss = config_sa(family, addr);
    return gw_config_addr_is_loopback((const struct sockaddr *)&ss);
}

static void test_addr_is_loopback(void **state)
{
    (void)state;
    assert_true(config_loopback(AF_INET, "127.0.0.1"));
    assert_true(config_loopback(AF_INET, "127.255.255.254"));
    assert_false(config_loopback(AF_INET, "128.0.0.1"));
    assert_false(config_loopback(AF_INET, "126.255.255.255"));
    assert_false(config_loopback(AF_INET, "10.0.0.1"));
    assert_false(config_loopback(AF_INET, "0.0.0.0"));
    assert_true(config_loopback(AF_INET6, "::1"));
    assert_false(config_loopback(AF_INET6, "::"));
    assert_false(config_loopback(AF_INET6, "::2"));
    assert_false(config_loopback(AF_INET6, "fe80::1"));
    assert_true(config_loopback(AF_INET6, "::ffff:127.0.0.1"));
    assert_true(config_loopback(AF_INET6, "::ffff:127.9.8.7"));
    assert_false(config_loopback(AF_INET6, "::ffff:10.0.0.1"));
    /* IPv4-compatible (deprecated) is not the mapped form. */
    assert_false(config_loopback(AF_INET6, "::127.0.0.1"));
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    assert_false(gw_config_addr_is_loopback((const struct sockaddr *)&un));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, config_clear),
        cmocka_unit_test_setup(test_values, config_clear),
        cmocka_unit_test_setup(test_listen_needs_token, config_clear),
        cmocka_unit_test_setup(test_token_rules, config_clear),
        cmocka_unit_test_setup(test_bad_values, config_clear),
        cmocka_unit_test_setup(test_int_bounds, config_clear),
        cmocka_unit_test_setup(test_stream_limits, config_clear),
        cmocka_unit_test_setup(test_browser_settings, config_clear),
        cmocka_unit_test(test_addr_is_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
