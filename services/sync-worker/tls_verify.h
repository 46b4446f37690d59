/* tls_verify.h - the certificate check libetpan does not make: the peer's
 * chain against the system CA store (or a CA file) and the host name. */
#ifndef SYNC_TLS_VERIFY_H
#define SYNC_TLS_VERIFY_H

#include <stddef.h>

#include "shared/err.h"

/* One DER-encoded certificate; the first of a chain is the server's. */
typedef struct sync_der {
    const unsigned char *data;
    size_t len;
} sync_der;

/* sync_tls_verify returns SH_OK when chain[0] chains up to a trusted CA
 * (ca_file, or the system store when ca_file is NULL or "") through the
 * other certificates, is valid now, and names host (a DNS name, or an IP
 * address literal). Otherwise SH_EINVAL with err saying why. */
int sync_tls_verify(const sync_der *chain, size_t n, const char *host, const char *ca_file,
                    sh_error *err);

#endif
