/* ops.h - the operations of the progress service on Redis and its event
 * stream, free of any RPC or wire-format concern so tests can call them
 * directly. Each function validates its input, does its work in one Redis
 * round trip where it writes, publishes an event after each write, and
 * returns SH_OK or an error code with err naming the problem. Returned
 * values are new trees the caller frees. */
#ifndef PROGRESS_OPS_H
#define PROGRESS_OPS_H

#include <stdbool.h>

#include "shared/err.h"
#include "shared/service.h"
#include "shared/val.h"

/* The service's settings, read-only once it runs (sh_worker.env). */
typedef struct prog_env {
    long long ttl;
    long long log_cap;
} prog_env;

/* Every operation runs on an RPC worker: its own Redis connection, the
 * shared publisher (NULL: no events) and env pointing at a prog_env. */
typedef sh_worker prog_worker;

int prog_ping(prog_worker *w, sh_error *err);

int prog_progress_get(prog_worker *w, const char *id, sh_val **record, sh_error *err);
int prog_progress_update(prog_worker *w, const char *id, const sh_val *fields, sh_val **record,
                         sh_error *err);
int prog_progress_delete(prog_worker *w, const char *id, bool *deleted, sh_error *err);

int prog_log_append(prog_worker *w, const char *id, const sh_val *entry, sh_val **stored,
                    sh_error *err);
int prog_log_list(prog_worker *w, const char *id, sh_val **entries, sh_error *err);

int prog_job_create(prog_worker *w, const sh_val *fields, sh_val **job, sh_error *err);
int prog_job_update(prog_worker *w, const char *id, const sh_val *fields, sh_val **job,
                    sh_error *err);
int prog_job_get(prog_worker *w, const char *id, sh_val **job, sh_error *err);
int prog_job_by_conversation(prog_worker *w, const char *conversation_id, sh_val **job,
                             sh_error *err);

#endif
