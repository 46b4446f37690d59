/* imap_idle.h - watching the selected folder of a session for changes made
 * elsewhere: IMAP IDLE (RFC 2177) where the server offers it, and a cheap
 * NOOP check where it does not. Part of the IMAP module (imap.h).
 *
 * libetpan's mailimap_idle hangs when the server sends an untagged response
 * before its "+ idling" continuation, so IDLE is sent and its lines read
 * here, one at a time: a caller polls the session's descriptor (after
 * checking sync_imap_line_ready, since libetpan may already hold a line it
 * read) and calls sync_imap_idle_read when it is readable. */
#ifndef SYNC_IMAP_IDLE_H
#define SYNC_IMAP_IDLE_H

#include <stdbool.h>
#include <stdint.h>

#include "imap.h"

/* What a watched folder's untagged responses said. exists is the folder's
 * message count as last seen (from SELECT, then EXISTS and EXPUNGE); woken
 * is set, never cleared here, by a change: an EXISTS that differs from
 * exists, an EXPUNGE, a FETCH or a VANISHED. */
typedef struct sync_idle_seen {
    uint32_t exists;
    bool woken;
} sync_idle_seen;

/* sync_imap_has_idle tells whether the server advertises IDLE. */
bool sync_imap_has_idle(sync_imap *s);
/* sync_imap_fd is the session's socket, to poll for reading. */
int sync_imap_fd(sync_imap *s);
/* sync_imap_line_ready tells whether a whole line the server sent is
 * already read into libetpan's buffer, or TLS holds decrypted bytes not
 * read yet: poll would not report either. */
bool sync_imap_line_ready(sync_imap *s);

/* sync_imap_idle_start sends IDLE and reads up to the server's "+"
 * continuation; untagged responses before it count in seen. A tagged
 * refusal is SYNC_EREFUSED. */
int sync_imap_idle_start(sync_imap *s, sync_idle_seen *seen, sh_error *err);
/* sync_imap_idle_read reads one line while idling (it blocks until the
 * line is whole, within the command timeout) and counts it in seen. A BYE
 * or the end of the connection is SH_EUNAVAIL. */
int sync_imap_idle_read(sync_imap *s, sync_idle_seen *seen, sh_error *err);
/* sync_imap_idle_done ends IDLE (DONE) and reads up to the tagged answer,
 * counting what comes before it in seen. */
int sync_imap_idle_done(sync_imap *s, sync_idle_seen *seen, sh_error *err);
/* sync_imap_noop sends NOOP, the check of servers without IDLE, and reads
 * up to its answer, counting the untagged responses in seen. */
int sync_imap_noop(sync_imap *s, sync_idle_seen *seen, sh_error *err);

#endif
