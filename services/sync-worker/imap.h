/* imap.h - one IMAP session (connect, TLS check, login, select, search,
 * fetch), the only interface to libetpan. A session is used by one thread.
 * Commands are composed byte for byte by imap_wire.c and only the replies
 * are parsed by libetpan. Folder names are UTF-8 on this interface and
 * modified UTF-7 on the wire.
 *
 * Every function returns SH_OK or an error code with err naming what went
 * wrong in words fit for an account's error message: SYNC_EAUTH when the
 * server refused the login, SH_EUNAVAIL for connection failures and
 * timeouts, SH_ETIMEDOUT when the server stalled past a deadline (a whole
 * reply's, or the run's), SH_EPROTO for replies that cannot be parsed or lack a field
 * that was asked for, SH_EINVAL for a refused TLS certificate. */
#ifndef SYNC_IMAP_H
#define SYNC_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/err.h"
#include "shared/hostpolicy.h"

/* The server refused the credentials (a NO or BAD answer to LOGIN). */
#define SYNC_EAUTH (-100)
/* The server refused a command for good: BAD, or NO with a response code
 * that retrying does not change (CANNOT, NOPERM, READ-ONLY, ...). */
#define SYNC_EREFUSED (-101)
/* The server refused a command for now: NO without a response code, or
 * with UNAVAILABLE, INUSE, LIMIT or SERVERBUG (RFC 5530). */
#define SYNC_ETRYLATER (-102)

typedef enum sync_security {
    SYNC_SEC_NONE,
    SYNC_SEC_TLS,
    SYNC_SEC_STARTTLS,
} sync_security;

/* The deadline of a whole reply when the options give none. */
#define SYNC_IMAP_COMMAND_DEADLINE_DEFAULT 60

typedef struct sync_imap_opts {
    const char *host;
    int port;
    sync_security security;
    bool tls_verify;       /* check the certificate chain and host name */
    const char *ca_file;   /* CA bundle, or NULL for the system store */
    int connect_timeout_s; /* the TCP connect, the TLS handshake, the greeting */
    int command_timeout_s; /* the longest wait for any byte of a reply */
    /* The longest a whole reply may take, however it trickles in; 0 for
     * SYNC_IMAP_COMMAND_DEADLINE_DEFAULT. */
    int command_deadline_s;
    /* sh_mono_ms() time by which the session is done (every read after it
     * fails), 0 for none; run_deadline_s is its setting, for messages. */
    int64_t run_deadline_ms;
    int run_deadline_s;
    /* Which addresses may be connected to after resolving host; NULL for
     * the built-in rules alone (private and loopback ranges refused). */
    const sh_hostpolicy *hosts;
    /* security NONE and tls_verify false are refused unless this is set. */
    bool allow_insecure;
    int max_per_host; /* open no more than this many sessions to host (0: no cap) */
} sync_imap_opts;

typedef struct sync_folder_info {
    uint32_t uidvalidity;
    uint32_t uidnext; /* 0 when the server did not say */
    uint32_t exists;
    uint64_t highestmodseq; /* 0 without CONDSTORE */
} sync_folder_info;

/* One fetched message. Every string is NUL-terminated valid UTF-8 (bad
 * bytes replaced), "" when absent, and borrowed for the callback only.
 * flags is space-separated ("\\Seen \\Flagged"). Summary fields are set
 * only by a full fetch. */
typedef struct sync_msg {
    uint32_t uid;
    const char *flags;
    uint32_t size;
    const char *internal_date; /* ISO 8601 UTC */
    const char *subject, *from, *to, *cc, *date, *message_id;
} sync_msg;

/* A callback returning non-zero stops the fetch with that code. */
typedef int (*sync_msg_fn)(void *arg, const sync_msg *m);

typedef struct sync_imap sync_imap;

/* sync_imap_open resolves the host and connects to an address the host
 * policy allows (with the connect timeout), sets up TLS as the security
 * mode says (naming the host by SNI unless it is an IP literal), verifies
 * the certificate unless tls_verify is false, and switches to the command
 * timeout and deadline. From the first byte, a reply before login is capped
 * at 64 KiB and must be complete within the connect timeout. Every session
 * counts against the connections to its host (hostcap.h): with max_per_host
 * sessions open, SH_ELIMIT. SH_EINVAL for a refused host or insecure
 * options. *out is freed with sync_imap_free. */
int sync_imap_open(const sync_imap_opts *opts, sync_imap **out, sh_error *err);
/* sync_imap_set_deadlines changes, for the replies read from now on, the
 * longest silence (idle_s) and the longest whole reply (command_s; 0
 * leaves either as it is), and the time the session must be done by
 * (run_deadline_ms, sh_mono_ms() time, 0 for none): a caller that waits
 * on purpose (IDLE) sets what it waits for, and sets them back after. */
void sync_imap_set_deadlines(sync_imap *s, int idle_s, int command_s, int64_t run_deadline_ms);
/* sync_imap_free logs out when logged in and frees the session. */
void sync_imap_free(sync_imap *s);

int sync_imap_login(sync_imap *s, const char *user, const char *password, sh_error *err);
/* sync_imap_login_oauth signs in with an OAuth2 access token: the first
 * mechanism of prefs ("XOAUTH2 OAUTHBEARER", space separated) the server
 * offers (AUTH=...), whose name goes to mech. SYNC_EAUTH when the server
 * offers none or refuses the token, with its decoded challenge (the JSON
 * of RFC 7628 3.2.2) in err. */
int sync_imap_login_oauth(sync_imap *s, const char *user, const char *token, const char *prefs,
                          char mech[16], sh_error *err);
/* sync_imap_has_condstore reports whether the server advertises CONDSTORE. */
bool sync_imap_has_condstore(const sync_imap *s);
/* sync_imap_has_qresync reports whether QRESYNC (RFC 7162) was enabled at
 * login: the server advertised it with CONDSTORE and accepted ENABLE. */
bool sync_imap_has_qresync(const sync_imap *s);

/* sync_imap_special_use lists the folders marked \Sent or \Drafts (RFC
 * 6154) when the server advertises SPECIAL-USE: *names (caller frees each
 * and the array) holds *n names, none without SPECIAL-USE. */
int sync_imap_special_use(sync_imap *s, char ***names, size_t *n, sh_error *err);

/* sync_imap_select selects folder read-only-neutrally (SELECT, with
 * CONDSTORE when advertised) and fills info. */
int sync_imap_select(sync_imap *s, const char *folder, sync_folder_info *info, sh_error *err);

/* sync_imap_search returns the UIDs from `from` up (every UID when from <=
 * 1) of the selected folder, ascending, in *uids (caller frees) and their
 * number in *n. */
int sync_imap_search(sync_imap *s, uint32_t from, uint32_t **uids, size_t *n, sh_error *err);

/* sync_imap_search_range returns the UIDs of the selected folder within
 * lo..hi (hi UINT32_MAX: up to the last), ascending, in *uids (caller
 * frees) and their number in *n: UID SEARCH UID lo:hi, a reply of at most
 * the messages in that range. */
int sync_imap_search_range(sync_imap *s, uint32_t lo, uint32_t hi, uint32_t **uids, size_t *n,
                           sh_error *err);
/* sync_imap_exists is the message count of the selected folder as the
 * server last said (EXISTS and EXPUNGE responses since SELECT counted). */
uint32_t sync_imap_exists(const sync_imap *s);
/* sync_imap_uid_at sets *uid to the UID of the message at sequence number
 * seq of the selected folder (UID SEARCH <seq>), 0 when there is none. */
int sync_imap_uid_at(sync_imap *s, uint32_t seq, uint32_t *uid, sh_error *err);

/* sync_imap_fetch fetches the n UIDs of uids (any order; n > 0), or 1:* when
 * uids is NULL. full asks for UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE,
 * otherwise UID FLAGS; changedsince > 0 adds CHANGEDSINCE. cb runs once per
 * message. */
int sync_imap_fetch(sync_imap *s, const uint32_t *uids, size_t n, bool full, uint64_t changedsince,
                    sync_msg_fn cb, void *arg, sh_error *err);

/* sync_imap_fetch_range fetches the messages with a UID in lo..hi (hi
 * UINT32_MAX: up to the last) as sync_imap_fetch does. */
int sync_imap_fetch_range(sync_imap *s, uint32_t lo, uint32_t hi, bool full, uint64_t changedsince,
                          sync_msg_fn cb, void *arg, sh_error *err);

/* sync_imap_fetch_send sends the UID FETCH of sync_imap_fetch (n > 0 UIDs,
 * no modifier) without waiting; sync_imap_fetch_recv reads the reply of the
 * oldest fetch so sent and runs cb once per message. The next fetch can so
 * be on its way, the server making its reply, while this one is decoded
 * and stored. While a reply is due (sync_imap_due counts them) no other
 * command may be used on the session. */
int sync_imap_fetch_send(sync_imap *s, const uint32_t *uids, size_t n, bool full, sh_error *err);
int sync_imap_fetch_recv(sync_imap *s, bool full, sync_msg_fn cb, void *arg, sh_error *err);
size_t sync_imap_due(const sync_imap *s);

/* A run of UIDs, lo..hi inclusive. */
typedef struct sync_uid_range {
    uint32_t lo, hi;
} sync_uid_range;

/* sync_imap_changes asks, with QRESYNC enabled, for what happened to UIDs
 * 1..hi since mod-sequence modseq: UID FETCH 1:hi (UID FLAGS) (CHANGEDSINCE
 * modseq VANISHED). cb runs once per message whose flags changed; the UIDs
 * expunged meanwhile come back as ranges cut to 1..hi in *gone (caller
 * frees; they may name UIDs never stored) and their number in *ngone.
 * (libetpan's mailimap_select_qresync drops the QRESYNC parameters, so the
 * folder is selected with CONDSTORE and the changes asked for here.) */
int sync_imap_changes(sync_imap *s, uint32_t hi, uint64_t modseq, sync_msg_fn cb, void *arg,
                      sync_uid_range **gone, size_t *ngone, sh_error *err);

/* sync_imap_store_seen adds (seen) or removes \Seen on one message of the
 * selected folder. With unchangedsince > 0 and CONDSTORE the change is made
 * only if the message is unchanged since that mod-sequence; otherwise
 * *modified is set and the server's flags stay as they are. A refusal is
 * SYNC_EREFUSED or SYNC_ETRYLATER, with the server's words in err. */
int sync_imap_store_seen(sync_imap *s, uint32_t uid, bool seen, uint64_t unchangedsince,
                         bool *modified, sh_error *err);

#endif
