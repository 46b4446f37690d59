/* gw_token.h - scoped tokens: short-lived bearer tokens a browser may hold,
 * allowing GETs of the records their scopes name. They are stateless: the
 * gateway signs them with TOKEN_SIGNING_KEY and keeps nothing, so any
 * replica verifies any token.
 *
 * A token is base64url(payload) "." base64url(mac), without padding, where
 * mac is sh_mac (keyed BLAKE2b-256) of the first part (as sent) under the key, and the
 * payload is ASCII: "1,<key id>,<expiry, ms since the epoch>,<scope>[,<scope>...]".
 * The key id (sh_key.id) picks the key to verify with, the current one or,
 * while rotating, the previous one. A scope is "progress:<id>", "job:<id>",
 * "account:<id>", "accounts" (every account read), "queue" or "events" (the
 * whole typed event stream, for a dashboard). */
#ifndef GW_TOKEN_H
#define GW_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/buf.h"
#include "shared/keys.h"
#include "shared/secret.h"

/* What a route asks of a scoped token (gw_route.scope) and the kinds of
 * scope a token carries. */
enum gw_scope_kind {
    GW_SCOPE_NONE,     /* route: no scoped token opens it */
    GW_SCOPE_PROGRESS, /* progress:<id>: that record, its log and its stream */
    GW_SCOPE_JOB,      /* job:<id> */
    GW_SCOPE_ACCOUNT,  /* account:<id>: that account and its messages; "accounts" too */
    GW_SCOPE_ACCOUNTS, /* accounts: every account read, the list included */
    GW_SCOPE_QUEUE,    /* queue: GET /api/queue */
    GW_SCOPE_HANDLER,  /* route: any valid scoped token; the handler checks its scopes
                          with gw_token_covers (gw_req_token) */
    GW_SCOPE_EVENTS,   /* events: all of GET /api/events, as the API token sees it */
};

#define GW_TOKEN_SCOPES_MAX 32
/* The longest token accepted: 32 of the longest scopes, encoded. */
#define GW_TOKEN_MAX_LEN 6144

typedef struct gw_scope {
    int kind;               /* enum gw_scope_kind */
    char id[SH_ID_MAX + 1]; /* "" for accounts and queue */
} gw_scope;

typedef struct gw_token {
    int64_t expires_ms; /* the token is refused from this moment on */
    size_t n;           /* 1..GW_TOKEN_SCOPES_MAX */
    gw_scope scope[GW_TOKEN_SCOPES_MAX];
} gw_token;

enum { GW_TOKEN_OK, GW_TOKEN_BAD, GW_TOKEN_EXPIRED };

/* gw_scope_parse reads one scope ("progress:<id>", ..., "queue") of len
 * bytes: SH_OK, or SH_EINVAL for an unknown kind or an invalid id. */
int gw_scope_parse(const char *s, size_t len, gw_scope *out);

/* gw_scope_format writes the text of scope kind with id ("" or NULL when the
 * kind has none) to out, truncated to outlen. */
void gw_scope_format(int kind, const char *id, char *out, size_t outlen);

/* gw_token_mint appends the token of t (1..GW_TOKEN_SCOPES_MAX scopes),
 * signed with key, to out: SH_OK, SH_EINVAL (no scopes, too many) or
 * SH_ENOMEM. */
int gw_token_mint(const sh_key *key, const gw_token *t, sh_buf *out);

/* gw_token_verify checks the len bytes of s against keys[0..nkeys) (NULL
 * entries skipped) and, when one signed it, decodes it into out:
 * GW_TOKEN_OK, GW_TOKEN_EXPIRED (signed, but now_ms is past its expiry) or
 * GW_TOKEN_BAD (malformed, tampered, or signed by no key given). The MAC is
 * checked before anything else of the payload is read. */
int gw_token_verify(const sh_key *const *keys, size_t nkeys, const char *s, size_t len,
                    int64_t now_ms, gw_token *out);

/* gw_token_covers reports whether t allows what a route of scope kind asks
 * for record id (NULL or "" when the kind has none): progress, job and
 * account need that id's scope (an account also "accounts"); accounts needs
 * "accounts"; queue needs "queue"; GW_SCOPE_NONE and GW_SCOPE_HANDLER are
 * covered by no scope. */
bool gw_token_covers(const gw_token *t, int kind, const char *id);

/* gw_token_scrub copies the text in to out (outlen bytes, always
 * NUL-terminated, truncated if need be) with the value of every
 * "access_token=" replaced by "[redacted]", so that no token reaches a log. */
void gw_token_scrub(const char *in, char *out, size_t outlen);

#endif
