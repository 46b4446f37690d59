/* sse_mail.c - the mail streams of GET /api/accounts/:id/events: the
 * sync-worker's live events (topic mailevent:<account>) handed to the
 * streams of their account, and the account's event log (events.read)
 * replayed to a stream that resumes after a Last-Event-ID; each live event
 * also goes to the typed event streams (GET /api/events) that take it.
 *
 * No gap, no duplicate: a resuming stream is registered first with its
 * live events held (up to SSE_MAIL_HELD_MAX bytes), the log after its id
 * is sent, then the held events newer than the last one sent; past that
 * point a live event goes out only when its id is newer than the last one
 * sent. Held events dropped for room make the replay read the log again
 * from the last id sent.
 *
 * Nor a gap live: each live event names the one logged before it
 * (prevId); a stream whose last sent is older missed some and is refilled
 * from the log the same way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_json.h"
#include "gw_metrics.h"
#include "gw_sse_int.h"
#include "shared/log.h"

#define SSE_MAIL_READ_COUNT 500
#define SSE_MAIL_ROUNDS     64 /* log pages read for one replay at most */

/* sse_mail_id_parse reads "<ms>-<seq>"; false when it is not one. */
static bool sse_mail_id_parse(const char *s, unsigned long long *ms, unsigned long long *seq)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return false;
    *ms = strtoull(s, &end, 10);
    if (*end != '-' || end[1] < '0' || end[1] > '9')
        return false;
    *seq = strtoull(end + 1, &end, 10);
    return *end == '\0';
}

int gw__sse_mail_id_cmp(const char *a, const char *b)
{
    unsigned long long am = 0, as = 0, bm = 0, bs = 0;
    bool ga = sse_mail_id_parse(a, &am, &as), gb = sse_mail_id_parse(b, &bm, &bs);
    if (!ga || !gb)
        return ga - gb;
    if (am != bm)
        return am < bm ? -1 : 1;
    return as < bs ? -1 : as > bs;
}

int gw__sse_mail_text(const sh_val *ev, sh_buf *out)
{
    const char *id = sh_val_get_str(ev, "id", NULL);
    const char *type = sh_val_get_str(ev, "type", NULL);
    if (sh_val_type_of(ev) != SH_VAL_MAP || !id || !type || strpbrk(id, "\r\n") ||
        strpbrk(type, "\r\n"))
        return SH_EINVAL;
    int rc = sh_buf_printf(out, "id: %s\nevent: %s\ndata: {", id, type);
    bool first = true;
    for (size_t i = 0; rc == SH_OK && i < sh_val_len(ev); i++) {
        size_t kl;
        const char *k = sh_val_key_at(ev, i, &kl);
        /* kind and prevId are for the gateway: the log's own events
         * (a replay) have neither. */
        if ((kl == 4 && memcmp(k, "kind", 4) == 0) || (kl == 6 && memcmp(k, "prevId", 6) == 0))
            continue;
        if (!first)
            rc = sh_buf_puts(out, ",");
        first = false;
        if (rc == SH_OK)
            rc = gw_json_write_member(out, k, kl, sh_val_value_at(ev, i));
    }
    return rc == SH_OK ? sh_buf_puts(out, "}\n\n") : rc;
}

/* sse_mail_send sends text of event id to st unless st has sent it or a
 * newer one (stream lock held). */
static void sse_mail_send_locked(gw__sse_stream *st, const char *id, const char *text, size_t len,
                                 gw__sse_wake *w)
{
    if (st->finishing || st->failed || gw__sse_mail_id_cmp(id, st->mail_last) <= 0)
        return;
    snprintf(st->mail_last, sizeof st->mail_last, "%s", id);
    if (gw__sse_stream_push_locked(st, text, len))
        gw__sse_wake_add(w, st);
    gw_metrics_sse_event_sent();
}

/* sse_mail_typed makes a typed event of GET /api/events of a mail event. */
static void sse_mail_typed(gw__sse_mail *m, const char *topic, const sh_val *ev)
{
    int type = gw__sse_type_of(topic, sh_val_get_str(ev, "kind", NULL));
    if (type < 0)
        return;
    sh_buf fields;
    sh_buf_init(&fields);
    if (gw__sse_type_fields(type, ev, &fields) == SH_OK)
        gw__sse_events_emit(m->reg, type, fields.data, fields.len, NULL, false);
    sh_buf_fini(&fields);
}

/* Streams found behind by a live event, to refill from the log. */
typedef struct sse_mail_gaps {
    gw__sse_stream **v;
    size_t n, cap;
} sse_mail_gaps;

/* sse_mail_hold keeps a live event for after the replay (stream lock
 * held); an event dropped for room makes the replay read the log again. */
static void sse_mail_hold(gw__sse_stream *st, const char *id, const sh_buf *text)
{
    if (st->mail_held.len + text->len + strlen(id) + 2 > SSE_MAIL_HELD_MAX ||
        sh_buf_append(&st->mail_held, id, strlen(id) + 1) ||
        sh_buf_append(&st->mail_held, text->data, text->len + 1))
        st->mail_overflow = true;
}

/* sse_mail_gap tells whether st, which sent mail_last, missed the events
 * between it and prev, the id of the one logged before this event (stream
 * lock held). A stream that has sent nothing yet has nothing to compare. */
static bool sse_mail_gap(const gw__sse_stream *st, const char *prev)
{
    return prev && prev[0] && st->mail_last[0] && gw__sse_mail_id_cmp(prev, st->mail_last) > 0;
}

/* sse_mail_gap_add marks st as replaying, holding this event, and keeps a
 * reference to it for the refill; false without memory. */
static bool sse_mail_gap_add(sse_mail_gaps *g, gw__sse_stream *st)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        gw__sse_stream **v = realloc(g->v, cap * sizeof *v);
        if (!v)
            return false;
        g->v = v;
        g->cap = cap;
    }
    gw__sse_stream_ref(st);
    g->v[g->n++] = st;
    st->mail_replaying = true;
    return true;
}

/* sse_mail_live hands one live event to the streams of its account, and
 * to the typed event streams. A stream whose last event sent is older than
 * the event's prevId missed some (pub/sub drops them): it holds this one
 * and reads the log from its last, as a resuming stream does, on this
 * thread (the live events wait meanwhile, for one events.read). */
static void sse_mail_live(gw__sse_mail *m, const char *topic, const sh_val *ev)
{
    const char *acct = sh_val_get_str(ev, "accountId", NULL);
    const char *id = sh_val_get_str(ev, "id", NULL);
    const char *prev = sh_val_get_str(ev, "prevId", NULL);
    sh_buf text;
    sh_buf_init(&text);
    if (!acct || gw__sse_mail_text(ev, &text) != SH_OK) {
        sh_log_debug("sse_mail", "a mail event of an unexpected shape dropped");
        sh_buf_fini(&text);
        return;
    }
    gw__sse_wake w;
    gw__sse_wake_init(&w);
    sse_mail_gaps gaps = {0};
    pthread_mutex_lock(&m->reg->mu);
    for (gw__sse_stream *st = m->reg->typed; st; st = st->next) {
        if (st->types != GW__SSE_MAIL_STREAM || strcmp(st->id, acct) != 0)
            continue;
        pthread_mutex_lock(&st->mu);
        if (st->mail_replaying) {
            sse_mail_hold(st, id, &text);
        } else if (sse_mail_gap(st, prev) && !st->finishing && !st->failed &&
                   sse_mail_gap_add(&gaps, st)) {
            sh_log_info("sse_mail_gap", "account=%s: events after %s missed, read from the log",
                        acct, st->mail_last);
            sse_mail_hold(st, id, &text);
        } else {
            sse_mail_send_locked(st, id, text.data, text.len, &w);
        }
        pthread_mutex_unlock(&st->mu);
    }
    pthread_mutex_unlock(&m->reg->mu);
    gw__sse_wake_run(&w);
    sh_buf_fini(&text);
    for (size_t i = 0; i < gaps.n; i++) {
        gw__sse_mail_replay(m, gaps.v[i]);
        gw__sse_stream_unref(gaps.v[i]);
    }
    free(gaps.v);
    sse_mail_typed(m, topic, ev);
}

static void *sse_mail_main(void *arg)
{
    gw__sse_mail *m = arg;
    while (!atomic_load(&m->stop)) {
        char *topic = NULL;
        sh_val *payload = NULL;
        int rc = sh_sub_recv(m->sub, SSE_RECV_MS, &topic, &payload);
        if (rc == SH_OK)
            sse_mail_live(m, topic, payload);
        else if (rc == SH_ECLOSED)
            break;
        else if (rc == SH_EPROTO)
            sh_log_warn("sse_mail", "undecodable mail event dropped");
        free(topic);
        sh_val_free(payload);
    }
    return NULL;
}

int gw__sse_mail_start(gw__sse_mail *m, gw__sse_registry *reg, const char *events_url,
                       const char *rpc_url, sh_error *err)
{
    m->reg = reg;
    int rc = sh_rpc_client_new(rpc_url, SSE_READ_TIMEOUT_MS, 0, &m->rpc, err);
    if (rc == SH_OK)
        rc = sh_sub_new(events_url, 0, &m->sub, err);
    if (rc != SH_OK)
        return rc;
    if ((rc = sh_sub_subscribe(m->sub, SH_TOPIC_MAIL_EVENT)) != SH_OK)
        return sh_error_set(err, rc, "cannot subscribe to the mail events");
    if (pthread_create(&m->thread, NULL, sse_mail_main, m) != 0)
        return sh_error_set(err, SH_EINTERNAL, "cannot start the mail event thread");
    m->started = true;
    return SH_OK;
}

void gw__sse_mail_stop(gw__sse_mail *m)
{
    atomic_store(&m->stop, true);
    if (m->started)
        pthread_join(m->thread, NULL);
    m->started = false;
}

void gw__sse_mail_fini(gw__sse_mail *m)
{
    gw__sse_mail_stop(m);
    sh_sub_free(m->sub);
    m->sub = NULL;
    sh_rpc_client_free(m->rpc);
    m->rpc = NULL;
}

/* sse_mail_push sends text to st at once (the replay's own events). */
static void sse_mail_push(gw__sse_stream *st, const char *id, const char *text, size_t len)
{
    gw__sse_wake w;
    gw__sse_wake_init(&w);
    pthread_mutex_lock(&st->mu);
    sse_mail_send_locked(st, id, text, len, &w);
    pthread_mutex_unlock(&st->mu);
    gw__sse_wake_run(&w);
}

/* sse_mail_reset tells st that the events after its id are gone; it goes
 * on from lastId (the log's newest), which a reconnect then resumes from. */
static void sse_mail_reset(gw__sse_stream *st, const char *last)
{
    char text[160];
    int n = last && last[0]
                ? snprintf(text, sizeof text, "id: %s\nevent: reset\ndata: {}\n\n", last)
                : snprintf(text, sizeof text, "event: reset\ndata: {}\n\n");
    gw__sse_wake w;
    gw__sse_wake_init(&w);
    pthread_mutex_lock(&st->mu);
    snprintf(st->mail_last, sizeof st->mail_last, "%s", last ? last : "");
    if (!st->finishing && !st->failed && gw__sse_stream_push_locked(st, text, (size_t)n))
        gw__sse_wake_add(&w, st);
    pthread_mutex_unlock(&st->mu);
    gw__sse_wake_run(&w);
}

/* sse_mail_read sends one page of the log after st's mail_last; returns the
 * number of events read, or -1 when the log cannot be read. */
static int sse_mail_read(gw__sse_mail *m, gw__sse_stream *st)
{
    char after[GW__SSE_MAIL_ID_MAX];
    pthread_mutex_lock(&st->mu);
    snprintf(after, sizeof after, "%s", st->mail_last);
    pthread_mutex_unlock(&st->mu);
    sh_val *args = sh_val_new_map(), *res = NULL;
    sh_error err;
    int rc = !args || sh_val_set_cstr(args, "accountId", sh_val_new_cstr(st->id)) ||
                     sh_val_set_cstr(args, "after", sh_val_new_cstr(after)) ||
                     sh_val_set_cstr(args, "count", sh_val_new_int(SSE_MAIL_READ_COUNT))
                 ? SH_ENOMEM
                 : sh_rpc_call(m->rpc, "events.read", args, SSE_READ_TIMEOUT_MS, &res, &err);
    sh_val_free(args);
    if (rc != SH_OK) {
        sh_log_warn("sse_mail", "account=%s: the event log cannot be read: %s", st->id,
                    rc == SH_ENOMEM ? "out of memory" : err.msg);
        return -1;
    }
    int n = 0;
    if (sh_val_bool(sh_val_get(res, "reset"))) {
        sse_mail_reset(st, sh_val_get_str(res, "lastId", NULL));
    } else {
        const sh_val *evs = sh_val_get(res, "events");
        sh_buf text;
        sh_buf_init(&text);
        for (size_t i = 0; i < sh_val_len(evs); i++, n++) {
            const sh_val *ev = sh_val_at(evs, i);
            text.len = 0;
            if (gw__sse_mail_text(ev, &text) == SH_OK)
                sse_mail_push(st, sh_val_get_str(ev, "id", NULL), text.data, text.len);
        }
        sh_buf_fini(&text);
    }
    sh_val_free(res);
    return n;
}

/* sse_mail_release sends the held events newer than the last sent and lets
 * the live ones through; false when some were dropped meanwhile (the log is
 * then read again, the events still held). */
static bool sse_mail_release(gw__sse_stream *st)
{
    gw__sse_wake w;
    gw__sse_wake_init(&w);
    pthread_mutex_lock(&st->mu);
    bool done = !st->mail_overflow;
    if (done) {
        const char *p = st->mail_held.data, *end = p + st->mail_held.len;
        while (p && p < end) {
            const char *id = p, *text = id + strlen(id) + 1;
            size_t len = strlen(text);
            sse_mail_send_locked(st, id, text, len, &w);
            p = text + len + 1;
        }
        st->mail_replaying = false;
    }
    st->mail_overflow = false;
    st->mail_held.len = 0;
    pthread_mutex_unlock(&st->mu);
    gw__sse_wake_run(&w);
    return done;
}

void gw__sse_mail_replay(gw__sse_mail *m, gw__sse_stream *st)
{
    bool resume = st->mail_last[0] != '\0';
    for (int round = 0; resume && round < SSE_MAIL_ROUNDS; round++) {
        int n = sse_mail_read(m, st);
        if (n < 0) {
            /* The log cannot be read: the client is told, and goes live
             * from here. */
            sse_mail_reset(st, "");
            break;
        }
        if (n < SSE_MAIL_READ_COUNT && sse_mail_release(st))
            return;
    }
    pthread_mutex_lock(&st->mu);
    st->mail_replaying = false;
    st->mail_held.len = 0;
    pthread_mutex_unlock(&st->mu);
}
