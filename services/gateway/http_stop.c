/* http_stop.c - the orderly stop of the HTTP server (see gw_http.h and the
 * README's Stopping): the activity it waits on (open connections, the last
 * moment anything happened), the socket filter that refuses new
 * handshakes, the accept queue and the drain. */
#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "gw_http_int.h"
#include "gw_metrics.h"
#include "shared/log.h"

/* Stopping (gw_http_drain): how long handshakes under way get to land in
 * the accept queue once new ones are dropped; how long every open connection
 * must have been idle before the rest are closed; how long requests and
 * streams get to finish before new service calls are refused. */
#define HTTP_STOP_SETTLE_MS 200
#define HTTP_STOP_QUIET_MS  200
#define HTTP_STOP_FINISH_MS 3000
#define HTTP_STOP_POLL_MS   5

void gw__http_touch(gw_http *h)
{
    atomic_store(&h->last_activity_ns, gw_metrics_now_ns());
}

void gw__http_conn_notify(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode toe)
{
    gw_http *h = cls;
    atomic_fetch_add(&h->conns, toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
    gw__http_touch(h);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        gw__http_head_open(&h->heads, conn, socket_ctx);
    else
        gw__http_head_close(&h->heads, socket_ctx);
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
