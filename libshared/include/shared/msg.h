/* msg.h - msgpack encoding of sh_val trees and the call/reply envelope that
 * every service speaks.
 *
 * Envelope (a msgpack map; keys are short strings):
 *   call:  {"op": str, "id": uint, "args": any}
 *   reply: {"id": uint, "ok": true,  "result": any}
 *        | {"id": uint, "ok": false, "error": {"code": str, "message": str}}
 * "code" is an error name from err.h (sh_err_name). Decoding enforces the
 * limits below and reports what was wrong; nothing partial is returned. */
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

int sh_reply_encode_ok(uint64_t id, const sh_val *result, sh_buf *out);
int sh_reply_encode_err(uint64_t id, int code, const char *message, sh_buf *out);
int sh_reply_decode(const void *data, size_t len, const sh_msg_limits *lim, sh_reply_env *out,
                    sh_error *err);
void sh_reply_env_fini(sh_reply_env *r);

#endif
