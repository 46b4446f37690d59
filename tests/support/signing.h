/* signing.h - signed messages built and opened by hand, for tests that
 * speak to a service over a raw nng socket (hostile or malformed input)
 * with the process's RPC_SECRET (services.h), or with none. */
#ifndef TESTS_SIGNING_H
#define TESTS_SIGNING_H

#include <stddef.h>
#include <stdint.h>

#include "shared/buf.h"
#include "shared/msgmac.h"

/* tf_sign appends to out payload (len bytes) signed as kind at ts_ms (0:
 * now) with nonce (NULL: a new one) under the process's key, or payload
 * alone when the process signs nothing. */
void tf_sign(sh_msgmac_kind kind, const void *payload, size_t len, int64_t ts_ms,
             const unsigned char *nonce, sh_buf *out);

/* tf_unsign narrows data and len to the payload of a signed reply, or
 * leaves them as they are when the reply is unsigned (a refusal, or a
 * process that signs nothing). The running test fails on a bad MAC. */
void tf_unsign(const void **data, size_t *len);

#endif
