/* keys.h - the Redis keys of the sync-worker, built only here from the
 * registry prefix SH_KEY_MAIL. The account id is the hash tag, so every key
 * of one account shares a Redis Cluster slot. Each builder writes a
 * NUL-terminated key into buf and returns its length, or -1 for an invalid
 * id or a buffer too small. */
#ifndef SYNC_KEYS_H
#define SYNC_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "shared/keys.h"

/* Large enough for the prefix, a 128-byte id, a 200-byte folder name and
 * two 32-bit numbers. */
#define SYNC_KEY_MAX 512

/* mail:{acct}:state:<folder> hash: uidvalidity, uidnext, highestmodseq, lastFullCheck */
int sync_key_state(char *buf, size_t len, const char *acct, const char *folder);
/* mail:{acct}:idx:<folder>:<uidvalidity> sorted set of UIDs (score = UID) */
int sync_key_index(char *buf, size_t len, const char *acct, const char *folder,
                   uint32_t uidvalidity);
/* mail:{acct}:m:<folder>:<uidvalidity>:<uid> hash of one message */
int sync_key_message(char *buf, size_t len, const char *acct, const char *folder,
                     uint32_t uidvalidity, uint32_t uid);
/* mail:{acct}:unseen:<folder>:<uidvalidity> sorted set of the UIDs without \Seen */
int sync_key_unseen(char *buf, size_t len, const char *acct, const char *folder,
                    uint32_t uidvalidity);
/* mail:{acct}:pending:<folder> hash: UID -> "+|-:<uidvalidity>:<modseq>", the
 * \Seen changes made through the API that the server has not seen yet */
int sync_key_pending(char *buf, size_t len, const char *acct, const char *folder);
/* mail:{acct}:folders set of the folder names synced at least once */
int sync_key_folders(char *buf, size_t len, const char *acct);
/* mail:{acct}:events stream: the account's event log (eventlog.h) */
int sync_key_events(char *buf, size_t len, const char *acct);
/* mail:{acct}:evstatus string: the last sync.status the log holds */
int sync_key_events_status(char *buf, size_t len, const char *acct);
/* mail:{acct}:* - the SCAN pattern of every key of an account */
int sync_key_account_pattern(char *buf, size_t len, const char *acct);
/* mail:{* - the SCAN pattern of every key of every account */
int sync_key_all_pattern(char *buf, size_t len);
/* sync_key_account_of writes the account id of a mail key (its hash tag)
 * into id and returns its length, or -1 when key is no key of an account. */
int sync_key_account_of(const char *key, size_t len, char *id, size_t cap);

#endif
