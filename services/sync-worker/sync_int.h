/* sync_int.h - what the files of an account's sync share (sync.c, the
 * folder by folder sync, on top of sync_push.c, the read/unread pushes,
 * both on top of sync_flags.c, the flag scans and the mail events); the
 * sync_ names of sync.h are its interface, the sync__ names here its
 * internals. */
#ifndef SYNC_SYNC_INT_H
#define SYNC_SYNC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap.h"
#include "mail_change.h"
#include "mailstore.h"
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

/* What a folder's sync did, for the log. */
typedef struct sync_counts {
    size_t fresh, gone;
    bool full;   /* every UID was compared with the server's */
    bool capped; /* the folder holds more than MAIL_MAX_MESSAGES_PER_FOLDER */
} sync_counts;

/* sync__new fetches and stores the n new UIDs in batches: each batch's
 * messages are stored, with their mail.new events, by one pipeline. */
int sync__new(sync_folder *f, sync_imap *imap, const uint32_t *uids, size_t n, sh_error *err);
/* sync__remove deletes the n stored messages of gone with their events. */
int sync__remove(sync_folder *f, const uint32_t *gone, size_t n, sh_error *err);
/* sync__folder_full compares every UID of the folder with the stored ones,
 * a window of SYNC_CHECK_WINDOW messages at a time (from the newest
 * MAIL_MAX_MESSAGES_PER_FOLDER when the folder holds more): the missing
 * are fetched, the vanished deleted, and the flags of the rest refreshed
 * (CHANGEDSINCE where CONDSTORE allows, else a full scan). */
int sync__folder_full(sync_folder *f, sync_imap *imap, const sync_folder_state *fs,
                      const sync_folder_info *info, sync_counts *c, sh_error *err);
/* sync__folder_cap removes the oldest stored messages of the folder past
 * MAIL_MAX_MESSAGES_PER_FOLDER (none without a cap), counting them in
 * c->gone. */
int sync__folder_cap(sync_folder *f, sync_counts *c, sh_error *err);
/* sync__window is the messages compared per window (SYNC_CHECK_WINDOW). */
size_t sync__window(const sync_env *env);

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
