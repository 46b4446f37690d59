/* sync_int.h - what the files of an account's sync share (sync.c, the
 * folder by folder sync, on top of sync_push.c, the read/unread pushes,
 * both on top of sync_flags.c, the flag scans and the mail events); the
 * sync_ names of sync.h are its interface, the sync__ names here its
 * internals. */
#ifndef SYNC_SYNC_INT_H
#define SYNC_SYNC_INT_H

#include <stddef.h>
#include <stdint.h>

#include "imap.h"
#include "mail_change.h"
#include "shared/store.h"
#include "sync.h"

/* The state of one folder's sync. */
typedef struct sync_folder {
    sync_run *run;
    const char *folder;
    int step;
    uint32_t uidvalidity;
    sync_change *changes; /* the batch's stores, one per message */
    uint32_t *batch_uids; /* their UIDs */
    size_t nbatch, batch_cap;
    long long done, total;
    /* flag scan results */
    uint32_t *f_uids;
    char **f_flags;
    size_t nf, capf;
    size_t changed; /* messages whose stored flags were changed */
} sync_folder;

/* sync__changes_apply applies the n changes (finished here, applied or
 * not) of the messages uids of the folder, and announces each one applied
 * also on the "mail:<account>" topic as kind (with flags[i] when flags is
 * not NULL); *applied (may be NULL) counts them. */
int sync__changes_apply(sync_folder *f, sync_change *c, const uint32_t *uids, char *const *flags,
                        size_t n, const char *kind, size_t *applied, sh_error *err);
/* sync__log_counts appends the folder's folder.counts event. */
int sync__log_counts(sync_run *run, const char *folder, uint32_t uidvalidity, sh_error *err);
/* sync__flag_seen is a fetch callback gathering each message's flags in
 * the folder's scan results. */
int sync__flag_seen(void *arg, const sync_msg *m);
/* sync__flags_apply stores the gathered flags that differ from the stored
 * ones, announcing each change. */
int sync__flags_apply(sync_folder *f, sh_error *err);
/* sync__push_seen pushes the folder's pending read/unread changes to the
 * selected folder; *pushed counts those sent. */
int sync__push_seen(sync_folder *f, sync_imap *imap, size_t *pushed, sh_error *err);

#endif
