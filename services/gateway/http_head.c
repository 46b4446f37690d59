/* http_head.c - the deadline of request heads. libmicrohttpd's own timeout
 * is one of idleness: a client sending a byte now and then (slowloris) keeps
 * a connection for as long as it likes, and it needs no token, since tokens
 * are read from a whole head. Each connection is armed when it opens and
 * again when a request on it ends; the first call of a request (its head is
 * in) disarms it; a thread shuts down the socket of a connection armed for
 * longer than GATEWAY_HEAD_TIMEOUT, which makes libmicrohttpd close it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "gw_http_int.h"
#include "gw_metrics.h"
#include "shared/log.h"

#define HTTP_HEAD_POLL_MS 100 /* the deadline thread looks this often at most */

/* One connection (MHD's socket context). Armed: linked into the server's
 * list, oldest first; every field is under the list's lock. */
struct gw__http_conn {
    gw__http_conn *prev, *next;
    uint64_t deadline_ns;
    int fd;
    bool armed;
};

static void http_head_unlink(gw__http_heads *hs, gw__http_conn *c)
{
    if (!c->armed)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        hs->first = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        hs->last = c->prev;
    c->prev = c->next = NULL;
    c->armed = false;
}

static void http_head_arm(gw__http_heads *hs, gw__http_conn *c)
{
    pthread_mutex_lock(&hs->mu);
    http_head_unlink(hs, c);
    c->deadline_ns = gw_metrics_now_ns() + hs->timeout_ns;
    c->prev = hs->last;
    if (hs->last)
        hs->last->next = c;
    else
        hs->first = c;
    hs->last = c;
    c->armed = true;
    pthread_mutex_unlock(&hs->mu);
}

void gw__http_head_open(gw__http_heads *hs, struct MHD_Connection *conn, void **socket_ctx)
{
    gw__http_conn *c = calloc(1, sizeof *c);
    *socket_ctx = c;
    if (!c)
        return; /* such a connection has the idle timeout only */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    c->fd = ci ? ci->connect_fd : -1;
    http_head_arm(hs, c);
}

void gw__http_head_close(gw__http_heads *hs, void **socket_ctx)
{
    gw__http_conn *c = *socket_ctx;
    if (!c)
        return;
    pthread_mutex_lock(&hs->mu);
    http_head_unlink(hs, c);
    pthread_mutex_unlock(&hs->mu);
    free(c);
    *socket_ctx = NULL;
}

static gw__http_conn *http_head_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void gw__http_head_received(gw__http_heads *hs, struct MHD_Connection *conn)
{
    gw__http_conn *c = http_head_of(conn);
    if (!c)
        return;
    pthread_mutex_lock(&hs->mu);
    http_head_unlink(hs, c);
    pthread_mutex_unlock(&hs->mu);
}

void gw__http_head_rearm(gw__http_heads *hs, struct MHD_Connection *conn)
{
    gw__http_conn *c = http_head_of(conn);
    if (c)
        http_head_arm(hs, c);
}

/* http_head_main cuts off the heads past their deadline. The socket is
 * shut down, not closed: it stays MHD's, whose next read sees the end and
 * closes the connection as any other. A connection closing meanwhile is
 * unlinked under the lock before MHD closes its socket. */
static void *http_head_main(void *arg)
{
    gw__http_heads *hs = arg;
    pthread_mutex_lock(&hs->mu);
    while (!hs->stop) {
        uint64_t now = gw_metrics_now_ns();
        unsigned cut = 0;
        while (hs->first && hs->first->deadline_ns <= now) {
            gw__http_conn *c = hs->first;
            http_head_unlink(hs, c);
            if (c->fd >= 0)
                shutdown(c->fd, SHUT_RDWR);
            cut++;
        }
        if (cut)
            sh_log_debug("head_timeout",
                         "closed %u connection(s) whose request head did not arrive within "
                         "GATEWAY_HEAD_TIMEOUT",
                         cut);
        uint64_t wait_ns = (uint64_t)HTTP_HEAD_POLL_MS * 1000000u;
        if (hs->first && hs->first->deadline_ns - now < wait_ns)
            wait_ns = hs->first->deadline_ns - now + 1000000u;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t at = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + wait_ns;
        ts.tv_sec = (time_t)(at / 1000000000u);
        ts.tv_nsec = (long)(at % 1000000000u);
        pthread_cond_timedwait(&hs->cond, &hs->mu, &ts);
    }
    pthread_mutex_unlock(&hs->mu);
    return NULL;
}

int gw__http_head_start(gw__http_heads *hs, long long timeout_s, sh_error *err)
{
    memset(hs, 0, sizeof *hs);
    hs->timeout_ns = (uint64_t)timeout_s * 1000000000u;
    pthread_mutex_init(&hs->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&hs->cond, &ca);
    pthread_condattr_destroy(&ca);
    hs->inited = true;
    int rc = pthread_create(&hs->thread, NULL, http_head_main, hs);
    if (rc != 0)
        return sh_error_set(err, SH_EINTERNAL, "cannot start the request head deadline: %s",
                            strerror(rc));
    hs->started = true;
    return SH_OK;
}

void gw__http_head_fini(gw__http_heads *hs)
{
    if (!hs->inited)
        return;
    if (hs->started) {
        pthread_mutex_lock(&hs->mu);
        hs->stop = true;
        pthread_cond_signal(&hs->cond);
        pthread_mutex_unlock(&hs->mu);
        pthread_join(hs->thread, NULL);
    }
    pthread_cond_destroy(&hs->cond);
    pthread_mutex_destroy(&hs->mu);
    hs->inited = false;
}
