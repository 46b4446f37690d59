/* token.c - scoped tokens: their scopes, minting and verification (the
 * format is described in gw_token.h). Verification costs one MAC over the
 * encoded payload and one pass over it, well under 2 us (tests/bench/token). */
#include "gw_token.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "shared/b64.h"
#include "shared/util.h"

#define TOKEN_VERSION '1'
#define TOKEN_MAC_B64 43 /* 32 bytes in base64url, unpadded */

static const struct {
    const char *name;
    int kind;
    bool has_id;
} token_kinds[] = {
    {"progress", GW_SCOPE_PROGRESS, true},
    {"job", GW_SCOPE_JOB, true},
    {"account", GW_SCOPE_ACCOUNT, true},
    {"accounts", GW_SCOPE_ACCOUNTS, false},
    {"queue", GW_SCOPE_QUEUE, false},
    {"events", GW_SCOPE_EVENTS, false},
    {NULL, 0, false},
};

int gw_scope_parse(const char *s, size_t len, gw_scope *out)
{
    memset(out, 0, sizeof *out);
    const char *colon = memchr(s, ':', len);
    size_t klen = colon ? (size_t)(colon - s) : len;
    for (size_t i = 0; token_kinds[i].name; i++) {
        if (strlen(token_kinds[i].name) != klen || memcmp(token_kinds[i].name, s, klen) != 0)
            continue;
        if (!token_kinds[i].has_id)
            return colon ? SH_EINVAL : (out->kind = token_kinds[i].kind, SH_OK);
        if (!colon)
            return SH_EINVAL;
        size_t idlen = len - klen - 1;
        if (!sh_id_valid(colon + 1, idlen))
            return SH_EINVAL;
        out->kind = token_kinds[i].kind;
        memcpy(out->id, colon + 1, idlen);
        out->id[idlen] = '\0';
        return SH_OK;
    }
    return SH_EINVAL;
}

void gw_scope_format(int kind, const char *id, char *out, size_t outlen)
{
    const char *name = "none";
    bool has_id = false;
    for (size_t i = 0; token_kinds[i].name; i++)
        if (token_kinds[i].kind == kind) {
            name = token_kinds[i].name;
            has_id = token_kinds[i].has_id;
        }
    if (has_id)
        snprintf(out, outlen, "%s:%s", name, id ? id : "");
    else
        snprintf(out, outlen, "%s", name);
}

int gw_token_mint(const sh_key *key, const gw_token *t, sh_buf *out)
{
    if (t->n == 0 || t->n > GW_TOKEN_SCOPES_MAX)
        return SH_EINVAL;
    sh_buf payload;
    sh_buf_init(&payload);
    int rc =
        sh_buf_printf(&payload, "%c,%u,%" PRId64, TOKEN_VERSION, (unsigned)key->id, t->expires_ms);
    for (size_t i = 0; rc == SH_OK && i < t->n; i++) {
        char s[16 + SH_ID_MAX];
        gw_scope_format(t->scope[i].kind, t->scope[i].id, s, sizeof s);
        rc = sh_buf_printf(&payload, ",%s", s);
    }
    size_t start = out->len;
    if (rc == SH_OK)
        rc = sh_b64url_encode(payload.data, payload.len, out);
    sh_buf_fini(&payload);
    if (rc != SH_OK)
        return rc;
    unsigned char mac[SH_MAC_BYTES];
    sh_mac(key, out->data + start, out->len - start, mac);
    if ((rc = sh_buf_append(out, ".", 1)) != SH_OK)
        return rc;
    return sh_b64url_encode(mac, sizeof mac, out);
}

/* token_int reads a decimal field of s..end up to a comma; false if none. */
static bool token_int(const char **s, const char *end, int64_t max, int64_t *out)
{
    const char *p = *s;
    int64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        if (v > (max - (*p - '0')) / 10)
            return false;
        v = v * 10 + (*p - '0');
        p++;
    }
    if (p == *s || (p - *s > 1 && **s == '0') || p >= end || *p != ',')
        return false;
    *s = p + 1;
    *out = v;
    return true;
}

/* token_decode reads the payload's fields after its MAC was found good. */
static bool token_decode(const char *p, size_t n, gw_token *out)
{
    const char *end = p + n;
    int64_t kid;
    if (n < 2 || p[0] != TOKEN_VERSION || p[1] != ',')
        return false;
    p += 2;
    if (!token_int(&p, end, 255, &kid) || !token_int(&p, end, INT64_MAX, &out->expires_ms))
        return false;
    out->n = 0;
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        if (out->n == GW_TOKEN_SCOPES_MAX ||
            gw_scope_parse(p, (size_t)(stop - p), &out->scope[out->n]) != SH_OK)
            return false;
        out->n++;
        p = stop + 1;
    }
    return out->n > 0;
}

int gw_token_verify(const sh_key *const *keys, size_t nkeys, const char *s, size_t len,
                    int64_t now_ms, gw_token *out)
{
    out->n = 0;
    if (len > GW_TOKEN_MAX_LEN || len < TOKEN_MAC_B64 + 2 || s[len - TOKEN_MAC_B64 - 1] != '.')
        return GW_TOKEN_BAD;
    size_t plen = len - TOKEN_MAC_B64 - 1;
    unsigned char mac[SH_MAC_BYTES + 2];
    unsigned char payload[GW_TOKEN_MAX_LEN];
    size_t maclen, n;
    if (!sh_b64url_decode(s + plen + 1, TOKEN_MAC_B64, mac, sizeof mac, &maclen) ||
        maclen != SH_MAC_BYTES || !sh_b64url_decode(s, plen, payload, sizeof payload, &n))
        return GW_TOKEN_BAD;
    /* The key id is read before the MAC is checked only to choose the key;
     * nothing else of the payload is trusted until then. */
    const unsigned char *c = memchr(payload, ',', n);
    const unsigned char *c2 = c ? memchr(c + 1, ',', n - (size_t)(c + 1 - payload)) : NULL;
    if (!c2)
        return GW_TOKEN_BAD;
    unsigned kid = 0;
    for (const unsigned char *d = c + 1; d < c2; d++)
        kid = (*d >= '0' && *d <= '9' && kid < 256) ? kid * 10 + (unsigned)(*d - '0') : 256;
    bool good = false;
    for (size_t k = 0; k < nkeys && !good; k++)
        good = keys[k] && keys[k]->id == kid && sh_mac_verify(keys[k], s, plen, mac);
    if (!good || !token_decode((const char *)payload, n, out)) {
        out->n = 0;
        return GW_TOKEN_BAD;
    }
    return now_ms >= out->expires_ms ? GW_TOKEN_EXPIRED : GW_TOKEN_OK;
}

bool gw_token_covers(const gw_token *t, int kind, const char *id)
{
    if (kind == GW_SCOPE_NONE || kind == GW_SCOPE_HANDLER)
        return false;
    for (size_t i = 0; i < t->n; i++) {
        const gw_scope *sc = &t->scope[i];
        switch (kind) {
        case GW_SCOPE_PROGRESS:
        case GW_SCOPE_JOB:
            if (sc->kind == kind && id && strcmp(sc->id, id) == 0)
                return true;
            break;
        case GW_SCOPE_ACCOUNT:
            if (sc->kind == GW_SCOPE_ACCOUNTS ||
                (sc->kind == kind && id && strcmp(sc->id, id) == 0))
                return true;
            break;
        default:
            if (sc->kind == kind)
                return true;
        }
    }
    return false;
}

void gw_token_scrub(const char *in, char *out, size_t outlen)
{
    static const char key[] = "access_token=", mark[] = "[redacted]";
    size_t o = 0;
    if (outlen == 0)
        return;
    while (*in && o + 1 < outlen) {
        if (strncasecmp(in, key, sizeof key - 1) == 0) {
            for (size_t i = 0; i < sizeof key - 1 && o + 1 < outlen; i++)
                out[o++] = *in++;
            for (size_t i = 0; i < sizeof mark - 1 && o + 1 < outlen; i++)
                out[o++] = mark[i];
            while (*in && !strchr("& \t\r\n\"'#;", *in))
                in++;
            continue;
        }
        out[o++] = *in++;
    }
    out[o] = '\0';
}
