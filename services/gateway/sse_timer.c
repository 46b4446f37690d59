/* sse_timer.c - the timer thread of the event streams: a heartbeat on every
 * stream (typed event streams included), re-reads of records whose last
 * event may have been lost (through the feed), and the end of streams whose
 * clients hung up (the sockets the registry watches). */
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "gw_sse_int.h"
#include "shared/log.h"
#include "shared/util.h"

bool gw__sse_timer_due(const gw__sse_topic *t, int64_t now, bool heartbeat)
{
    /* On every heartbeat each record is read again: a lost last event leaves
     * no trace a subscriber could notice. Between heartbeats, a record whose
     * events stopped a moment ago is. */
    return heartbeat || (t->dirty && now - t->last_event_ms >= SSE_QUIET_MS);
}

static void sse_timer_tick(gw__sse_timer *tm, bool heartbeat)
{
    gw__sse_registry *reg = tm->reg;
    char text[64];
    size_t len = 0;
    if (heartbeat) {
        char ts[SH_ISO_LEN];
        sh_iso8601(sh_now_ms(), ts);
        len = (size_t)snprintf(text, sizeof text, ": heartbeat %s\n\n", ts);
    }
    int64_t now = sh_mono_ms();
    gw__sse_wake w;
    gw__sse_wake_init(&w);
    pthread_mutex_lock(&reg->mu);
    for (size_t b = 0; b < SSE_BUCKETS && !reg->shutting; b++) {
        for (gw__sse_topic *t = reg->buckets[b]; t; t = t->hnext) {
            if (gw__sse_timer_due(t, now, heartbeat))
                gw__sse_feed_reread(tm->feed, t);
            if (heartbeat)
                for (gw__sse_stream *st = t->streams; st; st = st->next)
                    gw__sse_stream_push(st, text, len, &w);
        }
    }
    for (gw__sse_stream *st = reg->typed; heartbeat && st && !reg->shutting; st = st->next)
        gw__sse_stream_push(st, text, len, &w);
    pthread_mutex_unlock(&reg->mu);
    gw__sse_wake_run(&w);
}

/* sse_timer_hangups ends the streams whose clients left. */
static void sse_timer_hangups(gw__sse_timer *tm, const struct epoll_event *evs, int n)
{
    gw__sse_registry *reg = tm->reg;
    gw__sse_wake w;
    gw__sse_wake_init(&w);
    pthread_mutex_lock(&reg->mu);
    for (int i = 0; i < n; i++) {
        gw__sse_stream *st = evs[i].data.ptr;
        if (!st || st->ep_fd < 0)
            continue; /* the stop event, or unwatched while this batch came */
        gw__sse_unwatch(reg, st);
        gw__sse_stream_fail(st, &w);
    }
    pthread_mutex_unlock(&reg->mu);
    gw__sse_wake_run(&w);
}

static void *sse_timer_main(void *arg)
{
    gw__sse_timer *tm = arg;
    int64_t next_beat = sh_mono_ms() + tm->period_ms;
    int64_t next_tick = sh_mono_ms() + SSE_TICK_MS;
    struct epoll_event evs[64];
    while (!atomic_load(&tm->stop)) {
        gw__sse_retired_drain(tm->reg);
        int64_t wait = next_tick - sh_mono_ms();
        int n = epoll_wait(tm->reg->ep, evs, 64, wait > 0 ? (int)wait : 0);
        if (atomic_load(&tm->stop))
            break;
        if (n > 0)
            sse_timer_hangups(tm, evs, n);
        int64_t now = sh_mono_ms();
        if (now < next_tick)
            continue;
        bool beat = now >= next_beat;
        if (beat)
            next_beat = now + tm->period_ms;
        next_tick = now + SSE_TICK_MS;
        sse_timer_tick(tm, beat);
    }
    return NULL;
}

int gw__sse_timer_start(gw__sse_timer *tm, gw__sse_registry *reg, gw__sse_feed *feed,
                        long long heartbeat_s, sh_error *err)
{
    tm->reg = reg;
    tm->feed = feed;
    tm->period_ms = heartbeat_s * 1000;
    tm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (tm->stop_fd < 0 || epoll_ctl(reg->ep, EPOLL_CTL_ADD, tm->stop_fd, &ev) != 0)
        return sh_error_set(err, SH_EINTERNAL, "cannot set up epoll for event streams");
    if (pthread_create(&tm->thread, NULL, sse_timer_main, tm) != 0)
        return sh_error_set(err, SH_EINTERNAL, "cannot start the event stream timer thread");
    tm->started = true;
    return SH_OK;
}

void gw__sse_timer_stop(gw__sse_timer *tm)
{
    atomic_store(&tm->stop, true);
    uint64_t one = 1;
    if (tm->started && write(tm->stop_fd, &one, sizeof one) < 0)
        sh_log_warn("sse_stop", "cannot wake the timer thread; it stops within %d ms", SSE_TICK_MS);
    if (tm->started)
        pthread_join(tm->thread, NULL);
    tm->started = false;
}

void gw__sse_timer_fini(gw__sse_timer *tm)
{
    gw__sse_timer_stop(tm);
    if (tm->stop_fd >= 0)
        close(tm->stop_fd);
    tm->stop_fd = -1;
}
