/* b64.h - base64 (RFC 4648): the standard alphabet with padding, as SASL
 * exchanges carry their messages, and base64url without padding, as
 * signed tokens carry theirs. */
#ifndef SHARED_B64_H
#define SHARED_B64_H

#include <stdbool.h>
#include <stddef.h>

#include "shared/buf.h"

/* sh_b64_encode appends the base64 of len bytes of data to out. */
int sh_b64_encode(const void *data, size_t len, sh_buf *out);
/* sh_b64_decode appends the bytes of the base64 text s (len characters,
 * padding optional) to out; SH_EINVAL for a character outside the
 * alphabet. */
int sh_b64_decode(const char *s, size_t len, sh_buf *out);

/* sh_b64url_encode appends the unpadded base64url of len bytes to out. */
int sh_b64url_encode(const void *data, size_t len, sh_buf *out);
/* sh_b64url_decode decodes n characters of unpadded base64url into out
 * (cap bytes), the length to *outlen; false on any other character, a
 * length no encoding has, more than cap bytes, or unused bits that are
 * not zero (so each encoding has one spelling). */
bool sh_b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap, size_t *outlen);

#endif
