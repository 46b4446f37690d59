/* msg.h - msgpack encoding of sh_val trees and the call/reply envelope that
 * every service speaks.
 *
 * Envelope (a msgpack map; keys are short strings):
 *   call:  {"op": str, "id": uint, "args": any}
 *   reply: {"id": uint, "ok": true,  "result": any}
 *        | {"id": uint, "ok": false, "error": {"code": str, "message": str}}
 * "code" is an error name from err.h (sh_err_name). Decoding enforces the
 * limits below and reports what was wrong; nothing partial is returned.
 *
 * Batch (several calls in one message, see rpc.h):
 *   calls:   [bin, bin, ...]   each bin holds one call envelope as above
 *   replies: [bin, bin, ...]   as many, in the same order, each one reply
 * A message is a batch when its first byte is a msgpack array header, a
 * single call when it is a map: servers take both, so a client that never
 * batches and one that does can share a server. Each envelope sits in its
 * own bin so that a malformed one fails that call only: the framing (array
 * and bin headers) is checked first, then every envelope on its own. A
 * batch whose framing is broken gets one single reply, an error with id 0,
 * which fails every call of it. */
#ifndef SHARED_MSG_H
#define SHARED_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "shared/buf.h"
#include "shared/err.h"
#include "shared/val.h"

typedef struct sh_msg_limits {
    size_t max_bytes; /* whole message */
    int max_depth;    /* nesting of arrays/maps */
    size_t max_items; /* total number of values in the tree */
} sh_msg_limits;

#define SH_MSG_DEFAULT_MAX_BYTES (4u * 1024u * 1024u)
#define SH_MSG_DEFAULT_MAX_DEPTH 32
#define SH_MSG_DEFAULT_MAX_ITEMS 100000u
#define SH_OP_MAX                64

/* sh_msg_limits_default fills lim with the defaults above. */
void sh_msg_limits_default(sh_msg_limits *lim);

/* sh_msg_pack appends the msgpack encoding of v to out. */
int sh_msg_pack(const sh_val *v, sh_buf *out);

/* sh_msg_pack_array_header appends the header of an array of n items (the
 * items follow, packed one by one). */
int sh_msg_pack_array_header(size_t n, sh_buf *out);
/* sh_msg_pack_str appends a string value. */
int sh_msg_pack_str(const char *s, size_t len, sh_buf *out);

/* sh_msg_unpack decodes exactly one value occupying all of data[0..len).
 * On success *out is a new tree the caller frees. Errors: SH_EPROTO
 * (truncated, trailing bytes, bad type), SH_ETOOBIG, SH_ELIMIT (depth or
 * items); err names the problem. */
int sh_msg_unpack(const void *data, size_t len, const sh_msg_limits *lim, sh_val **out,
                  sh_error *err);

/* A decoded call. sh_call_fini frees args. */
typedef struct sh_call {
    char op[SH_OP_MAX + 1];
    uint64_t id;
    sh_val *args; /* never NULL after a successful decode (nil if absent) */
} sh_call;

/* A decoded reply: either result (ok) or code + message. */
typedef struct sh_reply_env {
    uint64_t id;
    int ok;
    sh_val *result;
    int code;
    char message[256];
} sh_reply_env;

int sh_call_encode(const char *op, uint64_t id, const sh_val *args, sh_buf *out);
int sh_call_decode(const void *data, size_t len, const sh_msg_limits *lim, sh_call *out,
                   sh_error *err);
void sh_call_fini(sh_call *c);

/* A piece of a message: borrowed, valid as long as the message. */
typedef struct sh_slice {
    const void *data;
    size_t len;
} sh_slice;

/* sh_batch_is tells a batch (array) from a single envelope (anything else). */
int sh_batch_is(const void *data, size_t len);
/* sh_batch_split checks the framing of a batch and returns its envelopes
 * in *items (a new array the caller frees; the slices point into data) and
 * their number in *n (at least 1). Errors: SH_EPROTO with err naming the
 * problem (not an array, truncated, an item that is not a bin, trailing
 * bytes), SH_ENOMEM. */
int sh_batch_split(const void *data, size_t len, sh_slice **items, size_t *n, sh_error *err);
/* sh_batch_begin appends the header of a batch of n envelopes;
 * sh_batch_add then appends each envelope (len bytes at env) in order. */
int sh_batch_begin(size_t n, sh_buf *out);
int sh_batch_add(const void *env, size_t len, sh_buf *out);
/* sh_batch_add_header appends only the header of an envelope of len bytes
 * (its bytes then follow), for a caller that writes them elsewhere. */
int sh_batch_add_header(size_t len, sh_buf *out);
/* sh_batch_overhead is the most bytes the framing adds to n envelopes. */
size_t sh_batch_overhead(size_t n);

int sh_reply_encode_ok(uint64_t id, const sh_val *result, sh_buf *out);
int sh_reply_encode_err(uint64_t id, int code, const char *message, sh_buf *out);
int sh_reply_decode(const void *data, size_t len, const sh_msg_limits *lim, sh_reply_env *out,
                    sh_error *err);
void sh_reply_env_fini(sh_reply_env *r);

#endif
