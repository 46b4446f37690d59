/* gw_sse_int.h - what the two halves of the event streams share: sse.c (the
 * streams, their registry and their MHD responses) and sse_feed.c (what
 * feeds them: the progress service's events, reads of records, the timer).
 * Nothing outside these two files includes it.
 *
 * Locks: the registry lock (gw_sse.mu: topics, their stream lists,
 * shutting, the watch of sockets) comes before a stream's lock. MHD is never
 * called with either held, except MHD_suspend_connection from a stream's own
 * content reader, which holds the stream lock so that a producer's resume
 * always follows the suspend. A stream is reference counted: its MHD
 * response holds one reference (dropped by the free callback when the
 * connection closes), and so does every call, wake-up and socket watch in
 * flight, so nothing touches freed memory. */
#ifndef GW_SSE_INT_H
#define GW_SSE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_sse.h"
#include "shared/buf.h"
#include "shared/events.h"
#include "shared/keys.h"

#define SSE_BUCKETS         4096
#define SSE_TICK_MS         250  /* timer period */
#define SSE_QUIET_MS        500  /* re-read an id this long after its last event */
#define SSE_RECV_MS         200  /* subscriber wakes this often to see the stop flag */
#define SSE_READ_TIMEOUT_MS 2000 /* snapshot and re-read calls */
#define SSE_MAX_BUFFER      (16u * 1024 * 1024)
#define SSE_BLOCK                                                                                  \
    4096 /* bytes a stream's reply hands MHD at a time: each                                       \
                stream holds one such block */
#define SSE_TS_MAX 40

struct MHD_Connection;

typedef struct gw_stream gw_stream;

typedef struct gw_topic {
    struct gw_topic *hnext;
    gw_stream *streams;
    int64_t highest;          /* highest version seen for the id */
    char created[SSE_TS_MAX]; /* createdAt of that version */
    int64_t last_event_ms;
    bool dirty; /* events came since the last re-read */
    bool reread_inflight;
    bool reread_again;
    char id[SH_ID_MAX + 1];
} gw_topic;

struct gw_stream {
    atomic_int refs;
    pthread_mutex_t mu;
    gw_sse *sse;
    struct MHD_Connection *conn;
    /* registry lock */
    gw_topic *topic;
    gw_stream *prev, *next;
    bool registered;
    int ep_fd; /* duplicate of the socket, watched for hang-ups; -1 when not */
    gw_stream *retired_next;
    /* stream lock */
    sh_buf out;
    size_t off;
    int64_t last;             /* last version sent, or given as Last-Event-ID */
    bool sent_record;         /* a record went out on this stream */
    char created[SSE_TS_MAX]; /* createdAt of the last record sent */
    char tomb[SSE_TS_MAX];    /* createdAt of a record deleted since */
    bool suspended, finishing, failed, closed;
    char id[SH_ID_MAX + 1];
};

struct gw_sse {
    const gw_config *cfg;
    sh_rpc_client *rpc;
    sh_sub *sub;
    pthread_t sub_thread, timer_thread;
    bool sub_started, timer_started;
    atomic_bool stop;
    int ep;             /* epoll of stream sockets, for hang-ups */
    int stop_fd;        /* eventfd that wakes the timer thread to stop */
    pthread_mutex_t mu; /* the registry */
    bool shutting;
    size_t nstreams;
    atomic_int pending; /* snapshot and re-read calls in flight */
    gw_stream *retired; /* no longer watched; freed by the timer thread */
    gw_topic *buckets[SSE_BUCKETS];
};

/* Streams to resume once the locks are released. */
typedef struct gw_wake {
    gw_stream **v;
    size_t n, cap;
    gw_stream *inl[16];
} gw_wake;

/* ---- sse.c ---------------------------------------------------------------- */

void gw_stream_ref(gw_stream *st);
void gw_stream_unref(gw_stream *st);

void gw_wake_init(gw_wake *w);
/* gw_wake_add keeps a reference to st until gw_wake_run resumes it. */
void gw_wake_add(gw_wake *w, gw_stream *st);
void gw_wake_run(gw_wake *w);

/* gw_stream_push_locked appends text to the stream's buffer (stream lock
 * held); it returns whether the connection is suspended and must be resumed
 * (the flag is cleared, so exactly one producer resumes it). */
bool gw_stream_push_locked(gw_stream *st, const char *text, size_t len);
/* gw_stream_push appends text unless the stream is finishing. */
void gw_stream_push(gw_stream *st, const char *text, size_t len, gw_wake *w);
/* gw_stream_offer sends one progress event (text) if it is newer than what
 * the stream has; snapshot marks the first read of a new stream. */
void gw_stream_offer(gw_stream *st, int64_t version, const char *created, const char *text,
                     size_t len, bool snapshot, gw_wake *w);

/* Registry lock held for these. */
gw_topic *gw_sse_topic_find(gw_sse *s, const char *id);
/* gw_sse_unwatch stops watching st's socket; the watch's reference is
 * dropped by gw_sse_retired_drain, from the timer thread after its next wait,
 * since the wait in progress may still return an event naming st. */
void gw_sse_unwatch(gw_sse *s, gw_stream *st);

void gw_sse_retired_drain(gw_sse *s);

/* ---- sse_feed.c ----------------------------------------------------------- */

/* gw_sse_snapshot_start reads the record of a new stream. */
void gw_sse_snapshot_start(gw_sse *s, gw_stream *st);
/* Thread bodies: the subscriber and the timer (heartbeats, re-reads,
 * hang-ups of clients). */
void *gw_sse_sub_main(void *arg);
void *gw_sse_timer_main(void *arg);

#endif
