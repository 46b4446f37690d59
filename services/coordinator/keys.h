/* keys.h - the Redis keys of the coordinator, built only here from the
 * registry prefixes of shared/keys.h:
 *   sq:{id}                 claim of item id in namespace "sq" (the seed's key)
 *   sq:<ns>:{id}            claim in another namespace
 *   sq:{id}:fence           last fencing token of that item (same slot)
 *   sq:index:<ns>           sorted set of claim keys by expiry
 *   refund:{id}             reservation of item id in log "refund" (the seed's key)
 *   refund:<log>:{id}       reservation in another log
 *   refund:rows:<log>       rows handed out so far in that log
 *   refund:rowsmax:<log>    hash: first (the log's first row), next (one past
 *                           the highest row ever handed out): the counter's floor
 *   refund:index:<log>      sorted set of reservation keys by expiry
 *   refund:logs             set of the logs that handed out rows
 *   account:{id}            an email account (hash)
 *   account:{id}:secret     its sealed password or OAuth2 secrets (kept apart so the hash
 *                           stays small)
 *   account:{id}:refresh    the sync worker refreshing its OAuth2 token (a lease, PX)
 *   account:req:{requestId} "<fingerprint> <id>": the account a create with
 *                           that request id made (24 h; 5 min for the id's own)
 *   account:ids             sorted set of account ids by creation time
 *   sched:due               sorted set of account ids by next sync time
 *   sched:queue             list of account ids waiting for a sync worker
 *   sched:leases            sorted set of leased account ids by lease expiry
 *   sched:slots             hash: minute of the interval -> accounts in it
 *   sched:errors            set of account ids in error or auth_error
 *   sched:tick              the last minute a tick queued accounts
 *   sched:watchers          sorted set of account ids by IDLE watch lease expiry
 *   sched:lease:{token}     the account a lease took (5 min), for its resend
 * Builders return the key's length, or -1 for an invalid name or id. */
#ifndef COORDINATOR_KEYS_H
#define COORDINATOR_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "shared/err.h"
#include "shared/keys.h"

#define COORD_KEY_MAX (SH_ID_MAX + 64)
#define COORD_NS_MAX  32

/* Namespaces and log names: [a-z][a-z0-9_-]{0,31}. */
bool coord_name_valid(const char *name);

int coord_key_claim(char *buf, size_t len, const char *ns, const char *id);
int coord_key_fence(char *buf, size_t len, const char *ns, const char *id);
int coord_key_claim_index(char *buf, size_t len, const char *ns);
int coord_key_reservation(char *buf, size_t len, const char *log, const char *id);
int coord_key_rows(char *buf, size_t len, const char *log);
#define COORD_ROWS_MAX "rowsmax:"
int coord_key_rows_max(char *buf, size_t len, const char *log);
/* What every log's rowsmax key starts with (the log name follows). */
int coord_key_rows_max_prefix(char *buf, size_t len);
/* The set of every log that handed out rows. */
int coord_key_reservation_logs(char *buf, size_t len);
int coord_key_reservation_index(char *buf, size_t len, const char *log);

int coord_key_account(char *buf, size_t len, const char *id);
int coord_key_account_secret(char *buf, size_t len, const char *id);
int coord_key_account_req(char *buf, size_t len, const char *request_id);
int coord_key_lease_req(char *buf, size_t len, const char *token);
int coord_key_account_refresh(char *buf, size_t len, const char *id);

/* The fixed keys of the schedule and the account index. */
typedef struct coord_sched_keys {
    char ids[32], due[32], queue[32], leases[32], slots[32], errors[32], tick[32], watchers[32];
    char account_prefix[32]; /* "account:", for scripts that walk ids */
} coord_sched_keys;
void coord_sched_keys_init(coord_sched_keys *k);
/* coord_account_keys builds the hash key of account id in key and, unless
 * k is NULL, the fixed keys in k: what an operation on one account needs.
 * SH_EINVAL ("invalid account id") when id makes no key. */
int coord_account_keys(const char *id, char key[COORD_KEY_MAX], coord_sched_keys *k, sh_error *err);

/* The event topic of an item: "sq:<ns>:<id>" or "refund:<log>:<id>". */
int coord_topic_claim(char *buf, size_t len, const char *ns, const char *id);
int coord_topic_reservation(char *buf, size_t len, const char *log, const char *id);
int coord_topic_account(char *buf, size_t len, const char *id);
/* The event topic announcing accounts put on the sync queue (by a tick or
 * account.sync_now): idle sync workers lease at once instead of at their
 * next poll. */
#define COORD_TOPIC_QUEUED SH_TOPIC_SYNC_QUEUED

#endif
