/* sync_full.c - the full check of a folder: every UID on the server
 * compared with the stored ones, a window at a time. A window is about
 * SYNC_CHECK_WINDOW messages by sequence number, asked for by UID range
 * (UID SEARCH UID lo:hi, UID FETCH lo:hi (UID FLAGS)) and compared with the
 * stored UIDs of the same range (ZRANGEBYSCORE), so the memory a check
 * holds and each reply's size are bounded by the window, not the folder.
 * A folder holding more than MAIL_MAX_MESSAGES_PER_FOLDER messages keeps
 * the newest that many. */
#include <stdlib.h>

#include "shared/events.h"
#include "sync_int.h"

/* The window when the settings give none. */
#define SYNC_WINDOW_DEFAULT 10000

size_t sync__window(const sync_env *env)
{
    return env->check_window > 0 ? (size_t)env->check_window : SYNC_WINDOW_DEFAULT;
}

/* full_flags_reset forgets the flags a window's scan gathered. */
static void full_flags_reset(sync_folder *f)
{
    for (size_t i = 0; i < f->nf; i++)
        free(f->f_flags[i]);
    f->nf = 0;
}

/* The state of one window's comparison. */
typedef struct full_cmp {
    const uint32_t *server; /* the server's UIDs of the window, ascending */
    size_t ns, i;           /* how many, and the next one to compare */
    uint32_t *fresh;        /* the server's UIDs not stored */
    size_t nfresh, ncommon, ngone;
} full_cmp;

/* full_compare walks the stored UIDs of lo..hi, a window at a time, beside
 * the server's (none when cmp->server is NULL): those the server lacks are
 * removed as they come, those it has and the store lacks collected in
 * cmp->fresh. */
static int full_compare(sync_folder *f, uint32_t lo, uint32_t hi, full_cmp *cmp, sh_error *err)
{
    sync_run *run = f->run;
    size_t w = sync__window(run->env);
    int rc = SH_OK;
    for (uint32_t cursor = lo; !rc && cursor <= hi;) {
        uint32_t *stored = NULL;
        size_t nst = 0, ng = 0;
        rc = sync_mail_index_range(run->store, run->acct, f->folder, f->uidvalidity, cursor, hi, w,
                                   &stored, &nst, err);
        for (size_t j = 0; !rc && j < nst; j++) {
            uint32_t s = stored[j];
            while (cmp->i < cmp->ns && cmp->server[cmp->i] < s)
                cmp->fresh[cmp->nfresh++] = cmp->server[cmp->i++];
            if (cmp->i < cmp->ns && cmp->server[cmp->i] == s) {
                cmp->i++;
                cmp->ncommon++;
            } else {
                stored[ng++] = s; /* in place: j >= ng */
            }
        }
        if (!rc && ng)
            rc = sync__remove(f, stored, ng, err);
        cmp->ngone += ng;
        bool last = nst < w || stored[nst - 1] >= hi;
        if (!last)
            cursor = stored[nst - 1] + 1;
        free(stored);
        if (last)
            break;
    }
    while (!rc && cmp->i < cmp->ns)
        cmp->fresh[cmp->nfresh++] = cmp->server[cmp->i++];
    return rc;
}

/* full_window brings the UIDs lo..hi of the folder in step: the server's
 * list compared with the stored one, the missing fetched, and the flags of
 * those both hold checked (since modseq when it is not 0). */
static int full_window(sync_folder *f, sync_imap *imap, uint32_t lo, uint32_t hi, bool flags,
                       uint64_t modseq, sync_counts *c, sh_error *err)
{
    uint32_t *server = NULL;
    full_cmp cmp = {0};
    int rc = sync_imap_search_range(imap, lo, hi, &server, &cmp.ns, err);
    if (rc)
        return rc;
    cmp.server = server;
    cmp.fresh = malloc((cmp.ns ? cmp.ns : 1) * sizeof *cmp.fresh);
    rc = cmp.fresh ? full_compare(f, lo, hi, &cmp, err)
                   : sh_error_set(err, SH_ENOMEM, "out of memory");
    c->gone += cmp.ngone;
    if (!rc && cmp.nfresh) {
        sync_report_update(f->run->report, f->step, "fetching new messages", f->folder, f->done,
                           f->total);
        rc = sync__new(f, imap, cmp.fresh, cmp.nfresh, err);
        c->fresh += cmp.nfresh;
    }
    if (!rc && flags && cmp.ncommon) {
        sync_report_update(f->run->report, f->step, "checking flags", f->folder, f->done, f->total);
        rc = sync_imap_fetch_range(imap, lo, hi, false, modseq, sync__flag_seen, f, err);
        rc = rc ? rc : sync__flags_apply(f, err);
        full_flags_reset(f);
    }
    free(server);
    free(cmp.fresh);
    return rc;
}

/* full_start finds where the check starts: UID 1, or with more messages
 * than the cap the UID of the oldest message kept, the stored ones below
 * it removed. *seq is that message's sequence number. */
static int full_start(sync_folder *f, sync_imap *imap, const sync_folder_info *info, uint32_t *lo,
                      uint32_t *seq, sync_counts *c, sh_error *err)
{
    long long cap = f->run->env->max_per_folder;
    *lo = 1;
    *seq = 1;
    if (cap <= 0 || info->exists <= cap)
        return SH_OK;
    c->capped = true;
    *seq = info->exists - (uint32_t)cap + 1;
    int rc = sync_imap_uid_at(imap, *seq, lo, err);
    if (rc || *lo <= 1) {
        *lo = 1;
        return rc;
    }
    full_cmp none = {0};
    rc = full_compare(f, 1, *lo - 1, &none, err);
    c->gone += none.ngone;
    return rc;
}

int sync__folder_full(sync_folder *f, sync_imap *imap, const sync_folder_state *fs,
                      const sync_folder_info *info, sync_counts *c, sh_error *err)
{
    sync_run *run = f->run;
    size_t w = sync__window(run->env);
    /* Flags: those changed since the last run where CONDSTORE says which
     * (none when HIGHESTMODSEQ is the same), every message's otherwise. */
    bool cs = sync_imap_has_condstore(imap) && fs->highestmodseq && info->highestmodseq;
    bool flags = !cs || fs->highestmodseq != info->highestmodseq;
    uint64_t modseq = cs ? fs->highestmodseq : 0;
    long long stored = 0;
    int rc = sync_mail_count(run->store, run->acct, f->folder, info->uidvalidity, &stored, err);
    long long cap = run->env->max_per_folder;
    long long want = cap > 0 && info->exists > cap ? cap : (long long)info->exists;
    f->total = want > stored ? want - stored : 0;
    f->done = 0;
    sync_report_update(run->report, f->step, "checking messages", f->folder, 0, f->total);
    uint32_t lo = 1, seq = 1;
    if (!rc)
        rc = full_start(f, imap, info, &lo, &seq, c, err);
    while (!rc) {
        /* The window ends at the UID of its last message by sequence
         * number; the last window takes whatever is left. */
        uint32_t hi = UINT32_MAX;
        /* The count as of now: another client's expunge since SELECT
         * must not make the UID SEARCH below name a message gone. */
        if ((uint64_t)seq + w - 1 < sync_imap_exists(imap)) {
            rc = sync_imap_uid_at(imap, seq + (uint32_t)w - 1, &hi, err);
            if (!rc && (hi == 0 || hi < lo))
                hi = hi == 0 ? UINT32_MAX : lo;
        }
        if (!rc)
            rc = full_window(f, imap, lo, hi, flags, modseq, c, err);
        if (!rc && run->keepalive)
            rc = run->keepalive(run->keepalive_arg, err);
        if (hi == UINT32_MAX)
            break;
        lo = hi + 1;
        seq += (uint32_t)w;
    }
    c->full = rc == SH_OK;
    return rc;
}

int sync__folder_cap(sync_folder *f, sync_counts *c, sh_error *err)
{
    sync_run *run = f->run;
    long long cap = run->env->max_per_folder, count = 0;
    if (cap <= 0)
        return SH_OK;
    int rc = sync_mail_count(run->store, run->acct, f->folder, f->uidvalidity, &count, err);
    size_t w = sync__window(run->env);
    while (!rc && count > cap) {
        size_t k = count - cap < (long long)w ? (size_t)(count - cap) : w, n = 0;
        uint32_t *oldest = NULL;
        rc = sync_mail_index_range(run->store, run->acct, f->folder, f->uidvalidity, 0, UINT32_MAX,
                                   k, &oldest, &n, err);
        if (!rc && n == 0)
            break;
        if (!rc)
            rc = sync__remove(f, oldest, n, err);
        free(oldest);
        count -= (long long)n;
        c->gone += n;
        c->capped = true;
    }
    return rc;
}
