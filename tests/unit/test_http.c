/* test_http.c - the HTTP server: the replies and the mapping of service
 * errors to statuses and JSON bodies, in process through the internal
 * header; then a real daemon (gw_http_start on a free loopback port) and a
 * socket client, for what the server answers before any handler runs
 * (unknown routes, tokens, ids, content types, malformed and oversized
 * bodies), request ids, CORS headers and preflights, scoped tokens minted
 * and refused, and the stop. No service is running: no request here
 * reaches a handler that calls one. Over 600 lines: every server test here
 * shares the one daemon fixture and socket client below, which splitting
 * the file would copy. */
#define _GNU_SOURCE /* strcasestr */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "fixture.h"
#include "gw_http_int.h"
#include "gw_metrics.h"
#include "gw_router.h"
#include "gw_routes.h"
#include "gw_token.h"

/* ---- replies, in process ------------------------------------------------- */

static gw_req *req_new(unsigned route_flags)
{
    static gw_route route;
    gw_req *r = calloc(1, sizeof *r);
    assert_non_null(r);
    route.flags = route_flags;
    r->m.route = route_flags ? &route : NULL;
    return r;
}

static void req_free(gw_req *r)
{
    free(r->resp);
    free(r);
}

static void expect_reply(gw_req *r, int status, const char *body)
{
    assert_true(r->replied);
    assert_int_equal(r->status, status);
    assert_string_equal(r->ctype, "application/json");
    assert_int_equal(r->resp_len, strlen(body));
    assert_memory_equal(r->resp, body, r->resp_len);
}

static void expect_rpc_error(int svc, int rc, const char *msg, const char *not_found, int status,
                             const char *body)
{
    gw_req *r = req_new(0);
    r->svc = svc;
    sh_error err;
    sh_error_clear(&err);
    if (msg)
        sh_error_set(&err, rc, "%s", msg);
    gw_req_reply_rpc_error(r, rc, msg ? &err : NULL, not_found);
    expect_reply(r, status, body);
    req_free(r);
}

/* Each service error code: its status, and the body of the error. */
static const struct {
    int svc, rc;
    const char *msg, *not_found;
    int status;
    const char *body;
} rpc_cases[] = {
    {GW_SVC_PROGRESS, SH_EINVAL, "bad field x", NULL, 400, "{\"error\":\"bad field x\"}"},
    {GW_SVC_PROGRESS, SH_EPROTO, "malformed", NULL, 400, "{\"error\":\"malformed\"}"},
    {GW_SVC_PROGRESS, SH_ELIMIT, "too many", NULL, 400, "{\"error\":\"too many\"}"},
    {GW_SVC_PROGRESS, SH_ENOTFOUND, "no such key", "Session not found", 404,
     "{\"error\":\"Session not found\"}"},
    {GW_SVC_PROGRESS, SH_ENOTFOUND, "no such key", NULL, 404, "{\"error\":\"no such key\"}"},
    {GW_SVC_COORDINATOR, SH_ECONFLICT, "held", NULL, 409, "{\"error\":\"held\"}"},
    {GW_SVC_COORDINATOR, SH_ELEASE, "lease_lost", NULL, 409, "{\"error\":\"lease_lost\"}"},
    {GW_SVC_PROGRESS, SH_ETOOBIG, "result too big", NULL, 413, "{\"error\":\"result too big\"}"},
    {GW_SVC_PROGRESS, SH_EUNAVAIL, "redis is down", NULL, 503, "{\"error\":\"redis is down\"}"},
    {GW_SVC_COORDINATOR, SH_ETIMEDOUT, "no reply", NULL, 503,
     "{\"error\":\"coordinator service unavailable: no reply\"}"},
    {GW_SVC_SYNC, SH_ECLOSED, "gone", NULL, 503,
     "{\"error\":\"sync-worker service unavailable: gone\"}"},
    {GW_SVC_PROGRESS, SH_EINTERNAL, "boom", NULL, 500, "{\"error\":\"internal error: boom\"}"},
    {0, 0, NULL, NULL, 0, NULL},
};

static void test_rpc_errors_map_to_statuses(void **state)
{
    (void)state;
    for (size_t i = 0; rpc_cases[i].body; i++)
        expect_rpc_error(rpc_cases[i].svc, rpc_cases[i].rc, rpc_cases[i].msg,
                         rpc_cases[i].not_found, rpc_cases[i].status, rpc_cases[i].body);

    /* Without the service's words, the code's own text. */
    char want[256];
    snprintf(want, sizeof want, "{\"error\":\"%s\"}", sh_strerror(SH_EINVAL));
    expect_rpc_error(GW_SVC_PROGRESS, SH_EINVAL, NULL, NULL, 400, want);
    snprintf(want, sizeof want, "{\"error\":\"progress service unavailable: %s\"}",
             sh_strerror(SH_ETIMEDOUT));
    expect_rpc_error(GW_SVC_PROGRESS, SH_ETIMEDOUT, NULL, NULL, 503, want);
}

static void test_error_bodies_are_json(void **state)
{
    (void)state;
    gw_req *r = req_new(GW_ROUTE_AUTH);
    gw_req_reply_error(r, 400, "bad \"%s\" at %d\n", "x\\y", 3);
    expect_reply(r, 400, "{\"error\":\"bad \\\"x\\\\y\\\" at 3\\n\"}");
    req_free(r);

    /* The routes of the seeds answer {"success": false, "error": ...}. */
    r = req_new(GW_ROUTE_AUTH | GW_ROUTE_SEED);
    gw_req_reply_rpc_error(r, SH_ELEASE, NULL, NULL);
    char want[256];
    snprintf(want, sizeof want, "{\"success\":false,\"error\":\"%s\"}", sh_strerror(SH_ELEASE));
    expect_reply(r, 409, want);
    /* A later reply replaces an earlier one. */
    gw_req_reply_error(r, 413, "too large");
    expect_reply(r, 413, "{\"success\":false,\"error\":\"too large\"}");
    req_free(r);
}

static void test_json_and_raw_replies(void **state)
{
    (void)state;
    gw_req *r = req_new(0);
    sh_val *v = sh_val_new_map();
    sh_val_set_cstr(v, "n", sh_val_new_int(42));
    sh_val_set_cstr(v, "s", sh_val_new_cstr("\xc3\xa9"));
    gw_req_reply_json(r, 201, v);
    sh_val_free(v);
    expect_reply(r, 201, "{\"n\":42,\"s\":\"\xc3\xa9\"}");

    sh_buf b;
    sh_buf_init(&b);
    sh_buf_puts(&b, "# metrics\n");
    gw_req_reply_raw(r, 200, "text/plain", &b);
    assert_null(b.data); /* taken */
    assert_int_equal(r->status, 200);
    assert_string_equal(r->ctype, "text/plain");
    assert_int_equal(r->resp_len, 10);
    assert_memory_equal(r->resp, "# metrics\n", 10);
    req_free(r);
}

static void test_content_type_check(void **state)
{
    (void)state;
    assert_true(gw__http_content_type_ok(NULL)); /* none sent is fine */
    assert_true(gw__http_content_type_ok("application/json"));
    assert_true(gw__http_content_type_ok("Application/JSON"));
    assert_true(gw__http_content_type_ok("application/json; charset=utf-8"));
    assert_true(gw__http_content_type_ok("  application/json \t;charset=utf-8"));
    assert_false(gw__http_content_type_ok("application/jsonp"));
    assert_false(gw__http_content_type_ok("application/json x"));
    assert_false(gw__http_content_type_ok("text/plain"));
    assert_false(gw__http_content_type_ok(""));
    assert_false(gw__http_content_type_ok("application/x-www-form-urlencoded"));
}

/* ---- a real daemon ------------------------------------------------------- */

#define TOKEN "test-token-0123456789"

typedef struct server {
    gw_config cfg;
    gw_app app;
    gw_http *h;
    int port;
} server;

#define ORIGIN  "https://app.example.com"
#define SIGNING "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"

/* server_start_browser starts a server with CORS_ORIGINS and
 * TOKEN_SIGNING_KEY as given (NULL: unset). */
static void server_start_browser(server *s, const char *cors, const char *key)
{
    memset(s, 0, sizeof *s);
    if (cors)
        setenv("CORS_ORIGINS", cors, 1);
    else
        unsetenv("CORS_ORIGINS");
    if (key)
        setenv("TOKEN_SIGNING_KEY", key, 1);
    else
        unsetenv("TOKEN_SIGNING_KEY");
    unsetenv("TOKEN_SIGNING_KEY_PREVIOUS");
    unsetenv("TOKEN_MAX_TTL");
    s->port = tf_free_port();
    assert_true(s->port > 0);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", s->port);
    setenv("GATEWAY_LISTEN", listen, 1);
    setenv("API_TOKEN", TOKEN, 1);
    unsetenv("API_READ_ONLY_TOKEN");
    unsetenv("CRON_SECRET");
    setenv("GATEWAY_MAX_BODY", "1024", 1);
    setenv("GATEWAY_THREADS", "2", 1);
    setenv("GATEWAY_DRAIN_MS", "0", 1);
    setenv("LOG_LEVEL", "error", 1);
    sh_error err;
    sh_error_clear(&err);
    if (gw_config_load(&s->cfg, &err) != SH_OK)
        fail_msg("config: %s", err.msg);
    s->app.cfg = &s->cfg;
    if (gw_http_start(&s->cfg, &s->app, &s->h, &err) != SH_OK)
        fail_msg("gw_http_start: %s", err.msg);
}

static void server_start(server *s)
{
    server_start_browser(s, NULL, NULL);
}

static void server_stop(server *s)
{
    gw_http_free(s->h);
    s->h = NULL;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

typedef struct reply {
    int status;
    char head[4096];
    char body[4096];
} reply;

/* exchange sends req as it is and reads the reply until the server closes
 * (every request here asks it to) or 5 s pass. */
static void exchange(int port, const char *req, size_t len, reply *out)
{
    int fd = connect_to(port);
    assert_true(fd >= 0);
    assert_int_equal(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
    static char all[65536];
    size_t n = 0;
    ssize_t got;
    while (n < sizeof all - 1 && (got = recv(fd, all + n, sizeof all - 1 - n, 0)) > 0)
        n += (size_t)got;
    all[n] = '\0';
    close(fd);
    memset(out, 0, sizeof *out);
    assert_true(sscanf(all, "HTTP/1.1 %d", &out->status) == 1);
    char *end = strstr(all, "\r\n\r\n");
    assert_non_null(end);
    size_t hl = (size_t)(end - all);
    assert_true(hl < sizeof out->head);
    memcpy(out->head, all, hl);
    snprintf(out->body, sizeof out->body, "%s", end + 4);
}

static void request(int port, const char *method, const char *path, const char *headers,
                    const char *body, reply *out)
{
    char req[8192];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s",
                     method, path, headers ? headers : "");
    if (body)
        n += snprintf(req + n, sizeof req - (size_t)n, "Content-Length: %zu\r\n\r\n%s",
                      strlen(body), body);
    else
        n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
    assert_true(n > 0 && (size_t)n < sizeof req);
    exchange(port, req, (size_t)n, out);
}

/* header returns the value of reply header name (static), or NULL. */
static const char *header(const reply *rp, const char *name)
{
    static char value[512];
    size_t nl = strlen(name);
    for (const char *p = strstr(rp->head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = strcspn(v, "\r");
            snprintf(value, sizeof value, "%.*s", (int)vl, v);
            return value;
        }
    }
    return NULL;
}

static const char auth[] = "Authorization: Bearer " TOKEN "\r\n";
static const char auth_json[] =
    "Authorization: Bearer " TOKEN "\r\nContent-Type: application/json\r\n";

static void test_server_routes_tokens_and_ids(void **state)
{
    (void)state;
    server s;
    server_start(&s);
    reply rp;

    request(s.port, "GET", "/healthz", NULL, NULL, &rp);
    assert_int_equal(rp.status, 200);
    assert_string_equal(rp.body, "{\"status\":\"ok\"}");
    assert_string_equal(header(&rp, "Content-Type"), "application/json");

    request(s.port, "GET", "/no/such/path", auth, NULL, &rp);
    assert_int_equal(rp.status, 404);
    assert_string_equal(rp.body, "{\"error\":\"not found\"}");

    request(s.port, "PUT", "/api/progress/abc", auth, NULL, &rp);
    assert_int_equal(rp.status, 405);
    assert_non_null(header(&rp, "Allow"));
    assert_non_null(strstr(header(&rp, "Allow"), "GET"));
    assert_non_null(strstr(rp.body, "method PUT is not allowed on /api/progress/:id"));

    /* The token is checked before the id and the body. */
    request(s.port, "POST", "/api/progress/a%20b", NULL, "{", &rp);
    assert_int_equal(rp.status, 401);
    assert_string_equal(header(&rp, "WWW-Authenticate"), "Bearer");
    request(s.port, "GET", "/api/progress/abc", "Authorization: Bearer nope\r\n", NULL, &rp);
    assert_int_equal(rp.status, 401);
    assert_string_equal(header(&rp, "WWW-Authenticate"), "Bearer error=\"invalid_token\"");
    assert_string_equal(rp.body, "{\"error\":\"invalid token\"}");

    request(s.port, "GET", "/api/progress/a!b", auth, NULL, &rp);
    assert_int_equal(rp.status, 400);
    assert_non_null(strstr(rp.body, "invalid id \\\"a!b\\\""));

    /* The seeds' routes answer their own error shape. */
    request(s.port, "POST", "/api/queue/claim", "Content-Type: application/json\r\n", "{}", &rp);
    assert_int_equal(rp.status, 401);
    assert_non_null(strstr(rp.body, "{\"success\":false,\"error\":"));
    server_stop(&s);
}

static void test_server_refuses_bad_bodies(void **state)
{
    (void)state;
    server s;
    server_start(&s);
    reply rp;

    request(s.port, "POST", "/api/progress/abc", auth_json, "{\"a\": tru}", &rp);
    assert_int_equal(rp.status, 400);
    assert_non_null(strstr(rp.body, "malformed JSON at byte "));

    request(s.port, "POST", "/api/progress/abc", auth_json, "[1, 2]", &rp);
    assert_int_equal(rp.status, 400);
    assert_string_equal(rp.body,
                        "{\"error\":\"request body must be a JSON object, not an array\"}");

    request(s.port, "POST", "/api/progress/abc", auth_json, "", &rp);
    assert_int_equal(rp.status, 400);
    assert_string_equal(rp.body, "{\"error\":\"request body is empty: send a JSON object\"}");

    char headers[256];
    snprintf(headers, sizeof headers, "%sContent-Type: text/plain\r\n", auth);
    request(s.port, "POST", "/api/progress/abc", headers, "{}", &rp);
    assert_int_equal(rp.status, 415);
    assert_non_null(strstr(rp.body, "unsupported Content-Type \\\"text/plain\\\""));

    /* GATEWAY_MAX_BODY bytes are read... */
    char limit[1025];
    memset(limit, ' ', 1024);
    limit[0] = '[';
    limit[1023] = ']';
    limit[1024] = '\0';
    request(s.port, "POST", "/api/progress/abc", auth_json, limit, &rp);
    assert_int_equal(rp.status, 400);
    assert_non_null(strstr(rp.body, "not an array"));

    /* ...one more, announced by Content-Length: answered before the body is
     * sent. */
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "POST /api/progress/abc HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s"
                     "Content-Length: 1025\r\n\r\n",
                     auth_json);
    exchange(s.port, req, (size_t)n, &rp);
    assert_int_equal(rp.status, 413);
    assert_string_equal(rp.body, "{\"error\":\"request body of 1025 bytes is too large: the limit "
                                 "is 1024 bytes\"}");

    /* Over it in chunks of unannounced length: answered once it is read. */
    static char big[4096];
    n = snprintf(big, sizeof big,
                 "POST /api/progress/abc HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s"
                 "Transfer-Encoding: chunked\r\n\r\n",
                 auth_json);
    for (int c = 0; c < 3; c++) {
        n += snprintf(big + n, sizeof big - (size_t)n, "258\r\n"); /* 600 bytes */
        memset(big + n, ' ', 600);
        n += 600;
        n += snprintf(big + n, sizeof big - (size_t)n, "\r\n");
    }
    n += snprintf(big + n, sizeof big - (size_t)n, "0\r\n\r\n");
    exchange(s.port, big, (size_t)n, &rp);
    assert_int_equal(rp.status, 413);
    assert_string_equal(rp.body,
                        "{\"error\":\"request body is too large: the limit is 1024 bytes\"}");
    server_stop(&s);
}

static void test_server_request_ids(void **state)
{
    (void)state;
    server s;
    server_start(&s);
    reply rp;
    request(s.port, "GET", "/healthz", "X-Request-Id: client-id.7:x\r\n", NULL, &rp);
    assert_string_equal(header(&rp, "X-Request-Id"), "client-id.7:x");

    /* An id that is not one is replaced by the server's own, distinct for
     * each request: "<8 hex digits>-<hex counter>". */
    char first[128];
    request(s.port, "GET", "/healthz", "X-Request-Id: not an id!\r\n", NULL, &rp);
    snprintf(first, sizeof first, "%s", header(&rp, "X-Request-Id"));
    request(s.port, "GET", "/no/such/path", NULL, NULL, &rp);
    const char *second = header(&rp, "X-Request-Id");
    assert_non_null(second);
    assert_string_not_equal(first, second);
    for (const char *id = first; id; id = id == first ? second : NULL) {
        assert_true(strlen(id) > 9);
        assert_int_equal(id[8], '-');
        assert_int_equal(strspn(id, "0123456789abcdef"), 8);
        assert_int_equal(strspn(id + 9, "0123456789abcdef"), strlen(id + 9));
    }
    assert_memory_equal(first, second, 9); /* one prefix per server */
    server_stop(&s);
}

static void test_server_stop(void **state)
{
    (void)state;
    server s;
    server_start(&s);
    reply rp;
    /* A keep-alive connection is kept while the server runs... */
    int fd = connect_to(s.port);
    assert_true(fd >= 0);
    static const char ka[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_int_equal(send(fd, ka, sizeof ka - 1, MSG_NOSIGNAL), (ssize_t)(sizeof ka - 1));
    char buf[2048];
    ssize_t got = recv(fd, buf, sizeof buf - 1, 0);
    assert_true(got > 0);
    buf[got] = '\0';
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    assert_null(strcasestr(buf, "Connection: close"));

    /* ...and from the stop's beginning every response closes its connection,
     * that one's included, while requests are still served. */
    gw_http_stop_begin(s.h);
    assert_int_equal(send(fd, ka, sizeof ka - 1, MSG_NOSIGNAL), (ssize_t)(sizeof ka - 1));
    size_t n = 0;
    while (n < sizeof buf - 1 && (got = recv(fd, buf + n, sizeof buf - 1 - n, 0)) > 0)
        n += (size_t)got;
    buf[n] = '\0';
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    assert_non_null(strcasestr(buf, "Connection: close"));
    assert_int_equal(got, 0); /* closed by the server */
    close(fd);
    request(s.port, "GET", "/readyz", NULL, NULL, &rp);
    assert_int_equal(rp.status, 503);
    assert_non_null(strstr(rp.body, "\"status\":\"stopping\""));

    /* The drain returns once nothing is under way; then the listener goes. */
    uint64_t t0 = gw_metrics_now_ns();
    gw_http_drain(s.h);
    assert_true(gw_metrics_now_ns() - t0 < 2000000000u);
    server_stop(&s);
    fd = connect_to(s.port);
    int e = errno;
    assert_int_equal(fd, -1);
    assert_int_equal(e, ECONNREFUSED);
}

/* expect_cors checks the CORS headers of a reply: all three for origin, or
 * none when origin is NULL. */
static void expect_cors(const reply *rp, const char *origin)
{
    if (!origin) {
        assert_null(header(rp, "Access-Control-Allow-Origin"));
        assert_null(header(rp, "Access-Control-Expose-Headers"));
        assert_null(header(rp, "Access-Control-Allow-Methods"));
        assert_null(header(rp, "Vary"));
        return;
    }
    assert_non_null(header(rp, "Access-Control-Allow-Origin"));
    assert_string_equal(header(rp, "Access-Control-Allow-Origin"), origin);
    assert_string_equal(header(rp, "Vary"), "Origin");
    assert_string_equal(header(rp, "Access-Control-Expose-Headers"), "X-Request-Id");
}

static void test_server_cors(void **state)
{
    (void)state;
    server s;
    server_start_browser(&s, ORIGIN ", http://localhost:3000", NULL);
    reply rp;
    static const char from_app[] = "Origin: " ORIGIN "\r\n";
    static const char from_local[] = "Origin: http://localhost:3000\r\n";
    static const char from_evil[] = "Origin: https://evil.example\r\n";

    /* Replies, errors included, to an allowed origin carry the headers;
     * another origin, or none, gets no CORS header at all. */
    static const struct {
        const char *method, *path, *headers;
        int status;
        const char *origin;
    } replies[] = {
        {"GET", "/healthz", from_app, 200, ORIGIN},
        {"GET", "/api/progress/p1", from_local, 401, "http://localhost:3000"},
        {"GET", "/no/such", from_app, 404, ORIGIN},
        {"PUT", "/healthz", from_app, 405, ORIGIN},
        {"GET", "/healthz", from_evil, 200, NULL},
        {"GET", "/healthz", "Origin: https://app.example.com.evil.example\r\n", 200, NULL},
        {"GET", "/healthz", "Origin: HTTPS://APP.EXAMPLE.COM\r\n", 200, NULL},
        {"GET", "/healthz", NULL, 200, NULL},
    };
    for (size_t i = 0; i < sizeof replies / sizeof replies[0]; i++) {
        request(s.port, replies[i].method, replies[i].path, replies[i].headers, NULL, &rp);
        assert_int_equal(rp.status, replies[i].status);
        expect_cors(&rp, replies[i].origin);
        assert_null(header(&rp, "Access-Control-Allow-Methods"));
    }

    /* Preflight: no token needed, the route's methods. */
    request(s.port, "OPTIONS", "/api/progress/p1",
            "Origin: " ORIGIN "\r\nAccess-Control-Request-Method: DELETE\r\n", NULL, &rp);
    assert_int_equal(rp.status, 204);
    assert_string_equal(rp.body, "");
    assert_null(header(&rp, "Content-Type"));
    expect_cors(&rp, ORIGIN);
    assert_string_equal(header(&rp, "Access-Control-Allow-Methods"), "GET, HEAD, POST, DELETE");
    assert_string_equal(header(&rp, "Access-Control-Allow-Headers"),
                        "Authorization, Content-Type, Last-Event-ID");
    assert_string_equal(header(&rp, "Access-Control-Max-Age"), "600");
    assert_non_null(header(&rp, "X-Request-Id"));
    request(s.port, "OPTIONS", "/api/progress/p1/stream", from_local, NULL, &rp);
    assert_int_equal(rp.status, 204);
    assert_string_equal(header(&rp, "Access-Control-Allow-Methods"), "GET, HEAD");
    request(s.port, "OPTIONS", "/api/tokens", from_app, NULL, &rp);
    assert_int_equal(rp.status, 204);
    assert_string_equal(header(&rp, "Access-Control-Allow-Methods"), "POST");
    request(s.port, "OPTIONS", "/api/accounts/a1/messages/7/read", from_app, NULL, &rp);
    assert_int_equal(rp.status, 204);
    assert_string_equal(header(&rp, "Access-Control-Allow-Methods"), "POST");
    /* ...refused to another origin, or without one, with no CORS header. */
    request(s.port, "OPTIONS", "/api/progress/p1", from_evil, NULL, &rp);
    assert_int_equal(rp.status, 403);
    expect_cors(&rp, NULL);
    assert_null(header(&rp, "Access-Control-Max-Age"));
    assert_non_null(strstr(rp.body, "origin not allowed"));
    request(s.port, "OPTIONS", "/api/progress/p1", NULL, NULL, &rp);
    assert_int_equal(rp.status, 403);
    /* ...and an unknown path is not found. */
    request(s.port, "OPTIONS", "/api/nothing", from_app, NULL, &rp);
    assert_int_equal(rp.status, 404);
    assert_null(header(&rp, "Access-Control-Allow-Methods"));
    server_stop(&s);

    /* Without CORS_ORIGINS: no header, and OPTIONS is a method like any other. */
    server_start(&s);
    request(s.port, "GET", "/healthz", from_app, NULL, &rp);
    assert_int_equal(rp.status, 200);
    expect_cors(&rp, NULL);
    request(s.port, "OPTIONS", "/api/progress/p1", from_app, NULL, &rp);
    assert_int_equal(rp.status, 405);
    expect_cors(&rp, NULL);
    server_stop(&s);
}

/* mint asks the server for a token; returns the status, the token in tok. */
static int mint(int port, const char *body, char *tok, size_t toklen)
{
    reply rp;
    request(port, "POST", "/api/tokens", auth_json, body, &rp);
    const char *t = strstr(rp.body, "\"token\":\"");
    if (rp.status == 201) {
        assert_non_null(t);
        t += 9;
        size_t n = strcspn(t, "\"");
        assert_true(n < toklen);
        memcpy(tok, t, n);
        tok[n] = '\0';
    }
    return rp.status;
}

static void test_server_scoped_tokens(void **state)
{
    (void)state;
    server s;
    server_start_browser(&s, NULL, SIGNING);
    reply rp;
    char tok[GW_TOKEN_MAX_LEN + 1];

    request(s.port, "POST", "/api/tokens", auth_json,
            "{\"scopes\":[\"progress:p1\",\"queue\"],\"ttlSeconds\":60}", &rp);
    assert_int_equal(rp.status, 201);
    assert_non_null(strstr(rp.body, "\"expiresAt\":\""));
    assert_non_null(strstr(rp.body, "\"scopes\":[\"progress:p1\",\"queue\"]}"));

    /* Every refusal names its problem. */
    static const struct {
        const char *body, *error;
    } bad[] = {
        {"{\"scopes\":[\"progres:p1\"],\"ttlSeconds\":60}", "progres:p1"},
        {"{\"scopes\":[\"progress:a b\"],\"ttlSeconds\":60}", "malformed scope"},
        {"{\"scopes\":[\"queue:x\"],\"ttlSeconds\":60}", "queue:x"},
        {"{\"scopes\":[7],\"ttlSeconds\":60}", "not a string"},
        {"{\"scopes\":[],\"ttlSeconds\":60}", "at least one scope"},
        {"{\"scopes\":\"queue\",\"ttlSeconds\":60}", "must be an array"},
        {"{\"ttlSeconds\":60}", "must be an array"},
        {"{\"scopes\":[\"queue\"],\"ttlSeconds\":0}", "1 to 3600"},
        {"{\"scopes\":[\"queue\"],\"ttlSeconds\":3601}", "1 to 3600"},
        {"{\"scopes\":[\"queue\"],\"ttlSeconds\":1.5}", "integer"},
        {"{\"scopes\":[\"queue\"]}", "ttlSeconds"},
        {"{\"scopes\":[\"queue\"],\"ttlSeconds\":60,\"admin\":true}", "unknown field \\\"admin"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        request(s.port, "POST", "/api/tokens", auth_json, bad[i].body, &rp);
        if (rp.status != 400 || !strstr(rp.body, bad[i].error))
            fail_msg("%s: %d %s (wanted 400 naming %s)", bad[i].body, rp.status, rp.body,
                     bad[i].error);
    }
    char many[2048] = "{\"ttlSeconds\":60,\"scopes\":[";
    for (int i = 0; i < 33; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%s\"job:j%d\"", i ? "," : "", i);
    strcat(many, "]}");
    request(s.port, "POST", "/api/tokens", auth_json, many, &rp);
    assert_int_equal(rp.status, 400);
    assert_non_null(strstr(rp.body, "at most 32"));
    strcpy(strstr(many, ",\"job:j32\""), "]}");
    assert_int_equal(mint(s.port, many, tok, sizeof tok), 201);

    /* A scoped token opens nothing it does not cover, and never writes. */
    assert_int_equal(
        mint(s.port, "{\"scopes\":[\"progress:p1\"],\"ttlSeconds\":60}", tok, sizeof tok), 201);
    char hdr[GW_TOKEN_MAX_LEN + 64], path[GW_TOKEN_MAX_LEN + 64];
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", tok);
    static const struct {
        const char *path, *body;
    } uncovered[] = {
        {"/api/progress/p2", "{\"error\":\"token does not cover progress:p2\"}"},
        {"/api/jobs/j1", "{\"error\":\"token does not cover job:j1\"}"},
        {"/api/accounts/p1", "{\"error\":\"token does not cover account:p1\"}"},
        {"/api/accounts", "{\"error\":\"token does not cover accounts\"}"},
        {"/api/queue", "{\"success\":false,\"error\":\"token does not cover queue\"}"},
        {"/metrics", "{\"error\":\"token does not cover GET /metrics\"}"},
        {"/api/conversations/p1/job",
         "{\"error\":\"token does not cover GET /api/conversations/:id/job\"}"},
    };
    for (size_t i = 0; i < sizeof uncovered / sizeof uncovered[0]; i++) {
        /* By header, and by query. */
        request(s.port, "GET", uncovered[i].path, hdr, NULL, &rp);
        assert_int_equal(rp.status, 403);
        assert_string_equal(rp.body, uncovered[i].body);
        snprintf(path, sizeof path, "%s?access_token=%s", uncovered[i].path, tok);
        request(s.port, "GET", path, NULL, NULL, &rp);
        assert_int_equal(rp.status, 403);
        assert_string_equal(rp.body, uncovered[i].body);
    }
    request(s.port, "DELETE", "/api/progress/p1", hdr, NULL, &rp);
    assert_int_equal(rp.status, 403);
    assert_non_null(strstr(rp.body, "only GET and HEAD"));
    snprintf(path, sizeof path, "/api/progress/p1?access_token=%s", tok);
    request(s.port, "DELETE", path, NULL, NULL, &rp);
    assert_int_equal(rp.status, 403);
    /* Nor does it mint tokens. */
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\nContent-Type: application/json\r\n",
             tok);
    request(s.port, "POST", "/api/tokens", hdr, "{\"scopes\":[\"queue\"],\"ttlSeconds\":60}", &rp);
    assert_int_equal(rp.status, 403);
    /* Altered: 401 with the bearer challenge. */
    tok[5] = tok[5] == 'A' ? 'B' : 'A';
    snprintf(path, sizeof path, "/api/progress/p1?access_token=%s", tok);
    request(s.port, "GET", path, NULL, NULL, &rp);
    assert_int_equal(rp.status, 401);
    assert_string_equal(rp.body, "{\"error\":\"invalid token\"}");
    assert_string_equal(header(&rp, "WWW-Authenticate"), "Bearer error=\"invalid_token\"");
    /* Expired. */
    assert_int_equal(
        mint(s.port, "{\"scopes\":[\"progress:p1\"],\"ttlSeconds\":1}", tok, sizeof tok), 201);
    usleep(1100 * 1000);
    snprintf(path, sizeof path, "/api/progress/p1/stream?access_token=%s", tok);
    request(s.port, "GET", path, NULL, NULL, &rp);
    assert_int_equal(rp.status, 401);
    assert_string_equal(rp.body, "{\"error\":\"token expired\"}");
    server_stop(&s);

    /* Without TOKEN_SIGNING_KEY: 503, and the token above is refused. */
    server_start(&s);
    request(s.port, "POST", "/api/tokens", auth_json, "{\"scopes\":[\"queue\"],\"ttlSeconds\":60}",
            &rp);
    assert_int_equal(rp.status, 503);
    assert_non_null(strstr(rp.body, "TOKEN_SIGNING_KEY is not set"));
    request(s.port, "GET", path, NULL, NULL, &rp);
    assert_int_equal(rp.status, 401);
    assert_string_equal(rp.body, "{\"error\":\"invalid token\"}");
    server_stop(&s);
}

int main(void)
{
    gw_router_init(gw_route_table);
    gw_metrics_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rpc_errors_map_to_statuses),
        cmocka_unit_test(test_error_bodies_are_json),
        cmocka_unit_test(test_json_and_raw_replies),
        cmocka_unit_test(test_content_type_check),
        cmocka_unit_test(test_server_routes_tokens_and_ids),
        cmocka_unit_test(test_server_refuses_bad_bodies),
        cmocka_unit_test(test_server_request_ids),
        cmocka_unit_test(test_server_cors),
        cmocka_unit_test(test_server_scoped_tokens),
        cmocka_unit_test(test_server_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
