/* record.h - what a progress record, a log entry and a job may hold, and how
 * they are laid out in Redis: a hash whose field "version" is a decimal
 * counter and every other field a msgpack-encoded value. */
#ifndef PROGRESS_RECORD_H
#define PROGRESS_RECORD_H

#include <stdbool.h>

#include "shared/err.h"
#include "shared/store.h"
#include "shared/val.h"

#define PROG_MAX_FIELDS     256            /* client fields per record */
#define PROG_MAX_UPDATE     (256u * 1024u) /* encoded size of one progress update */
#define PROG_MAX_FIELD_NAME 128
#define PROG_JOB_RESULT_MAX (1024u * 1024u) /* a job result's data */
#define PROG_MAX_JOB_UPDATE (PROG_JOB_RESULT_MAX + 64u * 1024u)
#define PROG_LOG_TEXT_MAX   8192 /* tool, error, suggestedFix */

/* prog_check_progress_fields validates a progress update for record id:
 * a map of at most PROG_MAX_FIELDS fields, the seed's fields with their
 * types, no server-owned field, at most PROG_MAX_UPDATE bytes encoded. */
int prog_check_progress_fields(const char *id, const sh_val *fields, sh_error *err);

/* prog_check_job_fields validates a job create (create=true: conversationId
 * required) or update (conversationId refused). */
int prog_check_job_fields(const sh_val *fields, bool create, sh_error *err);

/* prog_make_log_entry validates a log entry and returns a new entry with
 * timestamp iso added (caller frees) through *out. */
int prog_make_log_entry(const sh_val *entry, const char *iso, sh_val **out, sh_error *err);

/* prog_cmd_add_value appends name (unless NULL) and the msgpack encoding of v. */
int prog_cmd_add_value(sh_cmd *cmd, const char *name, size_t nlen, const sh_val *v);

/* prog_cmd_add_fields appends every field of map (name, msgpack value). */
int prog_cmd_add_fields(sh_cmd *cmd, const sh_val *map);

/* prog_record_from_hash turns an HGETALL reply into a record map (caller
 * frees). Fields that do not decode are skipped and logged. */
int prog_record_from_hash(const sh_reply *r, sh_val **out, sh_error *err);

/* prog_val_from_bytes decodes one stored msgpack value (caller frees). */
int prog_val_from_bytes(const char *p, size_t len, sh_val **out, sh_error *err);

#endif
