/* gw_http.h - the HTTP server (libmicrohttpd) and the request object that
 * route handlers work with.
 *
 * Life cycle of a request: the server reads the headers, matches a route,
 * checks the token (the cron secret and caller address on cron routes), the
 * id and the body's size and type, reads and parses the
 * body, then calls the route's handler on an HTTP thread. A handler either
 * replies at once (gw_req_reply_*) or starts one call to a service with
 * gw_req_call, which parks the connection (no thread waits) until the reply
 * comes; the response is then sent from an HTTP thread. The request object
 * is freed by the server when the connection is done with it. */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "gw_config.h"
#include "shared/buf.h"
#include "shared/err.h"
#include "shared/rpc.h"
#include "shared/val.h"

struct MHD_Connection;
struct MHD_Response;

typedef struct gw_sse gw_sse;
typedef struct gw_ws gw_ws;

#define GW_RPC_CLIENTS_MAX 8

/* The services the gateway calls. */
enum gw_service { GW_SVC_PROGRESS, GW_SVC_COORDINATOR, GW_SVC_SYNC, GW_SVC_COUNT };

/* gw_service_name returns "progress", "coordinator" or "sync-worker". */
const char *gw_service_name(int svc);

/* What handlers need of the rest of the gateway; owned by main. */
typedef struct gw_app {
    const gw_config *cfg;
    /* Requests are spread over several clients per service (one socket and
     * connection each) so that HTTP threads do not contend for one lock. */
    sh_rpc_client *rpc[GW_SVC_COUNT][GW_RPC_CLIENTS_MAX];
    int nrpc;
    gw_sse *sse;
    gw_ws *ws;
} gw_app;

typedef struct gw_http gw_http;
typedef struct gw_req gw_req;

/* gw_http_start listens on cfg->addr and serves requests with app. */
int gw_http_start(const gw_config *cfg, gw_app *app, gw_http **out, sh_error *err);

/* Stopping, in this order. None of it resets a connection whose request was
 * sent, short of a client that reuses a keep-alive connection, idle since
 * before the stop began, at the very moment it is closed at the end:
 *
 * gw_http_stop_begin: from now on every response closes its connection and
 * /readyz answers 503; connections are still accepted and served.
 *
 * gw_http_drain: after GATEWAY_DRAIN_MS from the stop's beginning, the
 * listening socket drops new connection requests (their clients are refused
 * once it is closed); connections already queued are accepted and served.
 * It returns once nothing waits to be accepted, no request or stream is
 * under way and every open connection has been idle a moment (at most a few
 * seconds), and no service call is in flight (new calls are then refused
 * with 503; each call ends within RPC_TIMEOUT_MS).
 *
 * gw_http_free: closes the listener and the remaining (idle) connections,
 * and frees the server.
 *
 * libmicrohttpd's own MHD_quiesce_daemon is not used: in 0.9.75, with a
 * thread pool and epoll, it removes the listening socket from each worker's
 * epoll set while that worker, woken by any event, may be removing it too,
 * and aborts the process when its own removal finds it gone (MHD_USE_ITC does
 * not take that path away). */
void gw_http_stop_begin(gw_http *h);
void gw_http_drain(gw_http *h);
void gw_http_free(gw_http *h);

/* ---- for route handlers ---------------------------------------------- */

gw_app *gw_req_app(gw_req *r);
struct MHD_Connection *gw_req_connection(gw_req *r);
/* The :id segment of the path, already checked against the id syntax. */
const char *gw_req_param(gw_req *r);
/* The second parameter segment (":uid"), checked against the id syntax;
 * "" when the route has none. */
const char *gw_req_param2(gw_req *r);
/* gw_req_take_body hands over the parsed JSON object body (routes that take
 * one) or NULL. */
sh_val *gw_req_take_body(gw_req *r);
/* A request header or query argument, or NULL. */
const char *gw_req_header(gw_req *r, const char *name);
const char *gw_req_query(gw_req *r, const char *name);
const char *gw_req_request_id(gw_req *r);
/* gw_req_token returns the scoped token the request was let in with (its
 * scopes, for gw_token_covers), or NULL when it came with API_TOKEN,
 * API_READ_ONLY_TOKEN or none at all. */
const struct gw_token *gw_req_token(gw_req *r);
/* gw_req_stopping reports whether the gateway is stopping. */
bool gw_req_stopping(gw_req *r);
/* gw_req_peer returns the client's address (MHD's; NULL when unknown). */
const struct sockaddr *gw_req_peer(gw_req *r);
/* gw_req_peer_loopback reports whether the client connected from a loopback
 * address. */
bool gw_req_peer_loopback(gw_req *r);

/* gw_req_reply_json replies with v as JSON. */
void gw_req_reply_json(gw_req *r, int status, const sh_val *v);
/* gw_req_reply_raw replies with body (its data is taken; body is reset). */
void gw_req_reply_raw(gw_req *r, int status, const char *content_type, sh_buf *body);
/* gw_req_reply_error replies {"error": message}. */
void gw_req_reply_error(gw_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* gw_req_reply_rpc_error maps a service error to a status and an error body;
 * not_found (or NULL for the service's message) is the text of a 404. */
void gw_req_reply_rpc_error(gw_req *r, int rc, const sh_error *err, const char *not_found);
/* gw_req_reply_stream replies 200 with a streaming response (taken). */
void gw_req_reply_stream(gw_req *r, struct MHD_Response *resp);
/* gw_req_reply_upgrade replies 101 with an upgrade response (taken; made by
 * MHD_create_response_for_upgrade). */
void gw_req_reply_upgrade(gw_req *r, struct MHD_Response *resp);
/* gw_req_reply_header adds one header (name and value are static) to the
 * reply given. */
void gw_req_reply_header(gw_req *r, const char *name, const char *value);
/* gw_req_on_done has fn(arg) called once when the server is done with r
 * (after an upgrade: once the upgraded socket is closed). */
void gw_req_on_done(gw_req *r, void (*fn)(void *arg), void *arg);

/* Completion of gw_req_call for handlers that shape the reply themselves:
 * it runs on a messaging thread, must reply with gw_req_reply_* and must not
 * block; result is freed by the caller. */
typedef void (*gw_call_fn)(gw_req *r, int rc, const sh_val *result, const sh_error *err);

/* gw_req_call calls op of the progress service with args (taken) with a
 * timeout of timeout_ms (<= 0: RPC_TIMEOUT_MS). With fn NULL the reply is the
 * result as JSON with ok_status, or the mapped error (not_found as for
 * gw_req_reply_rpc_error). gw_req_call_svc does the same with service svc. */
void gw_req_call(gw_req *r, const char *op, sh_val *args, int timeout_ms, int ok_status,
                 const char *not_found, gw_call_fn fn);
void gw_req_call_svc(gw_req *r, int svc, const char *op, sh_val *args, int timeout_ms,
                     int ok_status, const char *not_found, gw_call_fn fn);

/* Several calls at once: each spec's args are taken; fn runs once, after the
 * last reply, on a messaging thread, with the outcome of each call in order,
 * and must reply with gw_req_reply_*. */
typedef struct gw_call_spec {
    int svc;
    const char *op;
    sh_val *args;
} gw_call_spec;

#define GW_CALLS_MAX 4

typedef void (*gw_all_fn)(gw_req *r, size_t n, const int *rc, sh_val *const *results,
                          const sh_error *errs);

void gw_req_call_all(gw_req *r, size_t n, gw_call_spec *calls, int timeout_ms, gw_all_fn fn);

#endif
