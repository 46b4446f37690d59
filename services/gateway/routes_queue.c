/* routes_queue.c - the queue API of seed 003 over the coordinator: claims of
 * work items with fencing tokens and row reservations. Every reply has the
 * seed's "success" field; errors are {"success": false, "error": ...}. */
#include <string.h>

#include "gw_routes.h"
#include "gw_routes_int.h"
#include "shared/util.h"

static const char *const queue_claim_fields[] = {"sq",        "botId",     "token", "status",
                                                 "timestamp", "expiresAt", NULL};
static const char *const queue_res_fields[] = {"sq",     "botId",     "startRow",  "rowCount",
                                               "status", "timestamp", "expiresAt", NULL};

/* queue_reply answers {success: true, key: picked fields of value}. */
static void queue_reply(gw_req *r, const char *key, const sh_val *value, const char *const *fields)
{
    sh_val *m = sh_val_new_map();
    if (!m || sh_val_set_cstr(m, "success", sh_val_new_bool(true)) ||
        (key && sh_val_set_cstr(m, key, gw__routes_pick(value, fields)))) {
        sh_val_free(m);
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    gw_req_reply_json(r, 200, m);
    sh_val_free(m);
}

/* queue_reply_held answers 409 {success: false, error, heldBy, expiresAt}. */
static void queue_reply_held(gw_req *r, const sh_val *result, const char *key)
{
    const sh_val *holder = sh_val_get(result, key);
    const char *msg = sh_val_get_str(result, "error", NULL);
    const char *by = sh_val_get_str(holder, "botId", NULL);
    const char *exp = sh_val_get_str(holder, "expiresAt", NULL);
    sh_val *m = sh_val_new_map();
    if (!m || sh_val_set_cstr(m, "success", sh_val_new_bool(false)) ||
        sh_val_set_cstr(m, "error", sh_val_new_cstr(msg ? msg : "held by another bot")) ||
        sh_val_set_cstr(m, "heldBy", by ? sh_val_new_cstr(by) : sh_val_new_nil()) ||
        sh_val_set_cstr(m, "expiresAt", exp ? sh_val_new_cstr(exp) : sh_val_new_nil())) {
        sh_val_free(m);
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    gw_req_reply_json(r, 409, m);
    sh_val_free(m);
}

/* queue_reply_failure maps a coordinator error; a stale owner or token is
 * 409 {success: false, error: "lease_lost", message}. */
static void queue_reply_failure(gw_req *r, int rc, const sh_error *err)
{
    if (rc != SH_ELEASE) {
        gw_req_reply_rpc_error(r, rc, err, NULL);
        return;
    }
    sh_val *m = sh_val_new_map();
    if (!m || sh_val_set_cstr(m, "success", sh_val_new_bool(false)) ||
        sh_val_set_cstr(m, "error", sh_val_new_cstr("lease_lost")) ||
        sh_val_set_cstr(m, "message", sh_val_new_cstr(err ? err->msg : "lease lost"))) {
        sh_val_free(m);
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    gw_req_reply_json(r, 409, m);
    sh_val_free(m);
}

static void queue_claim_done(gw_req *r, int rc, const sh_val *result, const sh_error *err)
{
    if (rc != SH_OK)
        queue_reply_failure(r, rc, err);
    else if (!sh_val_bool(sh_val_get(result, "claimed")))
        queue_reply_held(r, result, "claim");
    else
        queue_reply(r, "claim", sh_val_get(result, "claim"), queue_claim_fields);
}

static void queue_holder_done(gw_req *r, int rc, const sh_val *result, const sh_error *err)
{
    if (rc != SH_OK)
        queue_reply_failure(r, rc, err);
    else
        queue_reply(r, "claim", sh_val_get(result, "claim"), queue_claim_fields);
}

static void queue_reserve_done(gw_req *r, int rc, const sh_val *result, const sh_error *err)
{
    if (rc != SH_OK)
        queue_reply_failure(r, rc, err);
    else if (!sh_val_bool(sh_val_get(result, "reserved")))
        queue_reply_held(r, result, "reservation");
    else
        queue_reply(r, "reservation", sh_val_get(result, "reservation"), queue_res_fields);
}

static void queue_unreserve_done(gw_req *r, int rc, const sh_val *result, const sh_error *err)
{
    if (rc != SH_OK)
        queue_reply_failure(r, rc, err);
    else
        queue_reply(r, NULL, NULL, NULL);
}

/* queue_entries reshapes {id: entry} keeping fields of each entry. */
static sh_val *queue_entries(const sh_val *src, const char *const *fields)
{
    sh_val *m = sh_val_new_map();
    for (size_t i = 0; m && i < sh_val_len(src); i++) {
        size_t klen;
        const char *k = sh_val_key_at(src, i, &klen);
        if (sh_val_set(m, k, klen, gw__routes_pick(sh_val_value_at(src, i), fields)) != SH_OK) {
            sh_val_free(m);
            return NULL;
        }
    }
    return m;
}

static void queue_list_done(gw_req *r, int rc, const sh_val *result, const sh_error *err)
{
    static const char *const claim_view[] = {"botId", "timestamp", "status",
                                             "token", "expiresAt", NULL};
    static const char *const res_view[] = {"botId",  "startRow",  "rowCount",
                                           "status", "timestamp", NULL};
    if (rc != SH_OK) {
        queue_reply_failure(r, rc, err);
        return;
    }
    char now[SH_ISO_LEN];
    sh_iso8601(sh_now_ms(), now);
    sh_val *m = sh_val_new_map();
    if (!m || sh_val_set_cstr(m, "success", sh_val_new_bool(true)) ||
        sh_val_set_cstr(m, "sqClaims", queue_entries(sh_val_get(result, "claims"), claim_view)) ||
        sh_val_set_cstr(m, "refundReservations",
                        queue_entries(sh_val_get(result, "reservations"), res_view)) ||
        sh_val_set_cstr(m, "timestamp", sh_val_new_cstr(now)) ||
        sh_val_set_cstr(m, "kvConfigured", sh_val_new_bool(true))) {
        sh_val_free(m);
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    gw_req_reply_json(r, 200, m);
    sh_val_free(m);
}

/* queue_call sends the request body, as it is, to op: the coordinator checks
 * every field. */
static void queue_call(gw_req *r, const char *op, gw_call_fn fn)
{
    gw_req_call_svc(r, GW_SVC_COORDINATOR, op, gw_req_take_body(r), 0, 200, NULL, fn);
}

void gw_route_queue_list(gw_req *r)
{
    sh_val *args = sh_val_new_map();
    const char *ns = gw_req_query(r, "namespace"), *log = gw_req_query(r, "log");
    if (args && ns)
        sh_val_set_cstr(args, "namespace", sh_val_new_cstr(ns));
    if (args && log)
        sh_val_set_cstr(args, "log", sh_val_new_cstr(log));
    gw_req_call_svc(r, GW_SVC_COORDINATOR, "list", args, 0, 200, NULL, queue_list_done);
}

void gw_route_queue_claim(gw_req *r)
{
    queue_call(r, "claim", queue_claim_done);
}

void gw_route_queue_renew(gw_req *r)
{
    queue_call(r, "claim.renew", queue_holder_done);
}

void gw_route_queue_release(gw_req *r)
{
    queue_call(r, "claim.release", queue_holder_done);
}

void gw_route_queue_status(gw_req *r)
{
    queue_call(r, "claim.status", queue_holder_done);
}

void gw_route_queue_reserve(gw_req *r)
{
    queue_call(r, "reserve", queue_reserve_done);
}

void gw_route_queue_unreserve(gw_req *r)
{
    queue_call(r, "reserve.release", queue_unreserve_done);
}
