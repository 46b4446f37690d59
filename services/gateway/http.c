/* http.c - the libmicrohttpd daemon, the request state machine (headers,
 * checks, body, handler, parked service call, response), the response
 * helpers and the orderly stop. Requests never hold an HTTP thread while a
 * service answers: the connection is suspended and resumed by the call's
 * completion. */
#include "gw_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gw_auth.h"
#include "gw_json.h"
#include "gw_metrics.h"
#include "gw_router.h"
#include "shared/keys.h"
#include "shared/log.h"
#include "shared/util.h"

enum { REQ_BODY, REQ_WAITING, REQ_DONE };

#define HTTP_BODY_PREALLOC (64 * 1024)

/* Stopping (gw_http_drain): how long handshakes under way get to land in
 * the accept queue once new ones are dropped; how long every open connection
 * must have been idle before the rest are closed; how long requests and
 * streams get to finish before new service calls are refused. */
#define HTTP_STOP_SETTLE_MS 200
#define HTTP_STOP_QUIET_MS  200
#define HTTP_STOP_FINISH_MS 3000
#define HTTP_STOP_POLL_MS   5

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
};

static const char http_json[] = "application/json";

/* ---- replies ----------------------------------------------------------- */

static void http_reply_clear(gw_req *r)
{
    free(r->resp);
    r->resp = NULL;
    r->resp_len = 0;
    r->xhdr_name = NULL;
    r->xhdr_value = NULL;
}

void gw_req_reply_raw(gw_req *r, int status, const char *content_type, sh_buf *body)
{
    http_reply_clear(r);
    r->resp = sh_buf_steal(body, &r->resp_len);
    if (!r->resp) {
        status = 500;
        r->resp_len = 0;
    }
    r->status = status;
    r->ctype = content_type;
    r->replied = true;
}

void gw_req_reply_json(gw_req *r, int status, const sh_val *v)
{
    sh_buf b;
    sh_buf_init(&b);
    if (gw_json_write(v, &b) != SH_OK) {
        sh_buf_fini(&b);
        gw_req_reply_error(r, 500, "out of memory writing the reply");
        return;
    }
    gw_req_reply_raw(r, status, http_json, &b);
}

/* Routes of seed 003 answer errors as {"success": false, "error": ...}. */
static void http_reply_verror(gw_req *r, int status, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    sh_buf b;
    sh_buf_init(&b);
    bool seed = r->m.route && (r->m.route->flags & GW_ROUTE_SEED);
    sh_buf_puts(&b, seed ? "{\"success\":false,\"error\":" : "{\"error\":");
    gw_json_write_str(&b, msg, strlen(msg));
    sh_buf_puts(&b, "}");
    gw_req_reply_raw(r, status, http_json, &b);
}

void gw_req_reply_error(gw_req *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    http_reply_verror(r, status, fmt, ap);
    va_end(ap);
}

void gw_req_reply_stream(gw_req *r, struct MHD_Response *resp)
{
    http_reply_clear(r);
    r->stream = resp;
    r->status = MHD_HTTP_OK;
    r->replied = true;
}

void gw_req_reply_rpc_error(gw_req *r, int rc, const sh_error *err, const char *not_found)
{
    const char *msg = err && err->msg[0] ? err->msg : sh_strerror(rc);
    switch (rc) {
    case SH_EINVAL:
    case SH_EPROTO:
    case SH_ELIMIT:
        gw_req_reply_error(r, 400, "%s", msg);
        break;
    case SH_ENOTFOUND:
        gw_req_reply_error(r, 404, "%s", not_found ? not_found : msg);
        break;
    case SH_ECONFLICT:
    case SH_ELEASE:
        gw_req_reply_error(r, 409, "%s", msg);
        break;
    case SH_ETOOBIG:
        gw_req_reply_error(r, 413, "%s", msg);
        break;
    case SH_EUNAVAIL:
        /* The service's own words, e.g. that Redis is down. */
        gw_req_reply_error(r, 503, "%s", msg);
        break;
    case SH_ETIMEDOUT:
    case SH_ECLOSED:
        gw_req_reply_error(r, 503, "%s service unavailable: %s", gw_service_name(r->svc), msg);
        break;
    default:
        gw_req_reply_error(r, 500, "internal error: %s", msg);
    }
}

/* http_touch notes activity on some connection: the stop closes idle
 * connections only once there has been none for a while. */
static void http_touch(gw_http *h)
{
    atomic_store(&h->last_activity_ns, gw_metrics_now_ns());
}

/* ---- accessors ----------------------------------------------------------- */

gw_app *gw_req_app(gw_req *r)
{
    return r->h->app;
}

struct MHD_Connection *gw_req_connection(gw_req *r)
{
    return r->conn;
}

const char *gw_req_param(gw_req *r)
{
    return r->param;
}

const char *gw_req_param2(gw_req *r)
{
    return r->param2;
}

sh_val *gw_req_take_body(gw_req *r)
{
    sh_val *v = r->json;
    r->json = NULL;
    return v;
}

const char *gw_req_header(gw_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *gw_req_query(gw_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *gw_req_request_id(gw_req *r)
{
    return r->rid;
}

bool gw_req_stopping(gw_req *r)
{
    return atomic_load(&r->h->stopping);
}

bool gw_req_peer_loopback(gw_req *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return ci && ci->client_addr && gw_config_addr_is_loopback(ci->client_addr);
}

/* ---- service calls --------------------------------------------------------- */

static void http_call_done(void *arg, int rc, sh_val *result, const sh_error *err)
{
    gw_req *r = arg;
    gw_http *h = r->h;
    struct MHD_Connection *conn = r->conn;
    if (r->call_fn)
        r->call_fn(r, rc, result, err);
    else if (rc == SH_OK)
        gw_req_reply_json(r, r->ok_status, result);
    else
        gw_req_reply_rpc_error(r, rc, err, r->not_found);
    sh_val_free(result);
    /* r may be freed by an HTTP thread as soon as the connection resumes. */
    MHD_resume_connection(conn);
    atomic_fetch_sub(&h->inflight, 1);
}

const char *gw_service_name(int svc)
{
    return svc == GW_SVC_COORDINATOR ? "coordinator"
           : svc == GW_SVC_SYNC      ? "sync-worker"
                                     : "progress";
}

/* http_client picks the calling HTTP thread's RPC client of service svc. */
static sh_rpc_client *http_client(gw_http *h, int svc)
{
    static _Thread_local int slot = -1;
    static atomic_int next_slot;
    if (slot < 0)
        slot = atomic_fetch_add(&next_slot, 1);
    return h->app->rpc[svc][slot % h->app->nrpc];
}

void gw_req_call(gw_req *r, const char *op, sh_val *args, int timeout_ms, int ok_status,
                 const char *not_found, gw_call_fn fn)
{
    gw_req_call_svc(r, GW_SVC_PROGRESS, op, args, timeout_ms, ok_status, not_found, fn);
}

void gw_req_call_svc(gw_req *r, int svc, const char *op, sh_val *args, int timeout_ms,
                     int ok_status, const char *not_found, gw_call_fn fn)
{
    gw_http *h = r->h;
    atomic_fetch_add(&h->inflight, 1);
    if (atomic_load(&h->draining)) {
        atomic_fetch_sub(&h->inflight, 1);
        sh_val_free(args);
        gw_req_reply_error(r, 503, "the gateway is shutting down");
        return;
    }
    r->svc = svc;
    r->ok_status = ok_status;
    r->not_found = not_found;
    r->call_fn = fn;
    r->state = REQ_WAITING;
    MHD_suspend_connection(r->conn);
    int rc = sh_rpc_call_async(http_client(h, svc), op, args,
                               timeout_ms > 0 ? timeout_ms : (int)h->cfg->rpc_timeout_ms,
                               http_call_done, r);
    sh_val_free(args);
    if (rc != SH_OK) {
        sh_error e;
        sh_error_set(&e, rc, "cannot call %s: %s", op, sh_strerror(rc));
        http_call_done(r, rc, NULL, &e);
    }
}

/* A fan-out of calls for one request: each call's outcome lands in its slot;
 * the last to land runs the handler's function and resumes the connection. */
typedef struct http_fanout http_fanout;

typedef struct http_fanout_slot {
    http_fanout *f;
    size_t i;
} http_fanout_slot;

struct http_fanout {
    gw_req *r;
    gw_all_fn fn;
    size_t n;
    atomic_size_t pending;
    int rc[GW_CALLS_MAX];
    sh_val *results[GW_CALLS_MAX];
    sh_error errs[GW_CALLS_MAX];
    http_fanout_slot slots[GW_CALLS_MAX];
};

static void http_fanout_done(void *arg, int rc, sh_val *result, const sh_error *err)
{
    http_fanout_slot *slot = arg;
    http_fanout *f = slot->f;
    f->rc[slot->i] = rc;
    f->results[slot->i] = result;
    if (err)
        f->errs[slot->i] = *err;
    if (atomic_fetch_sub(&f->pending, 1) != 1)
        return;
    gw_req *r = f->r;
    gw_http *h = r->h;
    struct MHD_Connection *conn = r->conn;
    f->fn(r, f->n, f->rc, f->results, f->errs);
    for (size_t i = 0; i < f->n; i++)
        sh_val_free(f->results[i]);
    free(f);
    MHD_resume_connection(conn);
    atomic_fetch_sub(&h->inflight, 1);
}

void gw_req_call_all(gw_req *r, size_t n, gw_call_spec *calls, int timeout_ms, gw_all_fn fn)
{
    gw_http *h = r->h;
    http_fanout *f = n && n <= GW_CALLS_MAX ? calloc(1, sizeof *f) : NULL;
    if (!f || atomic_load(&h->draining)) {
        for (size_t i = 0; i < n; i++)
            sh_val_free(calls[i].args);
        free(f);
        gw_req_reply_error(r, 503, f ? "the gateway is shutting down" : "out of memory");
        return;
    }
    atomic_fetch_add(&h->inflight, 1);
    f->r = r;
    f->fn = fn;
    f->n = n;
    atomic_init(&f->pending, n);
    r->state = REQ_WAITING;
    MHD_suspend_connection(r->conn);
    int timeout = timeout_ms > 0 ? timeout_ms : (int)h->cfg->rpc_timeout_ms;
    for (size_t i = 0; i < n; i++) {
        f->slots[i] = (http_fanout_slot){f, i};
        int rc = sh_rpc_call_async(http_client(h, calls[i].svc), calls[i].op, calls[i].args,
                                   timeout, http_fanout_done, &f->slots[i]);
        sh_val_free(calls[i].args);
        if (rc != SH_OK) {
            sh_error e;
            sh_error_set(&e, rc, "cannot call %s: %s", calls[i].op, sh_strerror(rc));
            http_fanout_done(&f->slots[i], rc, NULL, &e);
        }
    }
}

/* ---- the request state machine ------------------------------------------ */

static enum MHD_Result http_send(gw_req *r)
{
    uint64_t ns = gw_metrics_now_ns() - r->t0;
    gw_metrics_request(r->m.pattern, r->method, r->status, ns);
    if (r->status >= 500)
        sh_log_warn("http_error", "rid=%s method=%s path=%s status=%d us=%llu reply=%.300s", r->rid,
                    gw_method_name(r->method), r->url, r->status, (unsigned long long)(ns / 1000),
                    r->resp ? r->resp : "");
    else
        sh_log_debug("http_request", "rid=%s method=%s path=%s status=%d us=%llu", r->rid,
                     gw_method_name(r->method), r->url, r->status, (unsigned long long)(ns / 1000));

    struct MHD_Response *resp = r->stream;
    r->stream = NULL;
    if (!resp) {
        resp = MHD_create_response_from_buffer(r->resp_len, r->resp, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            return MHD_NO;
        r->resp = NULL; /* MHD frees it with the response */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
    }
    MHD_add_response_header(resp, "X-Request-Id", r->rid);
    /* A stopping gateway serves every request on an open connection, but one
     * at most: the client then opens a new connection, to another replica. */
    if (atomic_load(&r->h->stopping))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (r->xhdr_name)
        MHD_add_response_header(resp, r->xhdr_name, r->xhdr_value);
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    r->state = REQ_DONE;
    return ok;
}

static bool http_content_type_ok(const char *ct)
{
    if (!ct)
        return true;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, "application/json", 16) != 0)
        return false;
    ct += 16;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* http_printable copies up to 64 bytes of s, replacing what would not read
 * well in a message. */
static void http_printable(char *out, size_t outlen, const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 4 < outlen; i++) {
        if (n >= 64) {
            memcpy(out + n, "...", 3);
            n += 3;
            break;
        }
        unsigned char c = (unsigned char)s[i];
        out[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    out[n] = '\0';
}

static void http_request_id(gw_req *r)
{
    const char *given = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Request-Id");
    if (given && sh_id_valid(given, strlen(given))) {
        memcpy(r->rid, given, strlen(given) + 1);
        return;
    }
    unsigned long long n = (unsigned long long)atomic_fetch_add(&r->h->next_rid, 1);
    snprintf(r->rid, sizeof r->rid, "%s-%llx", r->h->rid_prefix, n);
}

/* http_cron_allowed checks a cron route's caller before anything else is
 * read: its address (CRON_LOOPBACK_ONLY), then CRON_SECRET; false when it
 * has replied. */
static bool http_cron_allowed(gw_req *r)
{
    const gw_config *cfg = r->h->cfg;
    if (cfg->cron_loopback_only && !gw_req_peer_loopback(r)) {
        gw_req_reply_error(r, 403,
                           "cron routes answer loopback callers only "
                           "(CRON_LOOPBACK_ONLY is set)");
        return false;
    }
    const char *authz = gw_req_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    switch (gw_auth_cron(cfg, authz)) {
    case GW_AUTH_OK:
        return true;
    case GW_AUTH_DISABLED:
        gw_req_reply_error(r, 503, "CRON_SECRET is not set: cron routes are disabled");
        return false;
    case GW_AUTH_MISSING:
        gw_req_reply_error(r, 401, "missing bearer token (Authorization: Bearer <CRON_SECRET>)");
        r->xhdr_name = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
        r->xhdr_value = "Bearer";
        return false;
    default:
        gw_req_reply_error(r, 401, "invalid cron secret");
        r->xhdr_name = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
        r->xhdr_value = "Bearer error=\"invalid_token\"";
        return false;
    }
}

/* http_begin runs once the headers are read: route, token, id, body limits. */
static void http_begin(gw_req *r)
{
    gw_http *h = r->h;
    int found = gw_router_match(r->method, r->url, &r->m);
    if (found == GW_MATCH_NOT_FOUND) {
        gw_req_reply_error(r, 404, "not found");
        return;
    }
    if (found == GW_MATCH_BAD_METHOD) {
        char shown[80];
        http_printable(shown, sizeof shown, r->method_name, strlen(r->method_name));
        gw_req_reply_error(r, 405, "method %s is not allowed on %s (allowed: %s)", shown,
                           gw_router_pattern((size_t)r->m.pattern), r->m.allow);
        r->xhdr_name = MHD_HTTP_HEADER_ALLOW;
        r->xhdr_value = r->m.allow;
        return;
    }
    const gw_route *rt = r->m.route;
    if ((rt->flags & GW_ROUTE_CRON) && !http_cron_allowed(r))
        return;
    if (rt->flags & GW_ROUTE_AUTH) {
        const char *authz = gw_req_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
        switch (gw_auth_check(h->cfg, r->method, authz)) {
        case GW_AUTH_MISSING:
            gw_req_reply_error(r, 401, "missing bearer token (Authorization: Bearer <token>)");
            r->xhdr_name = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
            r->xhdr_value = "Bearer";
            return;
        case GW_AUTH_BAD:
            gw_req_reply_error(r, 401, "invalid token");
            r->xhdr_name = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
            r->xhdr_value = "Bearer error=\"invalid_token\"";
            return;
        case GW_AUTH_READ_ONLY:
            gw_req_reply_error(r, 403, "the read-only token allows only GET and HEAD requests");
            return;
        default:
            break;
        }
    }
    if (r->m.param) {
        if (!sh_id_valid(r->m.param, r->m.param_len)) {
            char shown[80];
            http_printable(shown, sizeof shown, r->m.param, r->m.param_len);
            gw_req_reply_error(r, 400,
                               "invalid id \"%s\": an id is 1 to %d characters of A-Z a-z 0-9 "
                               ". _ : -",
                               shown, SH_ID_MAX);
            return;
        }
        memcpy(r->param, r->m.param, r->m.param_len);
        r->param[r->m.param_len] = '\0';
    }
    if (r->m.param2) {
        if (!sh_id_valid(r->m.param2, r->m.param2_len)) {
            char shown[80];
            http_printable(shown, sizeof shown, r->m.param2, r->m.param2_len);
            gw_req_reply_error(r, 400, "invalid path segment \"%s\"", shown);
            return;
        }
        memcpy(r->param2, r->m.param2, r->m.param2_len);
        r->param2[r->m.param2_len] = '\0';
    }
    if (rt->flags & GW_ROUTE_BODY) {
        const char *ct = gw_req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (!http_content_type_ok(ct)) {
            char shown[80];
            http_printable(shown, sizeof shown, ct, strlen(ct));
            gw_req_reply_error(r, 415, "unsupported Content-Type \"%s\": send application/json",
                               shown);
            return;
        }
    }
    const char *cl = gw_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        unsigned long long n = strtoull(cl, NULL, 10);
        if (n > (unsigned long long)h->cfg->max_body) {
            gw_req_reply_error(r, 413,
                               "request body of %llu bytes is too large: the limit is %lld bytes",
                               n, h->cfg->max_body);
            return;
        }
        /* Room for small bodies at once; a large one grows as it comes, so a
         * slow client cannot hold the limit without sending it. */
        size_t first = n < HTTP_BODY_PREALLOC ? (size_t)n : HTTP_BODY_PREALLOC;
        if ((rt->flags & GW_ROUTE_BODY) && first && sh_buf_reserve(&r->body, first) != SH_OK) {
            gw_req_reply_error(r, 503, "out of memory");
            return;
        }
    }
    r->state = REQ_BODY;
}

/* http_body_chunk keeps the body of routes that take one and counts (then
 * drops) any other; past the limit nothing more is kept. */
static void http_body_chunk(gw_req *r, const char *data, size_t n)
{
    r->body_seen += n;
    if (r->too_large)
        return;
    if (r->body_seen > (uint64_t)r->h->cfg->max_body) {
        r->too_large = true;
        sh_buf_fini(&r->body);
        return;
    }
    if ((r->m.route->flags & GW_ROUTE_BODY) && sh_buf_append(&r->body, data, n) != SH_OK) {
        r->too_large = true;
        sh_buf_fini(&r->body);
    }
}

static const char *http_json_kind(const sh_val *v)
{
    switch (sh_val_type_of(v)) {
    case SH_VAL_NIL:
        return "null";
    case SH_VAL_BOOL:
        return "a boolean";
    case SH_VAL_INT:
    case SH_VAL_FLOAT:
        return "a number";
    case SH_VAL_STR:
    case SH_VAL_BIN:
        return "a string";
    case SH_VAL_ARRAY:
        return "an array";
    default:
        return "an object";
    }
}

/* http_dispatch runs once the whole request is read. */
static void http_dispatch(gw_req *r)
{
    if (r->too_large) {
        gw_req_reply_error(r, 413, "request body is too large: the limit is %lld bytes",
                           r->h->cfg->max_body);
        return;
    }
    if (r->m.route->flags & GW_ROUTE_BODY) {
        if (r->body.len == 0) {
            gw_req_reply_error(r, 400, "request body is empty: send a JSON object");
            return;
        }
        char msg[256];
        if (gw_json_parse(r->body.data, r->body.len, &r->json, msg, sizeof msg) != 0) {
            gw_req_reply_error(r, 400, "%s", msg);
            return;
        }
        sh_buf_fini(&r->body);
        if (sh_val_type_of(r->json) != SH_VAL_MAP) {
            gw_req_reply_error(r, 400, "request body must be a JSON object, not %s",
                               http_json_kind(r->json));
            return;
        }
    }
    r->m.route->fn(r);
}

static enum MHD_Result http_access(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **req_cls)
{
    gw_http *h = cls;
    gw_req *r = *req_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *req_cls = r;
        r->h = h;
        r->conn = conn;
        r->url = url;
        r->t0 = gw_metrics_now_ns();
        r->method_name = method;
        r->method = gw_method_parse(method);
        r->ctype = http_json;
        sh_buf_init(&r->body);
        atomic_fetch_add(&h->busy, 1);
        http_touch(h);
        http_request_id(r);
        http_begin(r);
        return r->replied ? http_send(r) : MHD_YES;
    }
    switch (r->state) {
    case REQ_BODY:
        if (*upload_data_size) {
            http_body_chunk(r, upload_data, *upload_data_size);
            *upload_data_size = 0;
            return MHD_YES;
        }
        http_dispatch(r);
        if (r->state == REQ_WAITING)
            return MHD_YES; /* suspended until the service answers */
        if (!r->replied)
            gw_req_reply_error(r, 500, "internal error: the route gave no reply");
        return http_send(r);
    case REQ_WAITING:
        return http_send(r); /* resumed: the reply is in */
    default:
        *upload_data_size = 0;
        return MHD_YES;
    }
}

static void http_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                           enum MHD_RequestTerminationCode toe)
{
    gw_req *r = *req_cls;
    if (!r)
        return;
    *req_cls = NULL;
    atomic_fetch_sub(&r->h->busy, 1);
    http_touch(r->h);
    if (r->stream)
        MHD_destroy_response(r->stream);
    free(r->resp);
    sh_buf_fini(&r->body);
    sh_val_free(r->json);
    free(r);
}

static void http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    /* Clients that leave mid-response are routine, not a problem of ours. */
    bool routine = strstr(msg, "no longer available") || strstr(msg, "reset by remote") ||
                   strstr(msg, "Connection reset") ||
                   strstr(msg, "application error generating response");
    sh_log(routine ? SH_LOG_DEBUG : SH_LOG_WARN, "mhd", "%s", msg);
}

/* http_conn_notify counts open connections. */
static void http_conn_notify(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                             enum MHD_ConnectionNotificationCode toe)
{
    gw_http *h = cls;
    atomic_fetch_add(&h->conns, toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
    http_touch(h);
}

int gw_http_start(const gw_config *cfg, gw_app *app, gw_http **out, sh_error *err)
{
    *out = NULL;
    gw_http *h = calloc(1, sizeof *h);
    if (!h)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    h->app = app;
    h->cfg = cfg;
    if (sh_random_hex(h->rid_prefix, 4) != SH_OK)
        snprintf(h->rid_prefix, sizeof h->rid_prefix, "%08x", (unsigned)getpid());
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | MHD_USE_TURBO;
    if (cfg->ipv6)
        flags |= MHD_USE_IPv6;
    uint16_t port = ntohs(cfg->ipv6 ? ((const struct sockaddr_in6 *)&cfg->addr)->sin6_port
                                    : ((const struct sockaddr_in *)&cfg->addr)->sin_port);
    h->daemon = MHD_start_daemon(
        flags, port, NULL, NULL, http_access, h, MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, h,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&cfg->addr, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)cfg->threads, MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->conn_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->conn_memory,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_NOTIFY_COMPLETED, http_completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, http_conn_notify, h, MHD_OPTION_END);
    if (!h->daemon) {
        free(h);
        return sh_error_set(err, SH_EUNAVAIL,
                            "cannot listen on GATEWAY_LISTEN=%s (address in use or not "
                            "available here)",
                            cfg->listen);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_LISTEN_FD);
    h->listen_fd = di ? di->listen_fd : MHD_INVALID_SOCKET;
    *out = h;
    return SH_OK;
}

void gw_http_stop_begin(gw_http *h)
{
    if (!h || atomic_load(&h->stopping))
        return;
    h->stop_ns = gw_metrics_now_ns();
    atomic_store(&h->stopping, true);
}

static void http_sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    nanosleep(&ts, NULL);
}

/* http_refuse_handshakes makes the listening socket drop new connection
 * requests (a SYN without ACK) while handshakes under way still complete and
 * what is queued stays there for the workers to accept. Closing a listening
 * socket resets every connection in its queue, whose clients may have sent
 * a request already; this empties the queue first. A dropped SYN is sent
 * again a second later, when nothing listens any more: that client's
 * connect() is refused. Linux passes a TCP socket's filter the segment from
 * its TCP header on, so the flags are the byte at offset 13; connections
 * accepted later inherit the filter, which lets all their segments by. */
static bool http_refuse_handshakes(gw_http *h)
{
    static struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12), /* SYN | ACK */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, 0),           /* SYN alone: drop */
        BPF_STMT(BPF_RET | BPF_K, 0xffffffffu), /* anything else: keep all of it */
    };
    struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
    return h->listen_fd != MHD_INVALID_SOCKET &&
           setsockopt(h->listen_fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) == 0;
}

/* http_accept_queue returns how many connections wait to be accepted (Linux
 * reports it as the tcpi_unacked of a listening socket), or -1. */
static int http_accept_queue(gw_http *h)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (h->listen_fd == MHD_INVALID_SOCKET ||
        getsockopt(h->listen_fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return -1;
    return (int)ti.tcpi_unacked;
}

/* http_settled: nothing waits to be accepted, no request is under way and
 * every open connection has been idle for HTTP_STOP_QUIET_MS. */
static bool http_settled(gw_http *h, uint64_t now)
{
    if (http_accept_queue(h) > 0 || atomic_load(&h->busy) > 0 || atomic_load(&h->inflight) > 0)
        return false;
    return atomic_load(&h->conns) == 0 ||
           now - atomic_load(&h->last_activity_ns) >= (uint64_t)HTTP_STOP_QUIET_MS * 1000000u;
}

void gw_http_drain(gw_http *h)
{
    if (!h)
        return;
    const uint64_t ms = 1000000u;
    gw_http_stop_begin(h);
    uint64_t now = gw_metrics_now_ns();
    uint64_t grace_end = h->stop_ns + (uint64_t)h->cfg->drain_ms * ms;
    if (now < grace_end)
        http_sleep_ns(grace_end - now);

    if (!http_refuse_handshakes(h))
        sh_log_warn("stopping",
                    "cannot make the listening socket drop new connections (%s): connections "
                    "that arrive from now on may be reset",
                    strerror(errno));
    now = gw_metrics_now_ns();
    uint64_t settle_end = now + HTTP_STOP_SETTLE_MS * ms;
    uint64_t finish_end = now + HTTP_STOP_FINISH_MS * ms;
    while (now < finish_end && (now < settle_end || !http_settled(h, now))) {
        http_sleep_ns(HTTP_STOP_POLL_MS * ms);
        now = gw_metrics_now_ns();
    }
    int queued = http_accept_queue(h), busy = atomic_load(&h->busy);
    if (queued > 0 || busy > 0)
        sh_log_warn("stopping",
                    "closing with %d connection(s) not yet accepted and %d request(s) or "
                    "stream(s) unfinished after %d ms",
                    queued, busy, HTTP_STOP_FINISH_MS);
    int idle = atomic_load(&h->conns) - busy;
    sh_log_info("stopping", "closing the listener and %d idle connection(s)", idle > 0 ? idle : 0);

    /* A call's completion resumes its connection, which must not outlive
     * the daemon: refuse new calls and let those in flight end (each has a
     * timeout). */
    atomic_store(&h->draining, true);
    uint64_t calls_end = now + ((uint64_t)h->cfg->rpc_timeout_ms + 1000) * ms;
    while (atomic_load(&h->inflight) > 0 && now < calls_end) {
        http_sleep_ns(HTTP_STOP_POLL_MS * ms);
        now = gw_metrics_now_ns();
    }
}

void gw_http_free(gw_http *h)
{
    if (!h)
        return;
    if (h->daemon)
        MHD_stop_daemon(h->daemon);
    free(h);
}
