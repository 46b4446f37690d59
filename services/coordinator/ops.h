/* ops.h - the coordinator's operations on Redis and its events, free of any
 * RPC or wire-format concern. Each validates its input, makes one Redis
 * round trip (a Lua script) and publishes an event for every change.
 *
 * Claims: an item (namespace + id) held by one owner at a time, with a
 * fencing token that grows with every new claim of the item. Reservations:
 * a block of rows of a named log held by one owner per item. */
#ifndef COORDINATOR_OPS_H
#define COORDINATOR_OPS_H

#include "keys.h"
#include "shared/hostpolicy.h"
#include "shared/secret.h"
#include "shared/service.h"
#include "shared/val.h"

/* The service's settings (sh_worker.env). */
typedef struct coord_env {
    long long default_ttl; /* seconds */
    long long max_ttl;
    long long max_rows;
    long long first_row;
    long long list_max;
    /* Accounts: no key means account operations answer "unavailable". */
    const sh_key *key;          /* ENCRYPTION_KEY: seals new secrets */
    const sh_key *key_prev;     /* ENCRYPTION_KEY_PREVIOUS, or NULL */
    long long interval_min;     /* SYNC_INTERVAL_MINUTES */
    long long batch;            /* EMAIL_SYNC_BATCH_SIZE */
    long long lease_s;          /* SYNC_LEASE_SECONDS */
    long long watch_lease_s;    /* WATCH_LEASE_SECONDS */
    const sh_hostpolicy *hosts; /* IMAP_ALLOW_HOSTS, IMAP_DENY_HOSTS */
    bool allow_insecure;        /* IMAP_ALLOW_INSECURE */
} coord_env;

#define COORD_STATUS_MAX 64

/* What a claim and a reservation both hold: the item, its holder, its
 * status and its times. */
#define COORD_HELD_FIELDS                                                                          \
    char id[SH_ID_MAX + 1];                                                                        \
    char bot[SH_ID_MAX + 1];                                                                       \
    char status[COORD_STATUS_MAX + 1];                                                             \
    long long timestamp_ms;                                                                        \
    long long expires_ms;

typedef struct coord_claim {
    char ns[COORD_NS_MAX + 1];
    COORD_HELD_FIELDS
    long long token;
} coord_claim;

typedef struct coord_reservation {
    char log[COORD_NS_MAX + 1];
    COORD_HELD_FIELDS
    long long start_row;
    long long row_count;
} coord_reservation;

/* Claims and reservations, in two steps as a pipeline runs them (sh_rpc_op
 * prep and finish): *_cmd builds the operation's one command (a new one in
 * *cmd), *_reply reads its reply (not an error reply), publishes the event
 * and returns the operation's outcome.
 *
 * coord_claim_*: bot claims ns/id. ttl_s 0 uses the default; status NULL is
 * "CLAIMING". SH_OK with *renewed false for a new claim (new token) or true
 * when bot already held it (same token, TTL refreshed); SH_ECONFLICT when
 * someone else holds it, with out describing the holder. */
int coord_claim_cmd(sh_worker *w, const char *ns, const char *id, const char *bot, long long ttl_s,
                    const char *status, sh_cmd **cmd, sh_error *err);
int coord_claim_reply(sh_worker *w, const char *ns, const char *id, const sh_reply *r,
                      coord_claim *out, bool *renewed, sh_error *err);
/* coord_holder_*: renew, release or set the status of a claim; they need
 * the holder's bot and token, else SH_ELEASE. extra: the renewal's TTL in
 * ms as text ("" for the default), or the new status; NULL for a release. */
typedef enum coord_holder_op { COORD_RENEW, COORD_RELEASE, COORD_STATUS } coord_holder_op;
int coord_holder_cmd(coord_holder_op op, const char *ns, const char *id, const char *bot,
                     long long token, const char *extra, sh_cmd **cmd, sh_error *err);
int coord_holder_reply(sh_worker *w, coord_holder_op op, const char *ns, const char *id,
                       long long token, const sh_reply *r, coord_claim *out, sh_error *err);
/* coord_renew_ttl writes the extra argument of a renewal for ttl_s. */
void coord_renew_ttl(long long ttl_s, char buf[32]);

/* coord_reserve_*: reserves rows rows of log for item id. SH_OK (new block,
 * or the same block again for the same owner, TTL refreshed); SH_ECONFLICT
 * when another owner holds the item's reservation (out describes it). */
int coord_reserve_cmd(sh_worker *w, const char *log, const char *id, const char *bot,
                      long long rows, long long ttl_s, sh_cmd **cmd, sh_error *err);
int coord_reserve_reply(sh_worker *w, const char *log, const char *id, const sh_reply *r,
                        coord_reservation *out, sh_error *err);
/* coord_reserve_release hands the reservation of log/id back (bot must
 * hold it, else SH_ELEASE). */
int coord_reserve_release(sh_worker *w, const char *log, const char *id, const char *bot,
                          coord_reservation *out, sh_error *err);

/* coord_rows_check_first refuses (SH_EINVAL, naming the log and its first
 * row) a first_row below the first row of a log that handed rows out. */
int coord_rows_check_first(sh_store *store, long long first_row, sh_error *err);

/* coord_list returns {claims: {id: claim}, reservations: {id: reservation}}
 * for namespace ns and log, removing expired entries from the indexes (and
 * publishing "expired" for each). */
int coord_list(sh_worker *w, const char *ns, const char *log, sh_val **out, sh_error *err);

/* Email accounts (accounts.c). Fields and results as in README.md. */
/* coord_account_policy refuses (SH_EINVAL, naming the field, the address
 * and the setting) an imapHost the host policy refuses (an IP literal, or
 * a name resolving only to refused addresses; a name that does not
 * resolve passes, to be checked at connect time), and security "none" or
 * tlsVerify false without IMAP_ALLOW_INSECURE. */
int coord_account_policy(const coord_env *env, const sh_val *fields, sh_error *err);
/* coord_account_create takes the client's request id (NULL: none): a create
 * repeated with it answers the account it made, one with other fields
 * SH_ECONFLICT. */
int coord_account_create(sh_worker *w, const sh_val *fields, const char *request_id, sh_val **out,
                         sh_error *err);
int coord_account_get(sh_worker *w, const char *id, sh_val **out, sh_error *err);
/* coord_account_list (account_list.c) reads the accounts oldest first, at
 * most QUEUE_LIST_MAX, in pages; "error" and "auth_error" read only the
 * accounts of the error index. */
int coord_account_list(sh_worker *w, const char *status, sh_val **out, sh_error *err);
/* coord_account_exists answers {exists: [bool]} for an array of up to
 * COORD_EXISTS_MAX account ids, in their order (account_list.c). */
#define COORD_EXISTS_MAX 1000
int coord_account_exists(sh_worker *w, const sh_val *ids, sh_val **out, sh_error *err);
int coord_account_update(sh_worker *w, const char *id, const sh_val *fields, sh_val **out,
                         sh_error *err);
int coord_account_delete(sh_worker *w, const char *id, bool *deleted, sh_error *err);
/* coord_account_view turns an account hash (HGETALL) into its public map;
 * given the sealed password (for sync workers), it adds passwordSealed,
 * progressId and syncFirst (when a folder was asked for first). */
sh_val *coord_account_view(const sh_reply *hash, const sh_reply *secret);

/* OAuth2 sign-in (account_auth.c). coord_auth_check refuses (naming the
 * field) a bad `auth` object, `auth` with `password`, and, for a create,
 * neither. coord_auth_seal seals the secrets of auth for account id into
 * blob. coord_auth_add_fields appends the public auth fields of the hash
 * (authType, authProvider, authExpiresAt, a new authVersion) when fields
 * set a password or an auth. */
int coord_auth_check(const sh_val *fields, bool create, sh_error *err);
int coord_auth_seal(const sh_key *key, const char *id, const sh_val *auth, sh_buf *blob,
                    sh_error *err);
void coord_auth_add_fields(sh_cmd *c, const sh_val *fields);
/* coord_auth_view adds auth: {type, provider, expiresAt} to the view m of
 * an OAuth2 account's hash (nothing for a password account). */
int coord_auth_view(sh_val *m, const sh_reply *hash);

/* OAuth2 token refresh (oauth_refresh.c). coord_oauth_begin: worker asks
 * to refresh account id's token from version: {state: "granted" | "busy"
 * | "fresh" (with secretSealed, the newer secret) | "backoff" (with
 * retryAt), version}; SH_ENOTFOUND for no OAuth2 account. coord_oauth_end
 * ends the refresh: with sealed (len > 0) the new secret, stored if the
 * version still holds ({state: "stored", version: the new one}); without,
 * a failed refresh, transient ones counted for the backoff. SH_ELEASE when
 * the lease or the version is no longer the worker's. */
int coord_oauth_begin(sh_worker *w, const char *id, const char *worker, const char *version,
                      sh_val **out, sh_error *err);
int coord_oauth_end(sh_worker *w, const char *id, const char *worker, const char *version,
                    const void *sealed, size_t len, long long expires_ms, bool transient,
                    sh_val **out, sh_error *err);

/* The sync schedule (schedule.c). now_ms < 0 uses Redis's clock; batch 0
 * the configured batch size. */
int coord_tick(sh_worker *w, long long now_ms, long long batch, bool force, sh_val **out,
               sh_error *err);
int coord_sched_status(sh_worker *w, sh_val **out, sh_error *err);
/* coord_sync_now queues account id; folder (NULL: none), a folder that
 * changed, is synced first by the run (syncFirst in the lease's account). */
int coord_sync_now(sh_worker *w, const char *id, const char *folder, sh_val **out, sh_error *err);
int coord_lease(sh_worker *w, const char *worker, sh_val **out, sh_error *err);
int coord_lease_renew(sh_worker *w, const char *id, const char *token, sh_val **out, sh_error *err);
int coord_lease_complete(sh_worker *w, const char *id, const char *token, const char *outcome,
                         const char *message, sh_val **out, sh_error *err);
/* IDLE watches (watch.c): one sync worker at a time holds the watch of an
 * account with folders to watch, under a lease with a fencing token that
 * grows with every new lease of the account. One watch lease as the
 * worker names it: */
typedef struct coord_watch_ref {
    const char *id;
    long long token;
} coord_watch_ref;
/* coord_watch_lease hands worker up to max accounts nobody watches:
 * {leases: [{accountId, token, leaseExpiresAt, host, port, security,
 * tlsVerify, username, passwordSealed, watchFolders}]}. */
int coord_watch_lease(sh_worker *w, const char *worker, long long max, sh_val **out, sh_error *err);
/* coord_watch_renew extends the n leases of refs that worker still holds:
 * {held: [id], lost: [id]}. */
int coord_watch_renew(sh_worker *w, const char *worker, const coord_watch_ref *refs, size_t n,
                      sh_val **out, sh_error *err);
/* coord_watch_release gives the n leases of refs back: {released: [id]}. */
int coord_watch_release(sh_worker *w, const char *worker, const coord_watch_ref *refs, size_t n,
                        sh_val **out, sh_error *err);
/* coord_watch_report records the watch's state ("idle", "polling",
 * "connecting" or "error") and error text; SH_ELEASE for a token that is
 * not the account's live lease. */
int coord_watch_report(sh_worker *w, const char *id, long long token, const char *state,
                       const char *error, sh_val **out, sh_error *err);

/* What coord_rotate did: secrets read, re-sealed (and read back opening
 * with the new key alone), already current, and failed (not opening with
 * either key, or not checking out after re-sealing). */
typedef struct coord_rotate_counts {
    long long scanned, resealed, current, failed;
} coord_rotate_counts;

/* coord_rotate re-seals every account's password not yet sealed in the
 * newest format under env->key; blobs sealed with env->key_prev (or already
 * with env->key) open. SH_OK only when every secret ends opening with
 * env->key alone; failures are counted and the error names the first. */
int coord_rotate(sh_store *store, const coord_env *env, coord_rotate_counts *n, sh_error *err);

/* Map forms of a claim and a reservation, as RPC results and event bodies
 * carry them (times as ISO 8601 strings). */
sh_val *coord_claim_val(const coord_claim *c);
sh_val *coord_reservation_val(const coord_reservation *r);

/* Helpers shared by claims.c, reservations.c and listing.c. */
const coord_env *coord_env_of(const sh_worker *w);
int coord_run_script(sh_worker *w, sh_cmd *cmd, sh_reply **out, sh_error *err);
/* coord_check_script_reply refuses a script reply of the wrong shape. */
int coord_check_script_reply(const sh_reply *r, sh_error *err);
void coord_publish(sh_worker *w, const char *topic, const char *kind, sh_val *body);

/* coord_account_event publishes event kind (SH_EVENT_CREATED, _UPDATED,
 * _STATUS: from view, the account's public view, borrowed; _DELETED: view
 * NULL) of account id on its topic. coord_account_status_ids reads the
 * accounts of ids (an array of strings) and publishes the status of each. */
void coord_account_event(sh_worker *w, const char *kind, const char *id, const sh_val *view);
void coord_account_status_ids(sh_worker *w, const sh_val *ids);
void coord_reply_str(const sh_reply *r, size_t i, char *buf, size_t len);
/* coord_ids_val turns an array reply of ids into a new array of strings
 * (NULL when out of memory). */
sh_val *coord_ids_val(const sh_reply *arr);
/* coord_row_scan reads the elements of a script's reply row in order, one
 * a letter of spec: 's' into the next two arguments (char *buf, size_t
 * len), 'l' into the next (long long *) as a number. */
void coord_row_scan(const sh_reply *row, const char *spec, ...);
/* A claim or reservation from a row {id, botId, token, status, timestamp,
 * expiresAt} or {id, botId, startRow, rowCount, status, timestamp,
 * expiresAt}: the rows of the list, and the replies of the scripts, whose
 * element 0 is their outcome and whose id is then given (NULL: the row's). */
void coord_claim_row(const sh_reply *row, const char *ns, const char *id, coord_claim *out);
void coord_reservation_row(const sh_reply *row, const char *log, const char *id,
                           coord_reservation *out);

#endif
