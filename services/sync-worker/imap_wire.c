/* imap_wire.c - composing IMAP commands byte for byte (see imap_wire.h).
 * The grammar's rules this follows, from RFC 3501 section 9:
 *   astring     = 1*ASTRING-CHAR / string
 *   ASTRING-CHAR = ATOM-CHAR / "]"; ATOM-CHAR = any CHAR except "(" ")"
 *                 "{" SP CTL "%" "*" DQUOTE "\" "]"
 *   quoted      = DQUOTE *QUOTED-CHAR DQUOTE; QUOTED-CHAR = any 7-bit
 *                 TEXT-CHAR (no CR, LF) with DQUOTE and "\" escaped by "\"
 *   literal     = "{" number ["+"] "}" CRLF *CHAR8 (LITERAL+, RFC 7888)
 *   sequence-set = (seq-number / seq-range) *("," sequence-set) */
#include "imap_wire.h"

#include <stdio.h>
#include <string.h>

#include "shared/err.h"

void sync_wire_init(sync_wire *w, bool lit_plus)
{
    memset(w, 0, sizeof *w);
    sh_buf_init(&w->buf);
    w->lit_plus = lit_plus;
}

void sync_wire_fini(sync_wire *w)
{
    sh_buf_fini(&w->buf);
}

static void wire_fail(sync_wire *w, int code, const char *why)
{
    if (w->err)
        return;
    w->err = code;
    w->why = why;
}

static void wire_append(sync_wire *w, const void *data, size_t len)
{
    if (!w->err && sh_buf_append(&w->buf, data, len))
        wire_fail(w, SH_ENOMEM, "out of memory");
}

void sync_wire_raw(sync_wire *w, const char *text)
{
    wire_append(w, text, strlen(text));
}

void sync_wire_num(sync_wire *w, uint64_t n)
{
    char s[24];
    int len = snprintf(s, sizeof s, "%llu", (unsigned long long)n);
    wire_append(w, s, (size_t)len);
}

static bool wire_astring_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && !strchr("(){%*\"\\", c);
}

/* wire_quoted_ok tells whether a quoted string can carry the bytes. */
static bool wire_quoted_ok(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] == 0 || p[i] > 0x7f || p[i] == '\r' || p[i] == '\n')
            return false;
    return true;
}

static void wire_string(sync_wire *w, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    if (memchr(s, '\0', len)) {
        wire_fail(w, SH_EINVAL, "a NUL byte cannot be sent to an IMAP server");
        return;
    }
    if (wire_quoted_ok(p, len)) {
        wire_append(w, "\"", 1);
        size_t run = 0;
        for (size_t i = 0; i < len; i++) {
            if (p[i] != '"' && p[i] != '\\')
                continue;
            wire_append(w, s + run, i - run);
            wire_append(w, "\\", 1);
            run = i;
        }
        wire_append(w, s + run, len - run);
        wire_append(w, "\"", 1);
        return;
    }
    char head[32];
    int n = snprintf(head, sizeof head, "{%zu%s}\r\n", len, w->lit_plus ? "+" : "");
    wire_append(w, head, (size_t)n);
    if (!w->lit_plus && !w->err) {
        if (w->nlits == SYNC_WIRE_LITS) {
            wire_fail(w, SH_EINVAL, "too many literals in one IMAP command");
            return;
        }
        w->lits[w->nlits++] = w->buf.len;
    }
    wire_append(w, s, len);
}

void sync_wire_string(sync_wire *w, const char *s, size_t len)
{
    wire_string(w, s, len);
}

void sync_wire_astring(sync_wire *w, const char *s, size_t len)
{
    bool atom = len > 0;
    for (size_t i = 0; atom && i < len; i++)
        atom = wire_astring_char((unsigned char)s[i]);
    if (atom)
        wire_append(w, s, len);
    else
        wire_string(w, s, len);
}

void sync_wire_mailbox(sync_wire *w, const char *utf8)
{
    sh_buf enc;
    sh_buf_init(&enc);
    int rc = sync_mutf7_encode(&enc, utf8, strlen(utf8));
    if (rc)
        wire_fail(w, rc,
                  rc == SH_ENOMEM ? "out of memory" : "the folder name is not valid UTF-8 text");
    else
        sync_wire_astring(w, enc.data ? enc.data : "", enc.len);
    sh_buf_fini(&enc);
}

void sync_wire_set(sync_wire *w, const uint32_t *uids, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j + 1 < n && uids[j + 1] == uids[j] + 1)
            j++;
        if (i > 0)
            wire_append(w, ",", 1);
        sync_wire_num(w, uids[i]);
        if (j > i) {
            wire_append(w, ":", 1);
            sync_wire_num(w, uids[j]);
        }
        i = j + 1;
    }
}

/* Modified base64 (RFC 3501 5.1.3): "," in place of "/", no padding. */
static const char wire_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* wire_utf8_next decodes one code point of s[*i..len); -1 when invalid. */
static long wire_utf8_next(const unsigned char *s, size_t len, size_t *i)
{
    unsigned char c = s[*i];
    size_t need = c < 0x80             ? 0
                  : (c & 0xE0) == 0xC0 ? 1
                  : (c & 0xF0) == 0xE0 ? 2
                  : (c & 0xF8) == 0xF0 ? 3
                                       : 9;
    if (need == 9 || *i + need >= len)
        return -1;
    long cp = need == 0 ? c : need == 1 ? (c & 0x1F) : need == 2 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k <= need; k++) {
        if ((s[*i + k] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[*i + k] & 0x3F);
    }
    static const long min[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min[need] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *i += need + 1;
    return cp;
}

int sync_mutf7_encode(sh_buf *out, const char *utf8, size_t len)
{
    const unsigned char *s = (const unsigned char *)utf8;
    size_t i = 0;
    while (i < len) {
        if (s[i] >= 0x20 && s[i] < 0x7f) {
            if (sh_buf_append(out, s + i, 1) || (s[i] == '&' && sh_buf_append(out, "-", 1)))
                return SH_ENOMEM;
            i++;
            continue;
        }
        /* A run of characters outside printable ASCII, as UTF-16 in base64. */
        if (sh_buf_append(out, "&", 1))
            return SH_ENOMEM;
        unsigned long bits = 0;
        int nbits = 0;
        while (i < len && !(s[i] >= 0x20 && s[i] < 0x7f)) {
            long cp = wire_utf8_next(s, len, &i);
            if (cp < 0x20 || cp == 0x7f)
                return SH_EINVAL;
            unsigned units[2];
            int nu = 0;
            if (cp >= 0x10000) {
                cp -= 0x10000;
                units[nu++] = 0xD800 | (unsigned)(cp >> 10);
                units[nu++] = 0xDC00 | (unsigned)(cp & 0x3FF);
            } else {
                units[nu++] = (unsigned)cp;
            }
            for (int u = 0; u < nu; u++) {
                bits = (bits << 16) | units[u];
                nbits += 16;
                while (nbits >= 6) {
                    nbits -= 6;
                    if (sh_buf_append(out, &wire_b64[(bits >> nbits) & 0x3F], 1))
                        return SH_ENOMEM;
                }
                bits &= (1UL << nbits) - 1;
            }
        }
        if (nbits > 0 && sh_buf_append(out, &wire_b64[(bits << (6 - nbits)) & 0x3F], 1))
            return SH_ENOMEM;
        if (sh_buf_append(out, "-", 1))
            return SH_ENOMEM;
    }
    return SH_OK;
}

static int wire_b64_value(unsigned char c)
{
    const char *p = c ? strchr(wire_b64, c) : NULL;
    return p ? (int)(p - wire_b64) : -1;
}

static int wire_put_utf8(sh_buf *out, unsigned long cp)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | (cp >> 18));
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return sh_buf_append(out, b, n) ? SH_ENOMEM : SH_OK;
}

int sync_mutf7_decode(sh_buf *out, const char *name, size_t len)
{
    const unsigned char *s = (const unsigned char *)name;
    size_t i = 0;
    while (i < len) {
        if (s[i] < 0x20 || s[i] >= 0x7f)
            return SH_EINVAL;
        if (s[i] != '&') {
            if (sh_buf_append(out, s + i, 1))
                return SH_ENOMEM;
            i++;
            continue;
        }
        i++;
        if (i < len && s[i] == '-') {
            if (sh_buf_append(out, "&", 1))
                return SH_ENOMEM;
            i++;
            continue;
        }
        unsigned long bits = 0, high = 0;
        int nbits = 0;
        size_t start = i;
        while (i < len && s[i] != '-') {
            int v = wire_b64_value(s[i]);
            if (v < 0)
                return SH_EINVAL;
            bits = (bits << 6) | (unsigned long)v;
            nbits += 6;
            i++;
            if (nbits < 16)
                continue;
            nbits -= 16;
            unsigned long unit = (bits >> nbits) & 0xFFFF;
            bits &= (1UL << nbits) - 1;
            if (unit >= 0xD800 && unit <= 0xDBFF) {
                if (high)
                    return SH_EINVAL;
                high = unit;
                continue;
            }
            unsigned long cp = unit;
            if (unit >= 0xDC00 && unit <= 0xDFFF) {
                if (!high)
                    return SH_EINVAL;
                cp = 0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00);
                high = 0;
            } else if (high) {
                return SH_EINVAL;
            }
            if (cp < 0x20 || cp == 0x7f)
                return SH_EINVAL; /* a control character, NUL included */
            if (wire_put_utf8(out, cp))
                return SH_ENOMEM;
        }
        /* A run ends with "-", holds something, and leaves only zero
         * padding bits. */
        if (i == len || i == start || high || nbits >= 6 || bits != 0)
            return SH_EINVAL;
        i++;
    }
    return SH_OK;
}
