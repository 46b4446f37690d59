/* rpc.h - request/reply calls between services over nng, with msgpack
 * envelopes (msg.h).
 *
 * Server: a REP socket listening on one URL, served by `workers` threads;
 * each thread owns one nng context (so that many requests are in flight at
 * once) and one piece of state made by worker_init (typically its own Redis
 * connection), handed to every handler it runs. Handlers are looked up in a
 * table of sh_rpc_op rows that ends in a row whose name is NULL.
 *
 * A request is one call or a batch of calls (msg.h has the wire format).
 * Consecutive calls of a batch whose operations can be split (prep and
 * finish below) run as one Redis pipeline on the worker's connection: every
 * prep appends its command, one write and one read serve them all, then
 * every finish reads its reply, in arrival order (so two calls on the same
 * record apply in the order they came). Other operations run alone, in
 * order, between such groups.
 *
 * Client: a REQ socket dialed to one or more URLs (comma-separated; requests
 * are spread over the connected servers). sh_rpc_call blocks up to its
 * timeout; sh_rpc_call_async returns at once and calls back from an nng
 * thread. Both are safe from any number of threads at once. A call goes out
 * at once while fewer than `inflight` requests of the client are waiting
 * for their reply; calls made meanwhile queue and leave together, as one
 * batch (up to max_calls calls and max_bytes bytes), when a reply comes
 * back: no delay when idle, fewer messages and wake-ups under load. Each
 * call keeps its own timeout and outcome: a malformed call fails alone, and
 * a call that timed out is never answered later.
 *
 * Life cycle: *_new allocates and starts; *_free stops, waits for in-flight
 * work and frees; *_free(NULL) is harmless. */
#ifndef SHARED_RPC_H
#define SHARED_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "shared/err.h"
#include "shared/store.h"
#include "shared/val.h"

/* A handler decodes and validates args, does the work and either sets
 * *result (a new tree the server frees after sending) and returns SH_OK, or
 * returns an error code with err describing it. */
typedef int (*sh_rpc_handler_fn)(void *state, const sh_val *args, sh_val **result, sh_error *err);

/* A split operation: prep decodes and validates args and builds the one
 * Redis command of the call in *cmd (and, optionally, in *ctx a value
 * finish needs, freed by the server); finish turns the command's reply
 * (never an error reply: those fail the call with the code
 * sh_store_reply_check gives) into *result. A prep that fails ends the call
 * with its error. */
typedef int (*sh_rpc_prep_fn)(void *state, const sh_val *args, sh_cmd **cmd, sh_val **ctx,
                              sh_error *err);
typedef int (*sh_rpc_finish_fn)(void *state, const sh_val *args, sh_val *ctx, const sh_reply *reply,
                                sh_val **result, sh_error *err);

/* One operation: fn runs it whole; an operation that can be pipelined also
 * sets prep and finish, which a server with a pipeline (opts.pipeline) uses
 * instead of fn. */
typedef struct sh_rpc_op {
    const char *name;
    sh_rpc_handler_fn fn;
    sh_rpc_prep_fn prep;
    sh_rpc_finish_fn finish;
} sh_rpc_op;

/* The most calls a server takes in one batch; the rest fail with SH_ELIMIT. */
#define SH_RPC_BATCH_SERVER_MAX 1024

typedef struct sh_rpc_server_opts {
    const char *listen_url; /* e.g. "ipc:///tmp/progress.sock", "tcp://127.0.0.1:7101" */
    int workers;            /* threads, each with a context; default 8 */
    size_t max_msg;         /* largest request accepted and reply sent (a larger one is
                               refused as too_large); default SH_MSG_DEFAULT_MAX_BYTES */
    const sh_rpc_op *ops;   /* table ending in {NULL, NULL} */
    /* worker_init builds the state of worker idx (or returns NULL on
     * failure, which fails sh_rpc_server_new); worker_fini frees it. */
    void *(*worker_init)(void *arg, int idx);
    void (*worker_fini)(void *state);
    /* pipeline runs n commands of worker state in one round trip (as
     * sh_store_pipeline); needed by operations with prep and finish. */
    int (*pipeline)(void *state, sh_cmd *const *cmds, size_t n, sh_reply **replies, sh_error *err);
    void *arg;
} sh_rpc_server_opts;

typedef struct sh_rpc_server sh_rpc_server;

int sh_rpc_server_new(const sh_rpc_server_opts *opts, sh_rpc_server **out, sh_error *err);
/* sh_rpc_server_free stops taking requests, lets handlers in progress finish
 * and answer, then frees everything. */
void sh_rpc_server_free(sh_rpc_server *s);

typedef struct sh_rpc_client sh_rpc_client;

/* How a client batches (the settings RPC_BATCH_INFLIGHT,
 * RPC_BATCH_MAX_CALLS, RPC_BATCH_MAX_BYTES). */
typedef struct sh_rpc_batch_opts {
    int inflight;     /* requests awaiting their reply before calls queue; default 4 */
    int max_calls;    /* calls per batch; default 64 (1: never batch) */
    size_t max_bytes; /* bytes of envelopes per batch; default 262144 (a larger call goes alone) */
} sh_rpc_batch_opts;

/* sh_rpc_batch_defaults sets how clients made from now on batch (0 fields
 * keep the default); a process calls it once, with its settings, before
 * making clients. */
void sh_rpc_batch_defaults(const sh_rpc_batch_opts *o);

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
