/* report.h - a sync run's progress, written to the progress service under
 * the lease's progress id. Reporting is best effort: a progress service
 * that is down never fails a sync (the failure is logged once per run). */
#ifndef SYNC_REPORT_H
#define SYNC_REPORT_H

#include <stdbool.h>

#include "shared/rpc.h"

typedef struct sync_report {
    sh_rpc_client *client; /* borrowed, shared by the worker threads */
    const char *id;        /* the progress id, borrowed */
    bool warned;
} sync_report;

/* sync_report_update merges the sync's fields into the progress record. */
void sync_report_update(sync_report *r, int step, const char *action, const char *folder,
                        long long done, long long total, bool complete);
/* sync_report_error appends {tool: "imap", error, suggestedFix} to its log. */
void sync_report_error(sync_report *r, const char *error, const char *fix);

#endif
