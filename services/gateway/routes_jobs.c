/* routes_jobs.c - job records and the job of a conversation (seed 002). */
#include "gw_routes.h"
#include "gw_routes_int.h"

static const char routes_no_job[] = "Job not found";

/* A create takes an Idempotency-Key: the retry of a create whose answer was
 * lost gets the job the first one made. */
void gw_route_job_create(gw_req *r)
{
    sh_val *args = sh_val_new_map();
    if (!args || sh_val_set_cstr(args, "fields", gw_req_take_body(r)) != SH_OK) {
        sh_val_free(args);
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    if (!gw__routes_add_request_id(r, args)) {
        sh_val_free(args);
        return;
    }
    gw_req_call(r, "job.create", args, 0, 201, routes_no_job, NULL);
}

GW_ROUTE_CALL(gw_route_job_get, "job.get", "id", NULL, 200, routes_no_job)

GW_ROUTE_CALL(gw_route_job_update, "job.update", "id", "fields", 200, routes_no_job)

GW_ROUTE_CALL(gw_route_conversation_job, "job.by_conversation", "conversationId", NULL, 200,
              routes_no_job)
