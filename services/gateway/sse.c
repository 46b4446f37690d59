/* sse.c - Server-Sent Events streams: each stream's buffer and its MHD
 * callback response, the registry of streams by record id, and the life
 * cycle of the whole (sse_feed.c feeds the streams). Locking and ownership
 * are described in gw_sse_int.h.
 *
 * A suspended connection is not watched by MHD, so a client that leaves
 * would only be noticed at the next heartbeat. Each stream's socket is
 * therefore also watched (epoll, on a duplicate descriptor) by the timer
 * thread, which ends the stream as soon as the client hangs up. */
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "gw_metrics.h"
#include "gw_sse_int.h"
#include "shared/log.h"

/* ---- streams ------------------------------------------------------------- */

void gw_stream_ref(gw_stream *st)
{
    atomic_fetch_add(&st->refs, 1);
}

void gw_stream_unref(gw_stream *st)
{
    if (atomic_fetch_sub(&st->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&st->mu);
    sh_buf_fini(&st->out);
    free(st);
}

void gw_wake_init(gw_wake *w)
{
    w->v = w->inl;
    w->n = 0;
    w->cap = sizeof w->inl / sizeof w->inl[0];
}

void gw_wake_add(gw_wake *w, gw_stream *st)
{
    if (w->n == w->cap) {
        size_t cap = w->cap * 2;
        gw_stream **v = malloc(cap * sizeof *v);
        if (!v) {
            /* Resume now rather than never; the stream lock is not held. */
            MHD_resume_connection(st->conn);
            return;
        }
        memcpy(v, w->v, w->n * sizeof *v);
        if (w->v != w->inl)
            free(w->v);
        w->v = v;
        w->cap = cap;
    }
    gw_stream_ref(st);
    w->v[w->n++] = st;
}

void gw_wake_run(gw_wake *w)
{
    for (size_t i = 0; i < w->n; i++) {
        MHD_resume_connection(w->v[i]->conn);
        gw_stream_unref(w->v[i]);
    }
    if (w->v != w->inl)
        free(w->v);
    gw_wake_init(w);
}

bool gw_stream_push_locked(gw_stream *st, const char *text, size_t len)
{
    if (st->closed || st->failed)
        return false;
    if (st->off && st->off * 2 >= st->out.len) {
        memmove(st->out.data, st->out.data + st->off, st->out.len - st->off);
        st->out.len -= st->off;
        st->off = 0;
        st->out.data[st->out.len] = '\0';
    }
    if (st->out.len + len > SSE_MAX_BUFFER || sh_buf_append(&st->out, text, len) != SH_OK) {
        /* A client this far behind gets closed; it reconnects with its
         * Last-Event-ID and receives the current record. */
        sh_log_warn("sse_overflow", "id=%s stream dropped: %zu bytes unread", st->id,
                    st->out.len - st->off);
        st->failed = true;
    }
    if (!st->suspended)
        return false;
    st->suspended = false;
    return true;
}

void gw_stream_push(gw_stream *st, const char *text, size_t len, gw_wake *w)
{
    pthread_mutex_lock(&st->mu);
    bool wake = !st->finishing && gw_stream_push_locked(st, text, len);
    pthread_mutex_unlock(&st->mu);
    if (wake)
        gw_wake_add(w, st);
}

void gw_stream_offer(gw_stream *st, int64_t version, const char *created, const char *text,
                     size_t len, bool snapshot, gw_wake *w)
{
    pthread_mutex_lock(&st->mu);
    bool send;
    if (st->finishing || st->closed)
        send = false;
    else if (created && st->tomb[0] && strcmp(created, st->tomb) <= 0)
        send = false; /* the record deleted since, read before the delete */
    else if (snapshot && !st->sent_record)
        send = version != st->last; /* equal to Last-Event-ID: the client has it */
    else if (created && st->created[0] && strcmp(created, st->created) != 0)
        send = strcmp(created, st->created) > 0; /* recreated: versions restart */
    else
        send = version > st->last;
    bool wake = false;
    if (send) {
        wake = gw_stream_push_locked(st, text, len);
        st->last = version;
        st->sent_record = true;
        snprintf(st->created, sizeof st->created, "%s", created ? created : "");
        gw_metrics_sse_event_sent();
    }
    pthread_mutex_unlock(&st->mu);
    if (wake)
        gw_wake_add(w, st);
}

/* ---- the registry ---------------------------------------------------------- */

static size_t sse_hash(const char *id)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (size_t)(h & (SSE_BUCKETS - 1));
}

gw_topic *gw_sse_topic_find(gw_sse *s, const char *id)
{
    for (gw_topic *t = s->buckets[sse_hash(id)]; t; t = t->hnext)
        if (strcmp(t->id, id) == 0)
            return t;
    return NULL;
}

static void sse_topic_remove(gw_sse *s, gw_topic *t)
{
    gw_topic **pp = &s->buckets[sse_hash(t->id)];
    while (*pp != t)
        pp = &(*pp)->hnext;
    *pp = t->hnext;
    free(t);
}

void gw_sse_unwatch(gw_sse *s, gw_stream *st)
{
    if (st->ep_fd < 0)
        return;
    epoll_ctl(s->ep, EPOLL_CTL_DEL, st->ep_fd, NULL);
    close(st->ep_fd);
    st->ep_fd = -1;
    st->retired_next = s->retired;
    s->retired = st;
}

/* sse_watch starts watching the socket of st's connection (registry lock
 * held); without it a hang-up is noticed at the next heartbeat. */
static void sse_watch(gw_sse *s, gw_stream *st)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(st->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci || s->ep < 0)
        return;
    int fd = fcntl(ci->connect_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return;
    struct epoll_event ev = {.events = EPOLLRDHUP, .data.ptr = st};
    if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        return;
    }
    gw_stream_ref(st);
    st->ep_fd = fd;
}

void gw_sse_retired_drain(gw_sse *s)
{
    pthread_mutex_lock(&s->mu);
    gw_stream *st = s->retired;
    s->retired = NULL;
    pthread_mutex_unlock(&s->mu);
    while (st) {
        gw_stream *next = st->retired_next;
        gw_stream_unref(st);
        st = next;
    }
}

static void sse_unregister(gw_sse *s, gw_stream *st)
{
    pthread_mutex_lock(&s->mu);
    gw_sse_unwatch(s, st);
    if (st->registered) {
        gw_topic *t = st->topic;
        if (st->prev)
            st->prev->next = st->next;
        else
            t->streams = st->next;
        if (st->next)
            st->next->prev = st->prev;
        st->registered = false;
        st->topic = NULL;
        if (!t->streams)
            sse_topic_remove(s, t);
        s->nstreams--;
        gw_metrics_sse_clients_add(-1);
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---- the MHD response -------------------------------------------------------- */

static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    gw_stream *st = cls;
    pthread_mutex_lock(&st->mu);
    size_t avail = st->out.len - st->off;
    if (avail) {
        size_t n = avail < max ? avail : max;
        memcpy(buf, st->out.data + st->off, n);
        st->off += n;
        if (st->off == st->out.len) {
            sh_buf_reset(&st->out);
            st->off = 0;
        }
        pthread_mutex_unlock(&st->mu);
        return (ssize_t)n;
    }
    if (st->failed) {
        pthread_mutex_unlock(&st->mu);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (st->finishing) {
        pthread_mutex_unlock(&st->mu);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    st->suspended = true;
    MHD_suspend_connection(st->conn);
    pthread_mutex_unlock(&st->mu);
    return 0;
}

static void sse_free_cb(void *cls)
{
    gw_stream *st = cls;
    sse_unregister(st->sse, st);
    pthread_mutex_lock(&st->mu);
    st->closed = true;
    st->suspended = false;
    pthread_mutex_unlock(&st->mu);
    gw_stream_unref(st);
}

static bool sse_parse_last_id(const char *s, int64_t *out)
{
    if (!s || !*s)
        return false;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return true;
}

void gw_sse_open(gw_sse *s, gw_req *r)
{
    static const char retry[] = "retry: 2000\n\n";
    static const char bye[] = "event: shutdown\ndata: {}\n\n";
    const char *id = gw_req_param(r);
    gw_stream *st = calloc(1, sizeof *st);
    if (!st) {
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    atomic_init(&st->refs, 1);
    pthread_mutex_init(&st->mu, NULL);
    st->sse = s;
    st->conn = gw_req_connection(r);
    st->ep_fd = -1;
    snprintf(st->id, sizeof st->id, "%s", id);
    sh_buf_init(&st->out);
    int64_t last;
    if (sse_parse_last_id(gw_req_header(r, "Last-Event-ID"), &last) ||
        sse_parse_last_id(gw_req_query(r, "lastEventId"), &last))
        st->last = last;
    sh_buf_append(&st->out, retry, sizeof retry - 1);

    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_BLOCK, sse_reader, st, sse_free_cb);
    if (!resp) {
        gw_stream_unref(st);
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");

    /* Registered before the first read, so no update can fall in between. */
    pthread_mutex_lock(&s->mu);
    bool shutting = s->shutting;
    gw_topic *t = shutting ? NULL : gw_sse_topic_find(s, id);
    if (!shutting && !t && (t = calloc(1, sizeof *t))) {
        snprintf(t->id, sizeof t->id, "%s", id);
        size_t b = sse_hash(id);
        t->hnext = s->buckets[b];
        s->buckets[b] = t;
    }
    if (t) {
        st->topic = t;
        st->next = t->streams;
        if (t->streams)
            t->streams->prev = st;
        t->streams = st;
        st->registered = true;
        sse_watch(s, st);
        s->nstreams++;
        gw_metrics_sse_clients_add(1);
    }
    pthread_mutex_unlock(&s->mu);

    if (!t) {
        sh_buf_append(&st->out, bye, sizeof bye - 1);
        st->finishing = true;
    } else {
        gw_sse_snapshot_start(s, st);
    }
    sh_log_debug("sse_open", "id=%s rid=%s last=%lld", id, gw_req_request_id(r),
                 (long long)st->last);
    gw_req_reply_stream(r, resp);
}

/* ---- life cycle ----------------------------------------------------------------- */

int gw_sse_new(const gw_config *cfg, sh_rpc_client *rpc, gw_sse **out, sh_error *err)
{
    *out = NULL;
    gw_sse *s = calloc(1, sizeof *s);
    if (!s)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    s->cfg = cfg;
    s->rpc = rpc;
    pthread_mutex_init(&s->mu, NULL);
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int rc = SH_OK;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (s->ep < 0 || s->stop_fd < 0 || epoll_ctl(s->ep, EPOLL_CTL_ADD, s->stop_fd, &ev) != 0) {
        rc = sh_error_set(err, SH_EINTERNAL, "cannot set up epoll for event streams");
        goto fail;
    }
    rc = sh_sub_new(cfg->events_url, 0, &s->sub, err);
    if (rc != SH_OK)
        goto fail;
    if ((rc = sh_sub_subscribe(s->sub, SH_TOPIC_PROGRESS)) != SH_OK) {
        sh_error_set(err, rc, "cannot subscribe to %s events", SH_TOPIC_PROGRESS);
        goto fail;
    }
    if (pthread_create(&s->sub_thread, NULL, gw_sse_sub_main, s) != 0) {
        rc = sh_error_set(err, SH_EINTERNAL, "cannot start the event subscriber thread");
        goto fail;
    }
    s->sub_started = true;
    if (pthread_create(&s->timer_thread, NULL, gw_sse_timer_main, s) != 0) {
        rc = sh_error_set(err, SH_EINTERNAL, "cannot start the event stream timer thread");
        goto fail;
    }
    s->timer_started = true;
    *out = s;
    return SH_OK;
fail:
    gw_sse_free(s);
    return rc;
}

static void sse_stop_threads(gw_sse *s)
{
    atomic_store(&s->stop, true);
    uint64_t one = 1;
    if (s->stop_fd >= 0 && write(s->stop_fd, &one, sizeof one) < 0)
        sh_log_warn("sse_stop", "cannot wake the timer thread; it stops within %d ms", SSE_TICK_MS);
    if (s->timer_started)
        pthread_join(s->timer_thread, NULL);
    if (s->sub_started)
        pthread_join(s->sub_thread, NULL);
    s->timer_started = s->sub_started = false;
}

void gw_sse_shutdown(gw_sse *s)
{
    static const char bye[] = "event: shutdown\ndata: {}\n\n";
    if (!s)
        return;
    sse_stop_threads(s);
    gw_wake w;
    gw_wake_init(&w);
    pthread_mutex_lock(&s->mu);
    s->shutting = true;
    for (size_t b = 0; b < SSE_BUCKETS; b++)
        for (gw_topic *t = s->buckets[b]; t; t = t->hnext)
            for (gw_stream *st = t->streams; st; st = st->next) {
                pthread_mutex_lock(&st->mu);
                bool wake = !st->finishing && gw_stream_push_locked(st, bye, sizeof bye - 1);
                st->finishing = true;
                pthread_mutex_unlock(&st->mu);
                if (wake)
                    gw_wake_add(&w, st);
            }
    pthread_mutex_unlock(&s->mu);
    gw_wake_run(&w);
}

void gw_sse_free(gw_sse *s)
{
    if (!s)
        return;
    sse_stop_threads(s);
    sh_sub_free(s->sub);
    gw_sse_retired_drain(s);
    /* Calls still in flight hold s; the RPC client is freed first, which
     * waits for them, so this loop only guards against misuse. */
    while (atomic_load(&s->pending) > 0) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (size_t b = 0; b < SSE_BUCKETS; b++) {
        gw_topic *t = s->buckets[b];
        while (t) {
            gw_topic *next = t->hnext;
            free(t);
            t = next;
        }
    }
    if (s->ep >= 0)
        close(s->ep);
    if (s->stop_fd >= 0)
        close(s->stop_fd);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
