/* oauth.h - OAuth2 mail accounts as coordinator and sync-worker both see
 * them: the one table of provider presets (token endpoint, scope, SASL
 * mechanisms in order of preference), the check of a token endpoint's
 * URL, and the secret an OAuth2 account seals in place of a password.
 *
 * The secret is a msgpack map sealed with sh_seal (the account id as
 * associated data), stored where a password account keeps its sealed
 * password: {provider?, clientId?, clientSecret?, refreshToken?,
 * tokenUrl?, scope?, accessToken?, expiresAt? (ms since the epoch)}.
 * A "managed" account has a refresh token the sync-worker refreshes with;
 * an "app-supplied" one only an access token the app pushes. */
#ifndef SHARED_OAUTH_H
#define SHARED_OAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/buf.h"
#include "shared/err.h"
#include "shared/val.h"

/* One provider preset; custom has no token URL (the account gives it). */
typedef struct sh_oauth_provider {
    const char *name;
    const char *token_url;
    const char *scope;
    const char *mechs; /* SASL mechanisms, preferred first, space separated */
} sh_oauth_provider;

/* sh_oauth_provider_find returns the preset named name, or NULL. */
const sh_oauth_provider *sh_oauth_provider_find(const char *name);

/* sh_oauth_url_ok tells whether url may be a token endpoint: https://, or
 * http:// on a loopback host (127.0.0.0/8, [::1], localhost). */
bool sh_oauth_url_ok(const char *url);

/* sh_oauth_url_host writes the host of an http:// or https:// url (an IPv6
 * literal keeps its brackets; no port, no credentials) into host and
 * returns true, or false when url has none or it does not fit in cap. */
bool sh_oauth_url_host(const char *url, char *host, size_t cap);

/* sh_oauth_parse_time reads an ISO 8601 UTC time ("2026-01-01T10:00:00Z",
 * optional fraction of a second, "Z" or "+00:00") into ms since the epoch;
 * false when s is not one. */
bool sh_oauth_parse_time(const char *s, size_t len, int64_t *ms);

/* The fields of an opened secret (borrowed from the map it was read from). */
typedef struct sh_oauth_secret {
    const char *provider, *client_id, *client_secret, *refresh_token, *token_url, *scope,
        *access_token;
    int64_t expires_ms; /* 0: unknown */
} sh_oauth_secret;

/* sh_oauth_secret_read decodes the opened blob into *map (caller frees with
 * sh_val_free, which wipes it) and fills s with views into it. SH_EINVAL
 * when the blob is not such a map. */
int sh_oauth_secret_read(const void *plain, size_t len, sh_val **map, sh_oauth_secret *s,
                         sh_error *err);

/* sh_oauth_secret_pack writes the msgpack map of s (NULL fields left out)
 * to out, which should be a secret buffer (sh_buf_init_secret). */
int sh_oauth_secret_pack(const sh_oauth_secret *s, sh_buf *out);

/* sh_oauth_secret_managed tells whether s can be refreshed. */
bool sh_oauth_secret_managed(const sh_oauth_secret *s);

#endif
