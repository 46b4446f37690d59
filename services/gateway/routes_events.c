/* routes_events.c - GET /api/events, the one stream of typed events (claims,
 * reservations, accounts, the gateway's health, metrics and streams). */
#include <microhttpd.h>

#include "gw_auth.h"
#include "gw_router.h"
#include "gw_routes.h"
#include "gw_sse.h"

void gw_route_events(gw_req *r)
{
    /* The stream shows everything: like a write, it needs the full
     * API_TOKEN, and the read-only token is refused. */
    const gw_config *cfg = gw_req_app(r)->cfg;
    if (gw_auth_check(cfg, GW_POST, gw_req_header(r, MHD_HTTP_HEADER_AUTHORIZATION)) ==
        GW_AUTH_READ_ONLY) {
        gw_req_reply_error(r, 403, "the event stream needs the full API token");
        return;
    }
    gw_sse_open_events(gw_req_app(r)->sse, r, GW_SSE_FAMILY_ALL);
}
