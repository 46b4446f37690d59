/* report.h - a sync run's progress, written to the progress service under
 * the lease's progress id. Reporting is best effort: a progress service
 * that is down never fails a sync (the failure is logged once per run).
 *
 * Updates are paced: the first is written at once, the next ones at most
 * every SYNC_REPORT_EVERY_MS, and the last (complete) always, carrying the
 * latest step, folder and counts. A run over in a few milliseconds writes
 * two updates, not one per step. */
#ifndef SYNC_REPORT_H
#define SYNC_REPORT_H

#include <stdbool.h>

#include "shared/rpc.h"

#define SYNC_REPORT_EVERY_MS 250
/* The longest folder name reported whole (an account's folder names are
 * at most this long); a longer one is cut at a character boundary. */
#define SYNC_REPORT_TEXT 200

typedef struct sync_report {
    sh_rpc_client *client; /* borrowed, shared by the worker threads */
    const char *id;        /* the progress id, borrowed */
    bool warned;
    /* the latest state, written or not */
    int step;
    char folder[SYNC_REPORT_TEXT + 1];
    long long done, total;
    long long sent_ms; /* monotonic time of the last write, 0 before */
} sync_report;

/* sync_report_update records the run's state and merges it into the
 * progress record when it is due (see above). */
void sync_report_update(sync_report *r, int step, const char *action, const char *folder,
                        long long done, long long total);
/* sync_report_complete writes the last update: the latest state with
 * currentAction set to action and complete true. */
void sync_report_complete(sync_report *r, const char *action);
/* sync_report_error appends {tool: "imap", error, suggestedFix} to its log. */
void sync_report_error(sync_report *r, const char *error, const char *fix);

#endif
