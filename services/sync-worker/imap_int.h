/* imap_int.h - what the files of the IMAP module share: imap.c (the session
 * and its commands), imap_exec.c (running one command), imap_stream.c (the
 * reply-size cap and deadlines under the session, with imap_watchdog.c),
 * imap_sock.c (the socket and TLS driver under it) and imap_decode.c (the replies' text
 * and messages). Only these files and this header include libetpan; the
 * sync_ names of imap.h are the module's interface, the sync__imap_ names
 * here are its internals. */
#ifndef SYNC_IMAP_INT_H
#define SYNC_IMAP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libetpan/libetpan.h>

#include "imap.h"
#include "imap_wire.h"
#include "shared/buf.h"
#include "shared/err.h"

/* The largest field kept from an envelope; longer ones are cut. */
#define SYNC__IMAP_FIELD_MAX 4096
/* The largest reply to one command (a batch of SYNC_FETCH_BATCH envelopes
 * is a few megabytes at most). */
#define SYNC__IMAP_REPLY_MAX ((size_t)64 * 1024 * 1024)

/* The type of libetpan's ENABLED data: MAILIMAP_ENABLE_TYPE_ENABLE, the
 * first of an enum private to its enable.c. */
#define SYNC__IMAP_ENABLE_TYPE_ENABLE 0

/* The largest reply before login: the greeting, CAPABILITY and STARTTLS
 * answers are a few hundred bytes; a server that has not let us in yet
 * gets no more than this of our memory. */
#define SYNC__IMAP_GREETING_MAX ((size_t)64 * 1024)

/* A read under watch (imap_watchdog.c): cancelled by the watchdog thread
 * if still running at deadline_ms. */
typedef struct sync__imap_watch {
    mailstream_low *low;
    int64_t deadline_ms;
    bool armed, fired;
    struct sync__imap_watch *next;
} sync__imap_watch;

/* sync__imap_watch_arm watches the read about to be made on low; disarm
 * ends the watch (after it, low is not touched) and tells whether the
 * read was cancelled at its deadline. */
void sync__imap_watch_arm(sync__imap_watch *w, mailstream_low *low, int64_t deadline_ms);
bool sync__imap_watch_disarm(sync__imap_watch *w);

/* The reading side of a session (imap_stream.c) counts the bytes of the
 * reply to the last command sent and holds the time it may take: a
 * deadline for the whole reply and one for the whole run, checked before
 * every read, so a server that trickles a byte at a time is cut off. */
typedef struct sync__imap_cap {
    mailstream_low *inner;
    size_t used;            /* bytes read since the last write */
    size_t limit;           /* the cap on one reply */
    bool tripped;           /* a reply went over limit */
    int idle_s;             /* longest wait for any byte */
    int command_s;          /* longest wait for a whole reply */
    int64_t deadline_ms;    /* monotonic: this reply's end */
    int64_t run_end_ms;     /* monotonic: the run's end, 0 for none */
    bool stalled;           /* a read hit deadline_ms */
    bool run_over;          /* a read hit run_end_ms */
    sync__imap_watch watch; /* of the read in progress */
} sync__imap_cap;

/* An IMAP command's tagged answer. */
typedef enum sync__imap_state {
    SYNC__IMAP_OK,
    SYNC__IMAP_NO,
    SYNC__IMAP_BAD,
} sync__imap_state;

typedef struct sync__imap_answer {
    sync__imap_state state;
    char code[32]; /* the response code's atom ("UNAVAILABLE"), "" when none */
} sync__imap_answer;

/* The most commands sent ahead of their replies. */
#define SYNC__IMAP_DUE_MAX 4

/* A command sent whose reply has not been taken yet. */
typedef struct sync__imap_due {
    int tag;
    bool answered;
    sync__imap_answer answer;
} sync__imap_due;

struct sync_imap {
    mailimap *m;
    const char *host;
    char *counted_host;    /* the host counted in hostcap.h, NULL when not */
    sync__imap_cap *cap;   /* owned by the stream */
    sync__imap_cap limits; /* what cap starts from, kept across STARTTLS */
    int run_deadline_s;    /* for messages */
    bool logged_in;
    bool condstore;
    bool qresync;                           /* ENABLE QRESYNC succeeded */
    sync__imap_due due[SYNC__IMAP_DUE_MAX]; /* sent by sync__imap_send, oldest first */
    size_t ndue;
};

/* sync__imap_cap_install puts the counting stream in front of st, the
 * stream of session s, with the limits of s->limits; s->cap (owned by the
 * stream, freed with it) tells when a reply went over the cap or its
 * deadline. Returns SH_OK or SH_ENOMEM. */
int sync__imap_cap_install(sync_imap *s, mailstream *st);
/* sync__imap_cap_begin starts the clock and the count of a reply now, for
 * the greeting (written before anything is sent). */
void sync__imap_cap_begin(sync__imap_cap *c);

/* sync__imap_exec sends the tag, the command of w and CRLF (waiting for
 * the server at each synchronizing literal), reads the whole reply with
 * libetpan's parser, which files its data in the session (selection info,
 * search and fetch results, extension data), and fills a with the tagged
 * answer. A BAD answer is an answer, not an error: SH_OK then. Errors are
 * those of the connection and of the parser, with err set; what names
 * the command in them. */
int sync__imap_exec(sync_imap *s, const sync_wire *w, const char *what, sync__imap_answer *a,
                    sh_error *err);
/* sync__imap_send sends the tag, the command of w (without a literal) and
 * CRLF, and does not wait for the reply: the command joins s->due, in the
 * order sent. sync__imap_recv_one reads one reply, which may end any due
 * command (a server may run pipelined commands at once), marks that
 * command answered and leaves the reply's data in the session, as
 * sync__imap_exec does; the caller repeats it until s->due[0] is answered,
 * taking each reply's data, then sync__imap_due_pop takes its answer.
 * While a command is due no other may run on the session. */
int sync__imap_send(sync_imap *s, const sync_wire *w, const char *what, sh_error *err);
int sync__imap_recv_one(sync_imap *s, const char *what, sh_error *err);
void sync__imap_due_pop(sync_imap *s, sync__imap_answer *a);
/* sync__imap_simple runs a command whose only result is its answer: SH_OK
 * for OK, SH_EPROTO naming the command and the server's words otherwise. */
int sync__imap_simple(sync_imap *s, const sync_wire *w, const char *what, sh_error *err);
/* sync__imap_refused turns a NO or BAD answer into SH_EPROTO with err
 * naming the command, the answer, its code and the server's words. */
int sync__imap_refused(const sync_imap *s, const sync__imap_answer *a, const char *what,
                       sh_error *err);
/* sync__imap_said is the text of the server's last tagged answer. */
const char *sync__imap_said(const sync_imap *s);
/* sync__imap_error translates libetpan's code r for the command what. */
int sync__imap_error(sync_imap *s, int r, const char *what, sh_error *err);
/* sync__imap_has_cap tells whether the server advertises capability name. */
bool sync__imap_has_cap(sync_imap *s, const char *name);
/* sync__imap_wire_init starts a command, with LITERAL+ once logged in to a
 * server that offers it. */
void sync__imap_wire_init(sync_imap *s, sync_wire *w);

/* sync__imap_clean appends len bytes of s to out as valid UTF-8, cut on a
 * character boundary at SYNC__IMAP_FIELD_MAX bytes: control characters
 * become spaces, and invalid, overlong, surrogate, out of range or cut
 * sequences U+FFFD (sh_utf8_clean). Returns SH_OK or SH_ENOMEM. */
int sync__imap_clean(sh_buf *out, const char *s, size_t len);
/* sync__imap_header appends a header text (possibly with MIME encoded
 * words, RFC 2047) decoded to UTF-8 and cleaned; NULL appends nothing. */
int sync__imap_header(sh_buf *out, const char *s);
/* sync__imap_vanished appends to *gone (*ngone ranges, realloc'd; the
 * caller frees it) the UIDs of every VANISHED response (RFC 7162) among a
 * reply's extension data, cut to 1..hi; SH_ENOMEM out of memory. */
int sync__imap_vanished(clist *extensions, uint32_t hi, sync_uid_range **gone, size_t *ngone);
/* sync__imap_fetch_results runs cb on each message of a fetch's results
 * (full: the summary fields must be there) and frees them. Returns SH_OK,
 * SH_EPROTO for a message without a requested field, or cb's code. */
int sync__imap_fetch_results(clist *res, bool full, sync_msg_fn cb, void *arg, sh_error *err);

/* sync__imap_caps_known asks for CAPABILITY unless the session knows the
 * server's capabilities already. */
int sync__imap_caps_known(sync_imap *s, sh_error *err);
/* sync__imap_logged_in finishes a login that the server accepted (LOGIN
 * or AUTHENTICATE): larger replies allowed, the capabilities of the
 * authenticated state read, QRESYNC enabled when offered. */
int sync__imap_logged_in(sync_imap *s, sh_error *err);

/* sync__imap_sasl_challenge (imap_sasl.c) finds the server's "+ <base64>"
 * line in buf (the reply text libetpan's parser kept, len bytes) and copies
 * its decoded text, control characters as spaces, to out ("" when there is
 * none). */
void sync__imap_sasl_challenge(const char *buf, size_t len, char *out, size_t outlen);

#endif
