/* dovecot_fixture.h - a private Dovecot IMAP server for tests: its own
 * config directory under /tmp (never the system configuration or service),
 * passwd-file auth with one plaintext test user, a maildir filled with
 * generated messages, and a loopback port. Tests fail, not skip, when it
 * cannot start. Login and imap processes are reused (Dovecot's
 * "high-performance" mode, service_count = 0): a new process per
 * connection would make the server, which shares this machine's cores
 * with what is measured, the bottleneck of many short sessions. An imap
 * process may take 2 GB (Dovecot's default is 256 MB), so that a folder of
 * millions of messages (tests/bench/sync's large folder) can be indexed. */
#ifndef TESTS_DOVECOT_FIXTURE_H
#define TESTS_DOVECOT_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct tf_dovecot {
    pid_t pid;
    int port;
    char dir[256];
    char maildir[320]; /* <dir>/mail/<user>/Maildir */
    char user[64];
    char password[64];
    int tls_port;      /* implicit TLS (imaps); the plain port offers STARTTLS */
    char ca_file[300]; /* the throwaway CA that signed the server's certificate */
    uid_t uid;         /* owner of the mail files (Dovecot's mail processes) */
    gid_t gid;
    char capability[256]; /* imap_capability override, "" for Dovecot's own */
} tf_dovecot;

/* tf_dovecot_message_subject etc. describe generated message n: subject
 * "Message <n>", from "Sender <n> <sender<n>@example.com>", to
 * "Test User <test@example.com>", message id "<msg<n>@example.test>";
 * messages with n % 3 == 0 are \Seen. */
bool tf_dovecot_message_seen(int n);

/* tf_dovecot_start makes a throwaway CA and a certificate for 127.0.0.1 and
 * localhost signed by it (openssl), writes the configuration (folders named
 * Sent and Drafts, once created, are marked \Sent and \Drafts for
 * SPECIAL-USE), generates messages 1..count
 * into INBOX (cur/, ":2,S" for the seen ones), starts `dovecot -F` and waits
 * until the port accepts connections. Returns 0 or -1 (reason on stderr). */
int tf_dovecot_start(tf_dovecot *d, const char *user, const char *password, int count);
/* tf_dovecot_start_caps does the same with the CAPABILITY list after login
 * replaced by capability (e.g. one without QRESYNC), or Dovecot's own when
 * it is NULL. */
int tf_dovecot_start_caps(tf_dovecot *d, const char *user, const char *password, int count,
                          const char *capability);
/* tf_dovecot_add_user adds a passwd-file user of the running server with a
 * maildir of its own holding generated messages 1..count (Dovecot re-reads
 * the passwd file when it changes, looking at most once a second, so this
 * takes a second). Returns 0 or -1. */
int tf_dovecot_add_user(const tf_dovecot *d, const char *user, const char *password, int count);
/* tf_dovecot_halt stops the server, its processes serving clients too, but
 * keeps its directory and mail; returns 0 once the port is closed. tf_dovecot_resume starts it
 * again on the same ports and mail; returns 0 or -1. */
int tf_dovecot_halt(tf_dovecot *d);
int tf_dovecot_resume(tf_dovecot *d);
/* tf_dovecot_stop stops the server and removes its directory. */
void tf_dovecot_stop(tf_dovecot *d);

/* The RFC 5322 text of generated message n: TF_MESSAGE_FORMAT formatted
 * with n, n, n, its minute (n / 60 % 60), its second (n % 60), n and n.
 * The strict test server is given it (--message-format), and Python's %
 * makes the same bytes of it. */
#define TF_MESSAGE_FORMAT                                                                          \
    "From: Sender %d <sender%d@example.com>\r\n"                                                   \
    "To: Test User <test@example.com>\r\n"                                                         \
    "Subject: Message %d\r\n"                                                                      \
    "Date: Mon, 01 Jan 2024 10:%02d:%02d +0000\r\n"                                                \
    "Message-ID: <msg%d@example.test>\r\n"                                                         \
    "MIME-Version: 1.0\r\n"                                                                        \
    "Content-Type: text/plain; charset=utf-8\r\n"                                                  \
    "\r\n"                                                                                         \
    "Body of message %d.\r\n"

/* tf_dovecot_message builds the RFC 5322 text of message n into buf;
 * returns its length. */
size_t tf_dovecot_message(int n, char *buf, size_t len);

/* tf_imap_launch starts argv[0] (found in PATH) with argv, its output to
 * out, as the server of d (pid set), and waits up to 10 s until d->port
 * greets. name says which server in messages. Returns 0 or -1. */
int tf_imap_launch(tf_dovecot *d, const char *const *argv, const char *out, const char *name);

/* tf_imap_connect connects to an IMAP server on a loopback port (10 s read
 * timeout); returns the socket or -1. tf_imap_greeting reads its first
 * line and returns 0 when it is "* OK". */
int tf_imap_connect(int port);
int tf_imap_greeting(int fd);

/* tf_dovecot_imap logs in as the test user on a second connection, runs
 * each command of the NULL-terminated list (without tag or CRLF; a literal
 * is written as {N+} followed by CRLF and the data) and logs out. Returns 0
 * when every command answered OK; the server's replies are appended to
 * out (may be NULL) up to outlen. */
int tf_dovecot_imap(const tf_dovecot *d, const char *const *cmds, char *out, size_t outlen);

#endif
