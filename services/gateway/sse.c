/* sse.c - event streams as the routes and MHD see them: the streaming
 * responses of GET /api/progress/:id/stream, GET /api/accounts/:id/events and GET /api/events
 * (their content reader and free callback), and the life cycle of the whole. The layers below are
 * described in gw_sse_int.h. */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_sse_int.h"
#include "shared/log.h"

#define SSE_BLOCK 4096 /* bytes a stream's reply hands MHD at a time: each stream holds one */

struct gw_sse {
    gw_slots *slots;
    size_t stream_buffer; /* GATEWAY_STREAM_BUFFER */
    gw__sse_registry reg;
    gw__sse_feed feed;
    gw__sse_timer timer;
    gw__sse_events events;
    gw__sse_probe probe;
    gw__sse_mail mail;
};

static const char sse_bye[] = "event: shutdown\ndata: {}\n\n";

gw_slot *gw_sse_admit(gw_sse *s, gw_req *r)
{
    gw_slot *slot = NULL;
    int rc = gw_slots_take(s->slots, gw_req_peer(r), &slot);
    if (rc == GW_SLOTS_OK)
        return slot;
    if (rc == GW_SLOTS_NOMEM) {
        gw_req_reply_error(r, 503, "out of memory");
        return NULL;
    }
    bool mine = rc == GW_SLOTS_ADDRESS;
    gw_req_reply_error(r, mine ? 429 : 503, "%s: %s is %zu",
                       mine ? "too many event streams from this address"
                            : "the gateway has all the event streams it takes",
                       mine ? "GATEWAY_MAX_STREAMS_PER_ADDRESS" : "GATEWAY_MAX_STREAMS",
                       mine ? gw_slots_per_address(s->slots) : gw_slots_total(s->slots));
    gw_req_reply_header(r, MHD_HTTP_HEADER_RETRY_AFTER, GW_SSE_RETRY_AFTER);
    return NULL;
}

/* sse_stream_new makes the stream of r (its place taken, its cap set);
 * NULL when it has replied. */
static gw__sse_stream *sse_stream_new(gw_sse *s, gw_req *r, const char *id, int64_t last)
{
    gw_slot *slot = gw_sse_admit(s, r);
    if (!slot)
        return NULL;
    gw__sse_stream *st = gw__sse_stream_new(gw_req_connection(r), id, last);
    if (!st) {
        gw_slot_release(slot);
        gw_req_reply_error(r, 503, "out of memory");
        return NULL;
    }
    st->slot = slot;
    st->cap = s->stream_buffer;
    return st;
}

static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    return gw__sse_stream_read(cls, buf, max);
}

static void sse_free_cb(void *cls)
{
    gw__sse_stream *st = cls;
    gw__sse_registry_remove(st);
    gw__sse_stream_close(st);
    gw__sse_stream_unref(st);
}

bool gw__sse_last_id_parse(const char *s, int64_t *out)
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

/* sse_start answers r with stream st (taken): its response, and its
 * registration (or its end when the gateway is stopping). A typed stream
 * is greeted first, before it is registered: its greeting's ids are then
 * lower than those of every event it receives. */
static void sse_start(gw_sse *s, gw_req *r, gw__sse_stream *st)
{
    static const char retry[] = "retry: 2000\n\n";
    struct MHD_Connection *conn = gw_req_connection(r);
    gw__sse_stream_push_locked(st, retry, sizeof retry - 1); /* not shared yet */

    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_BLOCK, sse_reader, st, sse_free_cb);
    if (!resp) {
        gw__sse_stream_unref(st);
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");

    /* Registered before the first read, so no update can fall in between. */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    bool mail = st->types == GW__SSE_MAIL_STREAM;
    if (st->types && !mail)
        gw__sse_probe_greet(&s->probe, st);
    if (gw__sse_registry_add(&s->reg, st, ci ? ci->connect_fd : -1)) {
        if (!st->types)
            gw__sse_feed_snapshot(&s->feed, st);
        else if (mail)
            gw__sse_mail_replay(&s->mail, st);
    } else {
        gw__sse_wake w;
        gw__sse_wake_init(&w);
        gw__sse_stream_finish(st, sse_bye, sizeof sse_bye - 1, &w);
        gw__sse_wake_run(&w);
    }
    gw_req_reply_stream(r, resp);
}

void gw_sse_open(gw_sse *s, gw_req *r)
{
    const char *id = gw_req_param(r);
    int64_t last = 0;
    if (!gw__sse_last_id_parse(gw_req_header(r, "Last-Event-ID"), &last) &&
        !gw__sse_last_id_parse(gw_req_query(r, "lastEventId"), &last))
        last = 0;
    gw__sse_stream *st = sse_stream_new(s, r, id, last);
    if (!st)
        return;
    sh_log_debug("sse_open", "id=%s rid=%s last=%lld", id, gw_req_request_id(r), (long long)last);
    sse_start(s, r, st);
}

uint64_t gw_sse_events_types(gw_req *r, unsigned families)
{
    uint64_t types;
    char bad[80];
    if (gw__sse_types_parse(gw_req_query(r, "types"), &types, bad, sizeof bad) != SH_OK) {
        gw_req_reply_error(r, 400, "unknown event type \"%s\" in types", bad);
        return 0;
    }
    types &= gw__sse_types_of_families(families);
    if (!types)
        gw_req_reply_error(r, 403, "token does not cover these event types");
    return types;
}

void gw_sse_open_events(gw_sse *s, gw_req *r, uint64_t types)
{
    gw__sse_stream *st = sse_stream_new(s, r, "events", 0);
    if (!st)
        return;
    st->types = types;
    sh_log_debug("sse_open", "events rid=%s types=%llx", gw_req_request_id(r),
                 (unsigned long long)types);
    sse_start(s, r, st);
}

bool gw_sse_mail_last(gw_req *r, char *out, size_t len)
{
    const char *v = gw_req_header(r, "Last-Event-ID");
    if (!v || !*v)
        v = gw_req_query(r, "lastEventId");
    return gw__sse_mail_last_check(v, out, len);
}

bool gw__sse_mail_last_check(const char *v, char *out, size_t len)
{
    out[0] = '\0';
    if (!v || !*v)
        return true;
    if (strlen(v) >= len || gw__sse_mail_id_cmp(v, v) != 0 || gw__sse_mail_id_cmp(v, "0-0") < 0)
        return false;
    snprintf(out, len, "%s", v);
    return true;
}

void gw_sse_open_mail(gw_sse *s, gw_req *r)
{
    const char *acct = gw_req_param(r);
    char last[GW_SSE_MAIL_ID_MAX];
    if (!gw_sse_mail_last(r, last, sizeof last)) {
        gw_req_reply_error(r, 400, "invalid Last-Event-ID: an event id is <ms>-<seq>");
        return;
    }
    gw__sse_stream *st = sse_stream_new(s, r, acct, 0);
    if (!st)
        return;
    st->types = GW__SSE_MAIL_STREAM;
    snprintf(st->mail_last, sizeof st->mail_last, "%s", last);
    st->mail_replaying = last[0] != '\0';
    sh_log_debug("sse_open", "mail account=%s rid=%s last=%s", acct, gw_req_request_id(r), last);
    sse_start(s, r, st);
}

/* A tap is a stream with no MHD connection: its reader is woken through
 * wake instead of being resumed. sse_tap_start greets (a typed stream) or
 * replays (a mail stream) it as sse_start does its HTTP twin. */
static gw_sse_tap *sse_tap_start(gw_sse *s, gw__sse_stream *st, gw_slot *slot,
                                 void (*wake)(void *arg), void *arg)
{
    st->slot = slot;
    st->cap = s->stream_buffer;
    st->wake = wake;
    st->wake_arg = arg;
    bool mail = st->types == GW__SSE_MAIL_STREAM;
    if (!mail)
        gw__sse_probe_greet(&s->probe, st);
    if (gw__sse_registry_add(&s->reg, st, -1)) {
        if (mail)
            gw__sse_mail_replay(&s->mail, st);
    } else {
        gw__sse_wake w;
        gw__sse_wake_init(&w);
        gw__sse_stream_finish(st, sse_bye, sizeof sse_bye - 1, &w);
        gw__sse_wake_run(&w);
    }
    return (gw_sse_tap *)st;
}

int gw_sse_tap_new(gw_sse *s, gw_slot *slot, uint64_t types, void (*wake)(void *arg), void *arg,
                   gw_sse_tap **out)
{
    gw__sse_stream *st = gw__sse_stream_new(NULL, "events", 0);
    if (!st) {
        gw_slot_release(slot);
        return SH_ENOMEM;
    }
    st->types = types;
    *out = sse_tap_start(s, st, slot, wake, arg);
    return SH_OK;
}

int gw_sse_tap_mail(gw_sse *s, gw_slot *slot, const char *account, const char *last,
                    void (*wake)(void *arg), void *arg, gw_sse_tap **out)
{
    gw__sse_stream *st = gw__sse_stream_new(NULL, account, 0);
    if (!st) {
        gw_slot_release(slot);
        return SH_ENOMEM;
    }
    st->types = GW__SSE_MAIL_STREAM;
    snprintf(st->mail_last, sizeof st->mail_last, "%s", last);
    st->mail_replaying = last[0] != '\0';
    *out = sse_tap_start(s, st, slot, wake, arg);
    return SH_OK;
}

ssize_t gw_sse_tap_read(gw_sse_tap *t, char *buf, size_t max)
{
    ssize_t n = gw__sse_stream_read((gw__sse_stream *)t, buf, max);
    if (n == MHD_CONTENT_READER_END_WITH_ERROR)
        return GW_SSE_TAP_FAILED;
    if (n == MHD_CONTENT_READER_END_OF_STREAM)
        return GW_SSE_TAP_END;
    return n;
}

void gw_sse_tap_free(gw_sse_tap *t)
{
    if (!t)
        return;
    gw__sse_stream *st = (gw__sse_stream *)t;
    gw__sse_registry_remove(st);
    gw__sse_stream_close(st);
    gw__sse_stream_unref(st);
}

/* sse_error_name puts the setting at fault before err's message. */
static void sse_error_name(sh_error *err, int rc, const char *setting)
{
    char msg[sizeof err->msg];
    memcpy(msg, err->msg, sizeof msg);
    sh_error_set(err, rc, "%s: %.200s", setting, msg);
}

int gw_sse_new(const gw_config *cfg, sh_rpc_client *rpc, gw_sse **out, sh_error *err)
{
    *out = NULL;
    gw_sse *s = calloc(1, sizeof *s);
    if (!s)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    s->timer.stop_fd = -1; /* so that a half-built s is freed as a whole one */
    s->stream_buffer = (size_t)cfg->stream_buffer;
    if (!(s->slots = gw_slots_new((size_t)cfg->stream_cap, (size_t)cfg->max_streams_per_addr))) {
        free(s);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    const char *const urls[GW_SVC_COUNT] = {cfg->rpc_url, cfg->coord_url, cfg->sync_url};
    int rc = gw__sse_registry_init(&s->reg, err);
    if (rc == SH_OK && (rc = gw__sse_feed_start(&s->feed, &s->reg, cfg->events_url, rpc, err)))
        sse_error_name(err, rc, "PROGRESS_EVENTS_URL");
    if (rc == SH_OK && (rc = gw__sse_events_start(&s->events, &s->reg, cfg->coord_events_url, err)))
        sse_error_name(err, rc, "COORDINATOR_EVENTS_URL");
    if (rc == SH_OK &&
        (rc = gw__sse_mail_start(&s->mail, &s->reg, cfg->sync_events_url, cfg->sync_url, err)))
        sse_error_name(err, rc, "SYNC_WORKER_EVENTS_URL");
    if (rc == SH_OK)
        rc = gw__sse_timer_start(&s->timer, &s->reg, &s->feed, cfg->heartbeat_s, err);
    if (rc == SH_OK)
        rc = gw__sse_probe_start(&s->probe, &s->reg, urls, err);
    if (rc != SH_OK) {
        gw_sse_free(s);
        return rc;
    }
    *out = s;
    return SH_OK;
}

void gw_sse_shutdown(gw_sse *s)
{
    if (!s)
        return;
    gw__sse_probe_stop(&s->probe);
    gw__sse_timer_stop(&s->timer);
    gw__sse_events_stop(&s->events);
    gw__sse_mail_stop(&s->mail);
    gw__sse_feed_stop(&s->feed);
    gw__sse_registry_end(&s->reg, sse_bye, sizeof sse_bye - 1);
}

void gw_sse_free(gw_sse *s)
{
    if (!s)
        return;
    gw__sse_probe_fini(&s->probe);
    gw__sse_timer_fini(&s->timer);
    gw__sse_events_fini(&s->events);
    gw__sse_mail_fini(&s->mail);
    gw__sse_feed_fini(&s->feed);
    gw__sse_registry_fini(&s->reg);
    gw_slots_free(s->slots);
    free(s);
}
