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
extern sh_script coord_script_list;

#endif
