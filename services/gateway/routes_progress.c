/* routes_progress.c - progress records and their error log (seed 001),
 * each route one call to the progress service. */
#include "gw_routes.h"
#include "gw_sse.h"

static const char routes_no_session[] = "Session not found";

void gw_routes_call(gw_req *r, const char *op, const char *id_key, const char *body_key,
                    int ok_status, const char *not_found)
{
    sh_val *args = sh_val_new_map();
    int rc = args ? SH_OK : SH_ENOMEM;
    if (rc == SH_OK && id_key)
        rc = sh_val_set_cstr(args, id_key, sh_val_new_cstr(gw_req_param(r)));
    if (rc == SH_OK && body_key)
        rc = sh_val_set_cstr(args, body_key, gw_req_take_body(r));
    if (rc != SH_OK) {
        sh_val_free(args);
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    gw_req_call(r, op, args, 0, ok_status, not_found, NULL);
}

GW_ROUTE_CALL(gw_route_progress_get, "progress.get", "id", NULL, 200, routes_no_session)

GW_ROUTE_CALL(gw_route_progress_update, "progress.update", "id", "fields", 200, routes_no_session)

GW_ROUTE_CALL(gw_route_progress_delete, "progress.delete", "id", NULL, 200, routes_no_session)

GW_ROUTE_CALL(gw_route_progress_log_append, "log.append", "id", "entry", 201, routes_no_session)

GW_ROUTE_CALL(gw_route_progress_log_list, "log.list", "id", NULL, 200, routes_no_session)

void gw_route_progress_stream(gw_req *r)
{
    gw_sse_open(gw_req_app(r)->sse, r);
}
