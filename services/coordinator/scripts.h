/* scripts.h - the Lua scripts of the coordinator (scripts.c). Each
 * compare-and-set is one script: atomic, and one Redis round trip. Claim
 * scripts answer {outcome, botId, token, status, timestamp, expiresAt} and
 * reservation scripts {outcome, botId, startRow, rowCount, status,
 * timestamp, expiresAt}, every element a string (times in ms). */
#ifndef COORDINATOR_SCRIPTS_H
#define COORDINATOR_SCRIPTS_H

#include "shared/store.h"

extern sh_script coord_script_claim;
extern sh_script coord_script_renew;
extern sh_script coord_script_release;
extern sh_script coord_script_status;
extern sh_script coord_script_reserve;
extern sh_script coord_script_reserve_release;
extern sh_script coord_script_rows_first;
extern sh_script coord_script_list;

/* Accounts and the sync schedule (scripts_accounts.c). */
extern sh_script coord_script_account_create;
extern sh_script coord_script_account_update;
extern sh_script coord_script_account_delete;
extern sh_script coord_script_account_rows;
extern sh_script coord_script_tick;
extern sh_script coord_script_sched_status;
extern sh_script coord_script_lease;
extern sh_script coord_script_lease_renew;
extern sh_script coord_script_lease_complete;
extern sh_script coord_script_sync_now;
extern sh_script coord_script_reseal;

/* IDLE watch leases (scripts_watch.c). */
extern sh_script coord_script_watch_lease;
extern sh_script coord_script_watch_renew;
extern sh_script coord_script_watch_release;
extern sh_script coord_script_watch_report;

/* OAuth2 token refresh (scripts_oauth.c). */
extern sh_script coord_script_oauth_begin;
extern sh_script coord_script_oauth_end;

#endif
