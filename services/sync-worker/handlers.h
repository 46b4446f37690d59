/* handlers.h - the sync-worker's RPC operations (see README.md): ping,
 * messages.list and messages.get, read by the gateway. */
#ifndef SYNC_HANDLERS_H
#define SYNC_HANDLERS_H

#include "shared/rpc.h"

/* The operation table, ending in a NULL row. */
extern const sh_rpc_op sync_ops[];

#endif
