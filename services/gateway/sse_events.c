/* sse_events.c - the typed events of GET /api/events: each gets the next id
 * and its text (id, event, data with id, type and createdAt first) and goes
 * to the typed streams whose filter takes its type; the subscriber thread
 * makes them of the coordinator's claim, reservation and account events. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_json.h"
#include "gw_metrics.h"
#include "gw_sse_int.h"
#include "shared/log.h"
#include "shared/util.h"

void gw__sse_events_emit(gw__sse_registry *reg, int type, const char *fields, size_t len,
                         gw__sse_stream *only, bool locked)
{
    const char *name = gw__sse_type_name(type);
    if (!name)
        return;
    uint64_t bit = UINT64_C(1) << type;
    char ts[SH_ISO_LEN];
    sh_iso8601(sh_now_ms(), ts);
    gw__sse_wake w;
    gw__sse_wake_init(&w);
    sh_buf text;
    sh_buf_init(&text);
    if (!locked)
        pthread_mutex_lock(&reg->mu);
    bool wanted = false;
    for (gw__sse_stream *st = only ? only : reg->typed; st && !wanted; st = only ? NULL : st->next)
        wanted = (st->types & bit) != 0;
    if (wanted && !reg->shutting) {
        /* The id is taken under the registry lock, so every stream receives
         * events in the order of their ids. */
        unsigned long long id = ++reg->next_id;
        int rc = sh_buf_printf(&text,
                               "id: %llu\nevent: %s\ndata: {\"id\":%llu,\"type\":\"%s\","
                               "\"createdAt\":\"%s\"",
                               id, name, id, name, ts);
        if (rc == SH_OK && len)
            rc = sh_buf_append(&text, fields, len);
        if (rc == SH_OK)
            rc = sh_buf_puts(&text, "}\n\n");
        for (gw__sse_stream *st = only ? only : reg->typed; rc == SH_OK && st;
             st = only ? NULL : st->next) {
            if (!(st->types & bit))
                continue;
            gw__sse_stream_push(st, text.data, text.len, &w);
            gw_metrics_sse_event_sent();
        }
    }
    if (!locked)
        pthread_mutex_unlock(&reg->mu);
    gw__sse_wake_run(&w);
    sh_buf_fini(&text);
}

/* sse_events_one makes a typed event of one coordinator event. */
static void sse_events_one(gw__sse_events *ev, const char *topic, const sh_val *payload)
{
    int type = gw__sse_type_of(topic, sh_val_get_str(payload, "kind", NULL));
    if (type < 0)
        return;
    sh_buf fields;
    sh_buf_init(&fields);
    if (gw__sse_type_fields(type, payload, &fields) == SH_OK)
        gw__sse_events_emit(ev->reg, type, fields.data, fields.len, NULL, false);
    else
        sh_log_debug("sse_event", "topic=%s: an event of an unexpected shape dropped", topic);
    sh_buf_fini(&fields);
}

static void *sse_events_main(void *arg)
{
    gw__sse_events *ev = arg;
    while (!atomic_load(&ev->stop)) {
        char *topic = NULL;
        sh_val *payload = NULL;
        int rc = sh_sub_recv(ev->sub, SSE_RECV_MS, &topic, &payload);
        if (rc == SH_OK)
            sse_events_one(ev, topic, payload);
        else if (rc == SH_ECLOSED)
            break;
        else if (rc == SH_EPROTO)
            sh_log_warn("sse_event", "undecodable coordinator event dropped");
        free(topic);
        sh_val_free(payload);
    }
    return NULL;
}

int gw__sse_events_start(gw__sse_events *ev, gw__sse_registry *reg, const char *url, sh_error *err)
{
    static const char *const topics[] = {SH_TOPIC_CLAIM, SH_TOPIC_RESERVATION, SH_TOPIC_ACCOUNT,
                                         NULL};
    ev->reg = reg;
    int rc = sh_sub_new(url, 0, &ev->sub, err);
    if (rc != SH_OK)
        return rc;
    for (size_t i = 0; topics[i]; i++)
        if ((rc = sh_sub_subscribe(ev->sub, topics[i])) != SH_OK)
            return sh_error_set(err, rc, "cannot subscribe to %s events", topics[i]);
    if (pthread_create(&ev->thread, NULL, sse_events_main, ev) != 0)
        return sh_error_set(err, SH_EINTERNAL, "cannot start the coordinator event thread");
    ev->started = true;
    return SH_OK;
}

void gw__sse_events_stop(gw__sse_events *ev)
{
    atomic_store(&ev->stop, true);
    if (ev->started)
        pthread_join(ev->thread, NULL);
    ev->started = false;
}

void gw__sse_events_fini(gw__sse_events *ev)
{
    gw__sse_events_stop(ev);
    sh_sub_free(ev->sub);
    ev->sub = NULL;
}
