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

#include <stdbool.h>
#include <stddef.h>

#include "env.h"
#include "shared/buf.h"
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

/* SYNC_EVLOG_LUA_ADD is the part of a Lua script that appends ARGV[3]
 * (an entry made by sync_evlog_entry) to the stream KEYS[1], trimmed to
 * ARGV[1] entries and ids from ARGV[2] (ms; sync_evlog_trim_args), leaving
 * in the locals id its id and prev the id of the event appended before it
 * ("" for the first), so a subscriber that missed one sees the gap. The
 * script returns {id, prev}; every append goes through it, so prev always
 * names the log's previous event: the newest entry, read with one
 * XREVRANGE (trimming by length or age keeps it, but for a stream trimmed
 * empty, whose last id XINFO still knows). */
#define SYNC_EVLOG_LUA_ADD                                                                         \
    "local prev = ''\n"                                                                            \
    "local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)\n"                        \
    "if last[1] then\n"                                                                            \
    "  prev = last[1][1]\n"                                                                        \
    "elseif redis.call('EXISTS', KEYS[1]) == 1 then\n"                                             \
    "  local info = redis.call('XINFO', 'STREAM', KEYS[1])\n"                                      \
    "  for i = 1, #info, 2 do\n"                                                                   \
    "    if info[i] == 'last-generated-id' then prev = info[i + 1] end\n"                          \
    "  end\n"                                                                                      \
    "end\n"                                                                                        \
    "local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[3])\n"          \
    "redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[2])\n"

/* sync_evlog_entry packs the event {type, accountId, createdAt,
 * ...fields} into blob, the stream entry, and returns the event (caller
 * frees), or NULL without memory. */
sh_val *sync_evlog_entry(const char *acct, const char *type, const sh_val *fields, sh_buf *blob);
/* sync_evlog_trim_args adds ARGV[1] and ARGV[2] of SYNC_EVLOG_LUA_ADD
 * (MAIL_EVENTS_MAX_LEN and the oldest id MAIL_EVENTS_MAX_AGE_SECONDS
 * keeps; the defaults when env leaves them 0) to c. */
int sync_evlog_trim_args(sh_cmd *c, const sync_env *env);
/* sync_evlog_publish publishes ev (made by sync_evlog_entry) on
 * SH_TOPIC_MAIL_EVENT with the id and prevId of r, the reply {id, prev} of a
 * script using SYNC_EVLOG_LUA_ADD (pub may be NULL); false when r is no
 * such reply (nothing was appended). */
bool sync_evlog_publish(sh_pub *pub, const char *acct, sh_val *ev, const sh_reply *r);

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
