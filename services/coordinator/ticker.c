/* ticker.c - the coordinator's own clock: a thread that ticks the schedule
 * at the start of every minute, so no system cron is needed. Replicas all
 * tick; the tick script lets only the first of each minute queue. */
#include "ticker.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops.h"
#include "shared/log.h"
#include "shared/util.h"

static struct {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int running;
    int stop;
    sh_worker worker;
} ticker = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static void *ticker_main(void *arg)
{
    pthread_mutex_lock(&ticker.lock);
    while (!ticker.stop) {
        /* Sleep until just after the next minute starts. */
        int64_t now = sh_now_ms();
        int64_t next = (now / 60000 + 1) * 60000 + 250;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t at = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + (next - now);
        ts.tv_sec = (time_t)(at / 1000);
        ts.tv_nsec = (long)(at % 1000) * 1000000L;
        while (!ticker.stop && pthread_cond_timedwait(&ticker.wake, &ticker.lock, &ts) == 0)
            ;
        if (ticker.stop)
            break;
        pthread_mutex_unlock(&ticker.lock);
        sh_val *out = NULL;
        sh_error err;
        if (coord_tick(&ticker.worker, -1, 0, false, &out, &err) != SH_OK)
            sh_log_warn("tick_failed", "%s", err.msg);
        sh_val_free(out);
        pthread_mutex_lock(&ticker.lock);
    }
    pthread_mutex_unlock(&ticker.lock);
    return arg;
}

int coord_ticker_start(const sh_redis_url *url, sh_pub *pub, const void *env, sh_error *err)
{
    memset(&ticker.worker, 0, sizeof ticker.worker);
    int rc = sh_store_new(url, NULL, &ticker.worker.store, err);
    if (rc)
        return rc;
    ticker.worker.pub = pub;
    ticker.worker.env = env;
    ticker.stop = 0;
    if (pthread_create(&ticker.thread, NULL, ticker_main, NULL) != 0) {
        sh_store_free(ticker.worker.store);
        return sh_error_set(err, SH_EINTERNAL, "cannot start the schedule's ticker thread");
    }
    ticker.running = 1;
    return SH_OK;
}

void coord_ticker_stop(void)
{
    if (!ticker.running)
        return;
    pthread_mutex_lock(&ticker.lock);
    ticker.stop = 1;
    pthread_cond_signal(&ticker.wake);
    pthread_mutex_unlock(&ticker.lock);
    pthread_join(ticker.thread, NULL);
    sh_store_free(ticker.worker.store);
    ticker.running = 0;
}
