/* mailstore.h - the synced mail in Redis: per-folder state, one hash per
 * message keyed by (folder, UIDVALIDITY, UID), and a sorted set of UIDs per
 * folder and UIDVALIDITY. Every write is idempotent, so a sync that dies
 * half-way leaves nothing the next run cannot finish. */
#ifndef SYNC_MAILSTORE_H
#define SYNC_MAILSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap.h"
#include "shared/store.h"
#include "shared/val.h"

typedef struct sync_folder_state {
    uint32_t uidvalidity; /* 0 when the folder was never synced */
    uint32_t uidnext;
    uint64_t highestmodseq;
    int64_t last_full_check; /* ms since the epoch */
} sync_folder_state;

int sync_mail_state_get(sh_store *st, const char *acct, const char *folder, sync_folder_state *out,
                        sh_error *err);
int sync_mail_state_set(sh_store *st, const char *acct, const char *folder,
                        const sync_folder_state *s, sh_error *err);

/* Commands made by sync_mail_put_cmds and sync_mail_flags_cmds. */
#define SYNC_MAIL_PUT_CMDS   3
#define SYNC_MAIL_FLAGS_CMDS 2

/* sync_mail_put_cmds makes the commands storing m (HSET of its hash, ZADD
 * to the index, ZADD or ZREM of the unseen set) into
 * cmds[0..SYNC_MAIL_PUT_CMDS-1]; the caller runs or frees them. */
int sync_mail_put_cmds(const char *acct, const char *folder, uint32_t uidvalidity,
                       const sync_msg *m, sh_cmd **cmds);
/* sync_mail_flags_cmds makes the HSET setting the flags of one message and
 * the update of the unseen set into cmds[0..SYNC_MAIL_FLAGS_CMDS-1]. */
int sync_mail_flags_cmds(const char *acct, const char *folder, uint32_t uidvalidity, uint32_t uid,
                         const char *flags, sh_cmd **cmds);
/* sync_mail_flags_seen reports whether a space-separated flag list holds
 * \Seen. */
bool sync_mail_flags_seen(const char *flags);
/* sync_mail_run sends the n commands in one pipeline and frees them; any
 * error reply fails the call. */
int sync_mail_run(sh_store *st, sh_cmd **cmds, size_t n, sh_error *err);

/* sync_mail_send sends the n commands without waiting for their replies
 * and frees them; sync_mail_recv reads the n replies, any error reply
 * failing it. Nothing else may use st in between. */
int sync_mail_send(sh_store *st, sh_cmd **cmds, size_t n, sh_error *err);
int sync_mail_recv(sh_store *st, size_t n, sh_error *err);

/* sync_mail_index returns the stored UIDs of a folder, ascending, in *uids
 * (caller frees). */
int sync_mail_index(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                    uint32_t **uids, size_t *n, sh_error *err);
/* sync_mail_index_range returns at most max (> 0) stored UIDs of a folder
 * within lo..hi, the lowest first, in *uids (caller frees): one window of
 * the index, so that a large folder is compared in bounded memory. */
int sync_mail_index_range(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                          uint32_t lo, uint32_t hi, size_t max, uint32_t **uids, size_t *n,
                          sh_error *err);
/* sync_mail_count sets *n to the number of stored messages of a folder. */
int sync_mail_count(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                    long long *n, sh_error *err);
/* sync_mail_flags fetches the stored flags of n messages: (*flags)[i] is a
 * new string or NULL when absent; free with sync_mail_flags_free. */
int sync_mail_flags(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                    const uint32_t *uids, size_t n, char ***flags, sh_error *err);
void sync_mail_flags_free(char **flags, size_t n);
/* sync_mail_remove deletes n messages and their index entries. */
int sync_mail_remove(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                     const uint32_t *uids, size_t n, sh_error *err);
/* sync_mail_drop_folder deletes every message of folder under uidvalidity. */
int sync_mail_drop_folder(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                          sh_error *err);
/* Removing mail (mail_drop.c). sync_mail_drop_account deletes every
 * mail:{acct}:* key (SCAN + UNLINK) and counts them in *deleted. */
int sync_mail_drop_account(sh_store *st, const char *acct, long long *deleted, sh_error *err);
/* sync_mail_accounts walks every mail key and returns the ids of the
 * accounts they belong to as the keys of a map (values nil; caller frees). */
int sync_mail_accounts(sh_store *st, sh_val **accts, sh_error *err);
/* sync_mail_drop_accounts deletes every key of the accounts named by the
 * keys of the map accts, in one walk of the mail keys. */
int sync_mail_drop_accounts(sh_store *st, const sh_val *accts, long long *deleted, sh_error *err);

/* sync_mail_list returns {messages: [...], nextCursor} of a folder, newest
 * first: at most limit messages with a UID below cursor (0: from the top);
 * SH_EINVAL for a limit below 1. */
int sync_mail_list(sh_store *st, const char *acct, const char *folder, long long limit,
                   long long cursor, sh_val **out, sh_error *err);
/* sync_mail_get returns one message; SH_ENOTFOUND when absent (also for a
 * uid outside 1..2^32-1). */
int sync_mail_get(sh_store *st, const char *acct, const char *folder, long long uid, sh_val **out,
                  sh_error *err);

/* sync_mail_set_seen adds or removes \Seen in the stored flags of a
 * message at once and records the change as pending for the server (with
 * the folder's UIDVALIDITY and the HIGHESTMODSEQ of the last sync), then
 * returns the message; SH_ENOTFOUND when it is not stored. */
int sync_mail_set_seen(sh_store *st, const char *acct, const char *folder, long long uid, bool seen,
                       sh_val **out, sh_error *err);

/* A \Seen change made through the API and not yet applied on the server. */
typedef struct sync_pending {
    uint32_t uid;
    bool seen;
    uint32_t uidvalidity;
    uint64_t modseq; /* the folder's HIGHESTMODSEQ when it was recorded */
    int attempts;    /* pushes the server put off (NO for now) so far */
    char value[64];  /* the stored entry, to delete exactly this change */
} sync_pending;

/* sync_mail_pending returns the pending changes of a folder in *out
 * (caller frees) and their number in *n. */
int sync_mail_pending(sh_store *st, const char *acct, const char *folder, sync_pending **out,
                      size_t *n, sh_error *err);
/* sync_mail_pending_done forgets p unless a newer change of the same
 * message replaced it. */
int sync_mail_pending_done(sh_store *st, const char *acct, const char *folder,
                           const sync_pending *p, sh_error *err);
/* sync_mail_pending_retry counts one more put-off push of p, unless a
 * newer change of the same message replaced it. */
int sync_mail_pending_retry(sh_store *st, const char *acct, const char *folder,
                            const sync_pending *p, sh_error *err);
/* sync_mail_flag_error records on a stored message why the server refused
 * its read/unread change (the message's flagError, until the next change
 * through the API). */
int sync_mail_flag_error(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                         uint32_t uid, const char *why, sh_error *err);

/* sync_mail_views returns the n messages as the API shows them, in one
 * pipeline: (*out)[i] is NULL where one is not stored; free with
 * sync_mail_views_free. */
int sync_mail_views(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                    const uint32_t *uids, size_t n, sh_val ***out, sh_error *err);
void sync_mail_views_free(sh_val **views, size_t n);
/* sync_mail_flags_val returns a space-separated flag list as the API shows
 * it (an array of strings; caller frees), NULL without memory. */
sh_val *sync_mail_flags_val(const char *flags);
/* sync_mail_folder_count reads the stored and unread counts of a folder. */
int sync_mail_folder_count(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                           long long *total, long long *unread, sh_error *err);
/* sync_mail_counts returns {folders: [{name, total, unread}]} of every
 * folder of the account synced at least once. */
int sync_mail_counts(sh_store *st, const char *acct, sh_val **out, sh_error *err);

#endif
