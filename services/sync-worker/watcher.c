/* watcher.c - the watcher thread: the set of watched accounts and their
 * folder sessions, the poll() loop over all of them, lease renewals and
 * state reports. Every blocking call here is bounded (IMAP connect and
 * command timeouts, RPC timeouts); sessions are opened one at a time. */
#include "watcher.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/keys.h"
#include "shared/log.h"
#include "shared/rpc.h"
#include "shared/util.h"
#include "watch_client.h"
#include "watch_conn.h"

/* The longest poll() wait: stopping and pokes also wake it at once. */
#define WATCHER_WAIT_MAX_MS 1000

typedef struct watch_acct {
    char id[SH_ID_MAX + 1];
    long long token;
    sh_val *lease;
    sync_watch_conn *conns;
    size_t nconns;
    char state[16]; /* as last reported, "" before */
    char error[256];
    bool kick_pending; /* a change to ask a sync for, once the coordinator answers */
    char kick_folder[SYNC_WATCH_FOLDER_MAX + 1]; /* its folder, "" for none */
} watch_acct;

static struct {
    pthread_t thread;
    bool started;
    int stop;
    int wake[2]; /* a pipe: pokes and stop wake poll() */
    const sync_env *env;
    sh_rpc_client *coord;
    char worker[160];
    watch_acct **accts;
    size_t n;
    size_t nconns;
    int64_t next_renew, last_renewed;
    /* After a call to the coordinator failed, reports and sync requests
     * wait until then (kept for later), so that a coordinator that is down
     * does not hold up every session for the length of a call timeout. */
    int64_t coord_quiet_until;
    /* watcher_wait's poll set, made once for IMAP_MAX_WATCHES sessions:
     * fds[0] is the wake-up pipe, fds[j] the session of idling[j]. */
    struct pollfd *fds;
    struct watch_idling {
        sync_watch_conn *conn;
        watch_acct *acct;
    } * idling;
} wt = {.wake = {-1, -1}};

static bool watcher_stopping(void)
{
    return __atomic_load_n(&wt.stop, __ATOMIC_ACQUIRE) != 0;
}

static sync_wc_ref watcher_ref(const watch_acct *a)
{
    return (sync_wc_ref){.id = a->id, .token = a->token};
}

static void watcher_acct_free(watch_acct *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->nconns; i++)
        sync_watch_conn_close(&a->conns[i]);
    free(a->conns);
    sh_val_free(a->lease);
    free(a);
}

/* watcher_drop closes watch i (its lease is no longer this worker's). */
static void watcher_drop(size_t i, const char *why)
{
    watch_acct *a = wt.accts[i];
    sh_log_info("watch_closed", "account=%s token=%lld: %s", a->id, a->token, why);
    wt.nconns -= a->nconns;
    watcher_acct_free(a);
    wt.accts[i] = wt.accts[--wt.n];
}

static int watcher_find(const char *id)
{
    for (size_t i = 0; i < wt.n; i++)
        if (strcmp(wt.accts[i]->id, id) == 0)
            return (int)i;
    return -1;
}

/* watcher_acct_new makes the watch of one lease (taken), or NULL when it
 * is malformed or does not fit in IMAP_MAX_WATCHES. */
static watch_acct *watcher_acct_new(sh_val *lease)
{
    size_t len;
    const char *id = sh_val_get_str(lease, "accountId", &len);
    const sh_val *tok = sh_val_get(lease, "token");
    const sh_val *folders = sh_val_get(lease, "watchFolders");
    size_t nf = sh_val_type_of(folders) == SH_VAL_ARRAY ? sh_val_len(folders) : 0;
    watch_acct *a = NULL;
    if (!id || !sh_id_valid(id, len) || sh_val_type_of(tok) != SH_VAL_INT || nf == 0 ||
        wt.nconns + nf > (size_t)wt.env->max_watches || !(a = calloc(1, sizeof *a)) ||
        !(a->conns = calloc(nf, sizeof *a->conns)))
        goto fail;
    snprintf(a->id, sizeof a->id, "%s", id);
    a->token = sh_val_int(tok);
    for (size_t i = 0; i < nf; i++) {
        const char *f = sh_val_str(sh_val_at(folders, i), &len);
        if (!f || len == 0 || len > SYNC_WATCH_FOLDER_MAX || strlen(f) != len)
            goto fail;
        snprintf(a->conns[i].folder, sizeof a->conns[i].folder, "%s", f);
        a->conns[i].due_ms = 0;
    }
    a->nconns = nf;
    a->lease = lease;
    return a;
fail:
    if (a)
        free(a->conns);
    free(a);
    sh_val_free(lease);
    return NULL;
}

/* watcher_renew renews every lease held and drops the lost ones. Without
 * an answer for three renewal periods the watches are closed: the leases
 * may have gone to other workers meanwhile. */
static void watcher_renew(int64_t now)
{
    if (wt.n == 0) {
        wt.last_renewed = now;
        return;
    }
    sync_wc_ref *refs = calloc(wt.n, sizeof *refs);
    if (!refs)
        return;
    for (size_t i = 0; i < wt.n; i++)
        refs[i] = watcher_ref(wt.accts[i]);
    sh_val *reply = NULL;
    sh_error err;
    int rc = sync_wc_renew(wt.coord, wt.worker, refs, wt.n, &reply, &err);
    free(refs);
    if (rc == SH_OK) {
        wt.last_renewed = now;
        const sh_val *lost = sh_val_get(reply, "lost");
        for (size_t k = 0; k < sh_val_len(lost); k++) {
            int i = watcher_find(sh_val_str(sh_val_at(lost, k), NULL));
            if (i >= 0)
                watcher_drop((size_t)i, "lease lost");
        }
    } else {
        sh_log_warn("watch_renew_failed", "%s", err.msg);
        if (now - wt.last_renewed > (int64_t)wt.env->watch_renew_s * 3000)
            while (wt.n)
                watcher_drop(wt.n - 1, "leases not renewed: the coordinator did not answer");
    }
    sh_val_free(reply);
}

/* watcher_lease_more asks for as many watches as IMAP_MAX_WATCHES leaves
 * room for; what does not fit is given back at once. */
static void watcher_lease_more(void)
{
    size_t room = (size_t)wt.env->max_watches - wt.nconns;
    if (room == 0 || watcher_stopping())
        return;
    sh_val *reply = NULL;
    const sh_val *leases;
    sh_error err;
    if (sync_wc_lease(wt.coord, wt.worker, (int)(room > 10000 ? 10000 : room), &reply, &leases,
                      &err) != SH_OK) {
        sh_log_debug("watch_lease_failed", "%s", err.msg);
        sh_val_free(reply);
        return;
    }
    for (size_t i = 0; i < sh_val_len(leases); i++) {
        sh_val *l = sh_val_clone(sh_val_at(leases, i));
        sync_wc_ref back = {.id = sh_val_get_str(l, "accountId", NULL),
                            .token = sh_val_int(sh_val_get(l, "token"))};
        char id[SH_ID_MAX + 1];
        snprintf(id, sizeof id, "%s", back.id ? back.id : "");
        back.id = id;
        if (!id[0]) {
            sh_val_free(l);
            continue;
        }
        int held = watcher_find(id);
        if (held >= 0) /* its older lease ended (an update): the new one replaces it */
            watcher_drop((size_t)held, "leased again");
        watch_acct *a = watcher_acct_new(l), **grown = NULL;
        if (a && (grown = realloc(wt.accts, (wt.n + 1) * sizeof *wt.accts))) {
            wt.accts = grown;
            wt.accts[wt.n++] = a;
            wt.nconns += a->nconns;
            sh_log_info("watch_opened", "account=%s token=%lld folders=%zu", a->id, a->token,
                        a->nconns);
            continue;
        }
        watcher_acct_free(a);
        if (sync_wc_release(wt.coord, wt.worker, &back, 1, &err))
            sh_log_warn("watch_release_failed", "account=%s: %s", id, err.msg);
    }
    sh_val_free(reply);
}

/* watcher_report tells the coordinator the account's watch state when it
 * changed: error if a folder's session failed, connecting while one is
 * not up yet, polling when every folder is polled, else idle. */
static void watcher_report(size_t i)
{
    watch_acct *a = wt.accts[i];
    const char *state = "idle", *error = "";
    size_t down = 0, polled = 0;
    for (size_t k = 0; k < a->nconns; k++) {
        const sync_watch_conn *c = &a->conns[k];
        if (c->state == SYNC_WATCH_DOWN) {
            down++;
            if (c->error[0] && !error[0])
                error = c->error;
        }
        polled += c->state == SYNC_WATCH_POLL;
    }
    if (error[0])
        state = "error";
    else if (down)
        state = "connecting";
    else if (polled == a->nconns)
        state = "polling";
    if ((strcmp(state, a->state) == 0 && strcmp(error, a->error) == 0) ||
        sh_mono_ms() < wt.coord_quiet_until)
        return;
    sync_wc_ref ref = watcher_ref(a);
    sh_error err;
    int rc = sync_wc_report(wt.coord, &ref, state, error, &err);
    if (rc == SH_ELEASE) {
        watcher_drop(i, "lease lost");
        return;
    }
    if (rc == SH_OK) {
        snprintf(a->state, sizeof a->state, "%s", state);
        snprintf(a->error, sizeof a->error, "%s", error);
    } else {
        sh_log_debug("watch_report_failed", "account=%s: %s", a->id, err.msg);
        wt.coord_quiet_until = sh_mono_ms() + (int64_t)wt.env->watch_renew_s * 1000;
    }
}

/* watcher_kick asks for a sync of the account (folder changed: why), now
 * or, while the coordinator does not answer, once it does. */
static void watcher_kick(watch_acct *a, const char *folder, const char *why)
{
    if (folder) {
        sh_log_info("watch_change", "account=%s folder=%s: %s, syncing", a->id, folder, why);
        /* Two folders changed before the sync was asked for: neither first. */
        snprintf(a->kick_folder, sizeof a->kick_folder, "%s",
                 a->kick_pending && strcmp(a->kick_folder, folder) ? "" : folder);
    }
    a->kick_pending = true;
    if (sh_mono_ms() < wt.coord_quiet_until)
        return;
    sh_error err;
    if (sync_wc_sync_now(wt.coord, a->id, a->kick_folder[0] ? a->kick_folder : NULL, &err) ==
        SH_OK) {
        a->kick_pending = false;
    } else {
        sh_log_warn("sync_now_failed", "account=%s: %s (asked again later)", a->id, err.msg);
        wt.coord_quiet_until = sh_mono_ms() + (int64_t)wt.env->watch_renew_s * 1000;
    }
}

/* watcher_due opens the sessions that are due, runs the due NOOPs and IDLE
 * renewals, and reports each account's state. */
static void watcher_due(int64_t now)
{
    for (size_t i = 0; i < wt.n && !watcher_stopping(); i++) {
        watch_acct *a = wt.accts[i];
        for (size_t k = 0; k < a->nconns && !watcher_stopping(); k++) {
            sync_watch_conn *c = &a->conns[k];
            sh_error err;
            bool woken = false;
            if (c->state == SYNC_WATCH_DOWN && now >= c->due_ms) {
                if (sync_watch_conn_open(c, a->lease, a->id, wt.env, wt.coord, wt.worker, &woken,
                                         &err) != SH_OK)
                    sh_log_warn("watch_connect_failed", "account=%s folder=%s: %s", a->id,
                                c->folder, err.msg);
                else if (woken)
                    watcher_kick(a, c->folder, "back after a lost connection");
            } else if (sync_watch_conn_tick(c, wt.env, now, &woken, &err) != SH_OK) {
                sh_log_warn("watch_lost", "account=%s folder=%s: %s", a->id, c->folder, err.msg);
                sync_watch_conn_fail(c, err.msg);
            } else if (woken) {
                watcher_kick(a, c->folder, "changed");
            }
        }
        if (a->kick_pending)
            watcher_kick(a, NULL, NULL);
        size_t before = wt.n;
        watcher_report(i);
        if (wt.n < before)
            i--; /* dropped: another watch moved into slot i */
    }
}

/* watcher_wait polls every idling session (at once when one has a line
 * buffered already) and handles what they sent. */
static void watcher_wait(int64_t now)
{
    struct pollfd *fds = wt.fds;
    struct watch_idling *idling = wt.idling;
    nfds_t n = 1;
    fds[0] = (struct pollfd){.fd = wt.wake[0], .events = POLLIN};
    int64_t wait = WATCHER_WAIT_MAX_MS;
    for (size_t i = 0; i < wt.n; i++)
        for (size_t k = 0; k < wt.accts[i]->nconns; k++) {
            sync_watch_conn *c = &wt.accts[i]->conns[k];
            if (c->due_ms - now < wait)
                wait = c->due_ms - now;
            if (c->state != SYNC_WATCH_IDLE)
                continue;
            if (sync_imap_line_ready(c->imap))
                wait = 0;
            fds[n] = (struct pollfd){.fd = sync_imap_fd(c->imap), .events = POLLIN};
            idling[n++] = (struct watch_idling){c, wt.accts[i]};
        }
    int64_t renew = __atomic_load_n(&wt.next_renew, __ATOMIC_ACQUIRE);
    if (renew - now < wait)
        wait = renew - now;
    if (poll(fds, n, wait < 0 ? 0 : (int)wait) >= 0) {
        if (fds[0].revents & POLLIN) {
            char buf[64];
            while (read(wt.wake[0], buf, sizeof buf) > 0)
                ;
        }
        for (nfds_t j = 1; j < n && !watcher_stopping(); j++) {
            sync_watch_conn *c = idling[j].conn;
            if (!fds[j].revents && !sync_imap_line_ready(c->imap))
                continue;
            bool woken = false;
            sh_error err;
            if (sync_watch_conn_readable(c, wt.env, &woken, &err) != SH_OK) {
                sh_log_warn("watch_lost", "account=%s folder=%s: %s", idling[j].acct->id, c->folder,
                            err.msg);
                sync_watch_conn_fail(c, err.msg);
            } else if (woken) {
                watcher_kick(idling[j].acct, c->folder, "changed");
            }
        }
    }
}

static void *watcher_main(void *arg)
{
    wt.last_renewed = sh_mono_ms();
    while (!watcher_stopping()) {
        int64_t now = sh_mono_ms();
        if (now >= __atomic_load_n(&wt.next_renew, __ATOMIC_ACQUIRE)) {
            watcher_renew(now);
            watcher_lease_more();
            __atomic_store_n(&wt.next_renew, now + (int64_t)wt.env->watch_renew_s * 1000,
                             __ATOMIC_RELEASE);
        }
        watcher_due(sh_mono_ms());
        if (!watcher_stopping())
            watcher_wait(sh_mono_ms());
    }
    /* Stopping: the leases go back so another worker takes them at once. */
    sync_wc_ref *refs = calloc(wt.n ? wt.n : 1, sizeof *refs);
    for (size_t i = 0; refs && i < wt.n; i++)
        refs[i] = watcher_ref(wt.accts[i]);
    sh_error err;
    if (refs && wt.n && sync_wc_release(wt.coord, wt.worker, refs, wt.n, &err) != SH_OK)
        sh_log_warn("watch_release_failed", "%s", err.msg);
    else if (wt.n)
        sh_log_info("watch_released", "watches=%zu", wt.n);
    free(refs);
    while (wt.n)
        watcher_acct_free(wt.accts[--wt.n]);
    wt.nconns = 0;
    return arg;
}

void sync_watcher_poke(void)
{
    if (!__atomic_load_n(&wt.started, __ATOMIC_ACQUIRE))
        return;
    __atomic_store_n(&wt.next_renew, 0, __ATOMIC_RELEASE);
    if (wt.wake[1] >= 0 && write(wt.wake[1], "p", 1) < 0) {
        /* the pipe is full: the thread is awake already */
    }
}

int sync_watcher_start(const sync_env *env, const char *worker, sh_error *err)
{
    if (env->max_watches <= 0)
        return SH_OK;
    wt.env = env;
    wt.stop = 0;
    wt.next_renew = 0;
    snprintf(wt.worker, sizeof wt.worker, "%s", worker);
    int rc = sh_rpc_client_new(env->coordinator_rpc, SYNC_WC_TIMEOUT_MS, 0, &wt.coord, err);
    if (rc)
        return rc;
    /* Never more sessions than IMAP_MAX_WATCHES (watcher_lease_more). */
    wt.fds = calloc((size_t)env->max_watches + 1, sizeof *wt.fds);
    wt.idling = calloc((size_t)env->max_watches + 1, sizeof *wt.idling);
    if (!wt.fds || !wt.idling) {
        rc = sh_error_set(err, SH_ENOMEM, "out of memory for %d watches", env->max_watches);
        goto fail;
    }
    if (pipe(wt.wake) != 0 || fcntl(wt.wake[0], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(wt.wake[1], F_SETFL, O_NONBLOCK) != 0) {
        rc = sh_error_set(err, SH_EINTERNAL, "cannot make the watcher's wake-up pipe");
        goto fail;
    }
    if (pthread_create(&wt.thread, NULL, watcher_main, NULL) != 0) {
        rc = sh_error_set(err, SH_EINTERNAL, "cannot start the watcher thread");
        goto fail;
    }
    __atomic_store_n(&wt.started, true, __ATOMIC_RELEASE);
    return SH_OK;
fail:
    sync_watcher_stop();
    return rc;
}

void sync_watcher_stop(void)
{
    __atomic_store_n(&wt.stop, 1, __ATOMIC_RELEASE);
    if (__atomic_load_n(&wt.started, __ATOMIC_ACQUIRE)) {
        if (write(wt.wake[1], "s", 1) < 0) {
            /* full: the thread wakes anyway */
        }
        pthread_join(wt.thread, NULL);
        __atomic_store_n(&wt.started, false, __ATOMIC_RELEASE);
    }
    for (int i = 0; i < 2; i++) {
        if (wt.wake[i] >= 0)
            close(wt.wake[i]);
        wt.wake[i] = -1;
    }
    sh_rpc_client_free(wt.coord);
    wt.coord = NULL;
    free(wt.accts);
    wt.accts = NULL;
    free(wt.fds);
    free(wt.idling);
    wt.fds = NULL;
    wt.idling = NULL;
}
