/* routes_table.c - the gateway's routes: method, pattern, handler and what
 * each needs. The top of the gateway: it names every handler, and main
 * hands it to the router, so the router and the server below it never
 * refer to the handlers above them. */
#include "gw_openapi.h"
#include "gw_routes.h"

const gw_route gw_route_table[] = {
    {GW_GET, "/api/progress/:id", gw_route_progress_get, GW_ROUTE_AUTH},
    {GW_POST, "/api/progress/:id", gw_route_progress_update, GW_ROUTE_AUTH | GW_ROUTE_BODY},
    {GW_DELETE, "/api/progress/:id", gw_route_progress_delete, GW_ROUTE_AUTH},
    {GW_GET, "/api/progress/:id/log", gw_route_progress_log_list, GW_ROUTE_AUTH},
    {GW_POST, "/api/progress/:id/log", gw_route_progress_log_append, GW_ROUTE_AUTH | GW_ROUTE_BODY},
    {GW_GET, "/api/progress/:id/stream", gw_route_progress_stream, GW_ROUTE_AUTH},
    {GW_POST, "/api/jobs", gw_route_job_create, GW_ROUTE_AUTH | GW_ROUTE_BODY},
    {GW_GET, "/api/jobs/:id", gw_route_job_get, GW_ROUTE_AUTH},
    {GW_PUT, "/api/jobs/:id", gw_route_job_update, GW_ROUTE_AUTH | GW_ROUTE_BODY},
    {GW_GET, "/api/conversations/:id/job", gw_route_conversation_job, GW_ROUTE_AUTH},
    {GW_GET, "/api/queue", gw_route_queue_list, GW_ROUTE_AUTH | GW_ROUTE_SEED},
    {GW_POST, "/api/queue/claim", gw_route_queue_claim,
     GW_ROUTE_AUTH | GW_ROUTE_BODY | GW_ROUTE_SEED},
    {GW_POST, "/api/queue/renew", gw_route_queue_renew,
     GW_ROUTE_AUTH | GW_ROUTE_BODY | GW_ROUTE_SEED},
    {GW_POST, "/api/queue/release", gw_route_queue_release,
     GW_ROUTE_AUTH | GW_ROUTE_BODY | GW_ROUTE_SEED},
    {GW_POST, "/api/queue/status", gw_route_queue_status,
     GW_ROUTE_AUTH | GW_ROUTE_BODY | GW_ROUTE_SEED},
    {GW_POST, "/api/queue/reserve", gw_route_queue_reserve,
     GW_ROUTE_AUTH | GW_ROUTE_BODY | GW_ROUTE_SEED},
    {GW_POST, "/api/queue/reserve/release", gw_route_queue_unreserve,
     GW_ROUTE_AUTH | GW_ROUTE_BODY | GW_ROUTE_SEED},
    {GW_POST, "/api/accounts", gw_route_account_create, GW_ROUTE_AUTH | GW_ROUTE_BODY},
    {GW_GET, "/api/accounts", gw_route_account_list, GW_ROUTE_AUTH},
    {GW_GET, "/api/accounts/:id", gw_route_account_get, GW_ROUTE_AUTH},
    {GW_PATCH, "/api/accounts/:id", gw_route_account_update, GW_ROUTE_AUTH | GW_ROUTE_BODY},
    {GW_DELETE, "/api/accounts/:id", gw_route_account_delete, GW_ROUTE_AUTH},
    {GW_POST, "/api/accounts/:id/sync", gw_route_account_sync, GW_ROUTE_AUTH},
    {GW_GET, "/api/accounts/:id/messages", gw_route_messages_list, GW_ROUTE_AUTH},
    {GW_GET, "/api/accounts/:id/messages/:uid", gw_route_message_get, GW_ROUTE_AUTH},
    {GW_POST, "/api/accounts/:id/messages/:uid/read", gw_route_message_read, GW_ROUTE_AUTH},
    {GW_POST, "/api/accounts/:id/messages/:uid/unread", gw_route_message_unread, GW_ROUTE_AUTH},
    {GW_POST, "/api/cron/sync-emails", gw_route_cron_sync, GW_ROUTE_CRON | GW_ROUTE_SEED},
    {GW_GET, "/api/cron/sync-emails", gw_route_cron_status, GW_ROUTE_CRON | GW_ROUTE_SEED},
    {GW_GET, "/healthz", gw_route_healthz, 0},
    {GW_GET, "/readyz", gw_route_readyz, 0},
    {GW_GET, "/metrics", gw_route_metrics, GW_ROUTE_AUTH},
    {GW_GET, "/openapi.json", gw_route_openapi, 0},
    {0, NULL, NULL, 0},
};
