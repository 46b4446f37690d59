/* ticker.h - the thread that ticks the sync schedule every minute. */
#ifndef COORDINATOR_TICKER_H
#define COORDINATOR_TICKER_H

#include "shared/events.h"
#include "shared/store.h"

/* coord_ticker_start starts the thread with its own Redis connection; env is
 * the coordinator's coord_env. coord_ticker_stop stops and joins it. */
int coord_ticker_start(const sh_redis_url *url, sh_pub *pub, const void *env, sh_error *err);
void coord_ticker_stop(void);

#endif
