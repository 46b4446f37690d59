/* gw_auth.h - bearer tokens: API_TOKEN allows every request,
 * API_READ_ONLY_TOKEN only GET and HEAD; with neither set all is open. A
 * scoped token (gw_token.h, minted by POST /api/tokens) allows the GETs its
 * scopes cover, sent as "Authorization: Bearer" or "?access_token=". The
 * cron routes take CRON_SECRET and nothing else: a cron caller needs no API
 * token, and an API token opens no cron route. */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include "gw_config.h"
#include "gw_token.h"

enum gw_auth_result {
    GW_AUTH_OK,
    GW_AUTH_MISSING,   /* 401: no bearer token given */
    GW_AUTH_BAD,       /* 401: a token that matches neither */
    GW_AUTH_READ_ONLY, /* 403: the read-only token on a method that writes */
    GW_AUTH_DISABLED,  /* 503: CRON_SECRET is not set */
    GW_AUTH_EXPIRED,   /* 401: a scoped token past its expiry */
    GW_AUTH_UNCOVERED, /* 403: a scoped token whose scopes do not cover the request */
    GW_AUTH_WRITE,     /* 403: a scoped token (or ?access_token) on a method that writes */
};

/* What a request presents, and what a scoped token must cover for it. */
typedef struct gw_auth_ask {
    int method;                /* enum gw_method */
    const char *authorization; /* the Authorization header, or NULL */
    const char *access_token;  /* the access_token query argument, or NULL */
    int scope;                 /* enum gw_scope_kind: what the route asks of a scoped token */
    const char *id;            /* the record the route reads (its :id), or NULL */
} gw_auth_ask;

/* gw_auth_check judges the Authorization header value (or NULL) for a
 * request with method (enum gw_method). */
int gw_auth_check(const gw_config *cfg, int method, const char *authorization);

/* gw_auth_request judges a request of an API route. The Authorization
 * header, when given, is the credential: API_TOKEN, API_READ_ONLY_TOKEN (both
 * compared in constant time), or else a scoped token; without it,
 * access_token, which only a scoped token may be, and only on GET and HEAD.
 * A scoped token is verified against TOKEN_SIGNING_KEY (and _PREVIOUS) at
 * now_ms, then must be on GET or HEAD and cover ask->scope for ask->id
 * (gw_token_covers; GW_SCOPE_HANDLER: any token, the handler judges). When
 * one is accepted, *tok (if tok) holds it and the result is GW_AUTH_OK;
 * otherwise tok->n is 0. */
int gw_auth_request(const gw_config *cfg, const gw_auth_ask *ask, int64_t now_ms, gw_token *tok);

/* gw_auth_cron judges the Authorization header value (or NULL) of a cron
 * route against CRON_SECRET: GW_AUTH_OK, _MISSING, _BAD or _DISABLED. */
int gw_auth_cron(const gw_config *cfg, const char *authorization);

#endif
