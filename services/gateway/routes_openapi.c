/* routes_openapi.c - GET /openapi.json: the API's description, as embedded
 * at build time, so a client or a test reads the contract from the very
 * gateway it talks to. */
#include "gw_http.h"
#include "gw_openapi.h"

void gw_route_openapi(gw_req *r)
{
    sh_buf b;
    sh_buf_init(&b);
    if (sh_buf_append(&b, gw_openapi_json, gw_openapi_json_len) != SH_OK) {
        sh_buf_fini(&b);
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    gw_req_reply_raw(r, 200, "application/json", &b);
}
