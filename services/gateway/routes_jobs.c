/* routes_jobs.c - job records and the job of a conversation (seed 002). */
#include "gw_routes.h"

static const char routes_no_job[] = "Job not found";

void gw_route_job_create(gw_req *r)
{
    gw_routes_call(r, "job.create", NULL, "fields", 201, routes_no_job);
}

void gw_route_job_get(gw_req *r)
{
    gw_routes_call(r, "job.get", "id", NULL, 200, routes_no_job);
}

void gw_route_job_update(gw_req *r)
{
    gw_routes_call(r, "job.update", "id", "fields", 200, routes_no_job);
}

void gw_route_conversation_job(gw_req *r)
{
    gw_routes_call(r, "job.by_conversation", "conversationId", NULL, 200, routes_no_job);
}
