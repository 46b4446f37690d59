/* service.c - the common main loop of a service process. */
#include "shared/service.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shared/log.h"
#include "shared/msgmac.h"

static const char *svc_redis_url, *svc_log_level, *svc_rpc_url, *svc_events_url, *svc_rpc_secret;
static long long svc_mac_window_s, svc_workers, svc_max_msg, svc_batch_inflight, svc_batch_calls,
    svc_batch_bytes;

static void *svc_watchdog_main(void *arg)
{
    int ms = (int)(intptr_t)arg;
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
    sh_log_error("stop_stuck", "still stopping %d ms after the stop signal; exiting now", ms);
    _exit(0);
    return NULL;
}

void sh_service_watchdog(int ms)
{
    pthread_attr_t attr;
    pthread_t t;
    if (pthread_attr_init(&attr) != 0)
        return;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, svc_watchdog_main, (void *)(intptr_t)ms) != 0)
        sh_log_warn("watchdog", "cannot start the stop watchdog");
    pthread_attr_destroy(&attr);
}

typedef struct svc_run {
    const sh_service_def *def;
    sh_redis_url url;
    sh_pub *pub;
} svc_run;

static void *svc_worker_init(void *arg, int idx)
{
    svc_run *run = arg;
    sh_worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    sh_error err;
    if (sh_store_new(&run->url, NULL, &w->store, &err) != SH_OK) {
        sh_log_error("worker_init", "worker %d: %s", idx, err.msg);
        free(w);
        return NULL;
    }
    w->pub = run->pub;
    w->env = run->def->env;
    w->idx = idx;
    return w;
}

static int svc_pipeline(void *state, sh_cmd *const *cmds, size_t n, sh_reply **replies,
                        sh_error *err)
{
    sh_worker *w = state;
    return sh_store_pipeline(w->store, cmds, n, replies, err);
}

static void svc_worker_fini(void *state)
{
    sh_worker *w = state;
    sh_store_free(w->store);
    free(w);
}

/* svc_config loads the common settings and the service's own. */
static int svc_config(const sh_service_def *def, sh_error *err)
{
    const sh_setting common[] = {
        {"REDIS_URL", "KV_URL", SH_SET_SECRET, "redis://127.0.0.1:6379", 0, 4096, &svc_redis_url,
         false, "the Redis to use"},
        {def->rpc_var, NULL, SH_SET_STR, def->rpc_default, 0, 1024, &svc_rpc_url, false,
         "where to listen for calls"},
        {def->events_var, NULL, SH_SET_STR, def->events_default, 0, 1024, &svc_events_url, false,
         "where to publish events"},
        {"RPC_WORKERS", NULL, SH_SET_INT, "16", 1, 1024, &svc_workers, false,
         "requests served at once"},
        {"RPC_MAX_MSG", NULL, SH_SET_INT, "4194304", 65536, 64LL * 1024 * 1024, &svc_max_msg, false,
         "largest request accepted and reply sent, bytes"},
        {"RPC_BATCH_INFLIGHT", NULL, SH_SET_INT, "4", 1, 64, &svc_batch_inflight, false,
         "requests to a service in flight before calls queue into batches"},
        {"RPC_BATCH_MAX_CALLS", NULL, SH_SET_INT, "64", 1, SH_RPC_BATCH_SERVER_MAX,
         &svc_batch_calls, false, "most calls in one batch"},
        {"RPC_BATCH_MAX_BYTES", NULL, SH_SET_INT, "262144", 1024, 64LL * 1024 * 1024,
         &svc_batch_bytes, false, "most bytes of calls in one batch"},
        {"RPC_SECRET", NULL, SH_SET_SECRET, NULL, 0, 4096, &svc_rpc_secret, false,
         "shared secret that signs every call and event between services"},
        {"RPC_MAC_WINDOW_SECONDS", NULL, SH_SET_INT, "30", 1, 3600, &svc_mac_window_s, false,
         "how far a signed message's timestamp may be from this host's clock"},
        {"LOG_LEVEL", NULL, SH_SET_STR, "info", 0, 16, &svc_log_level, false, "log level"},
        {NULL, NULL, 0, NULL, 0, 0, NULL, false, NULL},
    };
    int rc = sh_config_load(common, err);
    if (!rc && def->settings)
        rc = sh_config_load(def->settings, err);
    if (rc)
        return rc;
    sh_rpc_batch_opts batch = {(int)svc_batch_inflight, (int)svc_batch_calls,
                               (size_t)svc_batch_bytes};
    sh_rpc_batch_defaults(&batch);
    if ((rc = sh_msgmac_setup(svc_rpc_secret, svc_mac_window_s, err)) != SH_OK)
        return rc;
    int level;
    if (sh_log_level_parse(svc_log_level, &level) != 0)
        return sh_error_set(err, SH_EINVAL,
                            "LOG_LEVEL must be debug, info, warn or error, got \"%s\"",
                            svc_log_level);
    sh_log_init(def->name, level);
    char *desc = sh_config_describe(common);
    char *own = def->settings ? sh_config_describe(def->settings) : NULL;
    sh_log_info("config", "%s %s", desc ? desc : "", own ? own : "");
    free(desc);
    free(own);
    return def->validate ? def->validate(err) : SH_OK;
}

int sh_service_command(const sh_service_def *def, const char *name, sh_service_command_fn fn)
{
    sh_error err;
    sh_error_clear(&err);
    sh_log_init(def->name, SH_LOG_INFO);
    sh_redis_url url;
    sh_store *store = NULL;
    if (svc_config(def, &err) != SH_OK || sh_redis_url_parse(svc_redis_url, &url, &err) != SH_OK ||
        sh_store_new(&url, NULL, &store, &err) != SH_OK) {
        sh_log_error("config", "%s", err.msg);
        return 1;
    }
    int rc = sh_store_ping(store, &err);
    if (rc == SH_OK)
        rc = fn(store, def->env, &err);
    if (rc != SH_OK)
        sh_log_error(name, "%s", err.msg);
    else
        sh_log_info(name, "done");
    sh_store_free(store);
    return rc == SH_OK ? 0 : 1;
}

int sh_service_main(const sh_service_def *def)
{
    sh_error err;
    sh_log_init(def->name, SH_LOG_INFO);
    svc_run run;
    memset(&run, 0, sizeof run);
    run.def = def;
    if (svc_config(def, &err) != SH_OK ||
        sh_redis_url_parse(svc_redis_url, &run.url, &err) != SH_OK) {
        sh_log_error("config", "%s", err.msg);
        return 1;
    }
    /* Refuse now a URL this build cannot honour (TLS without support). */
    sh_store *probe = NULL;
    if (sh_store_new(&run.url, NULL, &probe, &err) != SH_OK) {
        sh_log_error("config", "%s", err.msg);
        return 1;
    }
    char shown[600];
    sh_redis_url_display(&run.url, shown, sizeof shown);
    if (sh_store_ping(probe, &err) != SH_OK)
        sh_log_warn("redis_down", "%s; serving anyway, calls fail until it is back", err.msg);
    else
        sh_log_info("redis_ok", "connected to %s", shown);
    sh_store_free(probe);

    /* Block the stop signals in every thread; this one waits for them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    sh_rpc_server *srv = NULL;
    int status = 1;
    bool started = false;
    if (sh_pub_new(svc_events_url, &run.pub, &err) != SH_OK) {
        sh_log_error("start", "events: %s", err.msg);
        goto done;
    }
    sh_rpc_server_opts opts = {
        .listen_url = svc_rpc_url,
        .workers = (int)svc_workers,
        .max_msg = (size_t)svc_max_msg,
        .ops = def->ops,
        .worker_init = svc_worker_init,
        .worker_fini = svc_worker_fini,
        .pipeline = svc_pipeline,
        .arg = &run,
    };
    if (sh_rpc_server_new(&opts, &srv, &err) != SH_OK) {
        sh_log_error("start", "rpc: %s", err.msg);
        goto done;
    }
    sh_log_info("started", "listening on %s, events on %s, %lld workers", svc_rpc_url,
                svc_events_url, svc_workers);
    if (def->start) {
        if (def->start(&run.url, run.pub, &err) != SH_OK) {
            sh_log_error("start", "%s", err.msg);
            goto done;
        }
        started = true;
    }
    int sig = 0;
    sigwait(&stop, &sig);
    sh_log_info("stopping", "signal %d: finishing requests in flight", sig);
    sh_service_watchdog(SH_STOP_GRACE_MS);
    status = 0;
done:
    if (started && def->stop)
        def->stop();
    sh_rpc_server_free(srv);
    sh_pub_free(run.pub);
    sh_rpc_fini();
    sh_log_info("stopped", "exit %d", status);
    return status;
}

int sh_service_ping(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    sh_worker *w = state;
    int rc = sh_store_ping(w->store, err);
    if (rc)
        return rc;
    sh_val *m = sh_val_new_map();
    if (!m || sh_val_set_cstr(m, "redis", sh_val_new_cstr("ok"))) {
        sh_val_free(m);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *result = m;
    return SH_OK;
}
