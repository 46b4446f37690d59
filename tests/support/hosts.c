/* hosts.c - the fixtures' host policy (hosts.h). */
#include "hosts.h"

#include <stdio.h>

static sh_hostpolicy *hosts_loopback;

const sh_hostpolicy *tf_loopback_hosts(void)
{
    sh_error err;
    if (!hosts_loopback && sh_hostpolicy_new("127.0.0.0/8,::1", NULL, SH_IMAP_ALLOW_HOSTS,
                                             SH_IMAP_DENY_HOSTS, &hosts_loopback, &err))
        fprintf(stderr, "host policy: %s\n", err.msg);
    return hosts_loopback;
}
