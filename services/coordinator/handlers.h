/* handlers.h - the RPC operations of the coordinator (see README.md): a
 * table of sh_rpc_op rows ending in a NULL row. Each handler checks every
 * argument (names, types, bounds; unknown arguments are refused) before
 * calling the matching function of ops.h. */
#ifndef COORDINATOR_HANDLERS_H
#define COORDINATOR_HANDLERS_H

#include "shared/rpc.h"

extern const sh_rpc_op coord_ops[];

/* coord_args_known refuses args unless it is a map whose keys are all in
 * names (NULL-terminated), naming the unknown one and the allowed ones. */
int coord_args_known(const sh_val *args, const char *const *names, sh_error *err);
/* coord_arg_id reads the id args[name] into *out (borrowed), refusing args
 * that is no map or an id that is missing or invalid, naming the field. */
int coord_arg_id(const sh_val *args, const char *name, const char **out, sh_error *err);

/* Account and schedule handlers (handlers_accounts.c). */
int coord_h_account_create(void *state, const sh_val *args, sh_val **result, sh_error *err);
int coord_h_account_get(void *state, const sh_val *args, sh_val **result, sh_error *err);
int coord_h_account_list(void *state, const sh_val *args, sh_val **result, sh_error *err);
int coord_h_account_exists(void *state, const sh_val *args, sh_val **result, sh_error *err);
int coord_h_account_update(void *state, const sh_val *args, sh_val **result, sh_error *err);
int coord_h_account_delete(void *state, const sh_val *args, sh_val **result, sh_error *err);
int coord_h_sync_now(void *state, const sh_val *args, sh_val **result, sh_error *err);
int coord_h_tick(void *state, const sh_val *args, sh_val **result, sh_error *err);
int coord_h_sched_status(void *state, const sh_val *args, sh_val **result, sh_error *err);
int coord_h_lease(void *state, const sh_val *args, sh_val **result, sh_error *err);
int coord_h_lease_renew(void *state, const sh_val *args, sh_val **result, sh_error *err);
int coord_h_lease_complete(void *state, const sh_val *args, sh_val **result, sh_error *err);
/* IDLE watch handlers (handlers_watch.c). */
int coord_h_watch_lease(void *state, const sh_val *args, sh_val **result, sh_error *err);
int coord_h_watch_renew(void *state, const sh_val *args, sh_val **result, sh_error *err);
int coord_h_watch_release(void *state, const sh_val *args, sh_val **result, sh_error *err);
int coord_h_watch_report(void *state, const sh_val *args, sh_val **result, sh_error *err);

/* OAuth2 token refresh (handlers_oauth.c). */
int coord_h_oauth_begin(void *state, const sh_val *args, sh_val **result, sh_error *err);
int coord_h_oauth_end(void *state, const sh_val *args, sh_val **result, sh_error *err);

#endif
