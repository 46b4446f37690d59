/* test_secret.c - sealing secrets: round trips, wrong keys, wrong owners,
 * tampering, key parsing and rotation; version 1 blobs and colliding key ids; keyed BLAKE2b MACs
 * against known values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "shared/secret.h"
#include "shared/util.h"

static bool contains(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return true;
    return false;
}

#define K1 "8f3a0c5e7b9d1f2a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a"
#define K2 "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef"

static void test_round_trip_and_binding(void **state)
{
    sh_key k1, k2;
    sh_error err;
    assert_int_equal(sh_key_parse(K1, "ENCRYPTION_KEY", &k1, &err), SH_OK);
    assert_int_equal(sh_key_parse(K2, "ENCRYPTION_KEY", &k2, &err), SH_OK);
    sh_buf blob, plain;
    sh_buf_init(&blob);
    sh_buf_init(&plain);
    const char *pw = "hunter2-correct-horse";
    assert_int_equal(sh_seal(&k1, pw, strlen(pw), "acct-1", &blob), SH_OK);
    assert_int_equal(blob.len, strlen(pw) + SH_SEAL_OVERHEAD);
    assert_false(contains(blob.data, blob.len, pw));
    assert_memory_equal(blob.data, SH_SEAL_MAGIC, 4);
    assert_true(sh_seal_is_current(&k1, blob.data, blob.len));
    assert_false(sh_seal_is_current(&k2, blob.data, blob.len));

    const sh_key *keys[] = {&k1};
    assert_int_equal(sh_open(keys, 1, blob.data, blob.len, "acct-1", &plain, &err), SH_OK);
    assert_string_equal(plain.data, pw);

    /* Another account's id does not open it. */
    sh_buf_reset(&plain);
    assert_int_equal(sh_open(keys, 1, blob.data, blob.len, "acct-2", &plain, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "does not decrypt"));

    /* A wrong key is named as such. */
    const sh_key *wrong[] = {&k2};
    assert_int_equal(sh_open(wrong, 1, blob.data, blob.len, "acct-1", &plain, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "another key"));

    /* Tampering is detected. */
    blob.data[blob.len - 1] ^= 1;
    assert_int_equal(sh_open(keys, 1, blob.data, blob.len, "acct-1", &plain, &err), SH_EINVAL);
    assert_int_equal(sh_open(keys, 1, blob.data, 10, "acct-1", &plain, &err), SH_EPROTO);

    /* Rotation: a blob of the old key opens when both keys are given. */
    sh_buf_reset(&blob);
    sh_buf_reset(&plain);
    assert_int_equal(sh_seal(&k2, pw, strlen(pw), "acct-1", &blob), SH_OK);
    const sh_key *both[] = {&k1, &k2};
    assert_int_equal(sh_open(both, 2, blob.data, blob.len, "acct-1", &plain, &err), SH_OK);
    assert_string_equal(plain.data, pw);
    sh_buf_fini(&blob);
    sh_buf_fini(&plain);
}

/* collide_with finds a key whose one-byte (version 1) id equals k's, by
 * trying keys in turn: about 256 tries. */
static void collide_with(const sh_key *k, char hex[65], sh_key *out)
{
    sh_error err;
    for (unsigned i = 0; i < 100000; i++) {
        snprintf(hex, 65, "%064x", i + 1);
        assert_int_equal(sh_key_parse(hex, "K", out, &err), SH_OK);
        if (out->id == k->id && memcmp(out->bytes, k->bytes, SH_KEY_BYTES) != 0)
            return;
    }
    fail_msg("no colliding key found");
}

/* Blobs sealed by earlier releases (one key-id byte) still open, also
 * when two keys share that byte: authentication tells which sealed it. */
static void test_version_1_blobs_open(void **state)
{
    sh_key k1, k2, kc;
    char hex[65];
    sh_error err;
    assert_int_equal(sh_key_parse(K1, "ENCRYPTION_KEY", &k1, &err), SH_OK);
    assert_int_equal(sh_key_parse(K2, "ENCRYPTION_KEY", &k2, &err), SH_OK);
    collide_with(&k1, hex, &kc);
    assert_int_equal(kc.id, k1.id);
    sh_buf blob, plain;
    sh_buf_init(&blob);
    sh_buf_init(&plain);
    const char *pw = "old-format-password";
    assert_int_equal(sh_seal_v1(&k1, pw, strlen(pw), "acct-1", &blob), SH_OK);
    assert_int_equal(blob.len, strlen(pw) + SH_SEAL_V1_OVERHEAD);
    assert_int_equal((unsigned char)blob.data[0], k1.id);
    assert_false(sh_seal_is_current(&k1, blob.data, blob.len));
    const sh_key *only1[] = {&k1}, *only2[] = {&k2};
    assert_int_equal(sh_open(only1, 1, blob.data, blob.len, "acct-1", &plain, &err), SH_OK);
    assert_string_equal(plain.data, pw);
    sh_buf_reset(&plain);
    assert_int_equal(sh_open(only2, 1, blob.data, blob.len, "acct-1", &plain, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "another key"));
    /* The colliding key is tried first, fails authentication, and the
     * right one opens it. */
    const sh_key *ambiguous[] = {&kc, &k1};
    sh_buf_reset(&plain);
    assert_int_equal(sh_open(ambiguous, 2, blob.data, blob.len, "acct-1", &plain, &err), SH_OK);
    assert_string_equal(plain.data, pw);
    /* A version 1 blob of the colliding key, with k1 first. */
    sh_buf_reset(&blob);
    sh_buf_reset(&plain);
    assert_int_equal(sh_seal_v1(&kc, pw, strlen(pw), "acct-1", &blob), SH_OK);
    const sh_key *ambiguous2[] = {&k1, &kc};
    assert_int_equal(sh_open(ambiguous2, 2, blob.data, blob.len, "acct-1", &plain, &err), SH_OK);
    assert_string_equal(plain.data, pw);
    sh_buf_reset(&plain);
    assert_int_equal(sh_open(only1, 1, blob.data, blob.len, "acct-1", &plain, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "does not decrypt"));
    /* Keys that collide in one byte still differ in the 8-byte id. */
    assert_memory_not_equal(k1.kid, kc.kid, SH_SEAL_KID_BYTES);
    sh_buf_fini(&blob);
    sh_buf_fini(&plain);
}

/* Start-up refuses a previous key equal to the current one, or one whose
 * key id collides with it; distinct ids pass. */
static void test_colliding_keys_refused(void **state)
{
    sh_key k1, k2, kc;
    char hex[65];
    sh_error err;
    assert_int_equal(sh_key_parse(K1, "ENCRYPTION_KEY", &k1, &err), SH_OK);
    assert_int_equal(sh_key_parse(K2, "ENCRYPTION_KEY", &k2, &err), SH_OK);
    assert_int_not_equal(k1.id, k2.id);
    assert_int_equal(sh_key_pair_check(&k1, "ENCRYPTION_KEY", &k2, "ENCRYPTION_KEY_PREVIOUS", &err),
                     SH_OK);
    assert_int_equal(
        sh_key_pair_check(&k1, "ENCRYPTION_KEY", NULL, "ENCRYPTION_KEY_PREVIOUS", &err), SH_OK);
    collide_with(&k1, hex, &kc);
    assert_int_equal(sh_key_pair_check(&k1, "ENCRYPTION_KEY", &kc, "ENCRYPTION_KEY_PREVIOUS", &err),
                     SH_EINVAL);
    assert_non_null(
        strstr(err.msg, "ENCRYPTION_KEY and ENCRYPTION_KEY_PREVIOUS have the same key id"));
    assert_non_null(strstr(err.msg, "generate another ENCRYPTION_KEY"));
    assert_int_equal(sh_key_pair_check(&kc, "ENCRYPTION_KEY", &k1, "ENCRYPTION_KEY_PREVIOUS", &err),
                     SH_EINVAL);
    sh_key same;
    assert_int_equal(sh_key_parse(K1, "ENCRYPTION_KEY_PREVIOUS", &same, &err), SH_OK);
    assert_int_equal(
        sh_key_pair_check(&k1, "ENCRYPTION_KEY", &same, "ENCRYPTION_KEY_PREVIOUS", &err),
        SH_EINVAL);
    assert_non_null(strstr(err.msg, "ENCRYPTION_KEY_PREVIOUS is the same key as ENCRYPTION_KEY"));
}

static void test_key_parsing(void **state)
{
    sh_key k;
    sh_error err;
    assert_int_equal(sh_key_parse("", "ENCRYPTION_KEY", &k, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "openssl rand -hex 32"));
    assert_int_equal(sh_key_parse("abcd", "ENCRYPTION_KEY", &k, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "got 4 characters"));
    char bad[65];
    memcpy(bad, K1, 65);
    bad[10] = 'g';
    assert_int_equal(sh_key_parse(bad, "ENCRYPTION_KEY", &k, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "character 11"));
    assert_int_equal(sh_key_parse(K1 "00", "ENCRYPTION_KEY", &k, &err), SH_EINVAL);
}

static void test_random_and_compare(void **state)
{
    char a[33], b[33];
    assert_int_equal(sh_random_hex(a, 16), SH_OK);
    assert_int_equal(sh_random_hex(b, 16), SH_OK);
    assert_int_equal(strlen(a), 32);
    assert_string_not_equal(a, b);
    assert_true(sh_secret_equal("abc", 3, "abc", 3));
    assert_false(sh_secret_equal("abc", 3, "abd", 3));
    assert_false(sh_secret_equal("abc", 3, "abcd", 4));
}

/* test_mac: sh_mac, which starts from the state sh_key_parse keeps, gives
 * keyed BLAKE2b-256 (values from Python's hashlib.blake2b(data, key=key,
 * digest_size=32)), and sh_mac_verify
 * refuses any other MAC or data. */
static void test_mac(void **state)
{
    (void)state;
    sh_key k;
    sh_error err;
    assert_int_equal(
        sh_key_parse("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "K", &k,
                     &err),
        SH_OK);
    char x200[201];
    memset(x200, 'x', 200);
    x200[200] = '\0';
    static const char *const want[] = {
        "4e51e7a913fc80137da52880fecca175bf81e117d5c68126dc2774033517ea0d",
        "d63a32d3e44738d7907f964316c241adaba0abfeabc32349677578a15a203f7f",
        "2fa412acbc087d89e1ab1af7fe229fef3aa4f6a4f5acb30be8f84916bae680f6",
    };
    const char *data[] = {"", "abc", x200};
    for (size_t i = 0; i < 3; i++) {
        unsigned char mac[SH_MAC_BYTES];
        sh_mac(&k, data[i], strlen(data[i]), mac);
        char hex[2 * SH_MAC_BYTES + 1];
        for (size_t j = 0; j < SH_MAC_BYTES; j++)
            snprintf(hex + 2 * j, 3, "%02x", mac[j]);
        assert_string_equal(hex, want[i]);
        /* The kept state is not used up by a MAC. */
        assert_true(sh_mac_verify(&k, data[i], strlen(data[i]), mac));
        mac[SH_MAC_BYTES - 1] ^= 1;
        assert_false(sh_mac_verify(&k, data[i], strlen(data[i]), mac));
        mac[SH_MAC_BYTES - 1] ^= 1;
        assert_false(sh_mac_verify(&k, "abd", 3, mac));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_binding), cmocka_unit_test(test_version_1_blobs_open),
        cmocka_unit_test(test_colliding_keys_refused), cmocka_unit_test(test_key_parsing),
        cmocka_unit_test(test_random_and_compare),     cmocka_unit_test(test_mac),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
