/* sse_feed.c - what feeds the event streams: the subscriber thread (events
 * of the progress service) and reads of records (a new stream's snapshot,
 * and re-reads when events may have been lost, asked for by the events
 * themselves or by the timer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw_json.h"
#include "gw_metrics.h"
#include "gw_sse_int.h"
#include "shared/keys.h"
#include "shared/log.h"
#include "shared/util.h"

/* ---- event text ------------------------------------------------------------ */

static int sse_feed_progress_text(sh_buf *b, int64_t version, const sh_val *record)
{
    int rc = sh_buf_printf(b, "event: progress\nid: %lld\ndata: ", (long long)version);
    if (rc == SH_OK)
        rc = gw_json_write(record, b);
    if (rc == SH_OK)
        rc = sh_buf_append(b, "\n\n", 2);
    return rc;
}

static const char *sse_feed_created(const sh_val *record)
{
    size_t len;
    const char *c = sh_val_get_str(record, "createdAt", &len);
    return c && len < SSE_TS_MAX ? c : NULL;
}

/* ---- reads of the record --------------------------------------------------- */

static sh_val *sse_feed_id_args(const char *id)
{
    sh_val *args = sh_val_new_map();
    if (args && sh_val_set_cstr(args, "id", sh_val_new_cstr(id)) != SH_OK) {
        sh_val_free(args);
        return NULL;
    }
    return args;
}

/* A read in flight: of a topic's record (st NULL), or a new stream's. */
typedef struct sse_feed_read {
    gw__sse_feed *f;
    gw__sse_stream *st;
    char id[SH_ID_MAX + 1];
} sse_feed_read;

/* sse_feed_topic_record hands a record read or received for topic t to its
 * streams (registry lock held). */
static void sse_feed_topic_record(gw__sse_topic *t, int64_t version, const sh_val *record,
                                  const char *text, size_t len, gw__sse_wake *w)
{
    const char *created = sse_feed_created(record);
    if (created && t->created[0] && strcmp(created, t->created) > 0)
        t->highest = 0; /* a new record under the same id */
    if (version > t->highest) {
        t->highest = version;
        snprintf(t->created, sizeof t->created, "%s", created ? created : "");
    }
    for (gw__sse_stream *st = t->streams; st; st = st->next)
        gw__sse_stream_offer(st, version, created, text, len, false, w);
}

static void sse_feed_reread_done(void *arg, int rc, sh_val *result, const sh_error *err)
{
    sse_feed_read *rr = arg;
    gw__sse_feed *f = rr->f;
    gw__sse_registry *reg = f->reg;
    gw__sse_wake w;
    gw__sse_wake_init(&w);
    sh_buf text;
    sh_buf_init(&text);
    const sh_val *ver = rc == SH_OK ? sh_val_get(result, "version") : NULL;
    bool have = ver && sh_val_type_of(ver) == SH_VAL_INT &&
                sse_feed_progress_text(&text, sh_val_int(ver), result) == SH_OK;
    if (rc != SH_OK && rc != SH_ENOTFOUND)
        sh_log_debug("sse_reread", "id=%s: %s", rr->id, err ? err->msg : sh_strerror(rc));
    pthread_mutex_lock(&reg->mu);
    gw__sse_topic *t = gw__sse_topic_find(reg, rr->id);
    if (t) {
        t->reread_inflight = false;
        if (have)
            sse_feed_topic_record(t, sh_val_int(ver), result, text.data, text.len, &w);
        if (t->reread_again && !reg->shutting) {
            t->reread_again = false;
            gw__sse_feed_reread(f, t);
        }
    }
    pthread_mutex_unlock(&reg->mu);
    gw__sse_wake_run(&w);
    sh_buf_fini(&text);
    sh_val_free(result);
    free(rr);
    atomic_fetch_sub(&f->pending, 1);
}

void gw__sse_feed_reread(gw__sse_feed *f, gw__sse_topic *t)
{
    if (t->reread_inflight) {
        t->reread_again = true;
        return;
    }
    t->dirty = false;
    sse_feed_read *rr = calloc(1, sizeof *rr);
    sh_val *args = sse_feed_id_args(t->id);
    if (!rr || !args) {
        free(rr);
        sh_val_free(args);
        return;
    }
    rr->f = f;
    snprintf(rr->id, sizeof rr->id, "%s", t->id);
    atomic_fetch_add(&f->pending, 1);
    int rc = sh_rpc_call_async(f->rpc, "progress.get", args, SSE_READ_TIMEOUT_MS,
                               sse_feed_reread_done, rr);
    sh_val_free(args);
    if (rc != SH_OK) {
        atomic_fetch_sub(&f->pending, 1);
        free(rr);
        return;
    }
    t->reread_inflight = true;
}

static const char sse_feed_unavailable[] = ": progress service unavailable, retrying\n\n";

static void sse_feed_snapshot_done(void *arg, int rc, sh_val *result, const sh_error *err)
{
    sse_feed_read *sr = arg;
    gw__sse_feed *f = sr->f;
    gw__sse_stream *st = sr->st;
    gw__sse_wake w;
    gw__sse_wake_init(&w);
    const sh_val *ver = rc == SH_OK ? sh_val_get(result, "version") : NULL;
    if (ver && sh_val_type_of(ver) == SH_VAL_INT) {
        sh_buf text;
        sh_buf_init(&text);
        if (sse_feed_progress_text(&text, sh_val_int(ver), result) == SH_OK)
            gw__sse_stream_offer(st, sh_val_int(ver), sse_feed_created(result), text.data, text.len,
                                 true, &w);
        sh_buf_fini(&text);
    } else {
        static const char waiting[] = ": waiting for session\n\n";
        bool missing = rc == SH_ENOTFOUND;
        if (!missing)
            sh_log_warn("sse_snapshot", "id=%s: %s", st->id, err ? err->msg : sh_strerror(rc));
        if (missing)
            gw__sse_stream_note(st, waiting, sizeof waiting - 1, &w);
        else
            gw__sse_stream_note(st, sse_feed_unavailable, sizeof sse_feed_unavailable - 1, &w);
        if (!missing) {
            /* Read again soon, from the timer thread. */
            pthread_mutex_lock(&f->reg->mu);
            if (st->registered) {
                st->topic->dirty = true;
                st->topic->last_event_ms = sh_mono_ms();
            }
            pthread_mutex_unlock(&f->reg->mu);
        }
    }
    gw__sse_wake_run(&w);
    sh_val_free(result);
    gw__sse_stream_unref(st);
    free(sr);
    atomic_fetch_sub(&f->pending, 1);
}

void gw__sse_feed_snapshot(gw__sse_feed *f, gw__sse_stream *st)
{
    sh_val *args = sse_feed_id_args(st->id);
    sse_feed_read *sr = calloc(1, sizeof *sr);
    gw__sse_stream_ref(st);
    atomic_fetch_add(&f->pending, 1);
    if (sr) {
        sr->f = f;
        sr->st = st;
    }
    if (!args || !sr ||
        sh_rpc_call_async(f->rpc, "progress.get", args, SSE_READ_TIMEOUT_MS, sse_feed_snapshot_done,
                          sr) != SH_OK) {
        atomic_fetch_sub(&f->pending, 1);
        gw__sse_stream_unref(st);
        free(sr);
        gw__sse_wake w;
        gw__sse_wake_init(&w);
        gw__sse_stream_note(st, sse_feed_unavailable, sizeof sse_feed_unavailable - 1, &w);
        gw__sse_wake_run(&w);
    }
    sh_val_free(args);
}

/* ---- events from the progress service -------------------------------------- */

static void sse_feed_event(gw__sse_feed *f, const sh_val *ev)
{
    gw__sse_registry *reg = f->reg;
    size_t idlen;
    const char *kind = sh_val_get_str(ev, "kind", NULL);
    const char *id = sh_val_get_str(ev, "id", &idlen);
    if (!kind || !id || !sh_id_valid(id, idlen))
        return;
    gw__sse_wake w;
    gw__sse_wake_init(&w);
    sh_buf text;
    sh_buf_init(&text);
    pthread_mutex_lock(&reg->mu);
    gw__sse_topic *t = gw__sse_topic_find(reg, id);
    if (!t || reg->shutting)
        goto done;
    if (strcmp(kind, SH_EVENT_PROGRESS_UPDATE) == 0) {
        const sh_val *ver = sh_val_get(ev, "version");
        const sh_val *record = sh_val_get(ev, "record");
        if (!ver || sh_val_type_of(ver) != SH_VAL_INT || sh_val_type_of(record) != SH_VAL_MAP)
            goto done;
        int64_t version = sh_val_int(ver);
        const char *created = sse_feed_created(record);
        bool same_record = !created || !t->created[0] || strcmp(created, t->created) == 0;
        bool gap = same_record && t->highest > 0 && version > t->highest + 1;
        t->dirty = true;
        t->last_event_ms = sh_mono_ms();
        if (sse_feed_progress_text(&text, version, record) != SH_OK)
            goto done;
        sse_feed_topic_record(t, version, record, text.data, text.len, &w);
        if (gap) {
            /* Events in between were lost; this one carries the whole
             * record, and a read now catches a later loss as well. */
            gw_metrics_sse_gap_reread();
            gw__sse_feed_reread(f, t);
        }
    } else if (strcmp(kind, SH_EVENT_PROGRESS_LOG) == 0) {
        const sh_val *entry = sh_val_get(ev, "entry");
        if (!entry || sh_buf_puts(&text, "event: log\ndata: ") != SH_OK ||
            gw_json_write(entry, &text) != SH_OK || sh_buf_append(&text, "\n\n", 2) != SH_OK)
            goto done;
        for (gw__sse_stream *st = t->streams; st; st = st->next) {
            gw__sse_stream_push(st, text.data, text.len, &w);
            gw_metrics_sse_event_sent();
        }
    } else if (strcmp(kind, SH_EVENT_PROGRESS_DELETE) == 0) {
        if (sh_buf_puts(&text, "event: deleted\ndata: {\"sessionId\":") != SH_OK ||
            gw_json_write_str(&text, id, idlen) != SH_OK || sh_buf_puts(&text, "}\n\n") != SH_OK)
            goto done;
        t->highest = 0;
        t->created[0] = '\0';
        for (gw__sse_stream *st = t->streams; st; st = st->next)
            gw__sse_stream_deleted(st, text.data, text.len, &w);
    }
done:
    pthread_mutex_unlock(&reg->mu);
    gw__sse_wake_run(&w);
    sh_buf_fini(&text);
}

static void *sse_feed_main(void *arg)
{
    gw__sse_feed *f = arg;
    while (!atomic_load(&f->stop)) {
        char *topic = NULL;
        sh_val *payload = NULL;
        int rc = sh_sub_recv(f->sub, SSE_RECV_MS, &topic, &payload);
        if (rc == SH_OK)
            sse_feed_event(f, payload);
        else if (rc == SH_ECLOSED)
            break;
        else if (rc == SH_EPROTO)
            sh_log_warn("sse_event", "undecodable event dropped");
        free(topic);
        sh_val_free(payload);
    }
    return NULL;
}

/* ---- life cycle ---------------------------------------------------------------- */

int gw__sse_feed_start(gw__sse_feed *f, gw__sse_registry *reg, const char *events_url,
                       sh_rpc_client *rpc, sh_error *err)
{
    f->reg = reg;
    f->rpc = rpc;
    int rc = sh_sub_new(events_url, 0, &f->sub, err);
    if (rc != SH_OK)
        return rc;
    if ((rc = sh_sub_subscribe(f->sub, SH_TOPIC_PROGRESS)) != SH_OK)
        return sh_error_set(err, rc, "cannot subscribe to %s events", SH_TOPIC_PROGRESS);
    if (pthread_create(&f->thread, NULL, sse_feed_main, f) != 0)
        return sh_error_set(err, SH_EINTERNAL, "cannot start the event subscriber thread");
    f->started = true;
    return SH_OK;
}

void gw__sse_feed_stop(gw__sse_feed *f)
{
    atomic_store(&f->stop, true);
    if (f->started)
        pthread_join(f->thread, NULL);
    f->started = false;
}

void gw__sse_feed_fini(gw__sse_feed *f)
{
    gw__sse_feed_stop(f);
    sh_sub_free(f->sub);
    f->sub = NULL;
    /* Calls still in flight hold f; the RPC client is freed first, which
     * waits for them, so this loop only guards against misuse. */
    while (atomic_load(&f->pending) > 0) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}
