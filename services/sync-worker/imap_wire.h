/* imap_wire.h - the exact bytes of the IMAP commands the sync-worker sends
 * (RFC 3501/9051, RFC 7162), composed without libetpan so that a strict
 * server sees nothing but the grammar: single spaces, atoms where the
 * grammar allows them, quoted strings with their escapes, literals for
 * what a quoted string cannot carry, and folder names in modified UTF-7
 * (RFC 3501 section 5.1.3). Pure code, tested without a server.
 *
 * Life cycle: sync_wire_init, appends, then the sender reads buf and the
 * literal marks; sync_wire_fini frees. An append that cannot be made (a
 * NUL byte, invalid UTF-8 in a folder name, no memory) sets w->err and
 * w->why once; later appends do nothing, so a caller checks once at the
 * end. */
#ifndef SYNC_IMAP_WIRE_H
#define SYNC_IMAP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/buf.h"

/* The most literals one command may carry. */
#define SYNC_WIRE_LITS 4

typedef struct sync_wire {
    sh_buf buf;    /* the command without its tag and final CRLF */
    bool lit_plus; /* the server takes non-synchronizing literals (LITERAL+) */
    /* offsets in buf just after each synchronizing literal's "{n}\r\n",
     * where the sender waits for the server's "+" */
    size_t lits[SYNC_WIRE_LITS];
    size_t nlits;
    int err;         /* SH_OK, SH_EINVAL or SH_ENOMEM */
    const char *why; /* what is wrong when err is set (static text) */
} sync_wire;

void sync_wire_init(sync_wire *w, bool lit_plus);
void sync_wire_fini(sync_wire *w);

/* sync_wire_raw appends text that the caller knows is grammatical (command
 * names, keywords, parentheses, single spaces). */
void sync_wire_raw(sync_wire *w, const char *text);
/* sync_wire_num appends a number in decimal. */
void sync_wire_num(sync_wire *w, uint64_t n);
/* sync_wire_astring appends len bytes as an astring: an atom when every
 * byte is an ASTRING-CHAR, else a quoted string when every byte is a
 * 7-bit TEXT-CHAR, else a literal (8-bit bytes, CR, LF). A NUL byte cannot
 * be sent at all (err). */
void sync_wire_astring(sync_wire *w, const char *s, size_t len);
/* sync_wire_string appends len bytes as a string (quoted or literal, never
 * an atom), as LIST's reference needs for "". */
void sync_wire_string(sync_wire *w, const char *s, size_t len);
/* sync_wire_mailbox appends a folder name given in UTF-8, encoded in
 * modified UTF-7 and sent as an astring. */
void sync_wire_mailbox(sync_wire *w, const char *utf8);
/* sync_wire_set appends a sequence set of the n UIDs (n > 0, any order,
 * runs of consecutive UIDs as lo:hi). */
void sync_wire_set(sync_wire *w, const uint32_t *uids, size_t n);

/* sync_mutf7_encode appends the modified UTF-7 form of the UTF-8 name to
 * out. Returns SH_OK, SH_EINVAL for invalid UTF-8 or a control character,
 * or SH_ENOMEM. */
int sync_mutf7_encode(sh_buf *out, const char *utf8, size_t len);
/* sync_mutf7_decode appends the UTF-8 form of a modified UTF-7 name to out.
 * Returns SH_OK, SH_EINVAL when name is not valid modified UTF-7 (8-bit
 * bytes, a bad base64 run, an unpaired surrogate, a control character or
 * NUL even when base64-encoded), or SH_ENOMEM. */
int sync_mutf7_decode(sh_buf *out, const char *name, size_t len);

#endif
