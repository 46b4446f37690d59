/* oauth_grant.h - the refresh_token grant of RFC 6749 6: the form sent to
 * the token endpoint and the reading of its answer (json-c, in
 * oauth_grant.c only). No network here (oauth_http.h). */
#ifndef SYNC_OAUTH_GRANT_H
#define SYNC_OAUTH_GRANT_H

#include <stddef.h>
#include <stdint.h>

#include "shared/buf.h"
#include "shared/err.h"
#include "shared/oauth.h"

/* A token endpoint's answer. The tokens are heap copies, wiped and freed
 * by sync_oauth_grant_fini. */
typedef struct sync_oauth_grant {
    char *access_token;
    char *refresh_token;  /* NULL when the provider did not rotate it */
    int64_t expires_in_s; /* 0 when not given */
} sync_oauth_grant;

/* sync_oauth_grant_form writes grant_type=refresh_token&refresh_token=...
 * &client_id=...(&client_secret=...)(&scope=...) of s to out (a secret
 * buffer), each value percent-encoded. */
int sync_oauth_grant_form(const sh_oauth_secret *s, sh_buf *out);

/* sync_oauth_grant_read reads the answer (HTTP status, body of len bytes)
 * into g: SH_OK for {access_token, expires_in?, refresh_token?};
 * SYNC_EAUTH when the provider refused the grant (400 or 401 with an
 * OAuth2 error: err holds its "error" and "error_description");
 * SH_EUNAVAIL for anything else (a server error, 429, an answer that is no
 * token), to be retried after the refresh backoff. */
int sync_oauth_grant_read(long status, const char *body, size_t len, sync_oauth_grant *g,
                          sh_error *err);
void sync_oauth_grant_fini(sync_oauth_grant *g);

#endif
