/* gw_http_int.h - what the files of the HTTP server share, and nothing
 * outside them but their unit test includes: the server and request
 * objects, and the functions one of them offers the others (prefix
 * gw__http_). The files, each using only those below it:
 *
 *   http.c        the daemon and the request state machine
 *   http_call.c   service calls and their fan-out
 *   http_reply.c  replies, and service errors mapped to statuses
 *   http_stop.c   the orderly stop and the activity it watches
 *   http_head.c   the deadline of request heads
 */
#ifndef GW_HTTP_INT_H
#define GW_HTTP_INT_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_http.h"
#include "gw_router.h"
#include "gw_token.h"
#include "shared/keys.h"

typedef struct gw__http_conn gw__http_conn;

/* The connections whose request head is awaited, oldest first (lock mu). */
typedef struct gw__http_heads {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    gw__http_conn *first, *last;
    uint64_t timeout_ns;
    pthread_t thread;
    bool inited, started, stop;
} gw__http_heads;

enum { GW__HTTP_REQ_BODY, GW__HTTP_REQ_WAITING, GW__HTTP_REQ_DONE };

struct gw_http {
    struct MHD_Daemon *daemon;
    gw_app *app;
    const gw_config *cfg;
    MHD_socket listen_fd;                  /* MHD's; read only for the stop */
    atomic_bool stopping;                  /* responses close their connections; /readyz 503 */
    atomic_int inflight;                   /* service calls not yet answered */
    atomic_bool draining;                  /* new service calls are refused (503) */
    atomic_int conns;                      /* open connections */
    atomic_int busy;                       /* requests begun and not completed, streams included */
    atomic_uint_fast64_t last_activity_ns; /* a connection opened, a request began or ended */
    uint64_t stop_ns;
    atomic_uint_fast64_t next_rid;
    char rid_prefix[9];
    gw__http_heads heads;
};

struct gw_req {
    gw_http *h;
    struct MHD_Connection *conn;
    const char *url;
    const char *method_name; /* as sent; method is its enum gw_method */
    int method;
    int state;
    gw_match m;
    char param[SH_ID_MAX + 1];
    char param2[SH_ID_MAX + 1];
    char rid[SH_ID_MAX + 1];
    uint64_t t0;
    const char *origin; /* the Origin header when CORS_ORIGINS lists it, else NULL */
    bool preflight;     /* an OPTIONS request answered with the CORS preflight headers */
    gw_token *token;    /* the scoped token the request was let in with, or NULL */
    /* body */
    sh_buf body;
    uint64_t body_seen;
    bool too_large;
    sh_val *json;
    /* the service call */
    int svc;
    int ok_status;
    const char *not_found;
    gw_call_fn call_fn;
    /* the reply */
    bool replied;
    int status;
    char *resp;
    size_t resp_len;
    const char *ctype;
    const char *xhdr_name;
    const char *xhdr_value;
    struct MHD_Response *stream;
    bool upgraded; /* the reply is a 101: the connection is the WebSocket's */
    void (*done_fn)(void *arg);
    void *done_arg;
};

/* ---- http_reply.c -------------------------------------------------------- */

/* The content type of every JSON reply. */
extern const char gw__http_json[];

/* ---- http_head.c --------------------------------------------------------- */

/* gw__http_head_start starts the thread that closes connections whose head
 * has not arrived timeout_s after they were armed; gw__http_head_fini stops
 * it (after the daemon) and is harmless on a zeroed or half-started one. */
int gw__http_head_start(gw__http_heads *hs, long long timeout_s, sh_error *err);
void gw__http_head_fini(gw__http_heads *hs);
/* gw__http_head_open makes the socket context of a new connection, armed;
 * gw__http_head_close frees it. */
void gw__http_head_open(gw__http_heads *hs, struct MHD_Connection *conn, void **socket_ctx);
void gw__http_head_close(gw__http_heads *hs, void **socket_ctx);
/* gw__http_head_received disarms conn: a request head is in. */
void gw__http_head_received(gw__http_heads *hs, struct MHD_Connection *conn);
/* gw__http_head_rearm arms conn again: its request ended, the next head
 * has the deadline too. */
void gw__http_head_rearm(gw__http_heads *hs, struct MHD_Connection *conn);

/* ---- http_stop.c --------------------------------------------------------- */

/* gw__http_touch notes activity on some connection: the stop closes idle
 * connections only once there has been none for a while. */
void gw__http_touch(gw_http *h);

/* gw__http_conn_notify is the daemon's MHD_OPTION_NOTIFY_CONNECTION (cls is
 * the server): it counts open connections. */
void gw__http_conn_notify(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode toe);

/* ---- http.c -------------------------------------------------------------- */

/* gw__http_content_type_ok reports whether ct (NULL: none sent) is JSON. */
bool gw__http_content_type_ok(const char *ct);

#endif
