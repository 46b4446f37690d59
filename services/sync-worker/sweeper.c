/* sweeper.c - the sweep of the mail of deleted accounts (sweeper.h), on a
 * thread of its own with its own Redis link and coordinator client. */
#include "sweeper.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "mailstore.h"
#include "shared/log.h"
#include "shared/secret.h"
#include "shared/util.h"

/* Ids asked about in one account.exists call (the coordinator's bound). */
#define SWEEP_ASK_MAX 1000
#define SWEEP_RPC_MS  10000
#define SWEEP_RETRY_S 30 /* after a failed sweep */

/* sweep_ask asks the coordinator about ids[first..first+n) of the map accts
 * and adds those it no longer has to gone. */
static int sweep_ask(sh_rpc_client *coord, int timeout_ms, const sh_val *accts, size_t first,
                     size_t n, sh_val *gone, sh_error *err)
{
    sh_val *args = sh_val_new_map(), *ids = sh_val_new_array(), *res = NULL;
    int rc = args && ids ? SH_OK : SH_ENOMEM;
    for (size_t i = 0; rc == SH_OK && i < n; i++) {
        size_t len;
        const char *id = sh_val_key_at(accts, first + i, &len);
        rc = sh_val_push(ids, sh_val_new_str(id, len));
    }
    if (rc == SH_OK) {
        rc = sh_val_set_cstr(args, "ids", ids);
        ids = NULL;
    }
    sh_val_free(ids);
    if (rc) {
        sh_val_free(args);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    rc = sh_rpc_call(coord, "account.exists", args, timeout_ms, &res, err);
    sh_val_free(args);
    if (rc)
        return rc;
    const sh_val *exists = sh_val_get(res, "exists");
    if (sh_val_type_of(exists) != SH_VAL_ARRAY || sh_val_len(exists) != n) {
        sh_val_free(res);
        return sh_error_set(err, SH_EPROTO, "account.exists answered no list of %zu booleans", n);
    }
    for (size_t i = 0; rc == SH_OK && i < n; i++) {
        const sh_val *e = sh_val_at(exists, i);
        if (sh_val_type_of(e) != SH_VAL_BOOL) {
            rc = sh_error_set(err, SH_EPROTO, "account.exists answered a %s, not a boolean",
                              sh_val_type_name(sh_val_type_of(e)));
        } else if (!sh_val_bool(e)) {
            size_t len;
            const char *id = sh_val_key_at(accts, first + i, &len);
            rc = sh_val_set(gone, id, len, sh_val_new_nil());
            if (rc)
                rc = sh_error_set(err, SH_ENOMEM, "out of memory");
        }
    }
    sh_val_free(res);
    return rc;
}

int sync_sweep(sh_store *st, sh_rpc_client *coord, int timeout_ms, sync_sweep_stats *out,
               sh_error *err)
{
    *out = (sync_sweep_stats){0};
    sh_val *accts = NULL, *gone = sh_val_new_map();
    if (!gone)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    int rc = sync_mail_accounts(st, &accts, err);
    size_t n = rc ? 0 : sh_val_len(accts);
    for (size_t first = 0; rc == SH_OK && first < n; first += SWEEP_ASK_MAX)
        rc = sweep_ask(coord, timeout_ms, accts, first,
                       n - first < SWEEP_ASK_MAX ? n - first : SWEEP_ASK_MAX, gone, err);
    out->accounts = (long long)n;
    if (rc == SH_OK) {
        out->gone = (long long)sh_val_len(gone);
        rc = sync_mail_drop_accounts(st, gone, &out->keys, err);
    }
    sh_val_free(accts);
    sh_val_free(gone);
    return rc;
}

static struct {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool started, stop;
    sh_store *store;
    sh_rpc_client *coord;
    int period_s;
} sw = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* sweeper_wait waits s seconds, or less when told to stop; true to stop. */
static bool sweeper_wait(int s)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += s;
    pthread_mutex_lock(&sw.lock);
    while (!sw.stop && pthread_cond_timedwait(&sw.wake, &sw.lock, &until) == 0)
        ;
    bool stop = sw.stop;
    pthread_mutex_unlock(&sw.lock);
    return stop;
}

static void *sweeper_main(void *arg)
{
    (void)arg;
    for (;;) {
        sync_sweep_stats s;
        sh_error err;
        int64_t t0 = sh_mono_ms();
        int rc = sync_sweep(sw.store, sw.coord, SWEEP_RPC_MS, &s, &err);
        if (rc == SH_OK && s.gone)
            sh_log_info("mail_swept",
                        "removed %lld keys of %lld deleted accounts (%lld accounts with mail) "
                        "in %lld ms",
                        s.keys, s.gone, s.accounts, (long long)(sh_mono_ms() - t0));
        else if (rc == SH_OK)
            sh_log_debug("mail_swept", "%lld accounts with mail, none deleted", s.accounts);
        else
            sh_log_warn("sweep_failed", "mail of deleted accounts not swept: %s; again in %d s",
                        err.msg, SWEEP_RETRY_S);
        /* Several workers sweep apart: each waits its period, give or take
         * a tenth. */
        unsigned char r = 0;
        sh_random_bytes(&r, 1);
        int wait =
            rc ? SWEEP_RETRY_S : sw.period_s - sw.period_s / 10 + (sw.period_s / 5) * r / 255;
        if (sweeper_wait(wait > 0 ? wait : 1))
            return NULL;
    }
}

/* sweeper_release frees what sync_sweeper_start made. */
static void sweeper_release(void)
{
    sh_rpc_client_free(sw.coord);
    sh_store_free(sw.store);
    sw.coord = NULL;
    sw.store = NULL;
    pthread_cond_destroy(&sw.wake);
}

int sync_sweeper_start(const sh_redis_url *url, const sync_env *env, sh_error *err)
{
    if (env->sweep_s <= 0)
        return SH_OK;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sw.wake, &ca);
    pthread_condattr_destroy(&ca);
    sw.stop = false;
    sw.period_s = env->sweep_s;
    int rc = sh_store_new(url, NULL, &sw.store, err);
    if (!rc)
        rc = sh_rpc_client_new(env->coordinator_rpc, SWEEP_RPC_MS, 0, &sw.coord, err);
    if (!rc && pthread_create(&sw.thread, NULL, sweeper_main, NULL) != 0)
        rc = sh_error_set(err, SH_EINTERNAL, "cannot start the sweeper thread");
    if (rc) {
        sweeper_release();
        return rc;
    }
    sw.started = true;
    return SH_OK;
}

void sync_sweeper_stop(void)
{
    if (!sw.started)
        return;
    pthread_mutex_lock(&sw.lock);
    sw.stop = true;
    pthread_cond_broadcast(&sw.wake);
    pthread_mutex_unlock(&sw.lock);
    pthread_join(sw.thread, NULL);
    sweeper_release();
    sw.started = false;
}
