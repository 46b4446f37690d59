/* secret.h - encryption of secrets at rest (XChaCha20-Poly1305 AEAD), key
 * parsing, message authentication (keyed BLAKE2b), randomness and constant-time comparison.
 *
 * A sealed secret (version 2) is: the 4 bytes "sb2:", an 8-byte key id, a
 * 24-byte random nonce, then the ciphertext with its 16-byte tag. The key
 * id is a keyed hash of a fixed label under the key, so a blob names the
 * key that sealed it and ENCRYPTION_KEY can be rotated: open with the
 * current key or the previous one. Version 1 blobs (one key-id byte, the
 * first byte of an unkeyed hash of the key, then nonce and ciphertext)
 * still open: one byte collides between two keys 1 time in 256, so every
 * key with that byte is tried and authentication tells which sealed it.
 * The associated data (the account id) binds a blob to its owner: moved to
 * another account, it no longer opens. */
#ifndef SHARED_SECRET_H
#define SHARED_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/buf.h"
#include "shared/err.h"

#define SH_KEY_BYTES        32
#define SH_SEAL_MAGIC       "sb2:"
#define SH_SEAL_KID_BYTES   8
#define SH_SEAL_OVERHEAD    (4 + SH_SEAL_KID_BYTES + 24 + 16)
#define SH_SEAL_V1_OVERHEAD (1 + 24 + 16)

#define SH_MAC_STATE_BYTES 512

typedef struct sh_key {
    unsigned char bytes[SH_KEY_BYTES];
    uint8_t id;                           /* one byte: version 1 blobs, and the gateway's tokens */
    unsigned char kid[SH_SEAL_KID_BYTES]; /* version 2 blobs */
    /* Keyed BLAKE2b-256 after the key's block (opaque), set by
     * sh_key_parse: each sh_mac starts from it rather than hashing the key
     * again. */
    unsigned char mac_state[SH_MAC_STATE_BYTES];
} sh_key;

/* sh_key_parse reads 64 hex characters (as `openssl rand -hex 32` prints).
 * name is the setting, for the error message. */
int sh_key_parse(const char *hex, const char *name, sh_key *out, sh_error *err);

/* sh_key_pair_check refuses (SH_EINVAL, naming both settings) a previous
 * key that is the current one, or whose key id of either version equals
 * the current key's: with one-byte ids alike, software reading only
 * version 1 blobs could not tell the keys apart. prev may be NULL. */
int sh_key_pair_check(const sh_key *cur, const char *cur_name, const sh_key *prev,
                      const char *prev_name, sh_error *err);

/* sh_seal appends the sealed form (version 2) of plain to out. */
int sh_seal(const sh_key *key, const void *plain, size_t len, const char *ad, sh_buf *out);

/* sh_seal_v1 appends the version 1 form of plain to out, as releases
 * before version 2 sealed: for tests of reading and rotating old blobs. */
int sh_seal_v1(const sh_key *key, const void *plain, size_t len, const char *ad, sh_buf *out);

/* sh_open appends the plaintext of blob to out, trying each of nkeys keys
 * whose id matches the blob's. Errors name what went wrong: a blob sealed
 * with a key not given, or one that fails authentication (wrong key, wrong
 * account, tampered). */
int sh_open(const sh_key *const *keys, size_t nkeys, const void *blob, size_t len, const char *ad,
            sh_buf *out, sh_error *err);

/* sh_seal_is_current reports whether blob is a version 2 blob naming key:
 * nothing to re-seal when rotating to key (sh_open still decides whether
 * it opens). */
bool sh_seal_is_current(const sh_key *key, const void *blob, size_t len);

#define SH_MAC_BYTES 32

/* sh_mac writes the MAC of data under key (from sh_key_parse) to mac:
 * keyed BLAKE2b with a 32-byte output (libsodium's crypto_generichash with
 * the key), a PRF by design and about twice as fast here as HMAC-SHA-256
 * on short messages such as tokens. */
void sh_mac(const sh_key *key, const void *data, size_t len, unsigned char mac[SH_MAC_BYTES]);

/* sh_mac_verify reports whether mac is sh_mac of data under key,
 * comparing in time independent of mac's bytes. */
bool sh_mac_verify(const sh_key *key, const void *data, size_t len,
                   const unsigned char mac[SH_MAC_BYTES]);

/* sh_random_hex and sh_secret_equal are declared in util.h. */

/* sh_random_bytes fills out with len bytes of cryptographic randomness. */
void sh_random_bytes(void *out, size_t len);
/* sh_hash is SipHash-2-4 (libsodium's crypto_shorthash) of data under a
 * random key made once per process: the hash of every hash table indexed
 * by what comes from outside (JSON and msgpack map keys, stream ids), so
 * that no one can choose keys that collide and make the table quadratic.
 * Thread-safe; values differ from one process to the next. */
uint64_t sh_hash(const void *data, size_t len);

/* sh_wipe overwrites memory that held a secret. */
void sh_wipe(void *p, size_t len);

#endif
