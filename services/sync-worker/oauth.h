/* oauth.h - the OAuth2 sign-in of one run or watch session: the access
 * token of the account's sealed secret, refreshed (refresh_token grant,
 * oauth_grant.h and oauth_http.h) when it expires within a minute, or
 * once when the IMAP server refuses it; the new secret is sealed here and
 * stored through the coordinator (oauth.refresh_begin / _end), which lets
 * one worker at a time refresh an account and writes only on an unchanged
 * version.
 *
 * Life cycle: sync_auth_new from the lease's account and its opened
 * secret, sync_auth_login once per IMAP session, sync_auth_free. */
#ifndef SYNC_OAUTH_H
#define SYNC_OAUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "env.h"
#include "imap.h"
#include "shared/rpc.h"
#include "shared/val.h"

typedef struct sync_auth sync_auth;

/* sync_auth_is_oauth tells whether account (a lease's account map) signs
 * in with OAuth2 (auth.type "oauth2"). */
bool sync_auth_is_oauth(const sh_val *account);

/* sync_auth_new reads the opened secret (plain, len bytes) of account
 * acct, as leased with version (its authVersion); coord and worker name
 * who refreshes. *out is freed with sync_auth_free. SH_EINVAL when the
 * secret is not an OAuth2 one. */
int sync_auth_new(const sync_env *env, sh_rpc_client *coord, const char *worker, const char *acct,
                  const sh_val *account, const void *plain, size_t len, sync_auth **out,
                  sh_error *err);
void sync_auth_free(sync_auth *a);
/* sync_auth_set_wait bounds the wait for another worker's refresh of the
 * account's token (30 s unless set): a thread that serves other sessions
 * meanwhile waits less. */
void sync_auth_set_wait(sync_auth *a, int wait_ms);

/* sync_auth_login signs imap in as user. SYNC_EAUTH when the token or its
 * refresh was refused (err says by whom, with the server's or provider's
 * words and what to do), SH_EUNAVAIL when the refresh could not be made
 * (unreachable endpoint, backoff). */
int sync_auth_login(sync_auth *a, sync_imap *imap, const char *user, sh_error *err);

/* sync_auth_refreshes is how many refresh grants this process sent. */
long sync_auth_refreshes(void);

#endif
