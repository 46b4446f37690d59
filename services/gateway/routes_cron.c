/* routes_cron.c - the cron endpoint of seed 004 over the coordinator's
 * schedule: POST queues the accounts that are due now, GET answers the
 * seed's status. The caller has already been checked against CRON_SECRET
 * (and CRON_LOOPBACK_ONLY) by the server; errors are in the seed's
 * {"success": false, "error": ...} shape. */
#include <string.h>

#include "gw_routes.h"
#include "gw_routes_int.h"
#include "shared/util.h"

/* Fields of sched.tick and sched.status passed on as they are. */
static const char *const cron_tick_fields[] = {"queued", "requeued", "effectiveIntervalMinutes",
                                               "recommendedBatchSize", NULL};
static const char *const cron_status_fields[] = {
    "totalAccounts",        "pendingSync", "errorAccounts",
    "syncInterval",         "batchSize",   "effectiveIntervalMinutes",
    "recommendedBatchSize", NULL};

/* cron_reply_new starts {success: true, timestamp: now}; NULL when out of
 * memory. */
static sh_val *cron_reply_new(void)
{
    char now[SH_ISO_LEN];
    sh_iso8601(sh_now_ms(), now);
    sh_val *m = sh_val_new_map();
    if (sh_val_set_cstr(m, "success", sh_val_new_bool(true)) != SH_OK ||
        sh_val_set_cstr(m, "timestamp", sh_val_new_cstr(now)) != SH_OK) {
        sh_val_free(m);
        return NULL;
    }
    return m;
}

static void cron_send(gw_req *r, sh_val *m)
{
    if (!m) {
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    gw_req_reply_json(r, 200, m);
    sh_val_free(m);
}

static void cron_ticked(gw_req *r, int rc, const sh_val *result, const sh_error *err)
{
    if (rc != SH_OK) {
        gw_req_reply_rpc_error(r, rc, err, NULL);
        return;
    }
    const sh_val *queued = sh_val_get(result, "queued");
    if (sh_val_type_of(queued) != SH_VAL_ARRAY) {
        gw_req_reply_error(r, 500, "internal error: the coordinator answered without a queue");
        return;
    }
    sh_val *m = cron_reply_new();
    if (m && (gw__routes_copy(m, result, cron_tick_fields) != SH_OK ||
              sh_val_set_cstr(m, "count", sh_val_new_int((int64_t)sh_val_len(queued))) != SH_OK)) {
        sh_val_free(m);
        m = NULL;
    }
    cron_send(r, m);
}

static void cron_status_done(gw_req *r, int rc, const sh_val *result, const sh_error *err)
{
    if (rc != SH_OK) {
        gw_req_reply_rpc_error(r, rc, err, NULL);
        return;
    }
    sh_val *m = cron_reply_new();
    if (m && gw__routes_copy(m, result, cron_status_fields) != SH_OK) {
        sh_val_free(m);
        m = NULL;
    }
    cron_send(r, m);
}

int gw__routes_cron_batch(const char *s)
{
    int n = 0;
    size_t len = strlen(s);
    if (len == 0 || len > 4)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        n = n * 10 + (s[i] - '0');
    }
    return n >= 1 && n <= GW_ROUTES_CRON_BATCH_MAX ? n : -1;
}

void gw_route_cron_sync(gw_req *r)
{
    const char *given = gw_req_query(r, "batchSize");
    int batch = given ? gw__routes_cron_batch(given) : 0;
    if (batch < 0) {
        gw_req_reply_error(r, 400, "batchSize must be an integer between 1 and %d",
                           GW_ROUTES_CRON_BATCH_MAX);
        return;
    }
    /* force: a manual trigger ticks even when a replica already ticked this
     * minute. */
    sh_val *args = sh_val_new_map();
    if (sh_val_set_cstr(args, "force", sh_val_new_bool(true)) != SH_OK ||
        (batch && sh_val_set_cstr(args, "batchSize", sh_val_new_int(batch)) != SH_OK)) {
        sh_val_free(args);
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    gw_req_call_svc(r, GW_SVC_COORDINATOR, "sched.tick", args, 0, 200, NULL, cron_ticked);
}

void gw_route_cron_status(gw_req *r)
{
    gw_req_call_svc(r, GW_SVC_COORDINATOR, "sched.status", sh_val_new_nil(), 0, 200, NULL,
                    cron_status_done);
}
