/* rpc.h - request/reply calls between services over nng, with msgpack
 * envelopes (msg.h).
 *
 * Server: a REP socket listening on one URL, served by `workers` threads;
 * each thread owns one nng context (so that many requests are in flight at
 * once) and one piece of state made by worker_init (typically its own Redis
 * connection), handed to every handler it runs. Handlers are looked up in a
 * table of sh_rpc_op rows that ends in a row whose name is NULL.
 *
 * Client: a REQ socket dialed to one or more URLs (comma-separated; requests
 * are spread over the connected servers). sh_rpc_call blocks up to its
 * timeout; sh_rpc_call_async returns at once and calls back from an nng
 * thread. Both are safe from any number of threads at once.
 *
 * Life cycle: *_new allocates and starts; *_free stops, waits for in-flight
 * work and frees; *_free(NULL) is harmless. */
#ifndef SHARED_RPC_H
#define SHARED_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "shared/err.h"
#include "shared/val.h"

/* A handler decodes and validates args, does the work and either sets
 * *result (a new tree the server frees after sending) and returns SH_OK, or
 * returns an error code with err describing it. */
typedef int (*sh_rpc_handler_fn)(void *state, const sh_val *args, sh_val **result, sh_error *err);

typedef struct sh_rpc_op {
    const char *name;
    sh_rpc_handler_fn fn;
} sh_rpc_op;

typedef struct sh_rpc_server_opts {
    const char *listen_url; /* e.g. "ipc:///tmp/progress.sock", "tcp://127.0.0.1:7101" */
    int workers;            /* threads, each with a context; default 8 */
    size_t max_msg;         /* largest request accepted; default SH_MSG_DEFAULT_MAX_BYTES */
    const sh_rpc_op *ops;   /* table ending in {NULL, NULL} */
    /* worker_init builds the state of worker idx (or returns NULL on
     * failure, which fails sh_rpc_server_new); worker_fini frees it. */
    void *(*worker_init)(void *arg, int idx);
    void (*worker_fini)(void *state);
    void *arg;
} sh_rpc_server_opts;

typedef struct sh_rpc_server sh_rpc_server;

int sh_rpc_server_new(const sh_rpc_server_opts *opts, sh_rpc_server **out, sh_error *err);
/* sh_rpc_server_free stops taking requests, lets handlers in progress finish
 * and answer, then frees everything. */
void sh_rpc_server_free(sh_rpc_server *s);

typedef struct sh_rpc_client sh_rpc_client;

/* sh_rpc_client_new dials every URL of the comma-separated list urls
 * (dialing is asynchronous: servers may start later, and reconnects are
 * automatic). timeout_ms is the default call timeout. */
int sh_rpc_client_new(const char *urls, int timeout_ms, size_t max_msg, sh_rpc_client **out,
                      sh_error *err);
/* sh_rpc_client_free waits for the asynchronous calls in flight. (nng 1.5.2
 * leaks a connection that is closed while still being set up: a client
 * freed right after sh_rpc_client_new, before any call completed, shows up
 * in leak checkers.) */
void sh_rpc_client_free(sh_rpc_client *c);

/* sh_rpc_call sends op with args (borrowed) and waits for the reply.
 * timeout_ms <= 0 uses the client default. On SH_OK *result is a new tree
 * the caller frees. A remote error returns its code with its message in err;
 * no answer in time returns SH_ETIMEDOUT. */
int sh_rpc_call(sh_rpc_client *c, const char *op, const sh_val *args, int timeout_ms,
                sh_val **result, sh_error *err);

/* Completion of an async call: rc and err as for sh_rpc_call; result is
 * owned by the callback (free it with sh_val_free) and NULL unless rc is
 * SH_OK. Runs on an nng thread: do not block in it. */
typedef void (*sh_rpc_done_fn)(void *arg, int rc, sh_val *result, const sh_error *err);

/* sh_rpc_call_async starts a call. If it returns SH_OK, cb is called exactly
 * once later; otherwise cb is never called. */
int sh_rpc_call_async(sh_rpc_client *c, const char *op, const sh_val *args, int timeout_ms,
                      sh_rpc_done_fn cb, void *arg);

/* sh_rpc_fini releases the messaging library's global resources; call it
 * once at exit, after every client, server, publisher and subscriber has
 * been freed. */
void sh_rpc_fini(void);

#endif
