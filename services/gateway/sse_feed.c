/* sse_feed.c - what feeds the event streams: the subscriber thread (events
 * of the progress service), reads of records (a new stream's snapshot, and
 * re-reads when events may have been lost) and the timer thread (heartbeats,
 * re-reads, clients that hung up). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "gw_json.h"
#include "gw_metrics.h"
#include "gw_sse_int.h"
#include "shared/log.h"
#include "shared/util.h"

/* ---- event text ------------------------------------------------------------ */

static int sse_progress_text(sh_buf *b, int64_t version, const sh_val *record)
{
    int rc = sh_buf_printf(b, "event: progress\nid: %lld\ndata: ", (long long)version);
    if (rc == SH_OK)
        rc = gw_json_write(record, b);
    if (rc == SH_OK)
        rc = sh_buf_append(b, "\n\n", 2);
    return rc;
}

static const char *sse_created(const sh_val *record)
{
    size_t len;
    const char *c = sh_val_get_str(record, "createdAt", &len);
    return c && len < SSE_TS_MAX ? c : NULL;
}

/* ---- reads of the record --------------------------------------------------- */

static sh_val *sse_id_args(const char *id)
{
    sh_val *args = sh_val_new_map();
    if (args && sh_val_set_cstr(args, "id", sh_val_new_cstr(id)) != SH_OK) {
        sh_val_free(args);
        return NULL;
    }
    return args;
}

typedef struct sse_reread {
    gw_sse *s;
    char id[SH_ID_MAX + 1];
} sse_reread;

static void sse_reread_start(gw_sse *s, gw_topic *t);

/* sse_topic_record hands a record read or received for topic t to its
 * streams (registry lock held). */
static void sse_topic_record(gw_topic *t, int64_t version, const sh_val *record, const char *text,
                             size_t len, gw_wake *w)
{
    const char *created = sse_created(record);
    if (created && t->created[0] && strcmp(created, t->created) > 0)
        t->highest = 0; /* a new record under the same id */
    if (version > t->highest) {
        t->highest = version;
        snprintf(t->created, sizeof t->created, "%s", created ? created : "");
    }
    for (gw_stream *st = t->streams; st; st = st->next)
        gw_stream_offer(st, version, created, text, len, false, w);
}

static void sse_reread_done(void *arg, int rc, sh_val *result, const sh_error *err)
{
    sse_reread *rr = arg;
    gw_sse *s = rr->s;
    gw_wake w;
    gw_wake_init(&w);
    sh_buf text;
    sh_buf_init(&text);
    const sh_val *ver = rc == SH_OK ? sh_val_get(result, "version") : NULL;
    bool have = ver && sh_val_type_of(ver) == SH_VAL_INT &&
                sse_progress_text(&text, sh_val_int(ver), result) == SH_OK;
    if (rc != SH_OK && rc != SH_ENOTFOUND)
        sh_log_debug("sse_reread", "id=%s: %s", rr->id, err ? err->msg : sh_strerror(rc));
    pthread_mutex_lock(&s->mu);
    gw_topic *t = gw_sse_topic_find(s, rr->id);
    if (t) {
        t->reread_inflight = false;
        if (have)
            sse_topic_record(t, sh_val_int(ver), result, text.data, text.len, &w);
        if (t->reread_again && !s->shutting) {
            t->reread_again = false;
            sse_reread_start(s, t);
        }
    }
    pthread_mutex_unlock(&s->mu);
    gw_wake_run(&w);
    sh_buf_fini(&text);
    sh_val_free(result);
    free(rr);
    atomic_fetch_sub(&s->pending, 1);
}

/* sse_reread_start issues a progress.get for topic t unless one is in
 * flight, in which case another follows it (registry lock held). */
static void sse_reread_start(gw_sse *s, gw_topic *t)
{
    if (t->reread_inflight) {
        t->reread_again = true;
        return;
    }
    t->dirty = false;
    sse_reread *rr = malloc(sizeof *rr);
    sh_val *args = sse_id_args(t->id);
    if (!rr || !args) {
        free(rr);
        sh_val_free(args);
        return;
    }
    rr->s = s;
    snprintf(rr->id, sizeof rr->id, "%s", t->id);
    atomic_fetch_add(&s->pending, 1);
    int rc =
        sh_rpc_call_async(s->rpc, "progress.get", args, SSE_READ_TIMEOUT_MS, sse_reread_done, rr);
    sh_val_free(args);
    if (rc != SH_OK) {
        atomic_fetch_sub(&s->pending, 1);
        free(rr);
        return;
    }
    t->reread_inflight = true;
}

static void sse_snapshot_done(void *arg, int rc, sh_val *result, const sh_error *err)
{
    gw_stream *st = arg;
    gw_sse *s = st->sse;
    gw_wake w;
    gw_wake_init(&w);
    const sh_val *ver = rc == SH_OK ? sh_val_get(result, "version") : NULL;
    if (ver && sh_val_type_of(ver) == SH_VAL_INT) {
        sh_buf text;
        sh_buf_init(&text);
        if (sse_progress_text(&text, sh_val_int(ver), result) == SH_OK)
            gw_stream_offer(st, sh_val_int(ver), sse_created(result), text.data, text.len, true,
                            &w);
        sh_buf_fini(&text);
    } else {
        static const char waiting[] = ": waiting for session\n\n";
        static const char unavailable[] = ": progress service unavailable, retrying\n\n";
        bool missing = rc == SH_ENOTFOUND;
        if (!missing)
            sh_log_warn("sse_snapshot", "id=%s: %s", st->id, err ? err->msg : sh_strerror(rc));
        pthread_mutex_lock(&st->mu);
        bool wake = !st->sent_record && !st->finishing &&
                    gw_stream_push_locked(st, missing ? waiting : unavailable,
                                          missing ? sizeof waiting - 1 : sizeof unavailable - 1);
        pthread_mutex_unlock(&st->mu);
        if (wake)
            gw_wake_add(&w, st);
        if (!missing) {
            /* Read again soon, from the timer thread. */
            pthread_mutex_lock(&s->mu);
            if (st->registered) {
                st->topic->dirty = true;
                st->topic->last_event_ms = sh_mono_ms();
            }
            pthread_mutex_unlock(&s->mu);
        }
    }
    gw_wake_run(&w);
    sh_val_free(result);
    gw_stream_unref(st);
    atomic_fetch_sub(&s->pending, 1);
}

void gw_sse_snapshot_start(gw_sse *s, gw_stream *st)
{
    static const char unavailable[] = ": progress service unavailable, retrying\n\n";
    sh_val *args = sse_id_args(st->id);
    gw_stream_ref(st);
    atomic_fetch_add(&s->pending, 1);
    if (!args || sh_rpc_call_async(s->rpc, "progress.get", args, SSE_READ_TIMEOUT_MS,
                                   sse_snapshot_done, st) != SH_OK) {
        atomic_fetch_sub(&s->pending, 1);
        gw_stream_unref(st);
        pthread_mutex_lock(&st->mu);
        gw_stream_push_locked(st, unavailable, sizeof unavailable - 1);
        pthread_mutex_unlock(&st->mu);
    }
    sh_val_free(args);
}

/* ---- events from the progress service -------------------------------------- */

static void sse_event(gw_sse *s, const sh_val *ev)
{
    size_t idlen;
    const char *kind = sh_val_get_str(ev, "kind", NULL);
    const char *id = sh_val_get_str(ev, "id", &idlen);
    if (!kind || !id || !sh_id_valid(id, idlen))
        return;
    gw_wake w;
    gw_wake_init(&w);
    sh_buf text;
    sh_buf_init(&text);
    pthread_mutex_lock(&s->mu);
    gw_topic *t = gw_sse_topic_find(s, id);
    if (!t || s->shutting)
        goto done;
    if (strcmp(kind, "update") == 0) {
        const sh_val *ver = sh_val_get(ev, "version");
        const sh_val *record = sh_val_get(ev, "record");
        if (!ver || sh_val_type_of(ver) != SH_VAL_INT || sh_val_type_of(record) != SH_VAL_MAP)
            goto done;
        int64_t version = sh_val_int(ver);
        const char *created = sse_created(record);
        bool same_record = !created || !t->created[0] || strcmp(created, t->created) == 0;
        bool gap = same_record && t->highest > 0 && version > t->highest + 1;
        t->dirty = true;
        t->last_event_ms = sh_mono_ms();
        if (sse_progress_text(&text, version, record) != SH_OK)
            goto done;
        sse_topic_record(t, version, record, text.data, text.len, &w);
        if (gap) {
            /* Events in between were lost; this one carries the whole
             * record, and a read now catches a later loss as well. */
            gw_metrics_sse_gap_reread();
            sse_reread_start(s, t);
        }
    } else if (strcmp(kind, "log") == 0) {
        const sh_val *entry = sh_val_get(ev, "entry");
        if (!entry || sh_buf_puts(&text, "event: log\ndata: ") != SH_OK ||
            gw_json_write(entry, &text) != SH_OK || sh_buf_append(&text, "\n\n", 2) != SH_OK)
            goto done;
        for (gw_stream *st = t->streams; st; st = st->next) {
            gw_stream_push(st, text.data, text.len, &w);
            gw_metrics_sse_event_sent();
        }
    } else if (strcmp(kind, "delete") == 0) {
        if (sh_buf_puts(&text, "event: deleted\ndata: {\"sessionId\":") != SH_OK ||
            gw_json_write_str(&text, id, idlen) != SH_OK || sh_buf_puts(&text, "}\n\n") != SH_OK)
            goto done;
        t->highest = 0;
        t->created[0] = '\0';
        for (gw_stream *st = t->streams; st; st = st->next) {
            pthread_mutex_lock(&st->mu);
            bool wake = !st->finishing && gw_stream_push_locked(st, text.data, text.len);
            if (st->created[0])
                memcpy(st->tomb, st->created, sizeof st->tomb);
            st->created[0] = '\0';
            st->last = 0;
            pthread_mutex_unlock(&st->mu);
            if (wake)
                gw_wake_add(&w, st);
            gw_metrics_sse_event_sent();
        }
    }
done:
    pthread_mutex_unlock(&s->mu);
    gw_wake_run(&w);
    sh_buf_fini(&text);
}

void *gw_sse_sub_main(void *arg)
{
    gw_sse *s = arg;
    while (!atomic_load(&s->stop)) {
        char *topic = NULL;
        sh_val *payload = NULL;
        int rc = sh_sub_recv(s->sub, SSE_RECV_MS, &topic, &payload);
        if (rc == SH_OK)
            sse_event(s, payload);
        else if (rc == SH_ECLOSED)
            break;
        else if (rc == SH_EPROTO)
            sh_log_warn("sse_event", "undecodable event dropped");
        free(topic);
        sh_val_free(payload);
    }
    return NULL;
}

/* ---- timer: heartbeats and re-reads ------------------------------------------ */

static void sse_tick(gw_sse *s, bool heartbeat)
{
    char text[64];
    size_t len = 0;
    if (heartbeat) {
        char ts[SH_ISO_LEN];
        sh_iso8601(sh_now_ms(), ts);
        len = (size_t)snprintf(text, sizeof text, ": heartbeat %s\n\n", ts);
    }
    int64_t now = sh_mono_ms();
    gw_wake w;
    gw_wake_init(&w);
    pthread_mutex_lock(&s->mu);
    for (size_t b = 0; b < SSE_BUCKETS && !s->shutting; b++) {
        for (gw_topic *t = s->buckets[b]; t; t = t->hnext) {
            /* On every heartbeat each record is read again: a lost last
             * event leaves no trace a subscriber could notice. Between
             * heartbeats, a record whose events stopped a moment ago is. */
            if (heartbeat || (t->dirty && now - t->last_event_ms >= SSE_QUIET_MS))
                sse_reread_start(s, t);
            if (heartbeat)
                for (gw_stream *st = t->streams; st; st = st->next)
                    gw_stream_push(st, text, len, &w);
        }
    }
    pthread_mutex_unlock(&s->mu);
    gw_wake_run(&w);
}

/* sse_hangups ends the streams whose clients left (timer thread). */
static void sse_hangups(gw_sse *s, const struct epoll_event *evs, int n)
{
    gw_wake w;
    gw_wake_init(&w);
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < n; i++) {
        gw_stream *st = evs[i].data.ptr;
        if (!st || st->ep_fd < 0)
            continue; /* the stop event, or unwatched while this batch came */
        gw_sse_unwatch(s, st);
        pthread_mutex_lock(&st->mu);
        bool wake = false;
        if (!st->closed) {
            st->failed = true; /* the reader ends the response; MHD closes */
            wake = st->suspended;
            st->suspended = false;
        }
        pthread_mutex_unlock(&st->mu);
        if (wake)
            gw_wake_add(&w, st);
    }
    pthread_mutex_unlock(&s->mu);
    gw_wake_run(&w);
}

void *gw_sse_timer_main(void *arg)
{
    gw_sse *s = arg;
    int64_t period = s->cfg->heartbeat_s * 1000;
    int64_t next_beat = sh_mono_ms() + period;
    int64_t next_tick = sh_mono_ms() + SSE_TICK_MS;
    struct epoll_event evs[64];
    while (!atomic_load(&s->stop)) {
        gw_sse_retired_drain(s);
        int64_t wait = next_tick - sh_mono_ms();
        int n = epoll_wait(s->ep, evs, 64, wait > 0 ? (int)wait : 0);
        if (atomic_load(&s->stop))
            break;
        if (n > 0)
            sse_hangups(s, evs, n);
        int64_t now = sh_mono_ms();
        if (now < next_tick)
            continue;
        bool beat = now >= next_beat;
        if (beat)
            next_beat = now + period;
        next_tick = now + SSE_TICK_MS;
        sse_tick(s, beat);
    }
    return NULL;
}
