/* gw_routes_int.h - what the route files (routes_*.c) share and nothing
 * else uses: views of service answers (the named fields of a record,
 * copied) and the checks of path and query values that answer 400 before
 * any service is called. Declared here, rather than static, so the unit
 * tests reach them without a server. */
#ifndef GW_ROUTES_INT_H
#define GW_ROUTES_INT_H

#include <stdbool.h>

#include "shared/val.h"

/* gw__routes_copy copies the fields of src named in names (a NULL-ended
 * list; those present, in the list's order) into the map dst. Returns SH_OK
 * or SH_ENOMEM (dst then holds part of them). */
int gw__routes_copy(sh_val *dst, const sh_val *src, const char *const *names);

/* gw__routes_pick returns a new map (the caller frees) of the fields of src
 * named in names, as gw__routes_copy; NULL when out of memory. */
sh_val *gw__routes_pick(const sh_val *src, const char *const *names);

/* gw__routes_account_view returns the public view of a coordinator account
 * (services/gateway/README.md lists its fields): a new map the caller
 * frees, or NULL when out of memory. */
sh_val *gw__routes_account_view(const sh_val *account);

/* gw__routes_account_status_ok tells whether s is a filter that GET
 * /api/accounts?status= takes. */
bool gw__routes_account_status_ok(const char *s);

/* gw__routes_folder_counts replaces the folder names of view with
 * [{name, total, unread}] from the sync-worker's folders.counts result, or
 * [{name}] when counts is NULL (the sync-worker did not answer); an account
 * without folders lists INBOX. Returns SH_OK or SH_ENOMEM. */
int gw__routes_folder_counts(sh_val *view, const sh_val *counts);

/* gw__routes_request_id_check returns NULL for a valid Idempotency-Key
 * value (the syntax of ids: [A-Za-z0-9._:-]{1,128}), else what is wrong. */
const char *gw__routes_request_id_check(const char *key);

struct gw_req;
/* gw__routes_add_request_id sets args' "requestId" to the request's
 * Idempotency-Key header, if it has one. False when it has already
 * answered: 400 naming what is wrong with the header (nothing is called). */
bool gw__routes_add_request_id(struct gw_req *r, sh_val *args);

/* gw__routes_uid_parse reads the :uid segment: a UID is 1..4294967295 in
 * decimal digits without a leading zero. False for anything else. */
bool gw__routes_uid_parse(const char *s, long long *uid);

/* gw__routes_cron_batch reads ?batchSize: 1..GW_ROUTES_CRON_BATCH_MAX in
 * decimal digits; -1 when it is anything else. */
#define GW_ROUTES_CRON_BATCH_MAX 1000
int gw__routes_cron_batch(const char *s);

#endif
