/* main.c - the progress service: wiring of settings, logging, Redis, the
 * event publisher and the RPC server, and an orderly stop on SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "ops.h"
#include "shared/config.h"
#include "shared/events.h"
#include "shared/log.h"
#include "shared/rpc.h"
#include "shared/store.h"

static const char *cfg_redis_url, *cfg_rpc_url, *cfg_events_url, *cfg_log_level;
static long long cfg_ttl, cfg_log_cap, cfg_workers, cfg_max_msg;

static const sh_setting prog_settings[] = {
    {"REDIS_URL", "KV_URL", SH_SET_SECRET, "redis://127.0.0.1:6379", 0, 4096, &cfg_redis_url, false,
     "the Redis to use"},
    {"PROGRESS_RPC_URL", NULL, SH_SET_STR, "tcp://127.0.0.1:7101", 0, 1024, &cfg_rpc_url, false,
     "where to listen for calls"},
    {"PROGRESS_EVENTS_URL", NULL, SH_SET_STR, "tcp://127.0.0.1:7102", 0, 1024, &cfg_events_url,
     false, "where to publish events"},
    {"PROGRESS_TTL", NULL, SH_SET_INT, "3600", 1, 30LL * 24 * 3600, &cfg_ttl, false,
     "seconds a record lives after its last write"},
    {"PROGRESS_LOG_CAP", NULL, SH_SET_INT, "100", 1, 100000, &cfg_log_cap, false,
     "entries kept per error log"},
    {"RPC_WORKERS", NULL, SH_SET_INT, "16", 1, 1024, &cfg_workers, false,
     "requests served at once"},
    {"RPC_MAX_MSG", NULL, SH_SET_INT, "4194304", 65536, 64LL * 1024 * 1024, &cfg_max_msg, false,
     "largest request accepted, bytes"},
    {"LOG_LEVEL", NULL, SH_SET_STR, "info", 0, 16, &cfg_log_level, false, "log level"},
    {NULL, NULL, 0, NULL, 0, 0, NULL, false, NULL},
};

typedef struct prog_main {
    prog_env env;
    sh_redis_url url;
} prog_main;

static void *prog_worker_init(void *arg, int idx)
{
    prog_main *m = arg;
    prog_worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->env = &m->env;
    sh_error err;
    if (sh_store_new(&m->url, NULL, &w->store, &err) != SH_OK) {
        sh_log_error("worker_init", "worker %d: %s", idx, err.msg);
        free(w);
        return NULL;
    }
    return w;
}

static void prog_worker_fini(void *state)
{
    prog_worker *w = state;
    sh_store_free(w->store);
    free(w);
}

int main(void)
{
    sh_error err;
    int level = SH_LOG_INFO;
    sh_log_init("progress", level);
    if (sh_config_load(prog_settings, &err) != SH_OK) {
        sh_log_error("config", "%s", err.msg);
        return 1;
    }
    if (sh_log_level_parse(cfg_log_level, &level) != 0) {
        sh_log_error("config", "LOG_LEVEL must be debug, info, warn or error, got \"%s\"",
                     cfg_log_level);
        return 1;
    }
    sh_log_init("progress", level);
    prog_main m;
    memset(&m, 0, sizeof m);
    if (sh_redis_url_parse(cfg_redis_url, &m.url, &err) != SH_OK) {
        sh_log_error("config", "%s", err.msg);
        return 1;
    }
    /* Refuse a TLS URL this build cannot honour now, not at the first call. */
    sh_store *probe = NULL;
    if (sh_store_new(&m.url, NULL, &probe, &err) != SH_OK) {
        sh_log_error("config", "%s", err.msg);
        return 1;
    }
    if (sh_store_ping(probe, &err) != SH_OK)
        sh_log_warn("redis_down", "%s; serving anyway, calls fail until it is back", err.msg);
    sh_store_free(probe);

    char shown[600];
    sh_redis_url_display(&m.url, shown, sizeof shown);
    char *desc = sh_config_describe(prog_settings);
    sh_log_info("config", "redis=%s %s", shown, desc ? desc : "");
    free(desc);

    /* Block the stop signals in every thread; main waits for them below. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    m.env.ttl = cfg_ttl;
    m.env.log_cap = cfg_log_cap;
    sh_rpc_server *srv = NULL;
    int status = 1;
    if (sh_pub_new(cfg_events_url, &m.env.pub, &err) != SH_OK) {
        sh_log_error("start", "events: %s", err.msg);
        goto done;
    }
    sh_rpc_server_opts opts = {
        .listen_url = cfg_rpc_url,
        .workers = (int)cfg_workers,
        .max_msg = (size_t)cfg_max_msg,
        .ops = prog_ops,
        .worker_init = prog_worker_init,
        .worker_fini = prog_worker_fini,
        .arg = &m,
    };
    if (sh_rpc_server_new(&opts, &srv, &err) != SH_OK) {
        sh_log_error("start", "rpc: %s", err.msg);
        goto done;
    }
    sh_log_info("started", "listening on %s, events on %s, %lld workers", cfg_rpc_url,
                cfg_events_url, cfg_workers);
    int sig = 0;
    sigwait(&stop, &sig);
    sh_log_info("stopping", "signal %d: finishing requests in flight", sig);
    status = 0;
done:
    sh_rpc_server_free(srv);
    sh_pub_free(m.env.pub);
    sh_rpc_fini();
    sh_log_info("stopped", "exit %d", status);
    return status;
}
