/* http.c - the libmicrohttpd daemon and the request state machine: headers,
 * checks (route, token, id, body size and type), body, handler, response.
 * Requests never hold an HTTP thread while a service answers: the handler's
 * call (http_call.c) suspends the connection and its completion resumes
 * it. Replies are recorded by http_reply.c; the stop is http_stop.c. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "gw_auth.h"
#include "gw_cors.h"
#include "gw_http_int.h"
#include "gw_json.h"
#include "gw_metrics.h"
#include "shared/log.h"
#include "shared/util.h"

#define HTTP_BODY_PREALLOC (64 * 1024)

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

const struct gw_token *gw_req_token(gw_req *r)
{
    return r->token;
}

void gw_req_on_done(gw_req *r, void (*fn)(void *arg), void *arg)
{
    r->done_fn = fn;
    r->done_arg = arg;
}

bool gw_req_stopping(gw_req *r)
{
    return atomic_load(&r->h->stopping);
}

const struct sockaddr *gw_req_peer(gw_req *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return ci ? ci->client_addr : NULL;
}

bool gw_req_peer_loopback(gw_req *r)
{
    const struct sockaddr *sa = gw_req_peer(r);
    return sa && gw_config_addr_is_loopback(sa);
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
        if (r->status != MHD_HTTP_NO_CONTENT)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
    }
    MHD_add_response_header(resp, "X-Request-Id", r->rid);
    /* A stopping gateway serves every request on an open connection, but one
     * at most: the client then opens a new connection, to another replica. */
    if (atomic_load(&r->h->stopping))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (r->xhdr_name)
        MHD_add_response_header(resp, r->xhdr_name, r->xhdr_value);
    if (r->origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->origin);
        MHD_add_response_header(resp, "Vary", "Origin");
        MHD_add_response_header(resp, "Access-Control-Expose-Headers", "X-Request-Id");
    }
    if (r->preflight) {
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", r->m.allow);
        MHD_add_response_header(resp, "Access-Control-Allow-Headers", GW_CORS_ALLOW_HEADERS);
        MHD_add_response_header(resp, "Access-Control-Max-Age", GW_CORS_MAX_AGE);
    }
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    r->state = GW__HTTP_REQ_DONE;
    return ok;
}

bool gw__http_content_type_ok(const char *ct)
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

/* http_unauthorized replies 401 with message and a WWW-Authenticate
 * challenge. */
static void http_unauthorized(gw_req *r, const char *message, const char *challenge)
{
    gw_req_reply_error(r, 401, "%s", message);
    r->xhdr_name = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
    r->xhdr_value = challenge;
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
        http_unauthorized(r, "missing bearer token (Authorization: Bearer <CRON_SECRET>)",
                          "Bearer");
        return false;
    default:
        http_unauthorized(r, "invalid cron secret", "Bearer error=\"invalid_token\"");
        return false;
    }
}

/* http_auth_allowed checks the token of an API route; false when it has
 * replied. A scoped token it lets in is kept for the handler. */
static bool http_auth_allowed(gw_req *r)
{
    const gw_config *cfg = r->h->cfg;
    char id[SH_ID_MAX + 1] = "";
    if (r->m.param && r->m.param_len <= SH_ID_MAX) {
        memcpy(id, r->m.param, r->m.param_len);
        id[r->m.param_len] = '\0';
    }
    int scope = GW_ROUTE_SCOPE_OF(r->m.route->flags);
    gw_auth_ask ask = {r->method, gw_req_header(r, MHD_HTTP_HEADER_AUTHORIZATION),
                       gw_req_query(r, "access_token"), scope, id};
    gw_token t;
    int rc = gw_auth_request(cfg, &ask, sh_now_ms(), &t);
    if (rc == GW_AUTH_OK && t.n) {
        if (!(r->token = malloc(sizeof *r->token))) {
            gw_req_reply_error(r, 503, "out of memory");
            return false;
        }
        memcpy(r->token, &t, sizeof t);
        return true;
    }
    char what[160];
    switch (rc) {
    case GW_AUTH_OK:
        return true;
    case GW_AUTH_MISSING:
        http_unauthorized(r, "missing bearer token (Authorization: Bearer <token>)", "Bearer");
        return false;
    case GW_AUTH_EXPIRED:
        http_unauthorized(r, "token expired", "Bearer error=\"invalid_token\"");
        return false;
    case GW_AUTH_READ_ONLY:
        gw_req_reply_error(r, 403, "the read-only token allows only GET and HEAD requests");
        return false;
    case GW_AUTH_WRITE:
        gw_req_reply_error(r, 403,
                           "a scoped token (or access_token) allows only GET and HEAD requests");
        return false;
    case GW_AUTH_UNCOVERED:
        if (scope == GW_SCOPE_NONE)
            snprintf(what, sizeof what, "%s %s", gw_method_name(r->method), r->m.route->pattern);
        else
            gw_scope_format(scope, id, what, sizeof what);
        gw_req_reply_error(r, 403, "token does not cover %s", what);
        return false;
    default:
        http_unauthorized(r, "invalid token", "Bearer error=\"invalid_token\"");
        return false;
    }
}

/* http_preflight answers a browser's OPTIONS before a cross-origin request:
 * 204 with what the route allows to an origin of CORS_ORIGINS, else 403. No
 * token is asked for: a browser sends none with a preflight. */
static void http_preflight(gw_req *r)
{
    if (!r->origin) {
        gw_req_reply_error(r, 403, "origin not allowed (CORS_ORIGINS)");
        return;
    }
    free(r->resp);
    r->resp = NULL;
    r->resp_len = 0;
    r->status = MHD_HTTP_NO_CONTENT;
    r->preflight = true;
    r->replied = true;
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
    if (found == GW_MATCH_BAD_METHOD && r->method == GW_OPTIONS && h->cfg->cors.n) {
        http_preflight(r);
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
    if ((rt->flags & GW_ROUTE_AUTH) && !http_auth_allowed(r))
        return;
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
        if (!gw__http_content_type_ok(ct)) {
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
    r->state = GW__HTTP_REQ_BODY;
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
        r->ctype = gw__http_json;
        sh_buf_init_secret(&r->body); /* may hold a password */
        gw__http_head_received(&h->heads, conn);
        atomic_fetch_add(&h->busy, 1);
        gw__http_touch(h);
        http_request_id(r);
        const char *origin = gw_req_header(r, "Origin");
        if (gw_cors_allowed(&h->cfg->cors, origin))
            r->origin = origin;
        http_begin(r);
        return r->replied ? http_send(r) : MHD_YES;
    }
    switch (r->state) {
    case GW__HTTP_REQ_BODY:
        if (*upload_data_size) {
            http_body_chunk(r, upload_data, *upload_data_size);
            *upload_data_size = 0;
            return MHD_YES;
        }
        http_dispatch(r);
        if (r->state == GW__HTTP_REQ_WAITING)
            return MHD_YES; /* suspended until the service answers */
        if (!r->replied)
            gw_req_reply_error(r, 500, "internal error: the route gave no reply");
        return http_send(r);
    case GW__HTTP_REQ_WAITING:
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
    if (!r->upgraded)
        gw__http_head_rearm(&r->h->heads, conn);
    atomic_fetch_sub(&r->h->busy, 1);
    gw__http_touch(r->h);
    if (r->stream)
        MHD_destroy_response(r->stream);
    if (r->done_fn)
        r->done_fn(r->done_arg);
    free(r->resp);
    sh_buf_fini(&r->body);
    sh_val_free(r->json);
    free(r->token);
    free(r);
}

static void http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char raw[512], msg[512];
    vsnprintf(raw, sizeof raw, fmt, ap);
    /* A request line MHD quotes may hold a token in its query. */
    gw_token_scrub(raw, msg, sizeof msg);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    /* Clients that leave mid-response are routine, not a problem of ours. */
    bool routine = strstr(msg, "no longer available") || strstr(msg, "reset by remote") ||
                   strstr(msg, "Connection reset") ||
                   strstr(msg, "application error generating response");
    sh_log(routine ? SH_LOG_DEBUG : SH_LOG_WARN, "mhd", "%s", msg);
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
                     MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG | MHD_USE_TURBO;
    if (cfg->ipv6)
        flags |= MHD_USE_IPv6;
    int rc = gw__http_head_start(&h->heads, cfg->head_timeout_s, err);
    if (rc != SH_OK) {
        gw__http_head_fini(&h->heads);
        free(h);
        return rc;
    }
    uint16_t port = ntohs(cfg->ipv6 ? ((const struct sockaddr_in6 *)&cfg->addr)->sin6_port
                                    : ((const struct sockaddr_in *)&cfg->addr)->sin_port);
    h->daemon = MHD_start_daemon(
        flags, port, NULL, NULL, http_access, h, MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, h,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&cfg->addr, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)cfg->threads, MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->conn_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->conn_memory,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_conns_per_addr,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_NOTIFY_COMPLETED, http_completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, gw__http_conn_notify, h, MHD_OPTION_END);
    if (!h->daemon) {
        gw__http_head_fini(&h->heads);
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

void gw_http_free(gw_http *h)
{
    if (!h)
        return;
    if (h->daemon)
        MHD_stop_daemon(h->daemon);
    gw__http_head_fini(&h->heads);
    free(h);
}
