/* watch_client.h - the coordinator's IDLE watch operations as the watcher
 * calls them (services/coordinator/README.md, "IDLE watch operations"), and
 * the sync it asks for when a watched folder changes. Each call waits at
 * most SYNC_WC_TIMEOUT_MS. */
#ifndef SYNC_WATCH_CLIENT_H
#define SYNC_WATCH_CLIENT_H

#include <stddef.h>

#include "shared/rpc.h"
#include "shared/val.h"

#define SYNC_WC_TIMEOUT_MS 5000

/* A watch lease as the worker holds it. */
typedef struct sync_wc_ref {
    const char *id;
    long long token;
} sync_wc_ref;

/* sync_wc_lease asks for up to max watches; *leases is the reply's array
 * of leases (caller frees the reply, *reply). */
int sync_wc_lease(sh_rpc_client *c, const char *worker, int max, sh_val **reply,
                  const sh_val **leases, sh_error *err);
/* sync_wc_renew renews the n leases of refs; *reply (caller frees) holds
 * {held: [id], lost: [id]}. */
int sync_wc_renew(sh_rpc_client *c, const char *worker, const sync_wc_ref *refs, size_t n,
                  sh_val **reply, sh_error *err);
/* sync_wc_release gives the n leases of refs back. */
int sync_wc_release(sh_rpc_client *c, const char *worker, const sync_wc_ref *refs, size_t n,
                    sh_error *err);
/* sync_wc_report records the watch's state; SH_ELEASE when the lease is
 * no longer this worker's. error may be NULL. */
int sync_wc_report(sh_rpc_client *c, const sync_wc_ref *ref, const char *state, const char *error,
                   sh_error *err);
/* sync_wc_sync_now asks for an incremental sync of account id now
 * (account.sync_now: queued, or run again once the running sync ends),
 * folder (may be NULL) first. */
int sync_wc_sync_now(sh_rpc_client *c, const char *id, const char *folder, sh_error *err);

#endif
