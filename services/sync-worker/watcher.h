/* watcher.h - the IDLE watches of this sync worker: one thread that leases
 * accounts to watch from the coordinator (watch.lease, up to
 * IMAP_MAX_WATCHES watched folders), holds one IMAP session per watched
 * folder and waits on all of them with poll(), asks for a sync of an
 * account (account.sync_now) when one of its folders changes, renews its
 * leases every WATCH_RENEW_SECONDS and reports each account's watch state.
 * A watch whose lease is lost is closed; stopping releases every lease. */
#ifndef SYNC_WATCHER_H
#define SYNC_WATCHER_H

#include "env.h"
#include "shared/err.h"

/* sync_watcher_start starts the thread (nothing when env->max_watches is
 * 0); worker names this worker to the coordinator. */
int sync_watcher_start(const sync_env *env, const char *worker, sh_error *err);
/* sync_watcher_poke makes the thread renew and lease at once (an account
 * was created or changed). Safe from any thread, and when not started. */
void sync_watcher_poke(void);
/* sync_watcher_stop releases the leases, closes the sessions and joins the
 * thread. Safe to call when not started, and twice. */
void sync_watcher_stop(void);

#endif
