/* sync.c - the sync of one account, folder by folder. A folder unchanged
 * since the last run (same UIDNEXT, HIGHESTMODSEQ and count) costs a SELECT.
 * Otherwise, where the server has QRESYNC, one UID FETCH (CHANGEDSINCE
 * VANISHED) names the flag changes and expunges and a UID SEARCH the new
 * messages; elsewhere (and once a day regardless) the stored UIDs are
 * compared with the server's whole UID list. New messages are fetched in
 * batches and written with one pipeline per batch; flags are refreshed by
 * CONDSTORE CHANGEDSINCE when the server has it, by a full scan otherwise. */
#include "sync.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "mailstore.h"
#include "oauth.h"
#include "shared/keys.h"
#include "shared/log.h"
#include "shared/util.h"
#include "sync_int.h"

#define SYNC_FOLDER_MAX 200
/* Where QRESYNC reports deletions, every UID is still compared with the
 * server's at least this often. */
#define SYNC_FULL_CHECK_MS (24LL * 3600 * 1000)
/* The smallest batch the fetch budget shrinks a batch to. */
#define SYNC_BATCH_MIN 50

static int sync_put(void *arg, const sync_msg *m)
{
    sync_folder *f = arg;
    if (f->nbatch >= f->batch_cap)
        return SH_EPROTO; /* more messages than asked for */
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
 * at once would hold more than SYNC_FETCH_BUDGET messages together. */
static size_t sync_batch_size(const sync_env *env, size_t left)
{
    int fetchers = atomic_load(&sync_fetchers);
    long long share = env->fetch_budget / (fetchers > 0 ? fetchers : 1);
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

/* sync_new fetches and stores the n new UIDs in batches: each batch's
 * messages are stored, with their mail.new events, by one pipeline. */
static int sync_new(sync_folder *f, sync_imap *imap, const uint32_t *uids, size_t n, sh_error *err)
{
    sync_run *run = f->run;
    size_t batch = (size_t)run->env->fetch_batch;
    f->changes = calloc(batch, sizeof *f->changes);
    f->batch_uids = calloc(batch, sizeof *f->batch_uids);
    if (!f->changes || !f->batch_uids)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    f->batch_cap = batch;
    atomic_fetch_add(&sync_fetchers, 1);
    int rc = SH_OK;
    size_t k = 0;
    for (size_t base = 0; base < n && !rc; base += k) {
        k = sync_batch_size(run->env, n - base);
        f->nbatch = 0;
        sh_error_clear(err);
        rc = sync_imap_fetch(imap, uids + base, k, true, 0, sync_put, f, err);
        if (rc == SH_OK)
            rc = sync_landed(f, k, err);
        if (rc == SH_OK && run->keepalive)
            rc = run->keepalive(run->keepalive_arg, err);
    }
    atomic_fetch_sub(&sync_fetchers, 1);
    return rc;
}

static void sync_folder_fini(sync_folder *f)
{
    for (size_t i = 0; f->changes && i < f->nbatch; i++)
        sync_change_fini(&f->changes[i]);
    free(f->changes);
    free(f->batch_uids);
    for (size_t i = 0; i < f->nf; i++)
        free(f->f_flags[i]);
    free(f->f_flags);
    free(f->f_uids);
}

/* The removals applied per pipeline. */
#define SYNC_REMOVE_CHUNK 500

/* sync_remove deletes the n stored messages of gone with their events. */
static int sync_remove(sync_folder *f, const uint32_t *gone, size_t n, sh_error *err)
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

/* sync_check_flags gathers the flags changed on the server since modseq
 * (every message's flags when modseq is 0) and stores those that differ. */
static int sync_check_flags(sync_folder *f, sync_imap *imap, uint64_t modseq, sh_error *err)
{
    sync_report_update(f->run->report, f->step, "checking flags", f->folder, f->done, f->total);
    int rc = sync_imap_fetch(imap, NULL, 0, false, modseq, sync__flag_seen, f, err);
    return rc ? rc : sync__flags_apply(f, err);
}

/* What a folder's sync did, for the log. */
typedef struct sync_counts {
    size_t fresh, gone;
    bool full; /* every UID was compared with the server's */
} sync_counts;

/* sync_folder_full compares every UID of the folder with the stored ones:
 * the missing are fetched, the vanished deleted, and the flags of the rest
 * refreshed (CHANGEDSINCE where CONDSTORE allows, else a full scan). */
static int sync_folder_full(sync_folder *f, sync_imap *imap, const sync_folder_state *fs,
                            const sync_folder_info *info, sync_counts *c, sh_error *err)
{
    sync_run *run = f->run;
    uint32_t *server = NULL, *stored = NULL, *gone = NULL, *fresh = NULL;
    size_t ns = 0, nst = 0, ncommon = 0;
    int rc = sync_imap_search(imap, 1, &server, &ns, err);
    if (!rc)
        rc = sync_mail_index(run->store, run->acct, f->folder, info->uidvalidity, &stored, &nst,
                             err);
    if (rc)
        goto done;
    gone = malloc((nst ? nst : 1) * sizeof *gone);
    fresh = malloc((ns ? ns : 1) * sizeof *fresh);
    if (!gone || !fresh) {
        rc = sh_error_set(err, SH_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0, j = 0; i < ns || j < nst;) {
        if (j == nst || (i < ns && server[i] < stored[j]))
            fresh[c->fresh++] = server[i++];
        else if (i == ns || stored[j] < server[i])
            gone[c->gone++] = stored[j++];
        else
            i++, j++, ncommon++;
    }
    c->full = true;
    rc = sync_remove(f, gone, c->gone, err);
    if (rc)
        goto done;
    f->total = (long long)c->fresh;
    sync_report_update(run->report, f->step, "fetching new messages", f->folder, 0, f->total);
    rc = sync_new(f, imap, fresh, c->fresh, err);
    if (rc || !ncommon)
        goto done;
    if (sync_imap_has_condstore(imap) && fs->highestmodseq && info->highestmodseq) {
        if (fs->highestmodseq != info->highestmodseq)
            rc = sync_check_flags(f, imap, fs->highestmodseq, err);
    } else {
        rc = sync_check_flags(f, imap, 0, err);
    }
done:
    free(server);
    free(stored);
    free(gone);
    free(fresh);
    return rc;
}

static int sync_range_cmp(const void *a, const void *b)
{
    const sync_uid_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* sync_stored_in keeps the stored UIDs that fall in one of the n ranges
 * (sorted here), in place; returns how many. */
static size_t sync_stored_in(uint32_t *stored, size_t nst, sync_uid_range *r, size_t n)
{
    qsort(r, n, sizeof *r, sync_range_cmp);
    size_t k = 0, j = 0;
    uint32_t reach = 0; /* the highest UID covered by the ranges seen so far */
    for (size_t i = 0; i < nst; i++) {
        while (j < n && r[j].lo <= stored[i]) {
            if (r[j].hi > reach)
                reach = r[j].hi;
            j++;
        }
        if (j > 0 && stored[i] <= reach)
            stored[k++] = stored[i];
    }
    return k;
}

/* sync_folder_changes brings a folder synced before up to date with QRESYNC:
 * one UID FETCH (CHANGEDSINCE VANISHED) names the flag changes and the
 * expunges among the UIDs known at the last run, and a UID SEARCH from
 * that run's UIDNEXT the new messages. */
static int sync_folder_changes(sync_folder *f, sync_imap *imap, const sync_folder_state *fs,
                               const sync_folder_info *info, sync_counts *c, sh_error *err)
{
    sync_run *run = f->run;
    sync_uid_range *ranges = NULL;
    uint32_t *stored = NULL, *fresh = NULL;
    size_t nr = 0, nst = 0;
    int rc = SH_OK;
    if (fs->uidnext > 1 && fs->highestmodseq != info->highestmodseq) {
        sync_report_update(run->report, f->step, "checking changes", f->folder, 0, 0);
        rc = sync_imap_changes(imap, fs->uidnext - 1, fs->highestmodseq, sync__flag_seen, f,
                               &ranges, &nr, err);
        if (!rc && nr)
            rc = sync_mail_index(run->store, run->acct, f->folder, info->uidvalidity, &stored, &nst,
                                 err);
        if (!rc && nr) {
            c->gone = sync_stored_in(stored, nst, ranges, nr);
            rc = sync_remove(f, stored, c->gone, err);
        }
        if (!rc)
            rc = sync__flags_apply(f, err);
    }
    if (!rc && (!info->uidnext || info->uidnext > fs->uidnext))
        rc = sync_imap_search(imap, fs->uidnext, &fresh, &c->fresh, err);
    if (!rc && c->fresh) {
        f->total = (long long)c->fresh;
        sync_report_update(run->report, f->step, "fetching new messages", f->folder, 0, f->total);
        rc = sync_new(f, imap, fresh, c->fresh, err);
    }
    free(ranges);
    free(stored);
    free(fresh);
    return rc;
}

/* sync_one_folder brings one folder up to date: nothing to do when its
 * UIDNEXT, HIGHESTMODSEQ and message count are those of the last run;
 * QRESYNC's changes when the server has it (with a full check at least
 * every SYNC_FULL_CHECK_MS); every UID compared otherwise. */
static int sync_one_folder(sync_run *run, sync_imap *imap, const char *folder, int step,
                           sh_error *err)
{
    sync_folder_info info;
    sync_folder_state fs;
    sync_folder f;
    sync_counts c = {0};
    memset(&f, 0, sizeof f);
    f.run = run;
    f.folder = folder;
    f.step = step;
    size_t pushed = 0;

    sync_report_update(run->report, step, "selecting folder", folder, 0, 0);
    int rc = sync_imap_select(imap, folder, &info, err);
    if (!rc)
        rc = sync_mail_state_get(run->store, run->acct, folder, &fs, err);
    if (rc)
        goto done;
    f.uidvalidity = info.uidvalidity;
    if (fs.uidvalidity && fs.uidvalidity != info.uidvalidity) {
        sh_log_info("uidvalidity_changed", "account=%s folder=%s old=%u new=%u", run->acct, folder,
                    (unsigned)fs.uidvalidity, (unsigned)info.uidvalidity);
        rc = sync_mail_drop_folder(run->store, run->acct, folder, fs.uidvalidity, err);
        if (rc)
            goto done;
        sync_publish(run->pub, run->acct, SH_EVENT_MAIL_RESET, folder, info.uidvalidity, 0, NULL);
        memset(&fs, 0, sizeof fs);
    }
    rc = sync__push_seen(&f, imap, &pushed, err);
    if (rc)
        goto done;
    bool known = fs.uidvalidity && fs.uidnext && fs.highestmodseq && info.highestmodseq &&
                 sync_imap_has_condstore(imap);
    if (known && !pushed && fs.highestmodseq == info.highestmodseq && fs.uidnext == info.uidnext) {
        /* No message was added (same UIDNEXT) or changed (same
         * HIGHESTMODSEQ); the same count means none was expunged. */
        long long count = 0;
        rc = sync_mail_count(run->store, run->acct, folder, info.uidvalidity, &count, err);
        if (rc || count == (long long)info.exists)
            goto done;
    }
    long long now = sh_now_ms();
    if (known && sync_imap_has_qresync(imap) && fs.last_full_check &&
        now - fs.last_full_check < SYNC_FULL_CHECK_MS)
        rc = sync_folder_changes(&f, imap, &fs, &info, &c, err);
    else
        rc = sync_folder_full(&f, imap, &fs, &info, &c, err);
    if (rc)
        goto done;
    sync_folder_state ns_state = {
        .uidvalidity = info.uidvalidity,
        .uidnext = info.uidnext,
        .highestmodseq = info.highestmodseq,
        .last_full_check = c.full ? now : fs.last_full_check,
    };
    rc = sync_mail_state_set(run->store, run->acct, folder, &ns_state, err);
    if (!rc && (c.fresh || c.gone || f.changed))
        rc = sync__log_counts(run, folder, info.uidvalidity, err);
    if (!rc)
        sh_log_info("folder_synced", "account=%s folder=%s check=%s new=%zu removed=%zu flags=%zu",
                    run->acct, folder, c.full ? "full" : "qresync", c.fresh, c.gone, f.changed);
done:
    sync_folder_fini(&f);
    return rc;
}

int sync_security_of(const char *s, sync_security *out)
{
    if (!s)
        return -1;
    if (strcmp(s, "tls") == 0)
        *out = SYNC_SEC_TLS;
    else if (strcmp(s, "starttls") == 0)
        *out = SYNC_SEC_STARTTLS;
    else if (strcmp(s, "none") == 0)
        *out = SYNC_SEC_NONE;
    else
        return -1;
    return 0;
}

static bool sync_folder_name_ok(const char *s, size_t len)
{
    if (!s || len == 0 || len > SYNC_FOLDER_MAX || strlen(s) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

int sync_account(sync_run *run, const sh_val *account, const char *password, sh_error *err)
{
    sync_imap_opts o;
    memset(&o, 0, sizeof o);
    o.host = sh_val_get_str(account, "imapHost", NULL);
    const sh_val *port = sh_val_get(account, "imapPort");
    const sh_val *verify = sh_val_get(account, "tlsVerify");
    const char *user = sh_val_get_str(account, "username", NULL);
    if (!o.host || !port || sh_val_type_of(port) != SH_VAL_INT || !user ||
        sync_security_of(sh_val_get_str(account, "security", NULL), &o.security))
        return sh_error_set(err, SH_EINVAL,
                            "the account lacks imapHost, imapPort, security or "
                            "username");
    o.port = (int)sh_val_int(port);
    o.tls_verify = !verify || sh_val_type_of(verify) != SH_VAL_BOOL || sh_val_bool(verify);
    o.ca_file = run->env->ca_file;
    o.connect_timeout_s = run->env->connect_timeout_s;
    o.command_timeout_s = run->env->command_timeout_s;
    o.command_deadline_s = run->env->command_deadline_s;
    if (!run->deadline_ms && run->env->run_deadline_s > 0)
        run->deadline_ms = sh_mono_ms() + (int64_t)run->env->run_deadline_s * 1000;
    o.run_deadline_ms = run->deadline_ms;
    o.run_deadline_s = run->env->run_deadline_s;
    o.hosts = run->env->hosts;
    o.allow_insecure = run->env->allow_insecure;
    o.max_per_host = run->env->max_per_host;

    sync_report_update(run->report, 0, "connecting", NULL, 0, 0);
    sync_imap *imap = NULL;
    int rc = sync_imap_open(&o, &imap, err);
    if (!rc) {
        sync_report_update(run->report, 0, "logging in", NULL, 0, 0);
        rc = run->auth ? sync_auth_login(run->auth, imap, user, err)
                       : sync_imap_login(imap, user, password, err);
    }
    char **special = NULL;
    size_t nspecial = 0;
    if (!rc)
        rc = sync_imap_special_use(imap, &special, &nspecial, err);
    const sh_val *folders = sh_val_get(account, "folders");
    size_t nf = sh_val_type_of(folders) == SH_VAL_ARRAY ? sh_val_len(folders) : 0;
    size_t nown = nf ? nf : 1;
    /* The folder a watch saw change goes first, so that its change is
     * logged without waiting for the others. */
    size_t first = 0;
    const char *want = sh_val_get_str(account, "syncFirst", NULL);
    for (size_t k = 0; want && k < nf; k++) {
        const char *name = sh_val_str(sh_val_at(folders, k), NULL);
        if (name && strcmp(name, want) == 0)
            first = k;
    }
    for (size_t j = 0; !rc && j < nown + nspecial; j++) {
        size_t i = j >= nown ? j : j == 0 ? first : j <= first ? j - 1 : j;
        size_t len = 5;
        const char *name = i >= nown ? special[i - nown]
                           : nf      ? sh_val_str(sh_val_at(folders, i), &len)
                                     : "INBOX";
        if (i >= nown) {
            /* Sent and Drafts come along unless the account names them. */
            len = strlen(name);
            bool listed = false;
            for (size_t k = 0; k < nown && !listed; k++) {
                size_t l2 = 5;
                const char *own = nf ? sh_val_str(sh_val_at(folders, k), &l2) : "INBOX";
                listed = own && l2 == len && memcmp(own, name, len) == 0;
            }
            if (listed || !sync_folder_name_ok(name, len))
                continue;
        } else if (!sync_folder_name_ok(name, len)) {
            rc = sh_error_set(err, SH_EINVAL, "invalid folder name in the account");
            break;
        }
        rc = sync_one_folder(run, imap, name, (int)i + 1, err);
        if (rc && err && rc != SYNC_EAUTH && rc != SH_EUNAVAIL && rc != SH_ECLOSED &&
            rc != SH_ELEASE) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%.60s: %.180s", name, err->msg);
            snprintf(err->msg, sizeof err->msg, "%s", msg);
        }
    }
    for (size_t i = 0; i < nspecial; i++)
        free(special[i]);
    free(special);
    sync_imap_free(imap);
    return rc;
}
