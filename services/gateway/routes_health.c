/* routes_health.c - liveness, readiness (every service and, through them,
 * Redis) and the Prometheus metrics. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <microhttpd.h>

#include "gw_auth.h"
#include "gw_json.h"
#include "gw_metrics.h"
#include "gw_routes.h"

#define ROUTES_READY_TIMEOUT_MS 1000

void gw_route_healthz(gw_req *r)
{
    sh_buf b;
    sh_buf_init(&b);
    sh_buf_puts(&b, "{\"status\":\"ok\"}");
    gw_req_reply_raw(r, 200, "application/json", &b);
}

/* routes_ready_detailed tells whether r may see why a check failed: the
 * services' and Redis's own error texts name hosts and users, so only the
 * full API_TOKEN (or a gateway without tokens) is shown them. */
static bool routes_ready_detailed(gw_req *r)
{
    return gw_auth_check(gw_req_app(r)->cfg, GW_POST,
                         gw_req_header(r, MHD_HTTP_HEADER_AUTHORIZATION)) == GW_AUTH_OK;
}

/* routes_ready_done answers 200 only when every service answered its ping,
 * which each does only while it can reach Redis. */
static void routes_ready_done(gw_req *r, size_t n, const int *rc, sh_val *const *results,
                              const sh_error *errs)
{
    sh_buf b;
    sh_buf_init(&b);
    bool ready = true, redis_known = true;
    const char *redis = NULL, *first_error = NULL;
    char text[GW_SVC_COUNT][320];
    sh_buf_puts(&b, "{\"checks\":{");
    for (size_t i = 0; i < n; i++) {
        const char *msg = errs[i].msg[0] ? errs[i].msg : sh_strerror(rc[i]);
        const char *state = "ok";
        if (rc[i] == SH_EUNAVAIL) {
            /* The service answered: Redis is what is down. */
            redis = msg;
        } else if (rc[i] != SH_OK) {
            snprintf(text[i], sizeof text[i], "%s service unavailable: %s", gw_service_name((int)i),
                     msg);
            state = text[i];
            redis_known = false;
        }
        if (rc[i] != SH_OK) {
            ready = false;
            if (!first_error)
                first_error = rc[i] == SH_EUNAVAIL ? msg : text[i];
        }
        sh_buf_printf(&b, "%s\"%s\":", i ? "," : "", gw_service_name((int)i));
        gw_json_write_str(&b, state, strlen(state));
    }
    if (!redis)
        redis = redis_known ? "ok" : "unknown";
    const char *status = ready ? "ready" : "unavailable";
    if (!routes_ready_detailed(r)) {
        sh_buf_reset(&b);
        sh_buf_printf(&b, "{\"status\":\"%s\"}", status);
        gw_req_reply_raw(r, ready ? 200 : 503, "application/json", &b);
        return;
    }
    sh_buf_puts(&b, ",\"redis\":");
    gw_json_write_str(&b, redis, strlen(redis));
    sh_buf_printf(&b, "},\"status\":\"%s\"", status);
    if (first_error) {
        sh_buf_puts(&b, ",\"error\":");
        gw_json_write_str(&b, first_error, strlen(first_error));
    }
    sh_buf_puts(&b, "}");
    gw_req_reply_raw(r, ready ? 200 : 503, "application/json", &b);
}

void gw_route_readyz(gw_req *r)
{
    if (gw_req_stopping(r)) {
        /* Load balancers send no new connections here while the open ones
         * are served. */
        sh_buf b;
        sh_buf_init(&b);
        sh_buf_puts(&b, routes_ready_detailed(r)
                            ? "{\"status\":\"stopping\",\"error\":\"the gateway is shutting down\"}"
                            : "{\"status\":\"stopping\"}");
        gw_req_reply_raw(r, 503, "application/json", &b);
        return;
    }
    gw_call_spec calls[GW_SVC_COUNT];
    for (int i = 0; i < GW_SVC_COUNT; i++)
        calls[i] = (gw_call_spec){i, "ping", sh_val_new_nil()};
    gw_req_call_all(r, GW_SVC_COUNT, calls, ROUTES_READY_TIMEOUT_MS, routes_ready_done);
}

void gw_route_metrics(gw_req *r)
{
    sh_buf b;
    sh_buf_init(&b);
    if (gw_metrics_render(&b) != SH_OK) {
        sh_buf_fini(&b);
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    gw_req_reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}
