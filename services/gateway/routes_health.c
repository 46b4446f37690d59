/* routes_health.c - liveness, readiness (the progress service and, through
 * it, Redis) and the Prometheus metrics. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

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

static void routes_ready_done(gw_req *r, int rc, const sh_val *result, const sh_error *err)
{
    const char *msg = err && err->msg[0] ? err->msg : sh_strerror(rc);
    sh_buf b;
    sh_buf_init(&b);
    if (rc == SH_OK) {
        const char *redis = sh_val_get_str(result, "redis", NULL);
        if (!redis)
            redis = "ok";
        bool ok = strcmp(redis, "ok") == 0;
        sh_buf_printf(&b, "{\"status\":\"%s\",\"checks\":{\"progress\":\"ok\",\"redis\":",
                      ok ? "ready" : "unavailable");
        gw_json_write_str(&b, redis, strlen(redis));
        sh_buf_puts(&b, "}}");
        gw_req_reply_raw(r, ok ? 200 : 503, "application/json", &b);
        return;
    }
    if (rc == SH_EUNAVAIL) {
        /* The service answered: Redis is what is down. */
        sh_buf_puts(&b, "{\"status\":\"unavailable\",\"checks\":{\"progress\":\"ok\",\"redis\":");
        gw_json_write_str(&b, msg, strlen(msg));
        sh_buf_puts(&b, "},\"error\":");
        gw_json_write_str(&b, msg, strlen(msg));
        sh_buf_puts(&b, "}");
    } else {
        char text[320];
        snprintf(text, sizeof text, "progress service unavailable: %s", msg);
        sh_buf_puts(&b, "{\"status\":\"unavailable\",\"checks\":{\"progress\":");
        gw_json_write_str(&b, text, strlen(text));
        sh_buf_puts(&b, ",\"redis\":\"unknown\"},\"error\":");
        gw_json_write_str(&b, text, strlen(text));
        sh_buf_puts(&b, "}");
    }
    gw_req_reply_raw(r, 503, "application/json", &b);
}

void gw_route_readyz(gw_req *r)
{
    sh_val *args = sh_val_new_nil();
    if (!args) {
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    gw_req_call(r, "ping", args, ROUTES_READY_TIMEOUT_MS, 200, NULL, routes_ready_done);
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
