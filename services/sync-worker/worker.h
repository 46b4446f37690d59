/* worker.h - the background work of the sync-worker: SYNC_CONCURRENCY
 * threads that lease due accounts from the coordinator and sync them (one
 * IMAP session each), and one thread that drops the mail of deleted
 * accounts on the coordinator's `account:<id>` events. */
#ifndef SYNC_WORKER_H
#define SYNC_WORKER_H

#include "env.h"
#include "shared/events.h"
#include "shared/store.h"

/* sync_workers_start starts every thread; each has its own Redis
 * connection. sync_workers_stop asks them to stop (an IMAP command in
 * flight finishes or times out first) and joins them. */
int sync_workers_start(const sh_redis_url *url, sh_pub *pub, const sync_env *env, sh_error *err);
void sync_workers_stop(void);

/* sync_workers_kick asks the coordinator to sync acct now (best effort:
 * a failure is logged). */
void sync_workers_kick(const char *acct);

#endif
