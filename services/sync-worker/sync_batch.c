/* sync_batch.c - the messages of a folder fetched and stored in batches
 * (each batch's stores, with their mail.new events, one pipeline) and the
 * removal of expunged ones, for both ways a folder is synced (sync.c's
 * QRESYNC changes and sync_full.c's windowed check). */
#include <stdatomic.h>
#include <stdlib.h>

#include "mailstore.h"
#include "shared/events.h"
#include "shared/keys.h"
#include "sync_int.h"

/* The smallest batch the fetch budget shrinks a batch to. */
#define SYNC_BATCH_MIN 50

static int sync_put(void *arg, const sync_msg *m)
{
    sync_folder *f = arg;
    if (f->nbatch >= f->batch_cap)
        return SH_EPROTO; /* more messages than the two batches asked for */
    if (sync_change_new(f->run->env, f->run->acct, f->folder, f->uidvalidity, m,
                        f->changes + f->nbatch))
        return SH_ENOMEM;
    f->batch_uids[f->nbatch++] = m->uid;
    return SH_OK;
}

/* The sync threads fetching new messages at the moment. */
static atomic_int sync_fetchers;

/* sync_batch_size is the size of the next batch of a thread with left
 * messages to fetch: SYNC_FETCH_BATCH, or less when the threads fetching
 * at once would hold more than SYNC_FETCH_BUDGET messages together (each
 * thread has two batches in flight: the one it reads and the next). */
static size_t sync_batch_size(const sync_env *env, size_t left)
{
    int fetchers = atomic_load(&sync_fetchers);
    long long share = env->fetch_budget / (2LL * (fetchers > 0 ? fetchers : 1));
    long long k = share < env->fetch_batch ? share : env->fetch_batch;
    if (k < SYNC_BATCH_MIN)
        k = env->fetch_batch < SYNC_BATCH_MIN ? env->fetch_batch : SYNC_BATCH_MIN;
    return (size_t)k < left ? (size_t)k : left;
}

/* sync_landed stores the batch's messages with their events, then reports
 * the progress of the k asked for. */
static int sync_landed(sync_folder *f, size_t k, sh_error *err)
{
    sync_run *run = f->run;
    size_t n = f->nbatch;
    f->nbatch = 0;
    int rc =
        sync__changes_apply(f, f->changes, f->batch_uids, NULL, n, SH_EVENT_MAIL_ADDED, NULL, err);
    if (rc)
        return rc;
    f->done += (long long)k;
    run->fetched += (long long)k;
    sync_report_update(run->report, f->step, "fetching new messages", f->folder, f->done, f->total);
    return SH_OK;
}

int sync__new(sync_folder *f, sync_imap *imap, const uint32_t *uids, size_t n, sh_error *err)
{
    sync_run *run = f->run;
    size_t batch = (size_t)run->env->fetch_batch;
    if (n == 0)
        return SH_OK;
    if (!f->changes) {
        /* Room for two batches: a server running the fetch sent ahead at
         * once with this one hands messages of both in one reply. */
        f->changes = calloc(2 * batch, sizeof *f->changes);
        f->batch_uids = calloc(2 * batch, sizeof *f->batch_uids);
        if (!f->changes || !f->batch_uids)
            return sh_error_set(err, SH_ENOMEM, "out of memory");
        f->batch_cap = 2 * batch;
    }
    atomic_fetch_add(&sync_fetchers, 1);
    size_t base = 0, k = sync_batch_size(run->env, n);
    int rc = sync_imap_fetch_send(imap, uids, k, true, err);
    while (!rc) {
        /* The next batch is asked for before this one is read: the server
         * makes its reply while this one is decoded and stored (libetpan's
         * parser keeps this thread busy, and the server would wait). A run
         * that fails here leaves that reply due; the session is then
         * closed without LOGOUT. */
        size_t next = base + k < n ? sync_batch_size(run->env, n - base - k) : 0;
        if (next)
            rc = sync_imap_fetch_send(imap, uids + base + k, next, true, err);
        f->nbatch = 0;
        if (!rc)
            rc = sync_imap_fetch_recv(imap, true, sync_put, f, err);
        if (!rc)
            rc = sync_landed(f, k, err);
        if (!rc && run->keepalive)
            rc = run->keepalive(run->keepalive_arg, err);
        base += k;
        k = next;
        if (k == 0)
            break;
    }
    atomic_fetch_sub(&sync_fetchers, 1);
    return rc;
}

/* The removals applied per pipeline. */
#define SYNC_REMOVE_CHUNK 500

int sync__remove(sync_folder *f, const uint32_t *gone, size_t n, sh_error *err)
{
    sync_run *run = f->run;
    sync_change c[SYNC_REMOVE_CHUNK];
    int rc = SH_OK;
    for (size_t base = 0; !rc && base < n; base += SYNC_REMOVE_CHUNK) {
        size_t k = n - base < SYNC_REMOVE_CHUNK ? n - base : SYNC_REMOVE_CHUNK, made = 0;
        for (; !rc && made < k; made++)
            if (sync_change_removed(run->env, run->acct, f->folder, f->uidvalidity,
                                    gone[base + made], &c[made]))
                rc = sh_error_set(err, SH_ENOMEM, "cannot build the removal of a message");
        if (rc) {
            for (size_t i = 0; i + 1 < made; i++)
                sync_change_fini(&c[i]);
            break;
        }
        rc = sync__changes_apply(f, c, gone + base, NULL, k, SH_EVENT_MAIL_REMOVED, NULL, err);
    }
    return rc;
}
