/* b64.c - base64 (RFC 4648): the standard alphabet with padding, and the
 * URL-safe one without. */
#include "shared/b64.h"

#include <stdbool.h>

#include "shared/err.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* b64_put appends the encoding of len bytes in alphabet alpha, padded to
 * a multiple of four characters or not. */
static int b64_put(const char *alpha, bool pad, const void *data, size_t len, sh_buf *out)
{
    const unsigned char *p = data;
    if (sh_buf_reserve(out, (len + 2) / 3 * 4 + 1))
        return SH_ENOMEM;
    for (size_t i = 0; i < len; i += 3) {
        size_t k = len - i >= 3 ? 3 : len - i;
        unsigned v = (unsigned)p[i] << 16;
        if (k > 1)
            v |= (unsigned)p[i + 1] << 8;
        if (k > 2)
            v |= p[i + 2];
        char q[4] = {alpha[(v >> 18) & 63], alpha[(v >> 12) & 63],
                     k > 1 ? alpha[(v >> 6) & 63] : '=', k > 2 ? alpha[v & 63] : '='};
        if (sh_buf_append(out, q, pad ? 4 : k + 1))
            return SH_ENOMEM;
    }
    return SH_OK;
}

int sh_b64_encode(const void *data, size_t len, sh_buf *out)
{
    return b64_put(b64_alphabet, true, data, len, out);
}

int sh_b64url_encode(const void *data, size_t len, sh_buf *out)
{
    return b64_put(b64_url, false, data, len, out);
}

/* b64_value is the 6 bits of c in the standard alphabet or (url) the
 * URL-safe one; -1 for any other character. */
static int b64_value(char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (url)
        return c == '-' ? 62 : c == '_' ? 63 : -1;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

int sh_b64_decode(const char *s, size_t len, sh_buf *out)
{
    while (len > 0 && s[len - 1] == '=')
        len--;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(s[i], false);
        if (v < 0)
            return SH_EINVAL;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            unsigned char byte = (unsigned char)(acc >> bits);
            if (sh_buf_append(out, &byte, 1))
                return SH_ENOMEM;
        }
    }
    return SH_OK;
}

bool sh_b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap, size_t *outlen)
{
    if (n % 4 == 1)
        return false;
    unsigned acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value(s[i], true);
        if (v < 0)
            return false;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap)
                return false;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return false;
    *outlen = o;
    return true;
}
