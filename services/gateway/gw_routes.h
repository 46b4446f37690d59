/* gw_routes.h - the route handlers, one function per route. */
#ifndef GW_ROUTES_H
#define GW_ROUTES_H

#include "gw_http.h"
#include "gw_router.h"

/* The gateway's route table (routes_table.c), given to gw_router_init. */
extern const gw_route gw_route_table[];

void gw_route_progress_get(gw_req *r);
void gw_route_progress_update(gw_req *r);
void gw_route_progress_delete(gw_req *r);
void gw_route_progress_log_append(gw_req *r);
void gw_route_progress_log_list(gw_req *r);
void gw_route_progress_stream(gw_req *r);

void gw_route_job_create(gw_req *r);
void gw_route_job_get(gw_req *r);
void gw_route_job_update(gw_req *r);
void gw_route_conversation_job(gw_req *r);

void gw_route_queue_list(gw_req *r);
void gw_route_queue_claim(gw_req *r);
void gw_route_queue_renew(gw_req *r);
void gw_route_queue_release(gw_req *r);
void gw_route_queue_status(gw_req *r);
void gw_route_queue_reserve(gw_req *r);
void gw_route_queue_unreserve(gw_req *r);

void gw_route_account_create(gw_req *r);
void gw_route_account_list(gw_req *r);
void gw_route_account_get(gw_req *r);
void gw_route_account_update(gw_req *r);
void gw_route_account_delete(gw_req *r);
void gw_route_account_sync(gw_req *r);

void gw_route_messages_list(gw_req *r);
void gw_route_message_get(gw_req *r);
void gw_route_message_read(gw_req *r);
void gw_route_message_unread(gw_req *r);

void gw_route_tokens_create(gw_req *r);

void gw_route_cron_sync(gw_req *r);
void gw_route_cron_status(gw_req *r);

void gw_route_events(gw_req *r);
void gw_route_account_events(gw_req *r);

void gw_route_healthz(gw_req *r);
void gw_route_readyz(gw_req *r);
void gw_route_metrics(gw_req *r);

/* gw_routes_call calls op with {id_key: the :id of the path (if id_key),
 * body_key: the request body (if body_key)} and replies with the result
 * (ok_status) or the mapped error (not_found: the text of a 404). */
void gw_routes_call(gw_req *r, const char *op, const char *id_key, const char *body_key,
                    int ok_status, const char *not_found);
/* GW_ROUTE_CALL defines a handler that is nothing but that one call. */
#define GW_ROUTE_CALL(name, op, id_key, body_key, ok_status, not_found)                            \
    void name(gw_req *r)                                                                           \
    {                                                                                              \
        gw_routes_call(r, op, id_key, body_key, ok_status, not_found);                             \
    }

#endif
