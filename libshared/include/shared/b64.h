/* b64.h - standard base64 (RFC 4648, with padding), as SASL exchanges
 * carry their messages. */
#ifndef SHARED_B64_H
#define SHARED_B64_H

#include <stddef.h>

#include "shared/buf.h"

/* sh_b64_encode appends the base64 of len bytes of data to out. */
int sh_b64_encode(const void *data, size_t len, sh_buf *out);
/* sh_b64_decode appends the bytes of the base64 text s (len characters,
 * padding optional) to out; SH_EINVAL for a character outside the
 * alphabet. */
int sh_b64_decode(const char *s, size_t len, sh_buf *out);

#endif
