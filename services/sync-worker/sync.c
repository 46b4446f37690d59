/* sync.c - the sync of one account, folder by folder. A folder unchanged
 * since the last run (same UIDNEXT, HIGHESTMODSEQ and count) costs a SELECT.
 * Otherwise, where the server has QRESYNC, one UID FETCH (CHANGEDSINCE
 * VANISHED) names the flag changes and expunges and a UID SEARCH the new
 * messages; elsewhere (and once a day regardless) the stored UIDs are
 * compared with the server's, a window at a time (sync_full.c). New
 * messages are fetched in batches (sync_batch.c). */
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

static int sync_range_cmp(const void *a, const void *b)
{
    const sync_uid_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* sync_stored_in keeps the stored UIDs that fall in one of the n ranges
 * (sorted by lo), in place; returns how many. */
static size_t sync_stored_in(uint32_t *stored, size_t nst, const sync_uid_range *r, size_t n)
{
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

/* sync_remove_vanished removes the stored messages that fall in one of
 * the n ranges QRESYNC named expunged, reading the stored index of their
 * span a window at a time; *gone counts them. */
static int sync_remove_vanished(sync_folder *f, sync_uid_range *r, size_t n, size_t *gone,
                                sh_error *err)
{
    sync_run *run = f->run;
    qsort(r, n, sizeof *r, sync_range_cmp);
    uint32_t hi = 0;
    for (size_t i = 0; i < n; i++)
        hi = r[i].hi > hi ? r[i].hi : hi;
    size_t w = sync__window(run->env);
    int rc = SH_OK;
    for (uint32_t cursor = r[0].lo; !rc && cursor <= hi;) {
        uint32_t *stored = NULL;
        size_t nst = 0;
        rc = sync_mail_index_range(run->store, run->acct, f->folder, f->uidvalidity, cursor, hi, w,
                                   &stored, &nst, err);
        bool last = rc || nst < w || stored[nst - 1] >= hi;
        if (!last)
            cursor = stored[nst - 1] + 1;
        size_t k = rc ? 0 : sync_stored_in(stored, nst, r, n);
        if (k)
            rc = sync__remove(f, stored, k, err);
        *gone += k;
        free(stored);
        if (last)
            break;
    }
    return rc;
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
    uint32_t *fresh = NULL;
    size_t nr = 0;
    int rc = SH_OK;
    if (fs->uidnext > 1 && fs->highestmodseq != info->highestmodseq) {
        sync_report_update(run->report, f->step, "checking changes", f->folder, 0, 0);
        rc = sync_imap_changes(imap, fs->uidnext - 1, fs->highestmodseq, sync__flag_seen, f,
                               &ranges, &nr, err);
        if (!rc && nr)
            rc = sync_remove_vanished(f, ranges, nr, &c->gone, err);
        if (!rc)
            rc = sync__flags_apply(f, err);
    }
    if (!rc && (!info->uidnext || info->uidnext > fs->uidnext))
        rc = sync_imap_search(imap, fs->uidnext, &fresh, &c->fresh, err);
    if (!rc && c->fresh) {
        f->total = (long long)c->fresh;
        sync_report_update(run->report, f->step, "fetching new messages", f->folder, 0, f->total);
        rc = sync__new(f, imap, fresh, c->fresh, err);
    }
    free(ranges);
    free(fresh);
    return rc;
}

/* sync_cap_warn says, in the run's warning (the account's errorMessage of
 * an ok run) and the log, that a folder holds more messages than
 * MAIL_MAX_MESSAGES_PER_FOLDER; every run whose folder is over the cap
 * says so again. */
static void sync_cap_warn(sync_run *run, const char *folder, const sync_folder_info *info)
{
    long long cap = run->env->max_per_folder;
    if (cap <= 0 || info->exists <= cap)
        return;
    sh_log_warn("folder_capped", "account=%s folder=%s exists=%u cap=%lld", run->acct, folder,
                (unsigned)info->exists, cap);
    size_t used = strlen(run->warning);
    snprintf(run->warning + used, sizeof run->warning - used,
             "%s%.60s holds %u messages, more than MAIL_MAX_MESSAGES_PER_FOLDER=%lld; the newest "
             "%lld are kept",
             used ? "; " : "", folder, (unsigned)info->exists, cap, cap);
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
    sync_cap_warn(run, folder, &info);
    rc = sync__push_seen(&f, imap, &pushed, err);
    if (rc)
        goto done;
    bool known = fs.uidvalidity && fs.uidnext && fs.highestmodseq && info.highestmodseq &&
                 sync_imap_has_condstore(imap);
    if (known && !pushed && fs.highestmodseq == info.highestmodseq && fs.uidnext == info.uidnext) {
        /* No message was added (same UIDNEXT) or changed (same
         * HIGHESTMODSEQ); the same count means none was expunged. */
        long long count = 0, cap = run->env->max_per_folder;
        rc = sync_mail_count(run->store, run->acct, folder, info.uidvalidity, &count, err);
        if (rc || count == (cap > 0 && info.exists > cap ? cap : (long long)info.exists))
            goto done;
    }
    long long now = sh_now_ms();
    if (known && sync_imap_has_qresync(imap) && fs.last_full_check &&
        now - fs.last_full_check < SYNC_FULL_CHECK_MS)
        rc = sync_folder_changes(&f, imap, &fs, &info, &c, err);
    else
        rc = sync__folder_full(&f, imap, &fs, &info, &c, err);
    if (!rc)
        rc = sync__folder_cap(&f, &c, err);
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
        sh_log_info("folder_synced",
                    "account=%s folder=%s check=%s new=%zu removed=%zu flags=%zu%s", run->acct,
                    folder, c.full ? "full" : "qresync", c.fresh, c.gone, f.changed,
                    c.capped ? " capped=1" : "");
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
