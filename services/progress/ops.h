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

/* The same operations split for a pipeline (sh_rpc_op prep and finish):
 * *_cmd validates its input and builds the operation's one command in *cmd
 * (a new command; SH_OK only with one); *_reply reads that command's reply,
 * never an error reply (the caller maps those), and publishes the event of
 * a write. The whole operations above are *_cmd, one round trip and
 * *_reply. */
int prog_progress_get_cmd(const char *id, sh_cmd **cmd, sh_error *err);
int prog_progress_get_reply(const sh_reply *r, sh_val **record, sh_error *err);
int prog_progress_update_cmd(prog_worker *w, const char *id, const sh_val *fields, sh_cmd **cmd,
                             sh_error *err);
int prog_progress_update_reply(prog_worker *w, const char *id, const sh_reply *r, sh_val **record,
                               sh_error *err);
/* prog_log_append_cmd also makes the entry to store (*stored, new), which
 * prog_log_append_reply publishes, with the sequence number of reply r,
 * and hands back in *stored. */
int prog_log_append_cmd(prog_worker *w, const char *id, const sh_val *entry, sh_cmd **cmd,
                        sh_val **stored, sh_error *err);
void prog_log_append_reply(prog_worker *w, const char *id, const sh_reply *r, sh_val **stored);
int prog_log_list_cmd(const char *id, sh_cmd **cmd, sh_error *err);
int prog_log_list_reply(const char *id, const sh_reply *r, sh_val **entries, sh_error *err);
/* prog_job_create_cmd picks the new job's id into jid. */
int prog_job_create_cmd(prog_worker *w, const sh_val *fields, sh_cmd **cmd, char jid[33],
                        sh_error *err);
int prog_job_update_cmd(prog_worker *w, const char *id, const sh_val *fields, sh_cmd **cmd,
                        sh_error *err);
/* prog_job_write_reply reads the reply of job create or update of job id. */
int prog_job_write_reply(prog_worker *w, const char *id, const sh_reply *r, sh_val **job,
                         sh_error *err);
int prog_job_get_cmd(const char *id, sh_cmd **cmd, sh_error *err);
int prog_job_get_reply(const sh_reply *r, sh_val **job, sh_error *err);

#endif
