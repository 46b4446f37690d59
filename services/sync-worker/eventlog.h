/* eventlog.h - the account's event log: every change the sync-worker makes
 * to an account's mail (and its sync status) is appended to one Redis
 * Stream per account, capped in length and age, and published with its
 * stream id for live delivery. The stream id is the event's id, so a client
 * resumes by giving the last id it saw (sync_evlog_read).
 *
 * An event is {id, type, accountId, createdAt, ...fields}; the types and
 * their fields are listed in README.md ("Event log"). */
#ifndef SYNC_EVENTLOG_H
#define SYNC_EVENTLOG_H

#include <stddef.h>

#include "env.h"
#include "shared/events.h"
#include "shared/store.h"
#include "shared/val.h"

#define SYNC_EV_MAIL_NEW      "mail.new"
#define SYNC_EV_MAIL_FLAGS    "mail.flags"
#define SYNC_EV_MAIL_REMOVED  "mail.removed"
#define SYNC_EV_FOLDER_COUNTS "folder.counts"
#define SYNC_EV_SYNC_STATUS   "sync.status"
#define SYNC_EV_AUTH_ERROR    "auth.error"

/* The defaults of MAIL_EVENTS_MAX_LEN and MAIL_EVENTS_MAX_AGE_SECONDS. */
#define SYNC_EVLOG_MAX_LEN 10000
#define SYNC_EVLOG_MAX_AGE (7LL * 24 * 3600)

/* The most events sync_evlog_read returns at once. */
#define SYNC_EVLOG_READ_MAX 1000

/* sync_evlog_add appends n events of the account in one pipeline: event i
 * has type types[i] and the fields of the map fields[i] (borrowed; NULL for
 * none). Each appended event is then published on SH_TOPIC_MAIL_EVENT with
 * its id (pub may be NULL). */
int sync_evlog_add(sh_store *st, sh_pub *pub, const sync_env *env, const char *acct,
                   const char *const *types, sh_val *const *fields, size_t n, sh_error *err);

/* sync_evlog_status appends a sync.status event {syncStatus, errorMessage}
 * only when it differs from the last one the account's log holds (a status
 * key beside the stream remembers it, in the same script). */
int sync_evlog_status(sh_store *st, sh_pub *pub, const sync_env *env, const char *acct,
                      const char *status, const char *message, sh_error *err);

/* sync_evlog_read returns {events: [event...], reset: bool, lastId}: up to
 * count events after the id after (NULL or "" for the oldest kept), oldest
 * first. reset is true, with no events, when events after `after` were
 * trimmed from the log (the client missed some and must reload); lastId is
 * the newest id of the log ("" when it has none). SH_EINVAL for an id that
 * is not <ms>-<seq> or <ms>. */
int sync_evlog_read(sh_store *st, const char *acct, const char *after, long long count,
                    sh_val **out, sh_error *err);

#endif
