/* sse_stream.c - one event stream: its buffer (filled by producers, emptied
 * by its MHD content reader), its references, the resumption of its
 * suspended connection, and the rules of what it may send (versions in
 * strictly increasing order, restarting after a delete or with a new
 * record). Locking is described in gw_sse_int.h. */
#define _GNU_SOURCE /* memmem */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_metrics.h"
#include "gw_sse_int.h"
#include "shared/log.h"

gw__sse_stream *gw__sse_stream_new(struct MHD_Connection *conn, const char *id, int64_t last)
{
    gw__sse_stream *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    atomic_init(&st->refs, 1);
    pthread_mutex_init(&st->mu, NULL);
    st->conn = conn;
    st->ep_fd = -1;
    st->cap = SSE_MAX_BUFFER;
    st->last = last;
    snprintf(st->id, sizeof st->id, "%s", id);
    sh_buf_init(&st->out);
    sh_buf_init(&st->mail_held);
    return st;
}

void gw__sse_stream_ref(gw__sse_stream *st)
{
    atomic_fetch_add(&st->refs, 1);
}

void gw__sse_stream_unref(gw__sse_stream *st)
{
    if (atomic_fetch_sub(&st->refs, 1) != 1)
        return;
    gw_slot_release(st->slot);
    pthread_mutex_destroy(&st->mu);
    sh_buf_fini(&st->out);
    sh_buf_fini(&st->mail_held);
    free(st);
}

/* sse_stream_resume wakes whoever reads st: its suspended MHD connection,
 * or a tap's reader (gw_sse_tap_new). */
static void sse_stream_resume(gw__sse_stream *st)
{
    if (st->wake)
        st->wake(st->wake_arg);
    else
        MHD_resume_connection(st->conn);
}

void gw__sse_wake_init(gw__sse_wake *w)
{
    w->v = w->inl;
    w->n = 0;
    w->cap = sizeof w->inl / sizeof w->inl[0];
}

void gw__sse_wake_add(gw__sse_wake *w, gw__sse_stream *st)
{
    if (w->n == w->cap) {
        size_t cap = w->cap * 2;
        gw__sse_stream **v = malloc(cap * sizeof *v);
        if (!v) {
            /* Resume now rather than never; the stream lock is not held. */
            sse_stream_resume(st);
            return;
        }
        memcpy(v, w->v, w->n * sizeof *v);
        if (w->v != w->inl)
            free(w->v);
        w->v = v;
        w->cap = cap;
    }
    gw__sse_stream_ref(st);
    w->v[w->n++] = st;
}

void gw__sse_wake_run(gw__sse_wake *w)
{
    for (size_t i = 0; i < w->n; i++) {
        sse_stream_resume(w->v[i]);
        gw__sse_stream_unref(w->v[i]);
    }
    if (w->v != w->inl)
        free(w->v);
    gw__sse_wake_init(w);
}

/* sse_stream_sent_end returns where the block partly read ends: what
 * must still go out for the client to see whole events. */
static size_t sse_stream_sent_end(const gw__sse_stream *st)
{
    if (!st->split)
        return st->off;
    size_t from = st->off ? st->off - 1 : 0;
    const char *end = memmem(st->out.data + from, st->out.len - from, "\n\n", 2);
    return end ? (size_t)(end - st->out.data) + 2 : st->out.len;
}

/* sse_stream_drop drops the blocks a record's stream has not begun to send;
 * the record is sent again at its next read, unless text, which follows, is
 * a newer one (gw__sse_stream_offer then notes its version). */
static void sse_stream_drop(gw__sse_stream *st)
{
    size_t keep = sse_stream_sent_end(st);
    sh_log_debug("sse_behind", "id=%s %zu unread bytes dropped", st->id, st->out.len - keep);
    st->out.len = keep;
    st->out.data[keep] = '\0';
    if (keep == st->off) {
        sh_buf_reset(&st->out);
        st->off = 0;
        st->split = false;
    }
    st->last = 0;
}

bool gw__sse_stream_push_locked(gw__sse_stream *st, const char *text, size_t len)
{
    if (st->closed || st->failed)
        return false;
    if (st->off && st->off * 2 >= st->out.len) {
        memmove(st->out.data, st->out.data + st->off, st->out.len - st->off);
        st->out.len -= st->off;
        st->off = 0;
        st->out.data[st->out.len] = '\0';
    }
    /* One event always fits an empty buffer; a mail stream replaying the
     * log may hold it all (up to SSE_MAX_BUFFER), since its client only
     * resumes from there. */
    size_t unread = st->out.len - st->off;
    size_t cap = st->mail_replaying && st->cap < SSE_MAX_BUFFER ? SSE_MAX_BUFFER : st->cap;
    if (unread && unread + len > cap) {
        if (st->types) {
            /* Events with ids: the client resumes after the last one it
             * got (a mail stream from the log, with nothing lost). */
            sh_log_warn("sse_overflow", "id=%s stream closed: %zu bytes unread", st->id,
                        st->out.len - st->off);
            st->failed = true;
        } else if (len && text[0] == ':') {
            len = 0; /* a comment to a client this far behind: not sent */
        } else {
            sse_stream_drop(st);
        }
    }
    if (!st->failed && len && sh_buf_append(&st->out, text, len) != SH_OK) {
        sh_log_warn("sse_overflow", "id=%s stream closed: out of memory", st->id);
        st->failed = true;
    }
    if (!st->suspended)
        return false;
    st->suspended = false;
    return true;
}

void gw__sse_stream_push(gw__sse_stream *st, const char *text, size_t len, gw__sse_wake *w)
{
    pthread_mutex_lock(&st->mu);
    bool wake = !st->finishing && gw__sse_stream_push_locked(st, text, len);
    pthread_mutex_unlock(&st->mu);
    if (wake)
        gw__sse_wake_add(w, st);
}

void gw__sse_stream_note(gw__sse_stream *st, const char *text, size_t len, gw__sse_wake *w)
{
    pthread_mutex_lock(&st->mu);
    bool wake = !st->sent_record && !st->finishing && gw__sse_stream_push_locked(st, text, len);
    pthread_mutex_unlock(&st->mu);
    if (wake)
        gw__sse_wake_add(w, st);
}

void gw__sse_stream_offer(gw__sse_stream *st, int64_t version, const char *created,
                          const char *text, size_t len, bool snapshot, gw__sse_wake *w)
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
        wake = gw__sse_stream_push_locked(st, text, len);
        st->last = version;
        st->sent_record = true;
        snprintf(st->created, sizeof st->created, "%s", created ? created : "");
        gw_metrics_sse_event_sent();
    }
    pthread_mutex_unlock(&st->mu);
    if (wake)
        gw__sse_wake_add(w, st);
}

void gw__sse_stream_deleted(gw__sse_stream *st, const char *text, size_t len, gw__sse_wake *w)
{
    pthread_mutex_lock(&st->mu);
    bool wake = !st->finishing && gw__sse_stream_push_locked(st, text, len);
    if (st->created[0])
        memcpy(st->tomb, st->created, sizeof st->tomb);
    st->created[0] = '\0';
    st->last = 0;
    pthread_mutex_unlock(&st->mu);
    if (wake)
        gw__sse_wake_add(w, st);
    gw_metrics_sse_event_sent();
}

void gw__sse_stream_finish(gw__sse_stream *st, const char *text, size_t len, gw__sse_wake *w)
{
    pthread_mutex_lock(&st->mu);
    bool wake = !st->finishing && gw__sse_stream_push_locked(st, text, len);
    st->finishing = true;
    pthread_mutex_unlock(&st->mu);
    if (wake)
        gw__sse_wake_add(w, st);
}

void gw__sse_stream_fail(gw__sse_stream *st, gw__sse_wake *w)
{
    pthread_mutex_lock(&st->mu);
    bool wake = false;
    if (!st->closed) {
        st->failed = true; /* the reader ends the response; MHD closes */
        wake = st->suspended;
        st->suspended = false;
    }
    pthread_mutex_unlock(&st->mu);
    if (wake)
        gw__sse_wake_add(w, st);
}

void gw__sse_stream_close(gw__sse_stream *st)
{
    pthread_mutex_lock(&st->mu);
    st->closed = true;
    st->suspended = false;
    pthread_mutex_unlock(&st->mu);
}

ssize_t gw__sse_stream_read(gw__sse_stream *st, char *buf, size_t max)
{
    pthread_mutex_lock(&st->mu);
    size_t avail = st->out.len - st->off;
    if (avail) {
        size_t n = avail < max ? avail : max;
        memcpy(buf, st->out.data + st->off, n);
        st->off += n;
        /* Every block ends in a blank line, which no block holds inside. */
        st->split = !(st->off >= 2 && st->out.data[st->off - 1] == '\n' &&
                      st->out.data[st->off - 2] == '\n');
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
    if (!st->wake)
        MHD_suspend_connection(st->conn);
    pthread_mutex_unlock(&st->mu);
    return 0;
}
