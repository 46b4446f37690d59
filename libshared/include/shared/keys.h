/* keys.h - the one registry of Redis key prefixes, with the service that
 * owns each. A service reads and writes only keys under its own prefixes;
 * the deployed stack enforces this with one Redis ACL user per service.
 *
 * Keys of one entity put its id in a hash tag ("progress:{abc}",
 * "progress:{abc}:log") so they share a Redis Cluster slot. */
#ifndef SHARED_KEYS_H
#define SHARED_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#define SH_OWNER_PROGRESS    "progress"
#define SH_OWNER_COORDINATOR "coordinator"
#define SH_OWNER_SYNC        "sync-worker"

#define SH_KEY_PROGRESS  "progress:"  /* progress:{id} hash, progress:{id}:log list */
#define SH_KEY_JOB       "job:"       /* job:{id} hash */
#define SH_KEY_JOB_INDEX "job_index:" /* job_index:{conversationId} -> jobId */
#define SH_KEY_JOB_REQ   "job_req:"   /* job_req:{requestId} -> "<body sha1> <jobId>" */
#define SH_KEY_SQ        "sq:"        /* claims of work items */
#define SH_KEY_REFUND    "refund:"    /* row reservations */
#define SH_KEY_ACCOUNT   "account:"   /* email accounts; account:req:{requestId} */
#define SH_KEY_SCHED     "sched:"     /* sync schedule */
#define SH_KEY_MAIL      "mail:"      /* synced mail */

/* Event topics between services (nng pub/sub), in the same one place: who
 * publishes each and who listens. A subscription matches by byte prefix,
 * so each ends with a delimiter or is whole. The payload is a map whose
 * "kind" names the event. */
#define SH_TOPIC_PROGRESS                                                                          \
    SH_KEY_PROGRESS             /* progress:<id> (update, delete, log): progress -> gateway */
#define SH_TOPIC_JOB SH_KEY_JOB /* job:<id> (job): progress -> gateway */
/* sq:<ns>:<id> (claimed, renewed, released, status, expired): the claim map;
 * coordinator -> gateway */
#define SH_TOPIC_CLAIM SH_KEY_SQ
/* refund:<log>:<id> (reserved, renewed, released, expired): the reservation
 * map; coordinator -> gateway */
#define SH_TOPIC_RESERVATION SH_KEY_REFUND
/* account:<id>: created and updated (the public view of the account),
 * deleted ({id}), status ({id, syncStatus, errorMessage, lastSyncedAt,
 * nextSyncAt}, whenever the schedule moves the account); coordinator ->
 * sync-workers (which drop the mail of a deleted account) and gateway */
#define SH_TOPIC_ACCOUNT     "account:"
#define SH_TOPIC_SYNC_QUEUED "sync:queued" /* (queued): coordinator -> idle sync-workers */
#define SH_TOPIC_MAIL                                                                              \
    "mail:" /* mail:<accountId> (added, changed, removed, conflict,                                \
               reset): sync-worker -> */
/* mailevent:<accountId>: an entry of the account's event log as appended
 * ({id, type, accountId, createdAt, ...}, "kind" = type: mail.new,
 * mail.flags, mail.removed, folder.counts, sync.status, auth.error);
 * sync-worker -> gateway. Not under "mail:", whose listeners it would reach. */
#define SH_TOPIC_MAIL_EVENT "mailevent:"
/* Event kinds (the payload's "kind"). The coordinator's: */
#define SH_EVENT_CLAIMED  "claimed"
#define SH_EVENT_RENEWED  "renewed"
#define SH_EVENT_RELEASED "released"
#define SH_EVENT_STATUS   "status"
#define SH_EVENT_EXPIRED  "expired"
#define SH_EVENT_RESERVED "reserved"
#define SH_EVENT_CREATED  "created"
#define SH_EVENT_UPDATED  "updated"
#define SH_EVENT_DELETED  "deleted"
#define SH_EVENT_QUEUED   "queued"
/* The progress service's (SH_TOPIC_PROGRESS, SH_TOPIC_JOB): */
#define SH_EVENT_PROGRESS_UPDATE "update"
#define SH_EVENT_PROGRESS_DELETE "delete"
#define SH_EVENT_PROGRESS_LOG    "log"
#define SH_EVENT_JOB             "job"
/* The sync-worker's (SH_TOPIC_MAIL): */
#define SH_EVENT_MAIL_ADDED    "added"
#define SH_EVENT_MAIL_CHANGED  "changed"
#define SH_EVENT_MAIL_REMOVED  "removed"
#define SH_EVENT_MAIL_CONFLICT "conflict"
#define SH_EVENT_MAIL_RESET    "reset"

/* Request records: a create remembers its request id (the client's
 * Idempotency-Key, or one the service made up) with its outcome, so that
 * the same request sent again answers that outcome instead of running
 * twice. Kept this long (seconds): */
#define SH_REQUEST_TTL          86400 /* a client's Idempotency-Key: 24 h */
#define SH_REQUEST_TTL_INTERNAL 300   /* an id of the service's own, for its resends */

typedef struct sh_key_prefix {
    const char *prefix;
    const char *owner;
    const char *what;
} sh_key_prefix;

/* Every prefix, ending in a row whose prefix is NULL. */
extern const sh_key_prefix sh_key_prefixes[];

/* sh_key_owner returns the owner of key (by its prefix) or NULL. */
const char *sh_key_owner(const char *key, size_t len);

/* The syntax of every entity id: [A-Za-z0-9._:-]{1,128}. */
#define SH_ID_MAX 128
bool sh_id_valid(const char *id, size_t len);

/* sh_key_build writes prefix + "{" + id + "}" + suffix into buf (suffix may
 * be NULL). Returns the length, or -1 if the id is invalid or buf too small. */
int sh_key_build(char *buf, size_t len, const char *prefix, const char *id, const char *suffix);

#endif
