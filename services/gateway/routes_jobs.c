/* routes_jobs.c - job records and the job of a conversation (seed 002). */
#include "gw_routes.h"

static const char routes_no_job[] = "Job not found";

GW_ROUTE_CALL(gw_route_job_create, "job.create", NULL, "fields", 201, routes_no_job)

GW_ROUTE_CALL(gw_route_job_get, "job.get", "id", NULL, 200, routes_no_job)

GW_ROUTE_CALL(gw_route_job_update, "job.update", "id", "fields", 200, routes_no_job)

GW_ROUTE_CALL(gw_route_conversation_job, "job.by_conversation", "conversationId", NULL, 200,
              routes_no_job)
