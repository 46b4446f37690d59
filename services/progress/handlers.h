/* handlers.h - the RPC operations of the progress service: a table of
 * sh_rpc_op rows ending in a NULL row. Each handler decodes and validates
 * its arguments, then calls the matching function of ops.h with the
 * prog_worker it is given as state. */
#ifndef PROGRESS_HANDLERS_H
#define PROGRESS_HANDLERS_H

#include "shared/rpc.h"

extern const sh_rpc_op prog_ops[];

#endif
