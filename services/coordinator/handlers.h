/* handlers.h - the RPC operations of the coordinator (see README.md): a
 * table of sh_rpc_op rows ending in a NULL row. Each handler checks every
 * argument (names, types, bounds; unknown arguments are refused) before
 * calling the matching function of ops.h. */
#ifndef COORDINATOR_HANDLERS_H
#define COORDINATOR_HANDLERS_H

#include "shared/rpc.h"

extern const sh_rpc_op coord_ops[];

#endif
