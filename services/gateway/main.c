/* main.c - the gateway process: settings, logging, the RPC client, event
 * streams, the HTTP server, then a wait for SIGTERM/SIGINT and an orderly
 * stop (streams get a final event, calls in flight are answered). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "gw_config.h"
#include "gw_http.h"
#include "gw_metrics.h"
#include "gw_router.h"
#include "gw_routes.h"
#include "gw_sse.h"
#include "gw_ws.h"
#include "shared/log.h"
#include "shared/rpc.h"
#include "shared/service.h"

/* main_raise_nofile lets the connection limit be reached before the
 * descriptor limit. */
static void main_raise_nofile(long long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t target = (rlim_t)want;
    if (rl.rlim_max != RLIM_INFINITY && target > rl.rlim_max)
        target = rl.rlim_max;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < target) {
        rl.rlim_cur = target;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(void)
{
    gw_config cfg;
    sh_error err;
    sh_error_clear(&err);
    sh_log_init("gateway", SH_LOG_INFO);
    if (gw_config_load(&cfg, &err) != SH_OK) {
        sh_log_error("config", "%s", err.msg);
        return 1;
    }
    sh_log_init("gateway", cfg.log_level);
    signal(SIGPIPE, SIG_IGN);
    main_raise_nofile(cfg.max_connections + 256);

    /* Every thread started from here on inherits the blocked signals; only
     * sigwait below takes them. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    if (gw_router_init(gw_route_table) != 0) {
        sh_log_error("config", "the route table has more than %d rows", GW_ROUTES_MAX);
        return 1;
    }
    gw_metrics_init();

    int code = 1;
    gw_app app = {.cfg = &cfg};
    gw_sse *sse = NULL;
    gw_ws *ws = NULL;
    gw_http *http = NULL;
    app.nrpc = cfg.threads < GW_RPC_CLIENTS_MAX ? (int)cfg.threads : GW_RPC_CLIENTS_MAX;
    const char *urls[GW_SVC_COUNT] = {cfg.rpc_url, cfg.coord_url, cfg.sync_url};
    const char *vars[GW_SVC_COUNT] = {"PROGRESS_RPC_URL", "COORDINATOR_RPC_URL",
                                      "SYNC_WORKER_RPC_URL"};
    sh_rpc_batch_opts batch = {(int)cfg.batch_inflight, (int)cfg.batch_calls,
                               (size_t)cfg.batch_bytes};
    sh_rpc_batch_defaults(&batch);
    for (int svc = 0; svc < GW_SVC_COUNT; svc++) {
        for (int i = 0; i < app.nrpc; i++) {
            if (sh_rpc_client_new(urls[svc], (int)cfg.rpc_timeout_ms, 0, &app.rpc[svc][i], &err) !=
                SH_OK) {
                sh_log_error("config", "%s: %s", vars[svc], err.msg);
                goto done;
            }
        }
    }
    if (gw_sse_new(&cfg, app.rpc[GW_SVC_PROGRESS][0], &sse, &err) != SH_OK) {
        sh_log_error("config", "%s", err.msg);
        goto done;
    }
    app.sse = sse;
    if (gw_ws_new(sse, cfg.ws_ping_s * 1000, cfg.ws_pong_s * 1000, &ws, &err) != SH_OK) {
        sh_log_error("config", "%s", err.msg);
        goto done;
    }
    app.ws = ws;
    if (gw_http_start(&cfg, &app, &http, &err) != SH_OK) {
        sh_log_error("listen", "%s", err.msg);
        goto done;
    }
    char *desc = gw_config_describe(&cfg);
    sh_log_info("started", "listening on %s; %s", cfg.listen, desc ? desc : "");
    free(desc);

    int sig = 0;
    sigwait(&stop_signals, &sig);
    sh_log_info("stopping", "signal %d: closing streams and finishing requests", sig);
    /* The drain takes up to GATEWAY_DRAIN_MS + 3 s + RPC_TIMEOUT_MS + 1 s. */
    sh_service_watchdog(9500);
    gw_http_stop_begin(http);
    gw_sse_shutdown(sse);
    gw_ws_shutdown(ws);
    gw_http_drain(http);
    code = 0;
done:
    gw_ws_shutdown(ws); /* upgraded sockets are closed before the daemon stops */
    gw_http_free(http);
    for (int svc = 0; svc < GW_SVC_COUNT; svc++)
        for (int i = 0; i < app.nrpc; i++)
            sh_rpc_client_free(app.rpc[svc][i]);
    gw_ws_free(ws);
    gw_sse_free(sse);
    if (code == 0)
        sh_log_info("stopped", "clean exit");
    return code;
}
