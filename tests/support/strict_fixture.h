/* strict_fixture.h - the strict test IMAP server (strict_imap.py) as a
 * fixture: a server that answers BAD to any command that is not exactly
 * what the grammar says, for the commands a client has no excuse to get
 * wrong. It fills the same tf_dovecot handle as the Dovecot fixture, so
 * tf_dovecot_imap (a second client) and tf_dovecot_stop work on it. Tests
 * fail, not skip, when it cannot start. */
#ifndef TESTS_STRICT_FIXTURE_H
#define TESTS_STRICT_FIXTURE_H

#include <stdbool.h>

#include "dovecot_fixture.h"

/* What the strict server holds besides INBOX's generated messages. */
typedef struct tf_strict_opts {
    const char *capability;         /* NULL: IMAP4rev1 LITERAL+ ENABLE CONDSTORE
                                       QRESYNC SPECIAL-USE UIDPLUS */
    const char *const *folders;     /* NULL-terminated UTF-8 names, "name=\\Sent"
                                       for a special-use folder */
    int folder_messages;            /* generated messages in each of them */
    const char *const *extra_users; /* NULL-terminated "user:password" (UTF-8) */
    /* A directory holding ca.pem, server.pem and server.key (a Dovecot
     * fixture's <dir>/tls): the server then also listens with implicit
     * TLS on tls_port, offers STARTTLS, and logs the name each handshake
     * asked for by SNI ("sni localhost", or "sni none"); NULL for none. */
    const char *tls_dir;
    bool idle_untagged_first; /* answer IDLE with untagged data before "+ idling" */
} tf_strict_opts;

/* tf_strict_start starts strict_imap.py on a free port with user:password
 * and count generated messages in INBOX (those of tf_dovecot_message) and
 * waits until it greets. Its log (every BAD with the command's bytes) is
 * <dir>/imap.log. Returns 0 or -1 (reason on stderr). */
int tf_strict_start(tf_dovecot *d, const char *user, const char *password, int count,
                    const tf_strict_opts *opts);

/* tf_strict_log_count counts the lines of the server's log holding what. */
int tf_strict_log_count(const tf_dovecot *d, const char *what);

#endif
