/* cmd.h - internal to libshared: what store.c needs of a command built
 * with the sh_cmd_* functions of store.h. */
#ifndef SHARED_CMD_H
#define SHARED_CMD_H

#include <stdbool.h>

#include "shared/buf.h"
#include "shared/store.h"

/* sh__cmd_resp appends command c to b in the Redis protocol. For a script
 * command the second argument is sha (40 hex digits), or with body set the
 * command goes as EVAL with the script's text. SH_ENOMEM on no memory. */
int sh__cmd_resp(sh_buf *b, const sh_cmd *c, const char *sha, bool body);
/* sh__cmd_oom tells whether building c ran out of memory (or c is NULL). */
int sh__cmd_oom(const sh_cmd *c);
/* sh__cmd_script is the script of an EVALSHA command, else NULL. */
sh_script *sh__cmd_script(const sh_cmd *c);
int sh__cmd_argc(const sh_cmd *c);
/* sh__cmd_retry_safe tells whether c may run twice with the effect of
 * once: a read, a script declared with SH_SCRIPT_RETRY_SAFE, or a command
 * marked with sh_cmd_retry_safe. */
int sh__cmd_retry_safe(const sh_cmd *c);

#endif
