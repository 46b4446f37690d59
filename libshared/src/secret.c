/* secret.c - sealing secrets, MACs, randomness, constant-time comparison and
 * the seeded hash of hash tables. The one file of the project that includes
 * libsodium. */
#include "shared/secret.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "shared/util.h"

static int secret_init(void)
{
    return sodium_init() < 0 ? SH_EINTERNAL : SH_OK;
}

int sh_key_parse(const char *hex, const char *name, sh_key *out, sh_error *err)
{
    memset(out, 0, sizeof *out);
    if (secret_init())
        return sh_error_set(err, SH_EINTERNAL, "libsodium failed to initialise");
    size_t len = hex ? strlen(hex) : 0;
    if (len == 0)
        return sh_error_set(err, SH_EINVAL,
                            "%s is not set: generate one with `openssl rand -hex 32`", name);
    if (len != SH_KEY_BYTES * 2)
        return sh_error_set(err, SH_EINVAL,
                            "%s must be 64 hex characters (32 bytes, `openssl rand -hex 32`), "
                            "got %zu characters",
                            name, len);
    for (size_t i = 0; i < len; i++) {
        char c = hex[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return sh_error_set(err, SH_EINVAL,
                                "%s must be 64 hex characters; character %zu is not hex", name,
                                i + 1);
    }
    size_t got = 0;
    if (sodium_hex2bin(out->bytes, sizeof out->bytes, hex, len, NULL, &got, NULL) != 0 ||
        got != SH_KEY_BYTES)
        return sh_error_set(err, SH_EINVAL, "%s could not be decoded", name);
    crypto_generichash_state st;
    crypto_generichash_init(&st, out->bytes, sizeof out->bytes, SH_MAC_BYTES);
    memcpy(out->mac_state, &st, sizeof st);
    sodium_memzero(&st, sizeof st);
    unsigned char h[16];
    crypto_generichash(h, sizeof h, out->bytes, sizeof out->bytes, NULL, 0);
    out->id = h[0];
    sodium_memzero(h, sizeof h);
    static const char label[] = "sealed-secret key id";
    crypto_generichash(out->kid, sizeof out->kid, (const unsigned char *)label, sizeof label - 1,
                       out->bytes, sizeof out->bytes);
    return SH_OK;
}

int sh_key_pair_check(const sh_key *cur, const char *cur_name, const sh_key *prev,
                      const char *prev_name, sh_error *err)
{
    if (!cur || !prev)
        return SH_OK;
    if (sodium_memcmp(cur->bytes, prev->bytes, sizeof cur->bytes) == 0)
        return sh_error_set(err, SH_EINVAL, "%s is the same key as %s: set %s to the former key",
                            prev_name, cur_name, prev_name);
    if (cur->id == prev->id || memcmp(cur->kid, prev->kid, sizeof cur->kid) == 0)
        return sh_error_set(err, SH_EINVAL,
                            "%s and %s have the same key id (%u), so sealed secrets could not "
                            "tell them apart: generate another %s with `openssl rand -hex 32`",
                            cur_name, prev_name, (unsigned)cur->id, cur_name);
    return SH_OK;
}

int sh_seal(const sh_key *key, const void *plain, size_t len, const char *ad, sh_buf *out)
{
    if (secret_init())
        return SH_EINTERNAL;
    size_t need = SH_SEAL_OVERHEAD + len;
    int rc = sh_buf_reserve(out, need);
    if (rc)
        return rc;
    unsigned char *p = (unsigned char *)out->data + out->len;
    memcpy(p, SH_SEAL_MAGIC, 4);
    memcpy(p + 4, key->kid, SH_SEAL_KID_BYTES);
    unsigned char *nonce = p + 4 + SH_SEAL_KID_BYTES;
    randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(nonce + 24, &clen, plain, len,
                                               (const unsigned char *)ad, ad ? strlen(ad) : 0, NULL,
                                               nonce, key->bytes);
    out->len += (size_t)(nonce + 24 - p) + (size_t)clen;
    out->data[out->len] = '\0';
    return SH_OK;
}

int sh_seal_v1(const sh_key *key, const void *plain, size_t len, const char *ad, sh_buf *out)
{
    if (secret_init())
        return SH_EINTERNAL;
    int rc = sh_buf_reserve(out, SH_SEAL_V1_OVERHEAD + len);
    if (rc)
        return rc;
    unsigned char *p = (unsigned char *)out->data + out->len;
    p[0] = key->id;
    randombytes_buf(p + 1, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(p + 1 + 24, &clen, plain, len,
                                               (const unsigned char *)ad, ad ? strlen(ad) : 0, NULL,
                                               p + 1, key->bytes);
    out->len += 1 + 24 + (size_t)clen;
    out->data[out->len] = '\0';
    return SH_OK;
}

static bool secret_is_v2(const unsigned char *p, size_t len)
{
    return len >= SH_SEAL_OVERHEAD && memcmp(p, SH_SEAL_MAGIC, 4) == 0;
}

bool sh_seal_is_current(const sh_key *key, const void *blob, size_t len)
{
    const unsigned char *p = blob;
    return key && secret_is_v2(p, len) && memcmp(p + 4, key->kid, SH_SEAL_KID_BYTES) == 0;
}

/* secret_try opens the nonce-and-ciphertext part (n bytes at p) with key,
 * appending the plaintext to out. */
static int secret_try(const sh_key *key, const unsigned char *p, size_t n, const char *ad,
                      sh_buf *out)
{
    size_t clen = n - 24;
    if (sh_buf_reserve(out, clen))
        return SH_ENOMEM;
    unsigned long long plen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *)out->data + out->len, &plen,
                                                   NULL, p + 24, clen, (const unsigned char *)ad,
                                                   ad ? strlen(ad) : 0, p, key->bytes) != 0)
        return SH_EINVAL;
    out->len += (size_t)plen;
    out->data[out->len] = '\0';
    return SH_OK;
}

int sh_open(const sh_key *const *keys, size_t nkeys, const void *blob, size_t len, const char *ad,
            sh_buf *out, sh_error *err)
{
    if (secret_init())
        return sh_error_set(err, SH_EINTERNAL, "libsodium failed to initialise");
    const unsigned char *p = blob;
    if (len < SH_SEAL_V1_OVERHEAD)
        return sh_error_set(err, SH_EPROTO, "sealed secret is truncated (%zu bytes)", len);
    bool tried = false;
    /* Version 2 names its key by 8 bytes. A version 1 blob starts with the
     * magic 1 time in 2^32; if so it fails here and opens as version 1. */
    if (secret_is_v2(p, len)) {
        for (size_t k = 0; k < nkeys; k++) {
            if (!keys[k] || memcmp(keys[k]->kid, p + 4, SH_SEAL_KID_BYTES) != 0)
                continue;
            tried = true;
            int rc = secret_try(keys[k], p + 4 + SH_SEAL_KID_BYTES, len - 4 - SH_SEAL_KID_BYTES, ad,
                                out);
            if (rc == SH_ENOMEM)
                return sh_error_set(err, rc, "out of memory");
            if (rc == SH_OK)
                return SH_OK;
        }
    }
    /* Version 1: every key with the blob's id byte, since two keys share
     * it 1 time in 256. */
    bool v1_tried = false;
    for (size_t k = 0; k < nkeys; k++) {
        if (!keys[k] || keys[k]->id != p[0])
            continue;
        v1_tried = true;
        int rc = secret_try(keys[k], p + 1, len - 1, ad, out);
        if (rc == SH_ENOMEM)
            return sh_error_set(err, rc, "out of memory");
        if (rc == SH_OK)
            return SH_OK;
    }
    if (!tried && !v1_tried) {
        char id[2 * SH_SEAL_KID_BYTES + 1];
        if (secret_is_v2(p, len))
            sodium_bin2hex(id, sizeof id, p + 4, SH_SEAL_KID_BYTES);
        else
            snprintf(id, sizeof id, "%u", (unsigned)p[0]);
        return sh_error_set(err, SH_EINVAL,
                            "secret was sealed with another key (key id %s): set the key that "
                            "sealed it as ENCRYPTION_KEY or ENCRYPTION_KEY_PREVIOUS",
                            id);
    }
    return sh_error_set(err, SH_EINVAL,
                        "secret does not decrypt: wrong ENCRYPTION_KEY, or the data was "
                        "altered or moved to another account");
}

void sh_wipe(void *p, size_t len)
{
    if (p && len)
        sodium_memzero(p, len);
}

int sh_random_hex(char *out, size_t nbytes)
{
    unsigned char raw[64];
    if (nbytes > sizeof raw || secret_init())
        return SH_EINVAL;
    randombytes_buf(raw, nbytes);
    sodium_bin2hex(out, nbytes * 2 + 1, raw, nbytes);
    return SH_OK;
}

void sh_random_bytes(void *out, size_t len)
{
    randombytes_buf(out, len); /* initialises itself when needed */
}

bool sh_secret_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    if (alen == 0)
        return true;
    return sodium_memcmp(a, b, alen) == 0;
}

_Static_assert(sizeof(crypto_generichash_state) <= SH_MAC_STATE_BYTES,
               "sh_key.mac_state must hold libsodium's BLAKE2b state");

void sh_mac(const sh_key *key, const void *data, size_t len, unsigned char mac[SH_MAC_BYTES])
{
    /* The state after the key's block, copied: one compression fewer per
     * MAC. */
    crypto_generichash_state st;
    memcpy(&st, key->mac_state, sizeof st);
    crypto_generichash_update(&st, data, len);
    crypto_generichash_final(&st, mac, SH_MAC_BYTES);
    sodium_memzero(&st, sizeof st);
}

bool sh_mac_verify(const sh_key *key, const void *data, size_t len,
                   const unsigned char mac[SH_MAC_BYTES])
{
    unsigned char want[SH_MAC_BYTES];
    sh_mac(key, data, len, want);
    bool ok = crypto_verify_32(want, mac) == 0; /* constant time */
    sodium_memzero(want, sizeof want);
    return ok;
}

/* The key of sh_hash: random, made once per process, never shown. */
static unsigned char secret_hash_key[crypto_shorthash_KEYBYTES];
static pthread_once_t secret_hash_once = PTHREAD_ONCE_INIT;

static void secret_hash_init(void)
{
    /* Should libsodium not start, randombytes still reads the system's
     * generator (it initialises itself on first use). */
    (void)secret_init();
    crypto_shorthash_keygen(secret_hash_key);
}

uint64_t sh_hash(const void *data, size_t len)
{
    pthread_once(&secret_hash_once, secret_hash_init);
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, data, len, secret_hash_key);
    uint64_t h;
    memcpy(&h, out, sizeof h);
    return h;
}
