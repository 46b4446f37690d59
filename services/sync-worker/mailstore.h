/* mailstore.h - the synced mail in Redis: per-folder state, one hash per
 * message keyed by (folder, UIDVALIDITY, UID), and a sorted set of UIDs per
 * folder and UIDVALIDITY. Every write is idempotent, so a sync that dies
 * half-way leaves nothing the next run cannot finish. */
#ifndef SYNC_MAILSTORE_H
#define SYNC_MAILSTORE_H

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

/* sync_mail_put_cmds makes the two commands storing m (HSET of its hash,
 * ZADD to the index) into cmds[0..1]; the caller runs or frees them. */
int sync_mail_put_cmds(const char *acct, const char *folder, uint32_t uidvalidity,
                       const sync_msg *m, sh_cmd **cmds);
/* sync_mail_flags_cmd makes the HSET setting the flags of one message. */
sh_cmd *sync_mail_flags_cmd(const char *acct, const char *folder, uint32_t uidvalidity,
                            uint32_t uid, const char *flags);
/* sync_mail_run sends the n commands in one pipeline and frees them; any
 * error reply fails the call. */
int sync_mail_run(sh_store *st, sh_cmd **cmds, size_t n, sh_error *err);

/* sync_mail_index returns the stored UIDs of a folder, ascending, in *uids
 * (caller frees). */
int sync_mail_index(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                    uint32_t **uids, size_t *n, sh_error *err);
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
/* sync_mail_drop_account deletes every mail:{acct}:* key (SCAN + UNLINK) and
 * counts them in *deleted. */
int sync_mail_drop_account(sh_store *st, const char *acct, long long *deleted, sh_error *err);

/* sync_mail_list returns {messages: [...], nextCursor} of a folder, newest
 * first: at most limit messages with a UID below cursor (0: from the top). */
int sync_mail_list(sh_store *st, const char *acct, const char *folder, long long limit,
                   long long cursor, sh_val **out, sh_error *err);
/* sync_mail_get returns one message; SH_ENOTFOUND when absent. */
int sync_mail_get(sh_store *st, const char *acct, const char *folder, long long uid, sh_val **out,
                  sh_error *err);

#endif
