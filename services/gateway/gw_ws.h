/* gw_ws.h - WebSocket (RFC 6455) on the event stream routes: a request with
 * "Upgrade: websocket" is answered through libmicrohttpd's upgrade and then
 * framed with wslay, one JSON event per text frame, from the same typed
 * event streams as the SSE route (gw_sse_tap).
 *
 * Life cycle: gw_ws_new starts the thread that serves every WebSocket;
 * gw_ws_shutdown (after gw_sse_shutdown, before the HTTP drain) closes them
 * all (1001) and refuses new ones; gw_ws_free frees the rest. */
#ifndef GW_WS_H
#define GW_WS_H

#include <stdbool.h>
#include <stdint.h>

#include "gw_http.h"
#include "gw_sse.h"
#include "shared/err.h"

/* gw_ws_new: every WebSocket is pinged every ping_ms and closed (1001)
 * when a ping's pong does not come within pong_ms. */
int gw_ws_new(gw_sse *sse, int64_t ping_ms, int64_t pong_ms, gw_ws **out, sh_error *err);

/* gw_ws_requested reports whether r asks for a WebSocket (its Upgrade
 * header names websocket). */
bool gw_ws_requested(gw_req *r);

/* gw_ws_open_events answers r: 101 and a WebSocket of the typed events of
 * types, or 400/426 naming what is wrong with the handshake, 503 when
 * stopping. gw_ws_open_mail does the same with the mail events of the
 * account :id, resuming after ?lastEventId= (400 for one that is no event
 * id). */
void gw_ws_open_events(gw_ws *ws, gw_req *r, uint64_t types);
void gw_ws_open_mail(gw_ws *ws, gw_req *r);

void gw_ws_shutdown(gw_ws *ws);
void gw_ws_free(gw_ws *ws);

#endif
