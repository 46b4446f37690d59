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
#include "shared/store.h"
#include "sync.h"

/* The state of one folder's sync. */
typedef struct sync_folder {
    sync_run *run;
    const char *folder;
    int step;
    uint32_t uidvalidity;
    sh_cmd **cmds; /* the batch's commands, SYNC_MAIL_PUT_CMDS per message */
    size_t ncmds;
    uint32_t *batch_uids; /* UIDs written by the batch, for events */
    size_t nbatch, batch_cap;
    long long done, total;
    /* flag scan results */
    uint32_t *f_uids;
    char **f_flags;
    size_t nf, capf;
    size_t changed; /* messages whose stored flags were changed */
} sync_folder;

/* sync__log_msgs appends one event of type per message to the account's
 * log: {uid, folder}, with flags (space-separated, shown as an array) when
 * flags is not NULL. */
int sync__log_msgs(sync_run *run, const char *type, const char *folder, const uint32_t *uids,
                   char *const *flags, size_t n, sh_error *err);
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
