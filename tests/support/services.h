/* services.h - the services a test starts by hand from the build tree,
 * each with its Redis, its URLs and its own settings and logging to a file;
 * waiting for one to answer ping; and stopping them, with their logs shown
 * when one did not exit cleanly.
 *
 * Internal traffic is signed in every test that links this file: before
 * main, RPC_SECRET is set in the environment (to TF_RPC_SECRET unless it is
 * set already), so every process a test starts inherits it, and the test's
 * own RPC clients, publishers and subscribers sign with it. A service given
 * "RPC_SECRET=" in its env runs unsigned. */
#ifndef TESTS_SERVICES_H
#define TESTS_SERVICES_H

#include <sys/types.h>

#include "shared/rpc.h"

#define TF_RPC_SECRET "3c9f1e7a5b2d4c6e8a0f1b3d5c7e9a2b4d6f8e0c1a3b5d7f9e2c4a6b8d0f1e3a"

/* A service to start. */
typedef struct tf_service {
    const char *name;       /* "progress", "coordinator" or "sync-worker" */
    const char *redis_url;  /* its REDIS_URL */
    const char *rpc_url;    /* its <NAME>_RPC_URL */
    const char *events_url; /* its <NAME>_EVENTS_URL; NULL: a free loopback port */
    const char *const *env; /* more "K=V" settings, NULL-terminated, or NULL */
    const char *command;    /* a one-shot command run instead (e.g. "rotate-key"), or NULL */
    const char *log_path;   /* its stdout and stderr */
} tf_service;

/* tf_service_spawn starts services/<name>/<name> as svc says. Returns the
 * pid or -1. */
pid_t tf_service_spawn(const tf_service *svc);

/* tf_service_start spawns svc and waits until c, a client of its RPC URL,
 * answers ping (tf_wait_ping); its pid goes to *pid. Returns 0, or -1
 * saying on stderr where the log is (a process started is left in *pid
 * for tf_services_stop). */
int tf_service_start(const tf_service *svc, sh_rpc_client *c, pid_t *pid);

/* tf_wait_ping calls ping on c (200 ms a call, 20 ms apart, 500 calls at
 * most) until it has answered `answers` times: more than one make sure a
 * client of several replicas has reached each. Returns 0, or -1 when it
 * did not. */
int tf_wait_ping(sh_rpc_client *c, int answers);

/* tf_services_stop stops the n services of pids (SIGTERM, 10 s each; a pid
 * <= 0 is passed over); when one does not exit with 0 it names it and copies
 * the logs matching log_glob (a shell pattern) to stderr. Returns 0, or -1
 * then. */
int tf_services_stop(const pid_t *pids, int n, const char *log_glob);

#endif
