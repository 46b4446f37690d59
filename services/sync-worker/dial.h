/* dial.h - the TCP connection to an account's IMAP server: the host name
 * resolved, each address checked against the host policy (so a name that
 * resolves somewhere new since the account was written is caught), and a
 * connect with a timeout to the first allowed address that answers. */
#ifndef SYNC_DIAL_H
#define SYNC_DIAL_H

#include "shared/err.h"
#include "shared/hostpolicy.h"

/* sync_dial connects to host:port within timeout_s seconds per address and
 * returns the connected socket (blocking mode; the caller closes it) in
 * *fd. SH_EINVAL with err from the policy when every address is refused;
 * SH_EUNAVAIL when the name does not resolve or no address answers. */
int sync_dial(const sh_hostpolicy *policy, const char *host, int port, int timeout_s, int *fd,
              sh_error *err);

#endif
