/* service.h - the common life of a service process: settings, logging,
 * Redis, an event publisher, an RPC server whose workers each own a Redis
 * connection, and an orderly stop on SIGTERM or SIGINT.
 *
 * A service's main() fills an sh_service_def and returns
 * sh_service_main(&def). The common settings are REDIS_URL (alias KV_URL),
 * RPC_WORKERS, RPC_MAX_MSG, RPC_BATCH_*, RPC_SECRET, RPC_MAC_WINDOW_SECONDS
 * and LOG_LEVEL, plus the two URL variables the definition names. */
#ifndef SHARED_SERVICE_H
#define SHARED_SERVICE_H

#include "shared/config.h"
#include "shared/events.h"
#include "shared/rpc.h"
#include "shared/store.h"

/* The state every handler of a service receives. */
typedef struct sh_worker {
    sh_store *store; /* this worker's own Redis connection */
    sh_pub *pub;     /* the service's publisher (thread-safe) */
    const void *env; /* the service's read-only settings (def->env) */
    int idx;
} sh_worker;

typedef struct sh_service_def {
    const char *name;           /* for logs: "progress" */
    const sh_setting *settings; /* the service's own settings, NULL-terminated, or NULL */
    const char *rpc_var;        /* e.g. "PROGRESS_RPC_URL" */
    const char *rpc_default;
    const char *events_var; /* e.g. "PROGRESS_EVENTS_URL" */
    const char *events_default;
    const sh_rpc_op *ops;
    const void *env;
    /* Optional: checks the loaded settings (and fills env) before anything
     * starts; a non-zero return stops start-up with err logged. */
    int (*validate)(sh_error *err);
    /* Optional: starts background work once the RPC server runs (given the
     * Redis URL and the publisher), and stops it before the server stops. */
    int (*start)(const sh_redis_url *url, sh_pub *pub, sh_error *err);
    void (*stop)(void);
} sh_service_def;

/* sh_service_ping is the "ping" operation every service has: its worker's
 * Redis answers, then the result is {redis: "ok"}; state is the sh_worker. */
int sh_service_ping(void *state, const sh_val *args, sh_val **result, sh_error *err);

/* sh_service_main runs the service until SIGTERM/SIGINT and returns the
 * process exit status: 0 after a clean stop, 1 when start-up failed (bad
 * settings are named in the log). */
int sh_service_main(const sh_service_def *def);

/* sh_service_watchdog bounds a stop: once called (after the stop signal),
 * a process still not gone ms later logs an error and exits 0 at once. The
 * work is done by then (requests answered, leases handed back); what hangs
 * is a library's teardown, e.g. nng 1.5.2's nng_close now and then after
 * a peer died, and a stop that never ends would be killed without a word
 * by the supervisor. sh_service_main arms it with SH_STOP_GRACE_MS. */
#define SH_STOP_GRACE_MS 8000
void sh_service_watchdog(int ms);

/* A one-shot command of a service (e.g. key rotation): loads the same
 * settings, connects to Redis, runs fn with a store and the service's env,
 * and returns the exit status (0 when fn returned SH_OK). */
typedef int (*sh_service_command_fn)(sh_store *store, const void *env, sh_error *err);
int sh_service_command(const sh_service_def *def, const char *name, sh_service_command_fn fn);

#endif
