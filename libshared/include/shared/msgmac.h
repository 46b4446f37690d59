/* msgmac.h - authentication of internal traffic: every call, reply and event
 * between services carries a MAC over its bytes, a timestamp and a nonce
 * when the process has a shared secret (RPC_SECRET).
 *
 * Wire format of a signed message (the nng message body), all of it
 * covered by the tag:
 *   byte 0      0xc1 (a byte msgpack never uses: a signed message is never
 *               taken for an envelope, nor an envelope for a signed one)
 *   byte 1      'M'
 *   byte 2      version, 1
 *   byte 3      kind: 'C' call, 'R' reply, 'E' event (a reply cannot pass
 *               for a call, nor an event for either)
 *   bytes 4-11  timestamp, unix milliseconds, big-endian
 *   bytes 12-27 nonce, never repeated: 8 random bytes drawn once per
 *               process then a 64-bit counter (a reply repeats its
 *               request's)
 *   bytes 28-   payload: a call or batch (msg.h) or an events message
 *               (events.h), exactly as sent without a secret
 *   last 32     tag: keyed BLAKE2b-256 (sh_mac, secret.h) of everything
 *               before it, under RPC_SECRET (64 hex digits, 32 bytes)
 *
 * A receiver checks, in this order: the header (else "carries no MAC"),
 * the kind, the tag ("bad MAC"), the timestamp against its own clock
 * (more than the window away: "stale timestamp"), then the nonce: a server
 * or subscriber remembers the nonces it took within the window and refuses
 * one seen before ("replayed nonce"); a client takes only a reply that
 * carries its request's nonce. The nonce cache has a fixed capacity: when
 * it is full the oldest nonce leaves and every message no newer than the
 * one that left is refused as stale, so a nonce once taken is never taken
 * again, at the price of a shorter window under a flood.
 *
 * Life cycle: sh_msgmac_setup once at start-up sets the process's key; RPC
 * clients, servers, publishers and subscribers made afterwards copy it
 * (sh_msgmac_current). An sh_msgmac_seen is made with sh_msgmac_seen_new and freed
 * with sh_msgmac_seen_free (NULL is harmless); it is thread-safe. */
#ifndef SHARED_MSGMAC_H
#define SHARED_MSGMAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/err.h"
#include "shared/secret.h"

#define SH_MSGMAC_NONCE_BYTES    16
#define SH_MSGMAC_HEAD_BYTES     28
#define SH_MSGMAC_TAG_BYTES      SH_MAC_BYTES
#define SH_MSGMAC_OVERHEAD       (SH_MSGMAC_HEAD_BYTES + SH_MSGMAC_TAG_BYTES)
#define SH_MSGMAC_WINDOW_DEFAULT 30     /* seconds, RPC_MAC_WINDOW_SECONDS */
#define SH_MSGMAC_SEEN_DEFAULT   131072 /* nonces a server or subscriber remembers */

typedef enum sh_msgmac_kind {
    SH_MSGMAC_CALL = 'C',
    SH_MSGMAC_REPLY = 'R',
    SH_MSGMAC_EVENT = 'E',
} sh_msgmac_kind;

/* A key and its window; on is false when the process has no secret. */
typedef struct sh_msgmac_conf {
    bool on;
    sh_key key;
    int64_t window_ms;
} sh_msgmac_conf;

/* sh_msgmac_conf_make reads the key in secret (64 hex digits; NULL or "":
 * off) with a window of window_s seconds. Errors: SH_EINVAL naming RPC_SECRET or
 * RPC_MAC_WINDOW_SECONDS. */
int sh_msgmac_conf_make(const char *secret, long long window_s, sh_msgmac_conf *out, sh_error *err);

/* sh_msgmac_setup makes the process's configuration (as sh_msgmac_conf_make) for
 * everything made afterwards; sh_msgmac_current copies it. */
int sh_msgmac_setup(const char *secret, long long window_s, sh_error *err);
void sh_msgmac_current(sh_msgmac_conf *out);

/* sh_msgmac_warn_open logs a warning when the process has no secret and url
 * (what: "RPC", "events") listens beyond loopback: tcp:// on 0.0.0.0, [::],
 * a host name or any address outside 127.0.0.0/8 and ::1. */
void sh_msgmac_warn_open(const char *what, const char *url);

/* sh_msgmac_is_signed tells whether data starts like a signed message. */
bool sh_msgmac_is_signed(const void *data, size_t len);

/* sh_msgmac_head writes the header of a message of kind at ts_ms; nonce NULL
 * draws a new one, whose bytes go to nonce_out when it is not NULL. */
void sh_msgmac_head(sh_msgmac_kind kind, int64_t ts_ms, const unsigned char *nonce,
                    unsigned char *nonce_out, unsigned char head[SH_MSGMAC_HEAD_BYTES]);
/* sh_msgmac_tag computes the tag of data (the header and the payload). */
void sh_msgmac_tag(const sh_msgmac_conf *c, const void *data, size_t len,
                   unsigned char tag[SH_MSGMAC_TAG_BYTES]);

typedef struct sh_msgmac_seen sh_msgmac_seen;

/* sh_msgmac_seen_new makes a nonce cache of cap entries (cap >= 1). */
int sh_msgmac_seen_new(size_t cap, sh_msgmac_seen **out);
void sh_msgmac_seen_free(sh_msgmac_seen *s);

/* sh_msgmac_open checks that data (len bytes) is a signed message of kind at
 * now_ms and sets *payload and *plen to the payload inside it (borrowed
 * from data). seen, when not NULL, takes the nonce (refusing one seen
 * before); want_nonce, when not NULL, is the only nonce accepted (a
 * reply's). nonce_out, when not NULL, receives the message's nonce. On
 * failure it returns SH_EAUTH with err naming what is wrong, and nothing
 * was taken into seen. */
int sh_msgmac_open(const sh_msgmac_conf *c, sh_msgmac_kind kind, sh_msgmac_seen *seen,
                   int64_t now_ms, const void *data, size_t len, const unsigned char *want_nonce,
                   unsigned char *nonce_out, const void **payload, size_t *plen, sh_error *err);

/* sh_msgmac_log_refusal logs a refused message (where: "rpc", "events") at
 * most 10 times per 10 seconds in the process, then says how many it left
 * out. */
void sh_msgmac_log_refusal(const char *where, const sh_error *err);

#endif
