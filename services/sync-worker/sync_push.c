/* sync_push.c - read/unread changes made through the API, pushed to the
 * IMAP server by the sync of their folder: applied, conflicting with a
 * change on the server, put off, or refused (sync_int.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailstore.h"
#include "shared/keys.h"
#include "shared/log.h"
#include "sync_int.h"

/* How many times a push the server puts off (NO for now) is tried, one
 * sync apart, before it counts as refused. */
#define SYNC_PUSH_ATTEMPTS 5

/* sync_push_refused handles the changes the server refused for good: the
 * stored flags of those messages go back to the server's (fetched anew,
 * since nothing changed there for a flag check to see), each message
 * carries the reason as flagError, and the run's log and the account's
 * state name the refusal. */
static int sync_push_refused(sync_folder *f, sync_imap *imap, const uint32_t *uids, size_t n,
                             const char *why, sh_error *err)
{
    sync_run *run = f->run;
    if (n == 0)
        return SH_OK;
    int rc = sync_imap_fetch(imap, uids, n, false, 0, sync__flag_seen, f, err);
    if (!rc)
        rc = sync__flags_apply(f, err);
    for (size_t i = 0; i < f->nf; i++)
        free(f->f_flags[i]);
    f->nf = 0;
    for (size_t i = 0; !rc && i < n; i++)
        rc = sync_mail_flag_error(run->store, run->acct, f->folder, f->uidvalidity, uids[i], why,
                                  err);
    if (rc)
        return rc;
    snprintf(run->warning, sizeof run->warning,
             "%.100s: the server refused to change read/unread of %zu message%s (uid %u%s): "
             "%.200s",
             f->folder, n, n == 1 ? "" : "s", (unsigned)uids[0], n > 1 ? ", ..." : "", why);
    sync_report_error(run->report, run->warning,
                      "The messages show the server's flags again. If the server is read-only "
                      "or refuses flag changes, nothing can be pushed; otherwise mark them again.");
    return SH_OK;
}

/* sync__push_seen applies the \Seen changes made through the API since the
 * last run, each conditional on the message being unchanged on the server
 * since then (CONDSTORE). A message changed meanwhile keeps the server's
 * flags, which the flag check that follows brings in, and the conflict is
 * reported. A change the server puts off (NO for now) stays pending for
 * the next sync, SYNC_PUSH_ATTEMPTS times at most; one it refuses for good
 * goes to sync_push_refused. Changes recorded under another UIDVALIDITY are
 * dropped. *pushed counts the changes sent to the server. */
int sync__push_seen(sync_folder *f, sync_imap *imap, size_t *pushed, sh_error *err)
{
    sync_run *run = f->run;
    const char *folder = f->folder;
    sync_pending *p = NULL;
    size_t n = 0, nrefused = 0;
    uint32_t *refused = NULL;
    char why[sizeof err->msg] = "";
    *pushed = 0;
    int rc = sync_mail_pending(run->store, run->acct, folder, &p, &n, err);
    if (!rc && n && !(refused = calloc(n, sizeof *refused)))
        rc = sh_error_set(err, SH_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < n; i++) {
        bool modified = false;
        if (p[i].uidvalidity == f->uidvalidity) {
            sh_error e;
            sh_error_clear(&e);
            (*pushed)++;
            rc = sync_imap_store_seen(imap, p[i].uid, p[i].seen, p[i].modseq, &modified, &e);
            if (rc == SYNC_ETRYLATER && p[i].attempts + 1 < SYNC_PUSH_ATTEMPTS) {
                sh_log_warn("flag_push_deferred",
                            "account=%s folder=%s uid=%u attempt=%d: %s; kept for the next sync",
                            run->acct, folder, (unsigned)p[i].uid, p[i].attempts + 1, e.msg);
                rc = sync_mail_pending_retry(run->store, run->acct, folder, &p[i], err);
                continue;
            }
            if (rc == SYNC_ETRYLATER || rc == SYNC_EREFUSED) {
                sh_log_warn("flag_push_refused",
                            "account=%s folder=%s uid=%u: %s; the server's flags are restored",
                            run->acct, folder, (unsigned)p[i].uid, e.msg);
                refused[nrefused++] = p[i].uid;
                snprintf(why, sizeof why, "%s", e.msg);
                rc = SH_OK;
            } else if (rc) {
                /* The connection failed: every change not yet sent stays
                 * pending for the next run. */
                *err = e;
                break;
            }
        }
        if (modified) {
            char msg[400];
            snprintf(msg, sizeof msg,
                     "%.100s: message %u was changed on the server since the last sync; its "
                     "%s was not applied and the server's flags were kept",
                     folder, (unsigned)p[i].uid, p[i].seen ? "mark as read" : "mark as unread");
            sh_log_info("flag_conflict", "account=%s %s", run->acct, msg);
            sync_report_error(run->report, msg,
                              "Nothing to do: the server's change wins; mark the message again to "
                              "change it.");
            sync_publish(run->pub, run->acct, SH_EVENT_MAIL_CONFLICT, folder, f->uidvalidity,
                         p[i].uid, NULL);
        }
        rc = sync_mail_pending_done(run->store, run->acct, folder, &p[i], err);
    }
    if (!rc)
        rc = sync_push_refused(f, imap, refused, nrefused, why, err);
    free(refused);
    free(p);
    return rc;
}
