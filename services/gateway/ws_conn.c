/* ws_conn.c - one WebSocket: wslay framing over its non-blocking socket,
 * the typed events of its tap turned into text frames (the JSON of each
 * event's data line, "id" and "type" inside), pings and their pongs, and
 * the close codes of what a client may not send. The only file, with ws.c,
 * that includes wslay.
 *
 * A client sends control frames and small text (ignored); wslay refuses
 * unmasked frames, reserved bits and oversized control frames (1002),
 * invalid UTF-8 text (1007) and a message over GW__WS_MAX_MESSAGE (1009);
 * binary is closed here with 1003. */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <wslay/wslay.h>

#include "gw_ws_int.h"
#include "shared/log.h"

#define WS_TAP_CHUNK 16384

struct gw__ws_conn {
    wslay_event_context_ptr ctx;
    int fd;
    gw_sse_tap *tap;
    bool tap_done;  /* the tap ended: nothing more to take from it */
    bool failed;    /* the socket failed or the peer left: free at once */
    bool lingering; /* closed both ways in WebSocket terms: what comes is read and dropped */
    void *user;
    char *extra; /* what MHD read past the request head */
    size_t extra_len, extra_off;
    sh_buf in;                /* tap text not yet a whole event */
    int64_t ping_ms, pong_ms; /* WS_PING_SECONDS, WS_PONG_TIMEOUT_SECONDS */
    int64_t next_ping_ms;
    bool ping_out;        /* a ping awaits its pong */
    int64_t pong_late_ms; /* when that pong is late */
    int64_t close_ms;     /* when a close was queued; 0: none */
};

int gw__ws_event_of(const char *block, size_t len, const char **data, size_t *dlen, const char **id,
                    size_t *idlen)
{
    int kind = 0;
    *id = NULL;
    *idlen = 0;
    const char *end = block + len;
    for (const char *p = block; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        size_t n = (size_t)(e - p);
        if (n >= 6 && memcmp(p, "data: ", 6) == 0) {
            *data = p + 6;
            *dlen = n - 6;
            if (kind == 0)
                kind = 1;
        } else if (n == 15 && memcmp(p, "event: shutdown", 15) == 0) {
            kind = 2;
        } else if (n == 12 && memcmp(p, "event: reset", 12) == 0) {
            kind = 3;
        } else if (n >= 4 && memcmp(p, "id: ", 4) == 0) {
            *id = p + 4;
            *idlen = n - 4;
        }
        p = e + 1;
    }
    return kind;
}

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                          void *user)
{
    (void)flags;
    gw__ws_conn *c = user;
    if (c->extra_off < c->extra_len) {
        size_t n = c->extra_len - c->extra_off;
        if (n > len)
            n = len;
        memcpy(buf, c->extra + c->extra_off, n);
        c->extra_off += n;
        return (ssize_t)n;
    }
    ssize_t n = recv(c->fd, buf, len, MSG_DONTWAIT);
    if (n > 0)
        return n;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    c->failed = true; /* the peer left (0) or the socket failed */
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                          void *user)
{
    (void)flags;
    gw__ws_conn *c = user;
    ssize_t n = send(c->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    c->failed = true;
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static void ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                      void *user)
{
    (void)ctx;
    gw__ws_conn *c = user;
    if (arg->opcode == WSLAY_PONG)
        c->ping_out = false;
    else if (arg->opcode == WSLAY_BINARY_FRAME)
        gw__ws_conn_close(c, WSLAY_CODE_UNSUPPORTED_DATA, "binary messages are not accepted", 0);
}

gw__ws_conn *gw__ws_conn_new(int sock, const char *extra, size_t n, gw_sse_tap *tap,
                             int64_t ping_ms, int64_t pong_ms, void *user)
{
    static const struct wslay_event_callbacks cbs = {
        .recv_callback = ws_recv_cb,
        .send_callback = ws_send_cb,
        .on_msg_recv_callback = ws_msg_cb,
    };
    gw__ws_conn *c = calloc(1, sizeof *c);
    if (!c) {
        gw_sse_tap_free(tap);
        return NULL;
    }
    c->fd = sock;
    c->ping_ms = ping_ms;
    c->pong_ms = pong_ms;
    c->tap = tap;
    c->user = user;
    sh_buf_init(&c->in);
    if (n && !(c->extra = malloc(n))) {
        gw__ws_conn_free(c);
        return NULL;
    }
    if (n)
        memcpy(c->extra, extra, n);
    c->extra_len = n;
    if (wslay_event_context_server_init(&c->ctx, &cbs, c) != 0) {
        c->ctx = NULL;
        gw__ws_conn_free(c);
        return NULL;
    }
    wslay_event_config_set_max_recv_msg_length(c->ctx, GW__WS_MAX_MESSAGE);
    return c;
}

void gw__ws_conn_free(gw__ws_conn *c)
{
    if (!c)
        return;
    if (c->ctx)
        wslay_event_context_free(c->ctx);
    gw_sse_tap_free(c->tap);
    sh_buf_fini(&c->in);
    free(c->extra);
    free(c);
}

void *gw__ws_conn_user(gw__ws_conn *c)
{
    return c->user;
}

int gw__ws_conn_fd(gw__ws_conn *c)
{
    return c->fd;
}

void gw__ws_conn_close(gw__ws_conn *c, uint16_t code, const char *reason, int64_t now_ms)
{
    if (c->close_ms)
        return;
    c->close_ms = now_ms ? now_ms : 1;
    c->tap_done = true;
    wslay_event_queue_close(c->ctx, code, (const uint8_t *)reason, strlen(reason));
}

/* ws_conn_send_reset queues the frame of a mail stream's reset: the SSE
 * event has its id on the id line and empty data, a frame carries both in
 * its JSON. Log ids are "<ms>-<seq>", nothing to escape. */
static void ws_conn_send_reset(gw__ws_conn *c, const char *id, size_t idlen)
{
    char text[96];
    int n = idlen && idlen < 48 ? snprintf(text, sizeof text,
                                           "{\"type\":\"reset\",\"id\":\"%.*s\"}", (int)idlen, id)
                                : snprintf(text, sizeof text, "{\"type\":\"reset\"}");
    struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)text, (size_t)n};
    wslay_event_queue_msg(c->ctx, &m);
}

/* ws_conn_send_events queues a text frame for every whole event in c->in
 * and keeps the rest. */
static void ws_conn_send_events(gw__ws_conn *c, int64_t now_ms)
{
    size_t off = 0;
    for (;;) {
        const char *b = c->in.data + off;
        const char *end = c->in.len > off ? memmem(b, c->in.len - off, "\n\n", 2) : NULL;
        if (!end)
            break;
        const char *data = NULL, *id = NULL;
        size_t dlen = 0, idlen = 0;
        int kind = gw__ws_event_of(b, (size_t)(end - b), &data, &dlen, &id, &idlen);
        off = (size_t)(end - c->in.data) + 2;
        if (kind == 2) {
            gw__ws_conn_close(c, WSLAY_CODE_GOING_AWAY, "gateway stopping", now_ms);
            break;
        }
        if (kind == 1) {
            struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)data, dlen};
            wslay_event_queue_msg(c->ctx, &m);
        } else if (kind == 3) {
            ws_conn_send_reset(c, id, idlen);
        }
    }
    if (off >= c->in.len) {
        sh_buf_reset(&c->in);
    } else if (off) {
        memmove(c->in.data, c->in.data + off, c->in.len - off);
        c->in.len -= off;
        c->in.data[c->in.len] = '\0';
    }
}

/* ws_conn_pump takes the tap's text while the frames queued to the client
 * are few: a client that does not read leaves the rest in the tap, which
 * drops it past 16 MiB (closed with 1008). */
static void ws_conn_pump(gw__ws_conn *c, int64_t now_ms)
{
    char chunk[WS_TAP_CHUNK];
    while (!c->tap_done && wslay_event_get_queued_msg_length(c->ctx) < GW__WS_MAX_QUEUED) {
        ssize_t n = gw_sse_tap_read(c->tap, chunk, sizeof chunk);
        if (n == 0)
            return;
        if (n == GW_SSE_TAP_FAILED) {
            sh_log_warn("ws_overflow", "WebSocket closed: 16 MiB of events unread");
            gw__ws_conn_close(c, WSLAY_CODE_POLICY_VIOLATION, "too far behind", now_ms);
            return;
        }
        if (n < 0) {
            gw__ws_conn_close(c, WSLAY_CODE_GOING_AWAY, "gateway stopping", now_ms);
            return;
        }
        if (sh_buf_append(&c->in, chunk, (size_t)n) != 0) {
            gw__ws_conn_close(c, WSLAY_CODE_INTERNAL_SERVER_ERROR, "out of memory", now_ms);
            return;
        }
        ws_conn_send_events(c, now_ms);
    }
}

/* ws_conn_linger: the closing handshake is over; the TCP connection is
 * closed once the client has closed its side (what it still sends is
 * dropped), so a client whose frames were cut short receives the close
 * frame rather than a reset. */
static bool ws_conn_linger(gw__ws_conn *c, int64_t now_ms)
{
    if (!c->lingering) {
        c->lingering = true;
        if (!c->close_ms)
            c->close_ms = now_ms ? now_ms : 1;
        shutdown(c->fd, SHUT_WR);
    }
    char sink[4096];
    for (;;) {
        ssize_t n = recv(c->fd, sink, sizeof sink, MSG_DONTWAIT);
        if (n > 0)
            continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
    }
}

bool gw__ws_conn_io(gw__ws_conn *c, int64_t now_ms)
{
    if (c->failed)
        return false;
    if (c->lingering)
        return ws_conn_linger(c, now_ms);
    if (!c->next_ping_ms)
        c->next_ping_ms = now_ms + c->ping_ms;
    if (wslay_event_want_read(c->ctx) && wslay_event_recv(c->ctx) != 0)
        return false;
    if (c->failed)
        return false;
    for (int i = 0; i < 2; i++) {
        ws_conn_pump(c, now_ms);
        if (wslay_event_want_write(c->ctx) && wslay_event_send(c->ctx) != 0)
            return false;
        if (c->failed)
            return false;
    }
    if (wslay_event_want_read(c->ctx) || wslay_event_want_write(c->ctx))
        return true;
    return ws_conn_linger(c, now_ms);
}

bool gw__ws_conn_wants_write(gw__ws_conn *c)
{
    return !c->lingering && wslay_event_want_write(c->ctx) != 0;
}

void gw__ws_conn_tick(gw__ws_conn *c, int64_t now_ms)
{
    if (c->close_ms) {
        if (now_ms - c->close_ms >= GW__WS_CLOSE_MS)
            c->failed = true;
        return;
    }
    if (c->ping_out && now_ms >= c->pong_late_ms) {
        gw__ws_conn_close(c, WSLAY_CODE_GOING_AWAY, "no pong to the last ping", now_ms);
        return;
    }
    if (!c->next_ping_ms || now_ms < c->next_ping_ms || c->ping_out)
        return;
    struct wslay_event_msg m = {WSLAY_PING, (const uint8_t *)"", 0};
    if (wslay_event_queue_msg(c->ctx, &m) == 0) {
        c->ping_out = true;
        c->pong_late_ms = now_ms + c->pong_ms;
    }
    c->next_ping_ms = now_ms + c->ping_ms;
}
