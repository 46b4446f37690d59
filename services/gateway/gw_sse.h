/* gw_sse.h - Server-Sent Events streams: of progress records, and the one
 * stream of typed events (GET /api/events).
 *
 * One subscriber thread receives the progress service's events and hands
 * each to the streams of its record id; a timer thread sends heartbeats and
 * re-reads records whose last event may have been lost. Each stream sends
 * versions in strictly increasing order. Another subscriber thread makes
 * typed events of the coordinator's, and a probe thread the gateway's own
 * (health, metrics, streams), for the typed streams.
 *
 * Life cycle: gw_sse_new starts the threads; gw_sse_shutdown stops them and
 * ends every stream with a "shutdown" event; gw_sse_free (after the HTTP
 * server and the RPC client are gone) frees the rest. */
#ifndef GW_SSE_H
#define GW_SSE_H

#include <sys/types.h>

#include "gw_config.h"
#include "gw_http.h"
#include "gw_slots.h"
#include "shared/err.h"
#include "shared/rpc.h"

int gw_sse_new(const gw_config *cfg, sh_rpc_client *rpc, gw_sse **out, sh_error *err);

/* Seconds a client refused a stream is told to wait (Retry-After). */
#define GW_SSE_RETRY_AFTER "5"

/* gw_sse_admit takes a place for a stream of r's client (gw_slots.h), or
 * replies 429 (its address has GATEWAY_MAX_STREAMS_PER_ADDRESS) or 503 (the
 * gateway has GATEWAY_MAX_STREAMS), with Retry-After, and returns NULL. The
 * open functions below take one themselves. */
gw_slot *gw_sse_admit(gw_sse *s, gw_req *r);

/* gw_sse_open answers r with a stream of the record named by its :id. */
void gw_sse_open(gw_sse *s, gw_req *r);

/* gw_sse_open_mail answers r with the mail stream of the account :id,
 * resuming after its Last-Event-ID (header or ?lastEventId=) from the
 * sync-worker's event log; 400 for an id that is not <ms>-<seq>. */
void gw_sse_open_mail(gw_sse *s, gw_req *r);

#define GW_SSE_MAIL_ID_MAX 48 /* an event id of the log, "<ms>-<seq>", and its NUL */

/* gw_sse_mail_last reads r's Last-Event-ID (header, else ?lastEventId=)
 * into out, len bytes ("" for none); false for one that is no event id. */
bool gw_sse_mail_last(gw_req *r, char *out, size_t len);

/* Families of the typed events, as bits: what a token may see is a set of
 * them (a queue scope: claim and reservation; an accounts scope: account). */
enum {
    GW_SSE_FAMILY_CLAIM = 1,
    GW_SSE_FAMILY_RESERVATION = 2,
    GW_SSE_FAMILY_ACCOUNT = 4,
    GW_SSE_FAMILY_HEALTH = 8,
    GW_SSE_FAMILY_METRICS = 16,
    GW_SSE_FAMILY_STREAMS = 32,
    GW_SSE_FAMILY_MAIL = 64, /* the sync-worker's mail events of every account */
    GW_SSE_FAMILY_ALL = 127,
};

/* gw_sse_family_of returns the family of an event type name ("claim.claimed"),
 * 0 for an unknown one. */
unsigned gw_sse_family_of(const char *type);

/* gw_sse_events_types returns the bits of the typed events that r's
 * ?types= names and families allow; 0 when it has replied (400 naming an
 * unknown type, 403 when the token may see none of them). */
uint64_t gw_sse_events_types(gw_req *r, unsigned families);

/* gw_sse_open_events answers r with the stream of typed events of types
 * (from gw_sse_events_types). */
void gw_sse_open_events(gw_sse *s, gw_req *r, uint64_t types);

/* A tap: the stream of typed events read by something other than an HTTP
 * response (the WebSocket). Its text is that of the SSE stream (blocks of
 * "id:", "event:", "data:" lines, comments), ending with "event: shutdown"
 * when the gateway stops. */
typedef struct gw_sse_tap gw_sse_tap;

#define GW_SSE_TAP_END    (-1) /* the stream ended (the gateway stops) */
#define GW_SSE_TAP_FAILED (-2) /* its reader fell GATEWAY_STREAM_BUFFER behind */

/* gw_sse_tap_new opens a tap of the typed events of types, holding slot
 * (from gw_sse_admit; taken, even on failure); wake(arg) is
 * called, from any thread and with no lock held, when a tap whose last read
 * found nothing has text again (or ends). Freed with gw_sse_tap_free. */
int gw_sse_tap_new(gw_sse *s, gw_slot *slot, uint64_t types, void (*wake)(void *arg), void *arg,
                   gw_sse_tap **out);
/* gw_sse_tap_read copies up to max bytes of t's text into buf; 0 when there
 * is none now (wake follows), else GW_SSE_TAP_END or GW_SSE_TAP_FAILED. */
/* gw_sse_tap_mail opens a tap of account's mail events, replaying the log
 * after last ("": live only) as gw_sse_open_mail does. */
int gw_sse_tap_mail(gw_sse *s, gw_slot *slot, const char *account, const char *last,
                    void (*wake)(void *arg), void *arg, gw_sse_tap **out);
ssize_t gw_sse_tap_read(gw_sse_tap *t, char *buf, size_t max);
void gw_sse_tap_free(gw_sse_tap *t);

void gw_sse_shutdown(gw_sse *s);

void gw_sse_free(gw_sse *s);

#endif
