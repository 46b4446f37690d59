/* routes_events.c - GET /api/events, the one stream of typed events (claims,
 * reservations, accounts, the gateway's health, metrics and streams), and
 * GET /api/accounts/:id/events, an account's mail events; each as
 * Server-Sent Events or, asked with Upgrade: websocket, a WebSocket. */
#include <microhttpd.h>

#include "gw_auth.h"
#include "gw_router.h"
#include "gw_routes.h"
#include "gw_sse.h"
#include "gw_token.h"
#include "gw_ws.h"

/* routes_events_families: what a scoped token may see of the stream: an
 * events scope all of it, a queue scope the claims and reservations, an
 * accounts scope the accounts and every account's mail events. */
static unsigned routes_events_families(const gw_token *t)
{
    if (gw_token_covers(t, GW_SCOPE_EVENTS, NULL))
        return GW_SSE_FAMILY_ALL;
    unsigned f = 0;
    if (gw_token_covers(t, GW_SCOPE_QUEUE, NULL))
        f |= GW_SSE_FAMILY_CLAIM | GW_SSE_FAMILY_RESERVATION;
    if (gw_token_covers(t, GW_SCOPE_ACCOUNTS, NULL))
        f |= GW_SSE_FAMILY_ACCOUNT | GW_SSE_FAMILY_MAIL;
    return f;
}

void gw_route_events(gw_req *r)
{
    const gw_token *t = gw_req_token(r);
    unsigned families = GW_SSE_FAMILY_ALL;
    if (t) {
        families = routes_events_families(t);
        if (!families) {
            gw_req_reply_error(r, 403,
                               "token does not cover the event stream (events, queue or accounts)");
            return;
        }
    } else if (gw_auth_check(gw_req_app(r)->cfg, GW_POST,
                             gw_req_header(r, MHD_HTTP_HEADER_AUTHORIZATION)) ==
               GW_AUTH_READ_ONLY) {
        /* Everything shows here: like a write, the stream needs the full
         * API_TOKEN, and the read-only token is refused. */
        gw_req_reply_error(r, 403, "the event stream needs the full API token");
        return;
    }
    uint64_t types = gw_sse_events_types(r, families);
    if (!types)
        return;
    if (gw_ws_requested(r))
        gw_ws_open_events(gw_req_app(r)->ws, r, types);
    else
        gw_sse_open_events(gw_req_app(r)->sse, r, types);
}

void gw_route_account_events(gw_req *r)
{
    if (gw_ws_requested(r))
        gw_ws_open_mail(gw_req_app(r)->ws, r);
    else
        gw_sse_open_mail(gw_req_app(r)->sse, r);
}
