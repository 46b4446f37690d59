/* gw_config.h - the gateway's settings, read once from the environment. */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "gw_cors.h"
#include "shared/err.h"
#include "shared/secret.h"

typedef struct gw_config {
    const char *listen; /* GATEWAY_LISTEN as given */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    bool ipv6;
    bool loopback;
    const char *api_token;        /* NULL when unset */
    const char *ro_token;         /* NULL when unset */
    const char *cron_secret;      /* NULL when unset: the cron routes answer 503 */
    bool cron_loopback_only;      /* cron routes refuse callers not on loopback */
    const char *rpc_url;          /* progress service: comma-separated list */
    const char *coord_url;        /* coordinator: comma-separated list */
    const char *sync_url;         /* sync-worker: comma-separated list */
    const char *events_url;       /* progress service events: comma-separated list */
    const char *coord_events_url; /* coordinator events: comma-separated list */
    const char *sync_events_url;  /* sync-worker events (mail): comma-separated list */
    long long rpc_timeout_ms;     /* every call to a service */
    const char *rpc_secret;       /* RPC_SECRET, NULL when unset: calls and events unsigned */
    long long mac_window_s;       /* RPC_MAC_WINDOW_SECONDS */
    long long batch_inflight;     /* requests per client awaiting replies before calls batch */
    long long batch_calls;        /* most calls in one batch */
    long long batch_bytes;        /* most bytes of calls in one batch */
    long long max_body;           /* bytes of a request body */
    long long threads;            /* MHD thread pool */
    long long conn_memory;        /* MHD's memory pool of each connection */
    long long max_connections;
    long long max_conns_per_addr;   /* 0: no limit */
    long long max_streams;          /* as set; 0: derived */
    long long stream_cap;           /* event streams and WebSockets open at once */
    long long max_streams_per_addr; /* 0: no limit */
    long long stream_buffer;        /* bytes a stream holds unread */
    long long head_timeout_s;       /* a request head arrives within this */
    long long heartbeat_s;          /* SSE heartbeat period */
    long long ws_ping_s;            /* WebSocket ping period */
    long long ws_pong_s;            /* a ping's pong awaited this long */
    long long conn_timeout_s;       /* idle HTTP connections */
    long long drain_ms;             /* after SIGTERM, connections still accepted this long */
    const char *cors_origins;       /* CORS_ORIGINS as given, NULL when unset */
    gw_cors cors;                   /* the origins of cors_origins */
    const char *token_key_hex;      /* TOKEN_SIGNING_KEY, NULL when unset */
    const char *token_prev_hex;
    sh_key token_keys[2]; /* current, previous */
    size_t ntoken_keys;   /* 0: no scoped tokens; 1; 2 while rotating */
    long long token_max_ttl_s;
    const char *log_level_name;
    int log_level;
} gw_config;

#define GW_DEFAULT_MAX_BODY (2 * 1024 * 1024 + 64 * 1024)

/* gw_config_load fills cfg from the environment and checks it. On error it
 * returns SH_EINVAL and err names the setting and what is wrong. */
int gw_config_load(gw_config *cfg, sh_error *err);

/* gw_config_addr_is_loopback reports whether sa is a loopback address
 * (127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104). */
bool gw_config_addr_is_loopback(const struct sockaddr *sa);

/* gw_config_describe returns one log-friendly line of the settings (secrets
 * hidden); the caller frees it. */
char *gw_config_describe(const gw_config *cfg);

#endif
