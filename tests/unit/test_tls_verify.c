/* test_tls_verify.c - the sync-worker's check of an IMAP server's
 * certificate (tls_verify.c) against certificates made here at test time
 * with OpenSSL: a private root CA (written as the CA file into a mkdtemp
 * directory), an intermediate, and server certificates for 127.0.0.1 and
 * localhost, expired, not yet valid, for another name, self-signed, signed
 * by an unknown CA, with a DNS name where an IP address is wanted, and for
 * client use only. Each decision is checked with the message naming why. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls_verify.h"

#define DAY (24L * 3600)

/* A certificate with its key, and its DER form for sync_tls_verify. */
typedef struct tv_cert {
    EVP_PKEY *key;
    X509 *x;
    unsigned char *der;
    int len;
} tv_cert;

typedef struct tv_spec {
    const char *cn;
    const char *san;       /* subjectAltName value, or NULL */
    const char *eku;       /* extendedKeyUsage value, or NULL */
    long from, until;      /* validity, seconds from now */
    bool ca;               /* basicConstraints CA:TRUE and keyCertSign */
    const tv_cert *issuer; /* NULL: self-signed */
} tv_spec;

static char dir[64], ca_path[128], other_ca_path[128];
static tv_cert root, other_root, inter, good, good_inter, expired, future, wrong_name, self,
    unknown_ca, dns_only_ip, client_only;

static void tv_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

static void tv_make(tv_cert *c, const tv_spec *s)
{
    static long serial = 1;
    c->key = EVP_EC_gen("P-256");
    assert_non_null(c->key);
    c->x = X509_new();
    assert_non_null(c->x);
    X509_set_version(c->x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c->x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(c->x), s->from);
    X509_gmtime_adj(X509_getm_notAfter(c->x), s->until);
    X509_NAME *name = X509_get_subject_name(c->x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)s->cn, -1, -1, 0);
    X509 *issuer = s->issuer ? s->issuer->x : c->x;
    EVP_PKEY *signer = s->issuer ? s->issuer->key : c->key;
    X509_set_issuer_name(c->x, X509_get_subject_name(issuer));
    X509_set_pubkey(c->x, c->key);
    tv_ext(c->x, issuer, NID_basic_constraints, s->ca ? "critical,CA:TRUE" : "CA:FALSE");
    tv_ext(c->x, issuer, NID_key_usage,
           s->ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    tv_ext(c->x, issuer, NID_subject_key_identifier, "hash");
    tv_ext(c->x, issuer, NID_authority_key_identifier, "keyid:always");
    if (s->san)
        tv_ext(c->x, issuer, NID_subject_alt_name, s->san);
    if (s->eku)
        tv_ext(c->x, issuer, NID_ext_key_usage, s->eku);
    assert_true(X509_sign(c->x, signer, EVP_sha256()) > 0);
    c->der = NULL;
    c->len = i2d_X509(c->x, &c->der);
    assert_true(c->len > 0);
}

static void tv_free(tv_cert *c)
{
    OPENSSL_free(c->der);
    X509_free(c->x);
    EVP_PKEY_free(c->key);
}

static void tv_write_pem(const char *path, const tv_cert *c)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, c->x), 1);
    assert_int_equal(fclose(f), 0);
}

#define SERVER_SAN "DNS:localhost,IP:127.0.0.1,IP:::1"

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/shtest-tls-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(ca_path, sizeof ca_path, "%s/ca.pem", dir);
    snprintf(other_ca_path, sizeof other_ca_path, "%s/other-ca.pem", dir);
    tv_make(&root, &(tv_spec){.cn = "Test Root CA", .from = -DAY, .until = 30 * DAY, .ca = true});
    tv_make(&other_root,
            &(tv_spec){.cn = "Other Root CA", .from = -DAY, .until = 30 * DAY, .ca = true});
    tv_make(&inter, &(tv_spec){.cn = "Test Intermediate",
                               .from = -DAY,
                               .until = 30 * DAY,
                               .ca = true,
                               .issuer = &root});
    tv_make(&good, &(tv_spec){.cn = "127.0.0.1",
                              .san = SERVER_SAN,
                              .eku = "serverAuth",
                              .from = -DAY,
                              .until = 30 * DAY,
                              .issuer = &root});
    tv_make(&good_inter, &(tv_spec){.cn = "localhost",
                                    .san = SERVER_SAN,
                                    .from = -DAY,
                                    .until = 30 * DAY,
                                    .issuer = &inter});
    tv_make(&expired, &(tv_spec){.cn = "localhost",
                                 .san = SERVER_SAN,
                                 .from = -30 * DAY,
                                 .until = -DAY,
                                 .issuer = &root});
    tv_make(
        &future,
        &(tv_spec){
            .cn = "localhost", .san = SERVER_SAN, .from = DAY, .until = 30 * DAY, .issuer = &root});
    tv_make(&wrong_name, &(tv_spec){.cn = "mail.example.com",
                                    .san = "DNS:mail.example.com,IP:192.0.2.1",
                                    .from = -DAY,
                                    .until = 30 * DAY,
                                    .issuer = &root});
    tv_make(&self, &(tv_spec){.cn = "localhost", .san = SERVER_SAN, .from = -DAY, .until = DAY});
    tv_make(&unknown_ca, &(tv_spec){.cn = "localhost",
                                    .san = SERVER_SAN,
                                    .from = -DAY,
                                    .until = 30 * DAY,
                                    .issuer = &other_root});
    tv_make(&dns_only_ip, &(tv_spec){.cn = "127.0.0.1",
                                     .san = "DNS:127.0.0.1",
                                     .from = -DAY,
                                     .until = 30 * DAY,
                                     .issuer = &root});
    tv_make(&client_only, &(tv_spec){.cn = "localhost",
                                     .san = SERVER_SAN,
                                     .eku = "clientAuth",
                                     .from = -DAY,
                                     .until = 30 * DAY,
                                     .issuer = &root});
    tv_write_pem(ca_path, &root);
    tv_write_pem(other_ca_path, &other_root);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tv_cert *all[] = {&root,   &other_root, &inter, &good,       &good_inter,  &expired,
                      &future, &wrong_name, &self,  &unknown_ca, &dns_only_ip, &client_only};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        tv_free(all[i]);
    unlink(ca_path);
    unlink(other_ca_path);
    rmdir(dir);
    return 0;
}

/* verify runs the check on a chain of one or two certificates. */
static int verify(const tv_cert *leaf, const tv_cert *second, const char *host, const char *ca,
                  sh_error *err)
{
    sync_der chain[2] = {{leaf->der, (size_t)leaf->len}, {NULL, 0}};
    if (second)
        chain[1] = (sync_der){second->der, (size_t)second->len};
    sh_error_clear(err);
    return sync_tls_verify(chain, second ? 2 : 1, host, ca, err);
}

/* expect_refused checks a refusal whose message holds both parts. */
static void expect_refused(const tv_cert *leaf, const tv_cert *second, const char *host,
                           const char *ca, const char *part1, const char *part2)
{
    sh_error err;
    assert_int_equal(verify(leaf, second, host, ca, &err), SH_EINVAL);
    assert_int_equal(err.code, SH_EINVAL);
    if (!strstr(err.msg, part1) || (part2 && !strstr(err.msg, part2)))
        fail_msg("host %s: message \"%s\" lacks \"%s\" / \"%s\"", host, err.msg, part1,
                 part2 ? part2 : "");
}

/* The words OpenSSL gives a verification error, which the message quotes. */
static const char *why(int code)
{
    return X509_verify_cert_error_string(code);
}

static void test_accepted(void **state)
{
    (void)state;
    sh_error err;
    assert_int_equal(verify(&good, NULL, "127.0.0.1", ca_path, &err), SH_OK);
    assert_int_equal(verify(&good, NULL, "localhost", ca_path, &err), SH_OK);
    /* DNS names compare without case, IPv6 literals as addresses. */
    assert_int_equal(verify(&good, NULL, "LocalHost", ca_path, &err), SH_OK);
    assert_int_equal(verify(&good, NULL, "::1", ca_path, &err), SH_OK);
    assert_int_equal(verify(&good, NULL, "0:0:0:0:0:0:0:1", ca_path, &err), SH_OK);
    /* The server sends the intermediate after its own certificate. */
    assert_int_equal(verify(&good_inter, &inter, "localhost", ca_path, &err), SH_OK);
    /* A certificate the server adds that plays no part changes nothing. */
    assert_int_equal(verify(&good, &other_root, "localhost", ca_path, &err), SH_OK);
}

static void test_untrusted(void **state)
{
    (void)state;
    const char *fix = "tlsVerify false only for a test server";
    expect_refused(&expired, NULL, "localhost", ca_path, "TLS certificate of localhost not trusted",
                   why(X509_V_ERR_CERT_HAS_EXPIRED));
    expect_refused(&expired, NULL, "localhost", ca_path, fix, NULL);
    expect_refused(&future, NULL, "localhost", ca_path, "not trusted",
                   why(X509_V_ERR_CERT_NOT_YET_VALID));
    expect_refused(&self, NULL, "localhost", ca_path, "TLS certificate of localhost not trusted",
                   why(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT));
    expect_refused(&unknown_ca, NULL, "127.0.0.1", ca_path,
                   "TLS certificate of 127.0.0.1 not trusted",
                   why(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY));
    /* The intermediate missing from the chain: no path to the root. */
    expect_refused(&good_inter, NULL, "localhost", ca_path, "not trusted",
                   why(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY));
    /* Sending the root along does not make it trusted. */
    expect_refused(&unknown_ca, &other_root, "localhost", ca_path, "not trusted",
                   why(X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN));
    /* Trusted by a CA file, but not by another one or by the system. */
    expect_refused(&good, NULL, "localhost", other_ca_path, "not trusted",
                   why(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY));
    expect_refused(&good, NULL, "localhost", NULL, "not trusted", NULL);
    expect_refused(&good, NULL, "localhost", "", "not trusted", NULL);
    /* A certificate made for clients only is no server's. */
    expect_refused(&client_only, NULL, "localhost", ca_path, "not trusted",
                   why(X509_V_ERR_INVALID_PURPOSE));
}

static void test_wrong_name(void **state)
{
    (void)state;
    const char *what = "TLS certificate does not name the host";
    expect_refused(&wrong_name, NULL, "localhost", ca_path, what, "localhost");
    expect_refused(&wrong_name, NULL, "127.0.0.1", ca_path, what, "127.0.0.1");
    expect_refused(&good, NULL, "mail.example.com", ca_path, what, "mail.example.com");
    expect_refused(&good, NULL, "127.0.0.2", ca_path, what, "127.0.0.2");
    /* No wildcard or suffix match: "localhost" is not "x.localhost". */
    expect_refused(&good, NULL, "x.localhost", ca_path, what, "x.localhost");
    /* An address is matched only against the certificate's IP entries,
     * never against a DNS entry or the common name spelling it. */
    expect_refused(&dns_only_ip, NULL, "127.0.0.1", ca_path, what, "127.0.0.1");
    /* The name check follows the chain check: a wrong name with a trusted
     * chain says so, an untrusted one says that first. */
    expect_refused(&self, NULL, "mail.example.com", ca_path, "not trusted", NULL);
}

static void test_bad_input(void **state)
{
    (void)state;
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(sync_tls_verify(NULL, 0, "localhost", ca_path, &err), SH_EINVAL);
    assert_string_equal(err.msg, "TLS: the server sent no certificate");

    unsigned char junk[64];
    memset(junk, 0x30, sizeof junk);
    sync_der bad = {junk, sizeof junk};
    assert_int_equal(sync_tls_verify(&bad, 1, "localhost", ca_path, &err), SH_EINVAL);
    assert_string_equal(err.msg, "TLS: cannot read the server's certificate");
    /* A certificate cut short is as unreadable. */
    sync_der cut = {good.der, (size_t)good.len / 2};
    assert_int_equal(sync_tls_verify(&cut, 1, "localhost", ca_path, &err), SH_EINVAL);
    assert_string_equal(err.msg, "TLS: cannot read the server's certificate");
    sync_der empty = {good.der, 0};
    assert_int_equal(sync_tls_verify(&empty, 1, "localhost", ca_path, &err), SH_EINVAL);

    /* An unreadable certificate after the server's is left out: the chain
     * is judged on what remains. */
    sync_der chain[2] = {{good.der, (size_t)good.len}, {junk, sizeof junk}};
    assert_int_equal(sync_tls_verify(chain, 2, "localhost", ca_path, &err), SH_OK);

    char missing[160];
    snprintf(missing, sizeof missing, "%s/no-such-ca.pem", dir);
    assert_int_equal(verify(&good, NULL, "localhost", missing, &err), SH_EINVAL);
    char want[300];
    snprintf(want, sizeof want, "TLS: cannot load the CA file %s (IMAP_CA_FILE)", missing);
    assert_string_equal(err.msg, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_untrusted),
        cmocka_unit_test(test_wrong_name),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
