/* imap_sock.h - the lowest layer of an IMAP session's stream: the socket,
 * plain or under TLS (OpenSSL), waited on with poll() only. libetpan's own
 * drivers wait with select(), which cannot take a descriptor of 1024 or
 * more, and hold a cancel pipe beside each socket; these hold the socket
 * alone, so one process can keep thousands of sessions open.
 *
 * Life cycle: sync__imap_sock_open (plain) or sync__imap_sock_tls_open
 * (TLS over a connected socket, also after STARTTLS) make a
 * mailstream_low; mailstream_low_close closes the socket,
 * mailstream_low_free frees the driver (and leaves an unclosed socket
 * open, so that STARTTLS can hand it on). mailstream_low_cancel may be
 * called from another thread while a read or write runs: it shuts the
 * socket down, so that call and every later one fail. */
#ifndef SYNC_IMAP_SOCK_H
#define SYNC_IMAP_SOCK_H

#include <stdbool.h>

#include <libetpan/libetpan.h>

/* sync__imap_sock_open makes the plain driver of the connected socket fd
 * (switched to non-blocking mode). NULL when out of memory; fd is left
 * open then. */
mailstream_low *sync__imap_sock_open(int fd);

/* sync__imap_sock_tls_open runs the TLS handshake on the connected socket
 * fd within timeout_s seconds, naming host in it (SNI) unless host is an
 * IP address literal, and makes the TLS driver. The certificate is not
 * checked here (tls_verify.c does it, from
 * mailstream_low_get_certificate_chain). NULL when the handshake fails or
 * memory runs out; fd is left open then. */
mailstream_low *sync__imap_sock_tls_open(int fd, const char *host, int timeout_s);

/* sync__imap_sock_pending tells whether low, when it is one of these
 * drivers, holds bytes TLS has decrypted and no read has taken yet (the
 * rest of a record larger than the last read). */
bool sync__imap_sock_pending(mailstream_low *low);

#endif
