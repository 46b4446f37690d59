/* hostcap.h - the count of IMAP connections this process holds open to each
 * host, sync and watch sessions alike, and the cap on them
 * (IMAP_MAX_CONNECTIONS_PER_HOST). Thread-safe. Host names are compared
 * without regard to case. */
#ifndef SYNC_HOSTCAP_H
#define SYNC_HOSTCAP_H

#include "shared/err.h"

/* sync_hostcap_take counts one more connection to host, unless limit > 0
 * and limit connections are open already: SH_ELIMIT then, with err naming
 * the host and the limit. Each SH_OK is matched by one sync_hostcap_give. */
int sync_hostcap_take(const char *host, int limit, sh_error *err);
void sync_hostcap_give(const char *host);
/* sync_hostcap_count is how many connections to host are open. */
int sync_hostcap_count(const char *host);

#endif
