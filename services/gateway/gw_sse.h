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

#include "gw_config.h"
#include "gw_http.h"
#include "shared/err.h"
#include "shared/rpc.h"

int gw_sse_new(const gw_config *cfg, sh_rpc_client *rpc, gw_sse **out, sh_error *err);

/* gw_sse_open answers r with a stream of the record named by its :id. */
void gw_sse_open(gw_sse *s, gw_req *r);

/* gw_sse_open_mail answers r with the mail stream of the account :id,
 * resuming after its Last-Event-ID (header or ?lastEventId=) from the
 * sync-worker's event log; 400 for an id that is not <ms>-<seq>. */
void gw_sse_open_mail(gw_sse *s, gw_req *r);

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

/* gw_sse_open_events answers r with the stream of typed events of the
 * families allowed, filtered by its ?types= (400 naming an unknown type). */
void gw_sse_open_events(gw_sse *s, gw_req *r, unsigned families);

void gw_sse_shutdown(gw_sse *s);

void gw_sse_free(gw_sse *s);

#endif
