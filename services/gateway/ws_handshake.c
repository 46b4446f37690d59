/* ws_handshake.c - the server's side of RFC 6455's opening handshake: which
 * headers a WebSocket request needs, and Sec-WebSocket-Accept (the base64 of
 * the SHA-1 of the key and the protocol's GUID). The only file that uses
 * OpenSSL, for SHA-1 (libsodium has none). */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "gw_ws_int.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
static const char ws_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

bool gw__ws_header_has(const char *value, const char *token)
{
    size_t tl = strlen(token);
    for (const char *p = value; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - p) == tl && strncasecmp(p, token, tl) == 0)
            return true;
        p = e;
    }
    return false;
}

/* ws_key_valid: the key is the base64 of 16 bytes: 22 characters of the
 * alphabet, the last carrying 2 bits only, then "==". */
static bool ws_key_valid(const char *key)
{
    if (strlen(key) != 24 || key[22] != '=' || key[23] != '=')
        return false;
    for (int i = 0; i < 22; i++) {
        const char *at = key[i] ? strchr(ws_b64, key[i]) : NULL;
        if (!at)
            return false;
        if (i == 21 && ((at - ws_b64) & 0x0f))
            return false;
    }
    return true;
}

int gw__ws_handshake_check(const char *upgrade, const char *connection, const char *version,
                           const char *key, const char **why)
{
    if (!gw__ws_header_has(upgrade, "websocket")) {
        *why = "not a WebSocket request: Upgrade must be websocket";
        return 400;
    }
    if (!gw__ws_header_has(connection, "upgrade")) {
        *why = "WebSocket handshake needs Connection: Upgrade";
        return 400;
    }
    if (!version) {
        *why = "WebSocket handshake needs Sec-WebSocket-Version: 13";
        return 400;
    }
    if (strcmp(version, "13") != 0) {
        *why = "unsupported Sec-WebSocket-Version: only 13 is spoken here";
        return 426;
    }
    if (!key) {
        *why = "WebSocket handshake needs a Sec-WebSocket-Key";
        return 400;
    }
    if (!ws_key_valid(key)) {
        *why = "invalid Sec-WebSocket-Key: it must be the base64 of 16 bytes";
        return 400;
    }
    return 0;
}

int gw__ws_accept_key(const char *key, char out[GW__WS_ACCEPT_LEN + 1])
{
    char in[64 + sizeof ws_guid];
    int n = snprintf(in, sizeof in, "%s%s", key, ws_guid);
    if (n < 0 || (size_t)n >= sizeof in)
        return -1;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(in, (size_t)n, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
        return -1;
    if (EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen) != GW__WS_ACCEPT_LEN)
        return -1;
    return 0;
}
