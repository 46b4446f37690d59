/* sse.c - event streams as the route and MHD see them: the streaming
 * response of GET /api/progress/:id/stream (its content reader and free
 * callback), and the life cycle of the whole. The layers below are
 * described in gw_sse_int.h. */
#include <microhttpd.h>
#include <stdlib.h>

#include "gw_sse_int.h"
#include "shared/log.h"

#define SSE_BLOCK 4096 /* bytes a stream's reply hands MHD at a time: each stream holds one */

struct gw_sse {
    gw__sse_registry reg;
    gw__sse_feed feed;
    gw__sse_timer timer;
};

static const char sse_bye[] = "event: shutdown\ndata: {}\n\n";

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
    const char *id = gw_req_param(r);
    struct MHD_Connection *conn = gw_req_connection(r);
    int64_t last = 0;
    if (!sse_parse_last_id(gw_req_header(r, "Last-Event-ID"), &last) &&
        !sse_parse_last_id(gw_req_query(r, "lastEventId"), &last))
        last = 0;
    gw__sse_stream *st = gw__sse_stream_new(conn, id, last);
    if (!st) {
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
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
    if (gw__sse_registry_add(&s->reg, st, ci ? ci->connect_fd : -1)) {
        gw__sse_feed_snapshot(&s->feed, st);
    } else {
        gw__sse_wake w;
        gw__sse_wake_init(&w);
        gw__sse_stream_finish(st, sse_bye, sizeof sse_bye - 1, &w);
        gw__sse_wake_run(&w);
    }
    sh_log_debug("sse_open", "id=%s rid=%s last=%lld", id, gw_req_request_id(r), (long long)last);
    gw_req_reply_stream(r, resp);
}

int gw_sse_new(const gw_config *cfg, sh_rpc_client *rpc, gw_sse **out, sh_error *err)
{
    *out = NULL;
    gw_sse *s = calloc(1, sizeof *s);
    if (!s)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    s->timer.stop_fd = -1; /* so that a half-built s is freed as a whole one */
    int rc = gw__sse_registry_init(&s->reg, err);
    if (rc == SH_OK)
        rc = gw__sse_feed_start(&s->feed, &s->reg, cfg->events_url, rpc, err);
    if (rc == SH_OK)
        rc = gw__sse_timer_start(&s->timer, &s->reg, &s->feed, cfg->heartbeat_s, err);
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
    gw__sse_timer_stop(&s->timer);
    gw__sse_feed_stop(&s->feed);
    gw__sse_registry_end(&s->reg, sse_bye, sizeof sse_bye - 1);
}

void gw_sse_free(gw_sse *s)
{
    if (!s)
        return;
    gw__sse_timer_fini(&s->timer);
    gw__sse_feed_fini(&s->feed);
    gw__sse_registry_fini(&s->reg);
    free(s);
}
