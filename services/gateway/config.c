/* config.c - the gateway's settings table and the checks that need more than
 * one row (the listen address, tokens against a non-loopback address). */
#include "gw_config.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/config.h"
#include "shared/log.h"
#include "shared/msgmac.h"

#define CONFIG_ROWS 36 /* rows, the NULL row included; unused rows are NULL too */

static void config_table(gw_config *c, sh_setting rows[CONFIG_ROWS])
{
    const sh_setting t[CONFIG_ROWS] = {
        {"GATEWAY_LISTEN", NULL, SH_SET_STR, "127.0.0.1:8080", 0, 300, &c->listen, false,
         "host:port to listen on ([::1]:8080 for IPv6)"},
        {"API_TOKEN", NULL, SH_SET_SECRET, NULL, 0, 4096, &c->api_token, false,
         "bearer token allowing every request"},
        {"API_READ_ONLY_TOKEN", NULL, SH_SET_SECRET, NULL, 0, 4096, &c->ro_token, false,
         "bearer token allowing GET and HEAD only"},
        {"CRON_SECRET", NULL, SH_SET_SECRET, NULL, 16, 4096, &c->cron_secret, false,
         "bearer token of the cron routes (openssl rand -hex 32)"},
        {"CRON_LOOPBACK_ONLY", NULL, SH_SET_BOOL, "false", 0, 0, &c->cron_loopback_only, false,
         "cron routes answer loopback callers only"},
        {"PROGRESS_RPC_URL", NULL, SH_SET_STR, "tcp://127.0.0.1:7101", 0, 4096, &c->rpc_url, false,
         "progress service call URLs, comma-separated"},
        {"COORDINATOR_RPC_URL", NULL, SH_SET_STR, "tcp://127.0.0.1:7111", 0, 4096, &c->coord_url,
         false, "coordinator call URLs, comma-separated"},
        {"SYNC_WORKER_RPC_URL", NULL, SH_SET_STR, "tcp://127.0.0.1:7121", 0, 4096, &c->sync_url,
         false, "sync-worker call URLs, comma-separated"},
        {"PROGRESS_EVENTS_URL", NULL, SH_SET_STR, "tcp://127.0.0.1:7102", 0, 4096, &c->events_url,
         false, "progress service event URLs, comma-separated"},
        {"COORDINATOR_EVENTS_URL", NULL, SH_SET_STR, "tcp://127.0.0.1:7112", 0, 4096,
         &c->coord_events_url, false, "coordinator event URLs, comma-separated"},
        {"SYNC_WORKER_EVENTS_URL", NULL, SH_SET_STR, "tcp://127.0.0.1:7122", 0, 4096,
         &c->sync_events_url, false, "sync-worker event URLs (mail events), comma-separated"},
        {"RPC_TIMEOUT_MS", NULL, SH_SET_INT, "3000", 10, 600000, &c->rpc_timeout_ms, false,
         "timeout of every call to a service"},
        {"RPC_BATCH_INFLIGHT", NULL, SH_SET_INT, "4", 1, 64, &c->batch_inflight, false,
         "requests to a service in flight before calls queue into batches"},
        {"RPC_BATCH_MAX_CALLS", NULL, SH_SET_INT, "64", 1, 1024, &c->batch_calls, false,
         "most calls in one batch"},
        {"RPC_BATCH_MAX_BYTES", NULL, SH_SET_INT, "262144", 1024, 67108864, &c->batch_bytes, false,
         "most bytes of calls in one batch"},
        {"GATEWAY_MAX_BODY", NULL, SH_SET_INT, "2162688", 1024, 1073741824, &c->max_body, false,
         "largest request body in bytes"},
        {"GATEWAY_THREADS", NULL, SH_SET_INT, "2", 1, 256, &c->threads, false,
         "HTTP worker threads"},
        {"GATEWAY_MAX_CONNECTIONS", NULL, SH_SET_INT, "4096", 1, 1000000, &c->max_connections,
         false, "simultaneous HTTP connections"},
        {"GATEWAY_MAX_CONNECTIONS_PER_ADDRESS", NULL, SH_SET_INT, "256", 0, 1000000,
         &c->max_conns_per_addr, false,
         "simultaneous HTTP connections from one client address (0: no limit)"},
        {"GATEWAY_MAX_STREAMS", NULL, SH_SET_INT, "0", 0, 1000000, &c->max_streams, false,
         "open event streams and WebSockets (0: three quarters of GATEWAY_MAX_CONNECTIONS)"},
        {"GATEWAY_MAX_STREAMS_PER_ADDRESS", NULL, SH_SET_INT, "64", 0, 1000000,
         &c->max_streams_per_addr, false,
         "open event streams and WebSockets of one client address (0: no limit)"},
        {"GATEWAY_STREAM_BUFFER", NULL, SH_SET_INT, "262144", 16384, 16777216, &c->stream_buffer,
         false, "bytes an event stream holds for a client that does not read"},
        {"GATEWAY_HEAD_TIMEOUT", NULL, SH_SET_INT, "10", 1, 300, &c->head_timeout_s, false,
         "seconds a connection has to send a whole request head"},
        {"GATEWAY_CONNECTION_MEMORY", NULL, SH_SET_INT, "8192", 4096, 1048576, &c->conn_memory,
         false, "bytes each connection has for its request head and reply headers"},
        {"SSE_HEARTBEAT_SECONDS", NULL, SH_SET_INT, "15", 1, 3600, &c->heartbeat_s, false,
         "period of heartbeats on event streams"},
        {"WS_PING_SECONDS", NULL, SH_SET_INT, "30", 1, 3600, &c->ws_ping_s, false,
         "period of pings on WebSockets"},
        {"WS_PONG_TIMEOUT_SECONDS", NULL, SH_SET_INT, "10", 1, 3600, &c->ws_pong_s, false,
         "a WebSocket whose pong does not come this long after a ping is closed (1001)"},
        {"GATEWAY_DRAIN_MS", NULL, SH_SET_INT, "500", 0, 5000, &c->drain_ms, false,
         "after SIGTERM, new connections are still served this long (/readyz: 503)"},
        {"CORS_ORIGINS", NULL, SH_SET_STR, NULL, 0, 8192, &c->cors_origins, false,
         "origins whose pages may read replies, comma-separated (no *)"},
        {"TOKEN_SIGNING_KEY", NULL, SH_SET_SECRET, NULL, 0, 4096, &c->token_key_hex, false,
         "64 hex characters signing scoped tokens (openssl rand -hex 32)"},
        {"TOKEN_SIGNING_KEY_PREVIOUS", NULL, SH_SET_SECRET, NULL, 0, 4096, &c->token_prev_hex,
         false, "the former TOKEN_SIGNING_KEY: its tokens still verify while rotating"},
        {"TOKEN_MAX_TTL", NULL, SH_SET_INT, "3600", 1, 86400, &c->token_max_ttl_s, false,
         "longest life of a scoped token in seconds"},
        {"RPC_SECRET", NULL, SH_SET_SECRET, NULL, 0, 4096, &c->rpc_secret, false,
         "shared secret that signs every call and event between services"},
        {"RPC_MAC_WINDOW_SECONDS", NULL, SH_SET_INT, "30", 1, 3600, &c->mac_window_s, false,
         "how far a signed message's timestamp may be from this host's clock"},
        {"LOG_LEVEL", NULL, SH_SET_STR, "info", 0, 16, &c->log_level_name, false,
         "debug, info, warn or error"},
        {NULL, NULL, 0, NULL, 0, 0, NULL, false, NULL},
    };
    memcpy(rows, t, sizeof t);
}

bool gw_config_addr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

/* config_parse_listen splits "host:port" or "[v6]:port" and resolves it. */
static int config_parse_listen(gw_config *c, sh_error *err)
{
    char host[256];
    const char *s = c->listen;
    const char *h, *port;
    size_t hlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return sh_error_set(err, SH_EINVAL,
                                "GATEWAY_LISTEN must be host:port or [ipv6]:port, got \"%s\"", s);
        h = s + 1;
        hlen = (size_t)(close - h);
        port = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || strchr(s, ':') != colon)
            return sh_error_set(err, SH_EINVAL,
                                "GATEWAY_LISTEN must be host:port or [ipv6]:port, got \"%s\"", s);
        h = s;
        hlen = (size_t)(colon - s);
        port = colon + 1;
    }
    if (hlen == 0 || hlen >= sizeof host)
        return sh_error_set(err, SH_EINVAL, "GATEWAY_LISTEN needs a host, got \"%s\"", s);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    char *end;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 1 || p > 65535)
        return sh_error_set(err, SH_EINVAL,
                            "GATEWAY_LISTEN needs a port between 1 and 65535, got \"%s\"", s);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0 || !res)
        return sh_error_set(err, SH_EINVAL, "GATEWAY_LISTEN host \"%s\" cannot be resolved: %s",
                            host, gai_strerror(gai));
    memcpy(&c->addr, res->ai_addr, res->ai_addrlen);
    c->addrlen = res->ai_addrlen;
    c->ipv6 = res->ai_family == AF_INET6;
    c->loopback = gw_config_addr_is_loopback(res->ai_addr);
    freeaddrinfo(res);
    return SH_OK;
}

/* config_token_keys parses the scoped tokens' keys: the current one first. */
static int config_token_keys(gw_config *c, sh_error *err)
{
    int rc;
    c->ntoken_keys = 0;
    if (c->token_prev_hex && !c->token_key_hex)
        return sh_error_set(err, SH_EINVAL,
                            "TOKEN_SIGNING_KEY_PREVIOUS is set but TOKEN_SIGNING_KEY is not: "
                            "new tokens are signed with TOKEN_SIGNING_KEY");
    if (!c->token_key_hex)
        return SH_OK;
    if ((rc = sh_key_parse(c->token_key_hex, "TOKEN_SIGNING_KEY", &c->token_keys[0], err)))
        return rc;
    c->ntoken_keys = 1;
    if (!c->token_prev_hex)
        return SH_OK;
    if ((rc =
             sh_key_parse(c->token_prev_hex, "TOKEN_SIGNING_KEY_PREVIOUS", &c->token_keys[1], err)))
        return rc;
    c->ntoken_keys = 2;
    return SH_OK;
}

/* config_limits derives the stream cap and checks that the limits leave
 * room: streams below connections (the API and /healthz keep a reserve),
 * and an address's streams below its connections (or the 429 never shows:
 * its connections are turned away first). */
static int config_limits(gw_config *c, sh_error *err)
{
    c->stream_cap = c->max_streams;
    if (!c->stream_cap)
        c->stream_cap = c->max_connections - (c->max_connections + 3) / 4;
    if (c->stream_cap >= c->max_connections)
        return sh_error_set(err, SH_EINVAL,
                            "GATEWAY_MAX_STREAMS (%lld) must be less than "
                            "GATEWAY_MAX_CONNECTIONS (%lld): requests need connections too",
                            c->stream_cap, c->max_connections);
    if (c->max_streams_per_addr && c->max_conns_per_addr &&
        c->max_streams_per_addr >= c->max_conns_per_addr)
        return sh_error_set(err, SH_EINVAL,
                            "GATEWAY_MAX_STREAMS_PER_ADDRESS (%lld) must be less than "
                            "GATEWAY_MAX_CONNECTIONS_PER_ADDRESS (%lld), or either 0",
                            c->max_streams_per_addr, c->max_conns_per_addr);
    return SH_OK;
}

int gw_config_load(gw_config *cfg, sh_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    sh_setting rows[CONFIG_ROWS];
    config_table(cfg, rows);
    int rc = sh_config_load(rows, err);
    if (rc != SH_OK)
        return rc;
    if (sh_log_level_parse(cfg->log_level_name, &cfg->log_level) != 0)
        return sh_error_set(err, SH_EINVAL,
                            "LOG_LEVEL must be debug, info, warn or error, got \"%s\"",
                            cfg->log_level_name);
    if ((rc = config_parse_listen(cfg, err)) != SH_OK)
        return rc;
    if (!cfg->api_token && !cfg->ro_token && !cfg->loopback)
        return sh_error_set(err, SH_EINVAL,
                            "GATEWAY_LISTEN is %s, which is not a loopback address: set "
                            "API_TOKEN (and optionally API_READ_ONLY_TOKEN) before listening "
                            "on other addresses",
                            cfg->listen);
    if ((rc = gw_cors_parse(cfg->cors_origins, &cfg->cors, err)) != SH_OK)
        return rc;
    if ((rc = config_token_keys(cfg, err)) != SH_OK)
        return rc;
    if ((rc = config_limits(cfg, err)) != SH_OK)
        return rc;
    if ((rc = sh_msgmac_setup(cfg->rpc_secret, cfg->mac_window_s, err)) != SH_OK)
        return rc;
    /* Streams send a heartbeat well within the idle timeout. */
    cfg->conn_timeout_s = 60;
    if (cfg->conn_timeout_s < 2 * cfg->heartbeat_s + 10)
        cfg->conn_timeout_s = 2 * cfg->heartbeat_s + 10;
    return SH_OK;
}

char *gw_config_describe(const gw_config *cfg)
{
    sh_setting rows[CONFIG_ROWS];
    config_table((gw_config *)cfg, rows);
    return sh_config_describe(rows);
}
