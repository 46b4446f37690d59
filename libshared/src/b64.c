/* b64.c - standard base64 (RFC 4648). */
#include "shared/b64.h"

#include "shared/err.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int sh_b64_encode(const void *data, size_t len, sh_buf *out)
{
    const unsigned char *p = data;
    if (sh_buf_reserve(out, (len + 2) / 3 * 4 + 1))
        return SH_ENOMEM;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        char q[4] = {b64_alphabet[(v >> 18) & 63], b64_alphabet[(v >> 12) & 63],
                     i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=',
                     i + 2 < len ? b64_alphabet[v & 63] : '='};
        if (sh_buf_append(out, q, 4))
            return SH_ENOMEM;
    }
    return SH_OK;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

int sh_b64_decode(const char *s, size_t len, sh_buf *out)
{
    while (len > 0 && s[len - 1] == '=')
        len--;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(s[i]);
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
