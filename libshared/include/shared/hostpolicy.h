/* hostpolicy.h - which addresses a service may connect to on a user's
 * behalf (the IMAP host of an account): metadata and link-local addresses
 * never, private and loopback ranges only when the operator allows them,
 * and the operator's own allow and deny lists of host names, addresses and
 * CIDR ranges. The same policy is checked when an account is written and
 * again after each DNS resolution at connect time, so a name that later
 * resolves elsewhere (DNS rebinding) is caught where it matters.
 *
 * Life cycle: sh_hostpolicy_new parses the two lists once at start-up; the
 * policy is then read-only (shared by threads) until sh_hostpolicy_free. */
#ifndef SHARED_HOSTPOLICY_H
#define SHARED_HOSTPOLICY_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#include "shared/err.h"

typedef struct sh_hostpolicy sh_hostpolicy;

/* The settings of the IMAP host policy, read alike by the coordinator and
 * the sync-worker; their names, for messages. */
#define SH_IMAP_ALLOW_HOSTS "IMAP_ALLOW_HOSTS"
#define SH_IMAP_DENY_HOSTS  "IMAP_DENY_HOSTS"

/* sh_hostpolicy_new parses allow and deny (NULL or "" for none), comma
 * lists of host names, IP addresses and CIDR ranges ("127.0.0.0/8,::1,
 * mail.internal"); allow_var and deny_var are the settings' names, used in
 * messages. *out is freed with sh_hostpolicy_free. SH_EINVAL names the
 * setting and the entry that is not one of those. */
int sh_hostpolicy_new(const char *allow, const char *deny, const char *allow_var,
                      const char *deny_var, sh_hostpolicy **out, sh_error *err);
void sh_hostpolicy_free(sh_hostpolicy *p);

/* sh_hostpolicy_check_addr tells whether host, resolved to sa, may be
 * connected to: SH_OK, or SH_EINVAL with err naming host, the address and
 * the setting that would allow it. In order: an entry of the allow list
 * matching the host name or the address allows it (metadata and link-local
 * addresses excepted: never); then the deny list refuses; then private and
 * loopback ranges are refused; any other address is allowed. */
int sh_hostpolicy_check_addr(const sh_hostpolicy *p, const char *host, const struct sockaddr *sa,
                             sh_error *err);

/* One address a host resolved to. */
typedef struct sh_hostaddr {
    struct sockaddr_storage sa;
    socklen_t len;
    char text[INET6_ADDRSTRLEN];
} sh_hostaddr;

#define SH_HOSTADDR_MAX 8

/* sh_hostpolicy_resolve resolves host (a name, an IP literal, or an IPv6
 * literal in brackets) for TCP port and keeps, in resolution order, the
 * addresses the policy allows: out[0..*n-1], at most SH_HOSTADDR_MAX.
 * SH_OK with *n >= 1; SH_EINVAL (err from sh_hostpolicy_check_addr for the
 * first refused one) when every address is refused; SH_EUNAVAIL when the
 * name does not resolve. */
int sh_hostpolicy_resolve(const sh_hostpolicy *p, const char *host, int port, sh_hostaddr *out,
                          size_t *n, sh_error *err);

#endif
