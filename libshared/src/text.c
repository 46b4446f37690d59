/* text.c - strict UTF-8 cleaning and the bound of error text (text.h). */
#include "shared/text.h"

#include <stdbool.h>
#include <string.h>

#include "shared/err.h"

static const char text_fffd[] = "\xEF\xBF\xBD"; /* U+FFFD REPLACEMENT CHARACTER */

/* text_seq measures the UTF-8 sequence at p (len > 0 bytes left): its
 * length when it is a valid character, else 0 with *bad the length of its
 * maximal subpart (what stands for one U+FFFD). */
static size_t text_seq(const unsigned char *p, size_t len, size_t *bad)
{
    unsigned char c = p[0];
    *bad = 1;
    if (c < 0x80)
        return 1;
    /* The lead byte fixes the length and the range of the second byte;
     * the others are 80..BF. */
    size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80; /* no overlong form */
        hi = c == 0xED ? 0x9F : 0xBF; /* no surrogate */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : 0x80; /* no overlong form */
        hi = c == 0xF4 ? 0x8F : 0xBF; /* nothing past U+10FFFF */
    }
    if (n == 0)
        return 0; /* a continuation byte, C0, C1 or F5..FF */
    size_t k = 1;
    for (; k < n && k < len; k++) {
        unsigned char b = p[k];
        if (k == 1 ? (b < lo || b > hi) : (b & 0xC0) != 0x80)
            break;
    }
    *bad = k;
    return k == n ? n : 0;
}

/* text_next reads one character or one invalid sequence at p (len > 0
 * bytes left): returns how many bytes it takes, and sets *emit and *elen to
 * what stands for it (p itself, a space, or U+FFFD). */
static size_t text_next(const unsigned char *p, size_t len, const char **emit, size_t *elen)
{
    size_t bad, n = text_seq(p, len, &bad);
    bool control = (n == 1 && (p[0] < 0x20 || p[0] == 0x7f)) ||
                   (n == 2 && p[0] == 0xC2 && p[1] < 0xA0); /* C0, DEL, C1 */
    if (n == 0) {
        *emit = text_fffd;
        *elen = 3;
        return bad;
    }
    *emit = control ? " " : (const char *)p;
    *elen = control ? 1 : n;
    return n;
}

bool sh_utf8_valid(const char *s, size_t len, size_t *bad)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, sub;
    while (i < len) {
        size_t n = text_seq(p + i, len - i, &sub);
        if (n == 0) {
            if (bad)
                *bad = i;
            return false;
        }
        i += n;
    }
    return true;
}

int sh_utf8_clean(sh_buf *out, const char *s, size_t len, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, added = 0;
    while (i < len) {
        /* A run of printable ASCII goes in one piece. */
        size_t run = i;
        while (run < len && run - i < max - added && p[run] >= 0x20 && p[run] < 0x7f)
            run++;
        if (run > i) {
            if (sh_buf_append(out, p + i, run - i))
                return SH_ENOMEM;
            added += run - i;
            i = run;
            continue;
        }
        const char *emit;
        size_t elen;
        size_t used = text_next(p + i, len - i, &emit, &elen);
        if (elen > max - added)
            break;
        if (sh_buf_append(out, emit, elen))
            return SH_ENOMEM;
        added += elen;
        i += used;
    }
    return SH_OK;
}

size_t sh_text_bound(char *out, size_t cap, const char *s, size_t len)
{
    size_t max = cap - 1 < SH_TEXT_ERROR_MAX ? cap - 1 : SH_TEXT_ERROR_MAX;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0;
    while (i < len) {
        const char *emit;
        size_t elen;
        size_t used = text_next(p + i, len - i, &emit, &elen);
        if (elen > max - o)
            break;
        memmove(out + o, emit, elen);
        o += elen;
        i += used;
    }
    out[o] = '\0';
    return o;
}
