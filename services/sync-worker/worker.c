/* worker.c - the lease loop of the sync threads and the listener of the
 * coordinator's account events. A thread with nothing to do asks again
 * after a second; every thread stops promptly when asked (an IMAP command
 * in flight is bounded by IMAP_COMMAND_TIMEOUT_SECONDS). */
#include "worker.h"

#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "eventlog.h"
#include "mailstore.h"
#include "oauth.h"
#include "shared/keys.h"
#include "shared/log.h"
#include "shared/rpc.h"
#include "shared/util.h"
#include "sync.h"
#include "watcher.h"

#define WORKER_RPC_TIMEOUT_MS 5000
#define WORKER_IDLE_MS        1000
#define WORKER_SHUTDOWN_MSG   "interrupted by shutdown"

typedef struct worker_thread {
    pthread_t thread;
    int idx;
    bool started;
    sh_store *store;
    char name[96];
} worker_thread;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop;
    unsigned queued_gen; /* "accounts queued" events received */
    const sync_env *env;
    sh_redis_url url;
    sh_pub *pub;
    sh_rpc_client *coord;
    sh_rpc_client *progress;
    worker_thread *threads;
    int nthreads;
    pthread_t sub_thread;
    bool sub_started;
    sh_sub *sub;
    sh_store *sub_store;
    /* held for reading by RPC handlers using coord, which stop frees */
    pthread_rwlock_t coord_lock;
} wk = {.lock = PTHREAD_MUTEX_INITIALIZER,
        .wake = PTHREAD_COND_INITIALIZER,
        .coord_lock = PTHREAD_RWLOCK_INITIALIZER};

static bool worker_stopping(void)
{
    return __atomic_load_n(&wk.stop, __ATOMIC_ACQUIRE) != 0;
}

/* worker_queued_gen reads how many "accounts queued" events came so far. */
static unsigned worker_queued_gen(void)
{
    pthread_mutex_lock(&wk.lock);
    unsigned gen = wk.queued_gen;
    pthread_mutex_unlock(&wk.lock);
    return gen;
}

/* worker_sleep waits ms, or until stopping or an "accounts queued" event
 * after the gen-th; returns true when stopping. */
static bool worker_sleep(int ms, unsigned gen)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&wk.lock);
    while (!wk.stop && wk.queued_gen == gen && pthread_cond_timedwait(&wk.wake, &wk.lock, &ts) == 0)
        ;
    int stop = wk.stop;
    pthread_mutex_unlock(&wk.lock);
    return stop != 0;
}

/* The lease being worked on, for renewals. */
typedef struct worker_lease {
    const char *acct;
    const char *token;
    int64_t last_renew;
    int64_t deadline_ms; /* the run's end: no renewal past it */
} worker_lease;

static sh_val *worker_lease_args(const char *acct, const char *token)
{
    sh_val *a = sh_val_new_map();
    if (!a || sh_val_set_cstr(a, "accountId", sh_val_new_cstr(acct)) ||
        sh_val_set_cstr(a, "leaseToken", sh_val_new_cstr(token))) {
        sh_val_free(a);
        return NULL;
    }
    return a;
}

static int worker_keepalive(void *arg, sh_error *err)
{
    worker_lease *l = arg;
    if (worker_stopping())
        return sh_error_set(err, SH_ECLOSED, "the worker is stopping");
    if (l->deadline_ms && sh_mono_ms() >= l->deadline_ms)
        return sh_error_set(err, SH_ETIMEDOUT,
                            "sync run deadline of %d s (SYNC_RUN_DEADLINE_SECONDS) reached; the "
                            "next run goes on from there",
                            wk.env->run_deadline_s);
    if (sh_mono_ms() - l->last_renew < (int64_t)wk.env->renew_s * 1000)
        return SH_OK;
    sh_val *args = worker_lease_args(l->acct, l->token), *res = NULL;
    sh_error e;
    int rc = args ? sh_rpc_call(wk.coord, "sync.renew", args, WORKER_RPC_TIMEOUT_MS, &res, &e)
                  : SH_ENOMEM;
    sh_val_free(args);
    sh_val_free(res);
    if (rc == SH_ELEASE || rc == SH_ENOTFOUND)
        return sh_error_set(err, SH_ELEASE, "lease on account %s lost: %s", l->acct, e.msg);
    if (rc == SH_OK)
        l->last_renew = sh_mono_ms();
    else
        sh_log_warn("renew_failed", "account=%s: %s", l->acct,
                    rc == SH_ENOMEM ? "no memory" : e.msg);
    return SH_OK;
}

static const char *worker_fix(int rc, const char *msg)
{
    if (rc == SYNC_EAUTH && strstr(msg, "OAuth2"))
        return "Sign in again and update the account's auth (a new refreshToken, or a new "
               "accessToken and expiresAt); updating the account retries the sync.";
    if (rc == SYNC_EAUTH && strstr(msg, "sign-in refused"))
        return "Check that the token was granted the IMAP scope for the account's username; "
               "updating the account retries the sync.";
    if (rc == SYNC_EAUTH)
        return "Check the username and password; updating the account retries the sync.";
    if (strstr(msg, "OAuth2 token refresh"))
        return "The token endpoint failed or could not be reached; the refresh is tried again "
               "after its backoff.";
    if (rc == SH_EUNAVAIL)
        return "Check that the IMAP server is up and reachable at the account's host and port.";
    if (rc == SH_ETIMEDOUT)
        return "The IMAP server answered too slowly; retried on the next scheduled sync.";
    if (strstr(msg, "IMAP_ALLOW"))
        return "Point the account at another server, or have the operator allow this one.";
    if (strstr(msg, "TLS"))
        return "Give the server's CA in IMAP_CA_FILE, or set tlsVerify false for a test server.";
    if (strstr(msg, "decrypt"))
        return "Set ENCRYPTION_KEY (and ENCRYPTION_KEY_PREVIOUS while rotating) as on the "
               "coordinator.";
    return "Retried on the next scheduled sync.";
}

static void worker_complete(const char *acct, const char *token, const char *outcome,
                            const char *message, sh_store *store)
{
    sh_val *args = worker_lease_args(acct, token), *res = NULL;
    sh_error e;
    if (args && (sh_val_set_cstr(args, "outcome", sh_val_new_cstr(outcome)) ||
                 (message && sh_val_set_cstr(args, "message", sh_val_new_cstr(message))))) {
        sh_val_free(args);
        args = NULL;
    }
    int rc = args ? sh_rpc_call(wk.coord, "sync.complete", args, WORKER_RPC_TIMEOUT_MS, &res, &e)
                  : SH_ENOMEM;
    sh_val_free(args);
    sh_val_free(res);
    if (rc == SH_ENOTFOUND) {
        /* Deleted while syncing: what this run wrote must go too. */
        long long n;
        if (sync_mail_drop_account(store, acct, &n, &e) != SH_OK)
            sh_log_warn("drop_failed", "account=%s: %s", acct, e.msg);
    } else if (rc != SH_OK) {
        sh_log_warn("complete_failed", "account=%s: %s", acct,
                    rc == SH_ENOMEM ? "no memory" : e.msg);
    }
}

/* worker_log_status appends the account's sync.status to its event log
 * when it changed, and an auth.error after a refused login. A log that
 * cannot be written fails nothing here: the run's result still goes to the
 * coordinator. */
static void worker_log_status(sh_store *store, const char *acct, const char *status,
                              const char *message, bool auth)
{
    sh_error e;
    int rc = sync_evlog_status(store, wk.pub, wk.env, acct, status, message, &e);
    if (!rc && auth) {
        sh_val *f = sh_val_new_map();
        const char *type = SYNC_EV_AUTH_ERROR;
        rc = !f || sh_val_set_cstr(f, "errorMessage", sh_val_new_cstr(message ? message : ""))
                 ? sh_error_set(&e, SH_ENOMEM, "out of memory")
                 : sync_evlog_add(store, wk.pub, wk.env, acct, &type, &f, 1, &e);
        sh_val_free(f);
    }
    if (rc)
        sh_log_warn("event_log_failed", "account=%s: %s", acct, e.msg);
}

/* worker_run syncs the account of one lease and completes it. */
static void worker_run(worker_thread *t, const sh_val *lease)
{
    const char *acct = sh_val_get_str(lease, "accountId", NULL);
    const char *token = sh_val_get_str(lease, "leaseToken", NULL);
    const char *pid = sh_val_get_str(lease, "progressId", NULL);
    const sh_val *account = sh_val_get(lease, "account");
    const sh_val *sealed = account ? sh_val_get(account, "passwordSealed") : NULL;
    if (!acct || !token || sh_val_type_of(account) != SH_VAL_MAP ||
        !sh_id_valid(acct, strlen(acct))) {
        sh_log_error("bad_lease", "the coordinator's lease lacks its fields");
        return;
    }
    sync_report rep = {.client = wk.progress, .id = pid};
    worker_lease l = {.acct = acct,
                      .token = token,
                      .last_renew = sh_mono_ms(),
                      .deadline_ms = wk.env->run_deadline_s > 0
                                         ? sh_mono_ms() + (int64_t)wk.env->run_deadline_s * 1000
                                         : 0};
    sync_run run = {.env = wk.env,
                    .store = t->store,
                    .pub = wk.pub,
                    .report = &rep,
                    .acct = acct,
                    .keepalive = worker_keepalive,
                    .keepalive_arg = &l,
                    .deadline_ms = l.deadline_ms};
    sh_error err;
    sh_error_clear(&err);
    sh_buf pw;
    sh_buf_init_secret(&pw); /* wiped also when sh_open grows it */
    size_t blen = 0;
    const char *blob = sealed ? sh_val_str(sealed, &blen) : NULL;
    int rc;
    if (!blob || blen == 0) {
        rc = sh_error_set(&err, SH_EINVAL, "the account has no password");
    } else {
        rc = sh_open(wk.env->keys, wk.env->nkeys, blob, blen, acct, &pw, &err);
        if (rc) {
            char msg[sizeof err.msg];
            snprintf(msg, sizeof msg, "cannot decrypt the password: %.200s", err.msg);
            snprintf(err.msg, sizeof err.msg, "%s", msg);
        }
    }
    if (!rc && sync_auth_is_oauth(account))
        rc = sync_auth_new(wk.env, wk.coord, t->name, acct, account, pw.data, pw.len, &run.auth,
                           &err);
    int64_t started = sh_mono_ms();
    if (!rc)
        rc = sync_account(&run, account, pw.data ? pw.data : "", &err);
    sync_auth_free(run.auth);
    sh_buf_fini(&pw);
    /* A run that fetched messages freed batches of parsed replies: hand
     * the memory back rather than keep it in this thread's arena. */
    if (run.fetched)
        malloc_trim(0);
    if (rc == SH_ELEASE) {
        /* Another worker has it now. */
        sh_log_info("sync_abandoned", "account=%s: %s", acct, err.msg);
        return;
    }
    if (rc == SH_ECLOSED) {
        /* Stopping between two batches: the lease is given back as a
         * failed run, so the account is not left `syncing` until the lease
         * runs out; what was stored stays and the next run goes on from
         * there. */
        snprintf(err.msg, sizeof err.msg, "%s", WORKER_SHUTDOWN_MSG);
        sync_report_error(&rep, err.msg, "Retried by the next sync of the account.");
        sh_log_info("sync_interrupted", "account=%s: stopping", acct);
    } else if (rc) {
        sync_report_error(&rep, err.msg, worker_fix(rc, err.msg));
        sh_log_warn("sync_failed", "account=%s: %s", acct, err.msg);
    } else {
        sh_log_info("synced", "account=%s in %lld ms", acct, (long long)(sh_mono_ms() - started));
    }
    sync_report_complete(&rep, rc ? "failed" : "done");
    const char *outcome = rc == SH_OK ? "ok" : rc == SYNC_EAUTH ? "auth_error" : "error";
    const char *message = rc ? err.msg : run.warning[0] ? run.warning : NULL;
    worker_log_status(t->store, acct, outcome, message, rc == SYNC_EAUTH);
    worker_complete(acct, token, outcome, message, t->store);
}

static void *worker_main(void *arg)
{
    worker_thread *t = arg;
    while (!worker_stopping()) {
        unsigned gen = worker_queued_gen();
        sh_val *args = sh_val_new_map(), *res = NULL;
        sh_error err;
        int rc = !args || sh_val_set_cstr(args, "worker", sh_val_new_cstr(t->name))
                     ? SH_ENOMEM
                     : sh_rpc_call(wk.coord, "sync.lease", args, WORKER_RPC_TIMEOUT_MS, &res, &err);
        sh_val_free(args);
        const sh_val *lease = rc == SH_OK ? sh_val_get(res, "lease") : NULL;
        if (lease && sh_val_type_of(lease) == SH_VAL_MAP) {
            worker_run(t, lease);
        } else {
            if (rc != SH_OK && rc != SH_ETIMEDOUT)
                sh_log_debug("lease_failed", "%s", rc == SH_ENOMEM ? "no memory" : err.msg);
            sh_val_free(res);
            if (worker_sleep(WORKER_IDLE_MS, gen))
                break;
            continue;
        }
        sh_val_free(res);
    }
    return NULL;
}

/* worker_sub_main drops the mail of accounts the coordinator deleted, and
 * wakes the idle sync threads when accounts are queued. */
static void *worker_sub_main(void *arg)
{
    while (!worker_stopping()) {
        char *topic = NULL;
        sh_val *payload = NULL;
        int rc = sh_sub_recv(wk.sub, 500, &topic, &payload);
        if (rc == SH_OK && strcmp(topic, SH_TOPIC_SYNC_QUEUED) == 0) {
            pthread_mutex_lock(&wk.lock);
            wk.queued_gen++;
            pthread_cond_broadcast(&wk.wake);
            pthread_mutex_unlock(&wk.lock);
        } else if (rc == SH_OK) {
            const char *kind = sh_val_get_str(payload, "kind", NULL);
            const char *id = topic + strlen(SH_TOPIC_ACCOUNT);
            if (kind &&
                (strcmp(kind, SH_EVENT_CREATED) == 0 || strcmp(kind, SH_EVENT_UPDATED) == 0))
                sync_watcher_poke(); /* a watch to take, or one whose lease the update ended */
            if (kind && strcmp(kind, SH_EVENT_DELETED) == 0 &&
                strncmp(topic, SH_TOPIC_ACCOUNT, strlen(SH_TOPIC_ACCOUNT)) == 0 &&
                sh_id_valid(id, strlen(id))) {
                long long n = 0;
                sh_error err;
                if (sync_mail_drop_account(wk.sub_store, id, &n, &err) == SH_OK)
                    sh_log_info("account_mail_dropped", "account=%s keys=%lld", id, n);
                else
                    sh_log_warn("drop_failed", "account=%s: %s", id, err.msg);
            }
        }
        free(topic);
        sh_val_free(payload);
    }
    return arg;
}

void sync_workers_kick(const char *acct)
{
    sh_val *args = sh_val_new_map(), *res = NULL;
    sh_error e;
    sh_error_clear(&e);
    pthread_rwlock_rdlock(&wk.coord_lock);
    int rc = !args || sh_val_set_cstr(args, "id", sh_val_new_cstr(acct)) ? SH_ENOMEM
             : wk.coord
                 ? sh_rpc_call(wk.coord, "account.sync_now", args, WORKER_RPC_TIMEOUT_MS, &res, &e)
                 : sh_error_set(&e, SH_ECLOSED, "stopping");
    pthread_rwlock_unlock(&wk.coord_lock);
    sh_val_free(args);
    sh_val_free(res);
    if (rc != SH_OK)
        sh_log_warn("sync_now_failed", "account=%s: %s", acct,
                    rc == SH_ENOMEM ? "no memory" : e.msg);
}

int sync_workers_start(const sh_redis_url *url, sh_pub *pub, const sync_env *env, sh_error *err)
{
    wk.env = env;
    wk.url = *url;
    wk.pub = pub;
    wk.stop = 0;
    int rc = sh_rpc_client_new(env->coordinator_rpc, WORKER_RPC_TIMEOUT_MS, 0, &wk.coord, err);
    if (!rc)
        rc = sh_rpc_client_new(env->progress_rpc, WORKER_RPC_TIMEOUT_MS, 0, &wk.progress, err);
    if (!rc)
        rc = sh_sub_new(env->coordinator_events, 0, &wk.sub, err);
    if (!rc)
        rc = sh_sub_subscribe(wk.sub, SH_TOPIC_ACCOUNT);
    if (!rc)
        rc = sh_sub_subscribe(wk.sub, SH_TOPIC_SYNC_QUEUED);
    if (!rc)
        rc = sh_store_new(&wk.url, NULL, &wk.sub_store, err);
    if (rc)
        goto fail;
    if (pthread_create(&wk.sub_thread, NULL, worker_sub_main, NULL) != 0) {
        rc = sh_error_set(err, SH_EINTERNAL, "cannot start the account events thread");
        goto fail;
    }
    wk.sub_started = true;
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    for (char *p = host; *p; p++)
        if (!sh_id_valid(p, 1))
            *p = '-';
    char watcher_name[96];
    snprintf(watcher_name, sizeof watcher_name, "%.60s-%ld-watch", host, (long)getpid());
    if ((rc = sync_watcher_start(env, watcher_name, err)))
        goto fail;
    wk.threads = calloc(env->concurrency ? (size_t)env->concurrency : 1, sizeof *wk.threads);
    if (!wk.threads) {
        rc = sh_error_set(err, SH_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < env->concurrency; i++) {
        worker_thread *t = &wk.threads[i];
        t->idx = i;
        snprintf(t->name, sizeof t->name, "%.60s-%ld-%d", host, (long)getpid(), i);
        rc = sh_store_new(&wk.url, NULL, &t->store, err);
        if (rc)
            goto fail;
        wk.nthreads = i + 1;
        if (pthread_create(&t->thread, NULL, worker_main, t) != 0) {
            rc = sh_error_set(err, SH_EINTERNAL, "cannot start sync thread %d", i);
            goto fail;
        }
        t->started = true;
    }
    return SH_OK;
fail:
    sync_workers_stop();
    return rc;
}

void sync_workers_stop(void)
{
    /* First, so that its leases go back while the coordinator is there. */
    sync_watcher_stop();
    pthread_mutex_lock(&wk.lock);
    __atomic_store_n(&wk.stop, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&wk.wake);
    pthread_mutex_unlock(&wk.lock);
    for (int i = 0; i < wk.nthreads; i++) {
        if (wk.threads[i].started)
            pthread_join(wk.threads[i].thread, NULL);
        sh_store_free(wk.threads[i].store);
    }
    free(wk.threads);
    wk.threads = NULL;
    wk.nthreads = 0;
    if (wk.sub_started)
        pthread_join(wk.sub_thread, NULL);
    wk.sub_started = false;
    sh_sub_free(wk.sub);
    wk.sub = NULL;
    sh_store_free(wk.sub_store);
    wk.sub_store = NULL;
    pthread_rwlock_wrlock(&wk.coord_lock);
    sh_rpc_client_free(wk.coord);
    wk.coord = NULL;
    pthread_rwlock_unlock(&wk.coord_lock);
    sh_rpc_client_free(wk.progress);
    wk.progress = NULL;
}
