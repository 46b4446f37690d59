/* scripts.h - the Lua scripts of the progress service (scripts.c). */
#ifndef PROGRESS_SCRIPTS_H
#define PROGRESS_SCRIPTS_H

#include "shared/store.h"

extern sh_script prog_script_update;
extern sh_script prog_script_log_append;
extern sh_script prog_script_delete;
extern sh_script prog_script_job_create;
extern sh_script prog_script_job_update;

/* Server-owned fields a record carries beyond the client's PROG_MAX_FIELDS. */
#define PROG_SERVER_FIELDS 8

#endif
