/* ws.c - the WebSocket side of the event stream routes: the handshake's
 * answer (101 through libmicrohttpd's upgrade), the one I/O thread of every
 * WebSocket (epoll over their sockets, an eventfd that taps and the stop
 * wake it with, a tick a second for pings) and the life cycle. Connections
 * are made and freed on that thread only; an upgraded socket is closed
 * through MHD_upgrade_action, so MHD counts it until then. */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "gw_ws.h"
#include "gw_ws_int.h"
#include "shared/log.h"
#include "shared/util.h"

#define WS_TICK_MS 1000
#define WS_STOP_MS 1000 /* the stop waits this long for clients to answer its close */
#define WS_EVENTS  64

/* An upgraded socket waiting to be taken by the thread. */
typedef struct ws_new {
    struct ws_new *next;
    int fd;
    struct MHD_UpgradeResponseHandle *urh;
    gw_sse_tap *tap;
    char *extra;
    size_t extra_len;
} ws_new;

/* What the upgrade callback needs of the request: the tap, opened when the
 * request was answered (as an SSE stream is, so that nothing is missed
 * between the reply and the first frame), is taken by the callback; freed
 * with what is left when MHD is done with the request (gw_req_on_done). */
typedef struct ws_pending {
    gw_ws *ws;
    gw_sse_tap *tap;
} ws_pending;

static void ws_pending_free(void *arg)
{
    ws_pending *p = arg;
    gw_sse_tap_free(p->tap);
    free(p);
}

/* The thread's list of live connections. */
typedef struct ws_link {
    struct ws_link *prev, *next;
    gw__ws_conn *c;
    struct MHD_UpgradeResponseHandle *urh;
    bool out; /* EPOLLOUT is asked for */
} ws_link;

struct gw_ws {
    gw_sse *sse;
    int64_t ping_ms, pong_ms;
    int ep, efd;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu; /* incoming, shutting, closed */
    ws_new *incoming;
    bool shutting; /* no new WebSocket; the thread closes them all */
    bool closed;   /* the thread is gone: upgrades are closed at once */
    ws_link *live; /* the thread's */
};

static void ws_wake(void *arg)
{
    gw_ws *ws = arg;
    uint64_t one = 1;
    ssize_t n = write(ws->efd, &one, sizeof one);
    (void)n; /* a full counter already wakes the thread */
}

bool gw_ws_requested(gw_req *r)
{
    return gw__ws_header_has(gw_req_header(r, MHD_HTTP_HEADER_UPGRADE), "websocket");
}

/* ws_link_end closes l's socket and frees it. */
static void ws_link_end(gw_ws *ws, ws_link *l)
{
    epoll_ctl(ws->ep, EPOLL_CTL_DEL, gw__ws_conn_fd(l->c), NULL);
    if (l->prev)
        l->prev->next = l->next;
    else
        ws->live = l->next;
    if (l->next)
        l->next->prev = l->prev;
    gw__ws_conn_free(l->c);
    MHD_upgrade_action(l->urh, MHD_UPGRADE_ACTION_CLOSE);
    free(l);
}

/* ws_link_io runs l's I/O and keeps its epoll interest up to date. */
static void ws_link_io(gw_ws *ws, ws_link *l, int64_t now)
{
    if (!gw__ws_conn_io(l->c, now)) {
        ws_link_end(ws, l);
        return;
    }
    bool out = gw__ws_conn_wants_write(l->c);
    if (out != l->out) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0),
                                 .data.ptr = l};
        epoll_ctl(ws->ep, EPOLL_CTL_MOD, gw__ws_conn_fd(l->c), &ev);
        l->out = out;
    }
}

/* ws_adopt turns an upgraded socket into a live connection. */
static void ws_adopt(gw_ws *ws, ws_new *n, int64_t now)
{
    ws_link *l = calloc(1, sizeof *l);
    int fl = fcntl(n->fd, F_GETFL);
    if (l && fl >= 0 && fcntl(n->fd, F_SETFL, fl | O_NONBLOCK) == 0) {
        l->c = gw__ws_conn_new(n->fd, n->extra, n->extra_len, n->tap, ws->ping_ms, ws->pong_ms, l);
        n->tap = NULL; /* taken, even when that failed */
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = l};
    if (!l || !l->c || epoll_ctl(ws->ep, EPOLL_CTL_ADD, n->fd, &ev) != 0) {
        sh_log_warn("ws_open", "WebSocket dropped: out of memory or descriptors");
        if (l)
            gw__ws_conn_free(l->c);
        free(l);
        MHD_upgrade_action(n->urh, MHD_UPGRADE_ACTION_CLOSE);
        return;
    }
    l->urh = n->urh;
    l->next = ws->live;
    if (ws->live)
        ws->live->prev = l;
    ws->live = l;
    ws_link_io(ws, l, now);
}

static void ws_new_free(ws_new *n)
{
    gw_sse_tap_free(n->tap);
    free(n->extra);
    free(n);
}

static void *ws_main(void *arg)
{
    gw_ws *ws = arg;
    struct epoll_event evs[WS_EVENTS];
    int64_t next_tick = sh_now_ms() + WS_TICK_MS, stop_end = 0;
    for (;;) {
        int64_t now = sh_now_ms();
        int wait = next_tick > now ? (int)(next_tick - now) : 0;
        int n = epoll_wait(ws->ep, evs, WS_EVENTS, wait);
        now = sh_now_ms();
        bool woken = false;
        for (int i = 0; i < n; i++)
            woken |= evs[i].data.ptr == NULL;
        if (woken) {
            uint64_t v;
            ssize_t rn = read(ws->efd, &v, sizeof v);
            (void)rn;
        }
        pthread_mutex_lock(&ws->mu);
        ws_new *in = ws->incoming;
        ws->incoming = NULL;
        bool shutting = ws->shutting;
        pthread_mutex_unlock(&ws->mu);
        while (in) {
            ws_new *next = in->next;
            ws_adopt(ws, in, now);
            ws_new_free(in);
            in = next;
        }
        /* A socket's events, or a tap's wake-up (which names no socket:
         * every connection takes what its tap has; reading an empty tap is
         * a lock and a compare). A link freed during this pass may be named
         * by a later event of the same wait, so sockets are handled by
         * walking the list, not by the pointers the wait returned. */
        if (n > 0 || woken) {
            for (ws_link *l = ws->live, *next; l; l = next) {
                next = l->next;
                ws_link_io(ws, l, now);
            }
        }
        if (now >= next_tick || shutting) {
            if (now >= next_tick)
                next_tick = now + WS_TICK_MS;
            for (ws_link *l = ws->live, *next; l; l = next) {
                next = l->next;
                if (shutting)
                    gw__ws_conn_close(l->c, 1001, "gateway stopping", now);
                gw__ws_conn_tick(l->c, now);
                ws_link_io(ws, l, now);
            }
        }
        if (shutting) {
            if (!stop_end) {
                stop_end = now + WS_STOP_MS;
                next_tick = now + 20;
            }
            if (!ws->live || now >= stop_end)
                break;
            next_tick = now + 20;
        }
    }
    while (ws->live)
        ws_link_end(ws, ws->live);
    pthread_mutex_lock(&ws->mu);
    ws->closed = true;
    ws_new *in = ws->incoming;
    ws->incoming = NULL;
    pthread_mutex_unlock(&ws->mu);
    while (in) {
        ws_new *next = in->next;
        MHD_upgrade_action(in->urh, MHD_UPGRADE_ACTION_CLOSE);
        ws_new_free(in);
        in = next;
    }
    return NULL;
}

/* ws_upgraded is MHD's upgrade callback: the 101 went out and the socket is
 * ours; it is handed to the thread. */
static void ws_upgraded(void *cls, struct MHD_Connection *conn, void *req_cls, const char *extra,
                        size_t extra_len, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    (void)conn;
    (void)req_cls;
    ws_pending *p = cls;
    gw_ws *ws = p->ws;
    ws_new *n = calloc(1, sizeof *n);
    if (n && extra_len && (n->extra = malloc(extra_len)))
        memcpy(n->extra, extra, extra_len);
    if (n && extra_len && !n->extra) {
        free(n);
        n = NULL;
    }
    pthread_mutex_lock(&ws->mu);
    bool refuse = !n || ws->shutting || ws->closed;
    if (!refuse) {
        n->fd = sock;
        n->urh = urh;
        n->tap = p->tap;
        p->tap = NULL;
        n->extra_len = extra_len;
        n->next = ws->incoming;
        ws->incoming = n;
    }
    pthread_mutex_unlock(&ws->mu);
    if (refuse) {
        if (n)
            ws_new_free(n);
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        return;
    }
    ws_wake(ws);
}

/* ws_handshake_ok checks r's opening handshake and puts its
 * Sec-WebSocket-Accept in accept; false when it has replied. */
static bool ws_handshake_ok(gw_ws *ws, gw_req *r, char accept[GW__WS_ACCEPT_LEN + 1])
{
    const char *why = NULL;
    const char *key = gw_req_header(r, "Sec-WebSocket-Key");
    int status = gw__ws_handshake_check(gw_req_header(r, MHD_HTTP_HEADER_UPGRADE),
                                        gw_req_header(r, MHD_HTTP_HEADER_CONNECTION),
                                        gw_req_header(r, "Sec-WebSocket-Version"), key, &why);
    if (status) {
        gw_req_reply_error(r, status, "%s", why);
        gw_req_reply_header(r, "Sec-WebSocket-Version", "13");
        return false;
    }
    pthread_mutex_lock(&ws->mu);
    bool shutting = ws->shutting;
    pthread_mutex_unlock(&ws->mu);
    if (shutting || gw_req_stopping(r)) {
        gw_req_reply_error(r, 503, "the gateway is stopping");
        return false;
    }
    if (gw__ws_accept_key(key, accept) != 0) {
        gw_req_reply_error(r, 500, "internal error: cannot compute Sec-WebSocket-Accept");
        return false;
    }
    return true;
}

/* ws_reply answers r with 101 and hands tap (taken; NULL: out of memory)
 * to the upgrade that follows. */
static void ws_reply(gw_ws *ws, gw_req *r, gw_sse_tap *tap, const char *accept)
{
    ws_pending *p = tap ? malloc(sizeof *p) : NULL;
    struct MHD_Response *resp = p ? MHD_create_response_for_upgrade(ws_upgraded, p) : NULL;
    if (!resp) {
        free(p);
        gw_sse_tap_free(tap);
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    p->ws = ws;
    p->tap = tap;
    gw_req_on_done(r, ws_pending_free, p);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
    MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
    sh_log_debug("ws_open", "rid=%s", gw_req_request_id(r));
    gw_req_reply_upgrade(r, resp);
}

void gw_ws_open_events(gw_ws *ws, gw_req *r, uint64_t types)
{
    char accept[GW__WS_ACCEPT_LEN + 1];
    gw_sse_tap *tap = NULL;
    if (!ws_handshake_ok(ws, r, accept))
        return;
    gw_slot *slot = gw_sse_admit(ws->sse, r);
    if (!slot)
        return;
    if (gw_sse_tap_new(ws->sse, slot, types, ws_wake, ws, &tap) != SH_OK)
        tap = NULL;
    ws_reply(ws, r, tap, accept);
}

void gw_ws_open_mail(gw_ws *ws, gw_req *r)
{
    char accept[GW__WS_ACCEPT_LEN + 1], last[GW_SSE_MAIL_ID_MAX];
    gw_sse_tap *tap = NULL;
    if (!gw_sse_mail_last(r, last, sizeof last)) {
        gw_req_reply_error(r, 400, "invalid lastEventId: an event id is <ms>-<seq>");
        return;
    }
    if (!ws_handshake_ok(ws, r, accept))
        return;
    gw_slot *slot = gw_sse_admit(ws->sse, r);
    if (!slot)
        return;
    if (gw_sse_tap_mail(ws->sse, slot, gw_req_param(r), last, ws_wake, ws, &tap) != SH_OK)
        tap = NULL;
    ws_reply(ws, r, tap, accept);
}

int gw_ws_new(gw_sse *sse, int64_t ping_ms, int64_t pong_ms, gw_ws **out, sh_error *err)
{
    *out = NULL;
    gw_ws *ws = calloc(1, sizeof *ws);
    if (!ws)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    ws->sse = sse;
    ws->ping_ms = ping_ms;
    ws->pong_ms = pong_ms;
    pthread_mutex_init(&ws->mu, NULL);
    ws->ep = epoll_create1(EPOLL_CLOEXEC);
    ws->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (ws->ep < 0 || ws->efd < 0 || epoll_ctl(ws->ep, EPOLL_CTL_ADD, ws->efd, &ev) != 0 ||
        pthread_create(&ws->thread, NULL, ws_main, ws) != 0) {
        gw_ws_free(ws);
        return sh_error_set(err, SH_EINTERNAL, "cannot start the WebSocket thread: %s",
                            strerror(errno));
    }
    ws->started = true;
    *out = ws;
    return SH_OK;
}

void gw_ws_shutdown(gw_ws *ws)
{
    if (!ws)
        return;
    pthread_mutex_lock(&ws->mu);
    ws->shutting = true;
    pthread_mutex_unlock(&ws->mu);
    ws_wake(ws);
    if (ws->started)
        pthread_join(ws->thread, NULL);
    ws->started = false;
}

void gw_ws_free(gw_ws *ws)
{
    if (!ws)
        return;
    gw_ws_shutdown(ws);
    if (ws->ep >= 0)
        close(ws->ep);
    if (ws->efd >= 0)
        close(ws->efd);
    pthread_mutex_destroy(&ws->mu);
    free(ws);
}
