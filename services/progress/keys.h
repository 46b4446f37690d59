/* keys.h - the Redis keys of the progress service, built only here from the
 * registry prefixes of shared/keys.h. Each builder writes a NUL-terminated
 * key into buf and returns its length, or -1 for an invalid id. */
#ifndef PROGRESS_KEYS_H
#define PROGRESS_KEYS_H

#include <stddef.h>

#include "shared/keys.h"

/* Large enough for any prefix + "{" + 128-byte id + "}" + suffix. */
#define PROG_KEY_MAX (SH_ID_MAX + 32)

int prog_key_record(char *buf, size_t len, const char *id);  /* progress:{id} */
int prog_key_log(char *buf, size_t len, const char *id);     /* progress:{id}:log */
int prog_key_log_seq(char *buf, size_t len, const char *id); /* progress:{id}:logseq */
int prog_key_job(char *buf, size_t len, const char *job_id); /* job:{id} */
int prog_key_job_index(char *buf, size_t len, const char *conversation_id); /* job_index:{id} */

#endif
