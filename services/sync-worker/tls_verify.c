/* tls_verify.c - verification of an IMAP server's certificate chain and
 * host name with OpenSSL (imap_sock.c, the TLS stream, is the only other
 * file of the service that includes it). */
#include "tls_verify.h"

#include <arpa/inet.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "shared/util.h"

static X509 *tls_parse(const sync_der *d)
{
    const unsigned char *p = d->data;
    if (!d->data || d->len == 0 || d->len > 1024 * 1024)
        return NULL;
    return d2i_X509(NULL, &p, (long)d->len);
}

int sync_tls_verify(const sync_der *chain, size_t n, const char *host, const char *ca_file,
                    sh_error *err)
{
    int rc = SH_EINVAL;
    X509 *leaf = NULL;
    STACK_OF(X509) *rest = NULL;
    X509_STORE *store = NULL;
    X509_STORE_CTX *ctx = NULL;

    if (n == 0) {
        sh_error_set(err, SH_EINVAL, "TLS: the server sent no certificate");
        goto fail;
    }
    leaf = tls_parse(&chain[0]);
    rest = sk_X509_new_null();
    store = X509_STORE_new();
    ctx = X509_STORE_CTX_new();
    if (!leaf || !rest || !store || !ctx) {
        sh_error_set(err, SH_EINVAL, "TLS: cannot read the server's certificate");
        goto fail;
    }
    for (size_t i = 1; i < n; i++) {
        X509 *c = tls_parse(&chain[i]);
        if (c && !sk_X509_push(rest, c))
            X509_free(c);
    }
    if (ca_file && ca_file[0]) {
        if (X509_STORE_load_locations(store, ca_file, NULL) != 1) {
            sh_error_set(err, SH_EINVAL, "TLS: cannot load the CA file %s (IMAP_CA_FILE)", ca_file);
            goto fail;
        }
    } else if (X509_STORE_set_default_paths(store) != 1) {
        sh_error_set(err, SH_EINVAL, "TLS: cannot load the system CA store");
        goto fail;
    }
    if (X509_STORE_CTX_init(ctx, store, leaf, rest) != 1) {
        sh_error_set(err, SH_EINVAL, "TLS: cannot set up certificate verification");
        goto fail;
    }
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
    if (X509_verify_cert(ctx) != 1) {
        int code = X509_STORE_CTX_get_error(ctx);
        sh_error_set(err, SH_EINVAL,
                     "TLS certificate of %s not trusted: %s (set tlsVerify false only for a "
                     "test server)",
                     host, X509_verify_cert_error_string(code));
        goto fail;
    }
    int named = sh_is_ip_literal(host) ? X509_check_ip_asc(leaf, host, 0)
                                       : X509_check_host(leaf, host, strlen(host), 0, NULL);
    if (named != 1) {
        sh_error_set(err, SH_EINVAL, "TLS certificate does not name the host %s", host);
        goto fail;
    }
    rc = SH_OK;
fail:
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    sk_X509_pop_free(rest, X509_free);
    X509_free(leaf);
    return rc;
}
