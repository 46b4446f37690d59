/* gw_sse_int.h - what the files of the event streams share, and nothing
 * outside them but their unit test includes (prefix gw__sse_). They are
 * layers, each using only those below it:
 *
 *   sse.c           the MHD response of a stream, the routes, the life cycle
 *   sse_probe.c     the gateway's own typed events: health, metrics, streams
 *   sse_mail.c      the accounts' mail streams: the sync-worker's event log
 *                   replayed, then its live events
 *   sse_events.c    typed events: ids, text, fan-out; the coordinator's events
 *   sse_timer.c     the timer thread: heartbeats, re-reads, hang-ups
 *   sse_feed.c      the subscriber thread, snapshots and re-reads of records
 *   sse_registry.c  streams by record id (topics), typed event streams, the
 *                   watch of sockets
 *   sse_stream.c    one stream: its buffer, references, what it may send
 *   sse_types.c     the typed events' names, families, fields and filters
 *
 * Locks: the registry lock (gw__sse_registry.mu: topics, their stream
 * lists, the typed event streams and their next id, shutting, the watch of
 * sockets, and the feed's fields of a topic) comes before a stream's lock;
 * the probe's lock (its replicas' states) is never held with either. MHD is never called with
 * either held, except MHD_suspend_connection from a stream's own content reader, which holds the
 * stream lock so that a producer's resume always follows the suspend. A stream is reference
 * counted: its MHD response holds one reference (dropped by the free callback when the connection
 * closes), and so does every call, wake-up and socket watch in flight, so nothing touches freed
 * memory. */
#ifndef GW_SSE_INT_H
#define GW_SSE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gw_metrics.h"
#include "gw_slots.h"
#include "gw_sse.h"
#include "shared/buf.h"
#include "shared/events.h"
#include "shared/keys.h"
#include "shared/rpc.h"

/* ---- sse_types.c: the typed events of GET /api/events --------------------- */

/* Each type is a bit of a stream's filter (gw__sse_stream.types). */
enum gw__sse_type {
    GW__SSE_CLAIM_CLAIMED,
    GW__SSE_CLAIM_RENEWED,
    GW__SSE_CLAIM_RELEASED,
    GW__SSE_CLAIM_STATUS,
    GW__SSE_CLAIM_EXPIRED,
    GW__SSE_RESERVATION_RESERVED,
    GW__SSE_RESERVATION_RENEWED,
    GW__SSE_RESERVATION_RELEASED,
    GW__SSE_RESERVATION_EXPIRED,
    GW__SSE_ACCOUNT_CREATED,
    GW__SSE_ACCOUNT_UPDATED,
    GW__SSE_ACCOUNT_DELETED,
    GW__SSE_ACCOUNT_STATUS,
    GW__SSE_MAIL_NEW,
    GW__SSE_MAIL_FLAGS,
    GW__SSE_MAIL_REMOVED,
    GW__SSE_FOLDER_COUNTS,
    GW__SSE_SYNC_STATUS,
    GW__SSE_AUTH_ERROR,
    GW__SSE_HEALTH,
    GW__SSE_METRICS,
    GW__SSE_STREAMS,
    GW__SSE_TYPE_COUNT
};

/* gw__sse_type_name: "claim.claimed", ...; NULL out of range. */
const char *gw__sse_type_name(int type);
/* gw__sse_type_family: its GW_SSE_FAMILY_ bit; 0 out of range. */
unsigned gw__sse_type_family(int type);
/* gw__sse_types_of_families: the bits of every type of those families. */
uint64_t gw__sse_types_of_families(unsigned families);
/* gw__sse_type_of: the type of a coordinator event (its topic and kind), or
 * -1 for one no typed event is made of. */
int gw__sse_type_of(const char *topic, const char *kind);
/* gw__sse_types_parse turns a ?types= value (comma-separated names, a
 * trailing '*' matching a family: "claim.*,health"; NULL or empty: all)
 * into type bits; SH_EINVAL with the first unknown name in bad. */
int gw__sse_types_parse(const char *list, uint64_t *mask, char *bad, size_t badlen);
/* gw__sse_type_fields appends the data fields of an event of type made of
 * a coordinator payload, each as ",\"name\":value" (claims and reservations:
 * the map without its fencing token; accounts: accountId, then the status
 * fields or, created and updated, the account's public view as "account";
 * mail events: the sync-worker's event with its log id as "eventId");
 * SH_EINVAL for a payload that does not fit. */
int gw__sse_type_fields(int type, const sh_val *payload, sh_buf *out);

/* ---- sse_stream.c: one stream -------------------------------------------- */

#define SSE_MAX_BUFFER (16u * 1024 * 1024) /* a stream's cap unless set (GATEWAY_STREAM_BUFFER) */
/* The types of an account's mail stream (GET /api/accounts/:id/events): a
 * bit no typed event has, so the typed events never reach it while the
 * heartbeats, hang-ups and the shutdown do. */
#define GW__SSE_MAIL_STREAM (UINT64_C(1) << 63)
#define GW__SSE_MAIL_ID_MAX GW_SSE_MAIL_ID_MAX
#define SSE_MAIL_HELD_MAX   (1u << 20) /* live events held during a replay */
#define SSE_TS_MAX          40

struct MHD_Connection;

typedef struct gw__sse_stream gw__sse_stream;
typedef struct gw__sse_topic gw__sse_topic;
typedef struct gw__sse_registry gw__sse_registry;

struct gw__sse_stream {
    atomic_int refs;
    pthread_mutex_t mu;
    struct MHD_Connection *conn;
    /* the registry's, under the registry lock */
    gw__sse_registry *reg;
    gw__sse_topic *topic;
    gw__sse_stream *prev, *next;
    bool registered;
    int ep_fd; /* duplicate of the socket, watched for hang-ups; -1 when not */
    gw__sse_stream *retired_next;
    gw_slot *slot; /* its place among the streams (released with it), or NULL */
    size_t cap;    /* bytes it holds unread (GATEWAY_STREAM_BUFFER) */
    /* stream lock */
    sh_buf out;
    size_t off;
    bool split;               /* out[off] is inside a block (event) partly read */
    int64_t last;             /* last version sent, or given as Last-Event-ID */
    bool sent_record;         /* a record went out on this stream */
    char created[SSE_TS_MAX]; /* createdAt of the last record sent */
    char tomb[SSE_TS_MAX];    /* createdAt of a record deleted since */
    bool suspended, finishing, failed, closed;
    uint64_t types; /* a typed event stream: the types it takes; 0: a record's */
    /* an account's mail stream (types GW__SSE_MAIL_STREAM; id: the account),
     * under the stream lock */
    char mail_last[GW__SSE_MAIL_ID_MAX]; /* id of the last event sent or given */
    bool mail_replaying;                 /* live events are held meanwhile */
    bool mail_overflow;                  /* some were dropped: read the log again */
    sh_buf mail_held;                    /* held events: "<id>\0<text>\0"... */
    /* a tap (conn NULL): called instead of MHD_resume_connection, no lock held */
    void (*wake)(void *arg);
    void *wake_arg;
    char id[SH_ID_MAX + 1];
};

/* gw__sse_stream_new returns a stream of record id on conn holding one
 * reference, or NULL; last is the client's Last-Event-ID (0: none). Its cap
 * is SSE_MAX_BUFFER until set. The last reference releases its slot. */
gw__sse_stream *gw__sse_stream_new(struct MHD_Connection *conn, const char *id, int64_t last);
void gw__sse_stream_ref(gw__sse_stream *st);
/* gw__sse_stream_unref frees st with its last reference. */
void gw__sse_stream_unref(gw__sse_stream *st);

/* Streams to resume once the locks are released. */
typedef struct gw__sse_wake {
    gw__sse_stream **v;
    size_t n, cap;
    gw__sse_stream *inl[16];
} gw__sse_wake;

void gw__sse_wake_init(gw__sse_wake *w);
/* gw__sse_wake_add keeps a reference to st until gw__sse_wake_run resumes
 * it. */
void gw__sse_wake_add(gw__sse_wake *w, gw__sse_stream *st);
void gw__sse_wake_run(gw__sse_wake *w);

/* gw__sse_stream_push_locked appends text (whole blocks, each ending in a
 * blank line) to the stream's buffer (stream lock held, or st not yet
 * shared); it returns whether the connection is suspended and must be
 * resumed (the flag is cleared, so exactly one producer resumes it). Past
 * its cap unread, a record's stream drops what it has not begun to send,
 * keeping text (a newer record supersedes the ones dropped; after other
 * text the record is sent again at its next read), and any other stream
 * fails: its client resumes with Last-Event-ID. One text always fits an
 * empty buffer; a mail stream's replay of the log has SSE_MAX_BUFFER. */
bool gw__sse_stream_push_locked(gw__sse_stream *st, const char *text, size_t len);
/* gw__sse_stream_push appends text unless the stream is finishing. */
void gw__sse_stream_push(gw__sse_stream *st, const char *text, size_t len, gw__sse_wake *w);
/* gw__sse_stream_note appends a comment (text) unless the stream is
 * finishing or a record went out on it already. */
void gw__sse_stream_note(gw__sse_stream *st, const char *text, size_t len, gw__sse_wake *w);
/* gw__sse_stream_offer sends one progress event (text) of version and
 * createdAt created (NULL: unknown) if it is newer than what the stream
 * has; snapshot marks the first read of a new stream. */
void gw__sse_stream_offer(gw__sse_stream *st, int64_t version, const char *created,
                          const char *text, size_t len, bool snapshot, gw__sse_wake *w);
/* gw__sse_stream_deleted sends the delete event text: versions start again,
 * and the deleted record, if it comes after, is not sent. */
void gw__sse_stream_deleted(gw__sse_stream *st, const char *text, size_t len, gw__sse_wake *w);
/* gw__sse_stream_finish sends text as the last thing the stream sends. */
void gw__sse_stream_finish(gw__sse_stream *st, const char *text, size_t len, gw__sse_wake *w);
/* gw__sse_stream_fail ends the stream at once (its client left). */
void gw__sse_stream_fail(gw__sse_stream *st, gw__sse_wake *w);
/* gw__sse_stream_close notes that the connection is gone. */
void gw__sse_stream_close(gw__sse_stream *st);
/* gw__sse_stream_read is the MHD content reader of st: up to max bytes of
 * its buffer, else the end (failed or finishing), else 0 with the
 * connection suspended until a producer resumes it. */
ssize_t gw__sse_stream_read(gw__sse_stream *st, char *buf, size_t max);

/* ---- sse_registry.c: streams by record id -------------------------------- */

#define SSE_BUCKETS 4096

struct gw__sse_topic {
    gw__sse_topic *hnext;
    gw__sse_stream *streams;
    /* the feed's */
    int64_t highest;          /* highest version seen for the id */
    char created[SSE_TS_MAX]; /* createdAt of that version */
    int64_t last_event_ms;
    bool dirty; /* events came since the last re-read */
    bool reread_inflight;
    bool reread_again;
    char id[SH_ID_MAX + 1];
};

struct gw__sse_registry {
    pthread_mutex_t mu;
    bool shutting;
    size_t nstreams;
    gw__sse_stream *typed;   /* typed event streams (types != 0), not in any topic */
    uint64_t next_id;        /* of the next typed event */
    uint64_t topics_gen;     /* grows when a topic is made or removed, or gains or loses a stream */
    int ep;                  /* epoll of stream sockets, for hang-ups */
    gw__sse_stream *retired; /* no longer watched; freed by gw__sse_retired_drain */
    gw__sse_topic *buckets[SSE_BUCKETS];
};

/* gw__sse_registry_init sets up reg (always: gw__sse_registry_fini undoes
 * it even when it fails). */
int gw__sse_registry_init(gw__sse_registry *reg, sh_error *err);
/* gw__sse_registry_fini frees the topics; their streams are gone. */
void gw__sse_registry_fini(gw__sse_registry *reg);

/* gw__sse_registry_add registers st under its id (a typed event stream:
 * among the typed ones) and watches sock (a socket of its connection; -1:
 * none); false when the registry is shutting or out of memory. */
bool gw__sse_registry_add(gw__sse_registry *reg, gw__sse_stream *st, int sock);
/* gw__sse_registry_remove undoes gw__sse_registry_add, if it was done. */
void gw__sse_registry_remove(gw__sse_stream *st);
/* gw__sse_registry_end marks the registry shutting and ends every stream
 * with text. */
void gw__sse_registry_end(gw__sse_registry *reg, const char *text, size_t len);

/* Registry lock held for these. */
gw__sse_topic *gw__sse_topic_find(gw__sse_registry *reg, const char *id);
/* gw__sse_unwatch stops watching st's socket; the watch's reference is
 * dropped by gw__sse_retired_drain, from the thread that waits on reg->ep
 * after its next wait, since the wait in progress may still return an event
 * naming st. */
void gw__sse_unwatch(gw__sse_registry *reg, gw__sse_stream *st);

void gw__sse_retired_drain(gw__sse_registry *reg);

/* ---- sse_feed.c: events and reads of records ----------------------------- */

#define SSE_RECV_MS         200  /* subscriber wakes this often to see the stop flag */
#define SSE_READ_TIMEOUT_MS 2000 /* snapshot and re-read calls */

typedef struct gw__sse_feed {
    gw__sse_registry *reg;
    sh_rpc_client *rpc;
    sh_sub *sub;
    pthread_t thread;
    bool started;
    atomic_bool stop;
    atomic_int pending; /* snapshot and re-read calls in flight */
} gw__sse_feed;

/* gw__sse_feed_start subscribes to the progress events at events_url and
 * starts the subscriber thread, which hands them to the streams of reg;
 * records are read with rpc. gw__sse_feed_fini undoes it even when it
 * fails. */
int gw__sse_feed_start(gw__sse_feed *f, gw__sse_registry *reg, const char *events_url,
                       sh_rpc_client *rpc, sh_error *err);
/* gw__sse_feed_stop stops the subscriber thread (within SSE_RECV_MS). */
void gw__sse_feed_stop(gw__sse_feed *f);
/* gw__sse_feed_fini stops the thread and waits for the reads in flight. */
void gw__sse_feed_fini(gw__sse_feed *f);
/* gw__sse_feed_snapshot reads the record of a new (registered) stream. */
void gw__sse_feed_snapshot(gw__sse_feed *f, gw__sse_stream *st);
/* gw__sse_feed_reread reads topic t's record again for its streams, unless
 * a read is in flight, in which case another follows it (registry lock
 * held). */
void gw__sse_feed_reread(gw__sse_feed *f, gw__sse_topic *t);

/* ---- sse_timer.c: heartbeats, re-reads, hang-ups ------------------------- */
/* (the heartbeats go to the typed event streams too) */

#define SSE_TICK_MS  250 /* timer period */
#define SSE_QUIET_MS 500 /* re-read an id this long after its last event */

typedef struct gw__sse_timer {
    gw__sse_registry *reg;
    gw__sse_feed *feed;
    int64_t period_ms; /* of heartbeats */
    int stop_fd;       /* eventfd that wakes the thread to stop; -1 before the start */
    pthread_t thread;
    bool started;
    atomic_bool stop;
} gw__sse_timer;

/* gw__sse_timer_start starts the timer thread: heartbeats every
 * heartbeat_s, re-reads through feed, hang-ups of the sockets watched by
 * reg. gw__sse_timer_fini undoes it even when it fails. */
int gw__sse_timer_start(gw__sse_timer *tm, gw__sse_registry *reg, gw__sse_feed *feed,
                        long long heartbeat_s, sh_error *err);
void gw__sse_timer_stop(gw__sse_timer *tm);
void gw__sse_timer_fini(gw__sse_timer *tm);
/* gw__sse_timer_due reports whether topic t's record is read again now (ms,
 * monotonic): on every heartbeat, else once its events have been quiet for
 * SSE_QUIET_MS (registry lock held). */
bool gw__sse_timer_due(const gw__sse_topic *t, int64_t now, bool heartbeat);

/* ---- sse_events.c: typed events ------------------------------------------ */

typedef struct gw__sse_events {
    gw__sse_registry *reg;
    sh_sub *sub;
    pthread_t thread;
    bool started;
    atomic_bool stop;
} gw__sse_events;

/* gw__sse_events_start subscribes to the coordinator's events at url (a
 * comma-separated list) and starts the thread that turns them into typed
 * events for the streams of reg. gw__sse_events_fini undoes it even when it
 * fails. */
int gw__sse_events_start(gw__sse_events *ev, gw__sse_registry *reg, const char *url, sh_error *err);
void gw__sse_events_stop(gw__sse_events *ev);
void gw__sse_events_fini(gw__sse_events *ev);
/* gw__sse_events_emit sends an event of type, its data the members
 * fields[0..len) (each ",\"name\":value"; may be empty) after id, type and
 * createdAt, with the next id: to every typed stream taking type, or to
 * only. Registry lock held when locked. */
void gw__sse_events_emit(gw__sse_registry *reg, int type, const char *fields, size_t len,
                         gw__sse_stream *only, bool locked);

/* ---- sse_mail.c: the accounts' mail streams ------------------------------ */

typedef struct gw__sse_mail {
    gw__sse_registry *reg;
    sh_sub *sub;
    sh_rpc_client *rpc; /* the sync-worker's events.read */
    pthread_t thread;
    bool started;
    atomic_bool stop;
} gw__sse_mail;

/* gw__sse_mail_start subscribes to the sync-worker's mail events at
 * events_url and starts the thread handing each to the mail streams of its
 * account; the log is read through rpc_url. gw__sse_mail_fini undoes it
 * even when it fails. */
int gw__sse_mail_start(gw__sse_mail *m, gw__sse_registry *reg, const char *events_url,
                       const char *rpc_url, sh_error *err);
void gw__sse_mail_stop(gw__sse_mail *m);
void gw__sse_mail_fini(gw__sse_mail *m);
/* gw__sse_mail_replay sends a registered mail stream, whose live events are
 * held (mail_replaying), what the log has after its mail_last (or "event:
 * reset" when that is gone), then the held events it has not sent, and lets
 * the live ones through. Without a mail_last it goes live at once. */
void gw__sse_mail_replay(gw__sse_mail *m, gw__sse_stream *st);
/* gw__sse_mail_id_cmp compares two event ids "<ms>-<seq>" (<0, 0, >0); an
 * id that does not parse is older than any. */
int gw__sse_mail_id_cmp(const char *a, const char *b);
/* gw__sse_mail_text appends the SSE text of an event (a map with id and
 * type; its kind and prevId left out); SH_EINVAL for one without them. */
int gw__sse_mail_text(const sh_val *ev, sh_buf *out);

/* ---- sse_probe.c: health, metrics, streams ------------------------------- */

#define SSE_PROBE_MS       1000 /* sampling period */
#define SSE_PING_MS        900  /* a replica that does not answer in time is down */
#define SSE_REPLICAS_MAX   32
#define SSE_STREAM_IDS_MAX 1000 /* ids listed in one streams event */

struct gw__sse_probe;

typedef struct gw__sse_replica {
    struct gw__sse_probe *probe;
    int svc; /* enum gw_service */
    char url[256];
    sh_rpc_client *rpc;
    int state;     /* 0 unknown, 1 up, 2 up but its Redis is down, 3 down */
    bool inflight; /* a ping is out (probe lock) */
} gw__sse_replica;

typedef struct gw__sse_probe {
    gw__sse_registry *reg;
    pthread_mutex_t mu;
    gw__sse_replica replicas[SSE_REPLICAS_MAX];
    int nreplicas;
    int sent[SSE_REPLICAS_MAX]; /* states of the last health event (probe thread) */
    uint64_t streams_gen;       /* topics_gen of the last streams event (probe thread) */
    uint64_t last_requests, last_sum_ns, last_buckets[GW_METRICS_BUCKETS + 1];
    int64_t last_ms;
    pthread_t thread;
    bool started;
    atomic_bool stop;
    atomic_int pending; /* pings in flight */
} gw__sse_probe;

/* gw__sse_probe_start makes a client for each replica of urls[svc]
 * (comma-separated lists, GW_SVC_COUNT of them) and starts the thread that
 * samples every SSE_PROBE_MS. gw__sse_probe_fini undoes it even when it
 * fails (and is harmless on a zeroed probe). */
int gw__sse_probe_start(gw__sse_probe *p, gw__sse_registry *reg, const char *const *urls,
                        sh_error *err);
void gw__sse_probe_stop(gw__sse_probe *p);
void gw__sse_probe_fini(gw__sse_probe *p);
/* gw__sse_probe_greet sends a new typed stream, not yet registered, the
 * current health and streams. */
void gw__sse_probe_greet(gw__sse_probe *p, gw__sse_stream *st);

#endif
