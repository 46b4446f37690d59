/* hosts.h - the host policy of the test fixtures: every test server
 * (Redis, Dovecot, the strict server) listens on loopback, which the
 * services refuse unless allowed, so the tests allow what the fixtures
 * use and nothing more. */
#ifndef TESTS_HOSTS_H
#define TESTS_HOSTS_H

#include "shared/hostpolicy.h"

/* The services' settings that let them reach the fixtures. */
#define TF_ALLOW_LOOPBACK "IMAP_ALLOW_HOSTS=127.0.0.0/8"
/* Dovecot fixtures speak plain IMAP. */
#define TF_ALLOW_INSECURE "IMAP_ALLOW_INSECURE=true"

/* tf_loopback_hosts is a policy allowing 127.0.0.0/8 and ::1, made once
 * and kept for the life of the process. */
const sh_hostpolicy *tf_loopback_hosts(void);

#endif
