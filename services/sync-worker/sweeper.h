/* sweeper.h - removes the mail of accounts that no longer exist. The mail
 * of a deleted account is removed on the coordinator's "deleted" event,
 * which a sync-worker that is down at that moment never sees; so at start
 * and every MAIL_SWEEP_SECONDS the sweeper walks the mail keys, asks the
 * coordinator which of their accounts still exist (account.exists), and
 * removes every key of the others. An account is only ever removed on the
 * coordinator's word that it is gone: any failure leaves the mail alone. */
#ifndef SYNC_SWEEPER_H
#define SYNC_SWEEPER_H

#include "env.h"
#include "shared/rpc.h"
#include "shared/store.h"

typedef struct sync_sweep_stats {
    long long accounts; /* accounts with mail */
    long long gone;     /* of those, the ones the coordinator no longer has */
    long long keys;     /* keys removed */
} sync_sweep_stats;

/* sync_sweep runs one sweep with st and the coordinator client coord. */
int sync_sweep(sh_store *st, sh_rpc_client *coord, int timeout_ms, sync_sweep_stats *out,
               sh_error *err);

/* sync_sweeper_start starts the thread sweeping now and every
 * env->sweep_s seconds (0: never); sync_sweeper_stop ends and joins it. */
int sync_sweeper_start(const sh_redis_url *url, const sync_env *env, sh_error *err);
void sync_sweeper_stop(void);

#endif
