/* oauth.c - an OAuth2 account's access token for one IMAP session: taken
 * from the sealed secret, refreshed when due or refused, and the result
 * handed back sealed to the coordinator (see oauth.h). */
#include "oauth.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "oauth_grant.h"
#include "oauth_http.h"
#include "shared/keys.h"
#include "shared/log.h"
#include "shared/oauth.h"
#include "shared/secret.h"
#include "shared/util.h"

/* A token that expires within this is refreshed before use. */
#define OAUTH_EARLY_MS 60000
/* How long a worker waits for another one's refresh. */
#define OAUTH_WAIT_MS        30000
#define OAUTH_HTTP_TIMEOUT_S 20
#define OAUTH_RPC_TIMEOUT_MS 10000
/* An answer without expires_in: RFC 6749 leaves it to the provider; an
 * hour is what Google and Microsoft give. */
#define OAUTH_DEFAULT_TTL_S 3600

struct sync_auth {
    const sync_env *env;
    sh_rpc_client *coord;
    char acct[SH_ID_MAX + 1];
    char worker[SH_ID_MAX + 1];
    char version[40];
    sh_val *map; /* the opened secret; s points into it */
    sh_oauth_secret s;
    const char *mechs;
    int wait_ms;    /* for another worker's refresh */
    bool refreshed; /* by this session */
};

static atomic_long oauth_refreshes;

long sync_auth_refreshes(void)
{
    return atomic_load(&oauth_refreshes);
}

bool sync_auth_is_oauth(const sh_val *account)
{
    const char *t = sh_val_get_str(sh_val_get(account, "auth"), "type", NULL);
    return t && strcmp(t, "oauth2") == 0;
}

/* oauth_take replaces the secret of a with the opened plain bytes. */
static int oauth_take(sync_auth *a, const void *plain, size_t len, sh_error *err)
{
    sh_val *map = NULL;
    sh_oauth_secret s;
    int rc = sh_oauth_secret_read(plain, len, &map, &s, err);
    if (rc)
        return rc;
    sh_val_free(a->map);
    a->map = map;
    a->s = s;
    const sh_oauth_provider *p = sh_oauth_provider_find(s.provider);
    a->mechs = p ? p->mechs : sh_oauth_provider_find("custom")->mechs;
    return SH_OK;
}

int sync_auth_new(const sync_env *env, sh_rpc_client *coord, const char *worker, const char *acct,
                  const sh_val *account, const void *plain, size_t len, sync_auth **out,
                  sh_error *err)
{
    *out = NULL;
    sync_auth *a = calloc(1, sizeof *a);
    if (!a)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    a->env = env;
    a->coord = coord;
    a->wait_ms = OAUTH_WAIT_MS;
    snprintf(a->acct, sizeof a->acct, "%s", acct);
    snprintf(a->worker, sizeof a->worker, "%s", worker);
    const char *v = sh_val_get_str(account, "authVersion", NULL);
    snprintf(a->version, sizeof a->version, "%s", v ? v : "");
    int rc = oauth_take(a, plain, len, err);
    if (rc) {
        sync_auth_free(a);
        return rc;
    }
    *out = a;
    return SH_OK;
}

void sync_auth_set_wait(sync_auth *a, int wait_ms)
{
    a->wait_ms = wait_ms;
}

void sync_auth_free(sync_auth *a)
{
    if (!a)
        return;
    sh_val_free(a->map);
    free(a);
}

static sh_val *oauth_args(const sync_auth *a)
{
    sh_val *m = sh_val_new_map();
    if (m && (sh_val_set_cstr(m, "accountId", sh_val_new_cstr(a->acct)) ||
              sh_val_set_cstr(m, "worker", sh_val_new_cstr(a->worker)) ||
              sh_val_set_cstr(m, "version", sh_val_new_cstr(a->version)))) {
        sh_val_free(m);
        m = NULL;
    }
    return m;
}

/* oauth_call calls op with args (freed here). */
static int oauth_call(sync_auth *a, const char *op, sh_val *args, sh_val **res, sh_error *err)
{
    *res = NULL;
    int rc = args ? sh_rpc_call(a->coord, op, args, OAUTH_RPC_TIMEOUT_MS, res, err)
                  : sh_error_set(err, SH_ENOMEM, "out of memory");
    sh_val_free(args);
    return rc;
}

/* oauth_open_fresh takes the newer secret another worker stored. */
static int oauth_open_fresh(sync_auth *a, const sh_val *res, sh_error *err)
{
    size_t blen = 0;
    const char *blob = sh_val_str(sh_val_get(res, "secretSealed"), &blen);
    const char *v = sh_val_get_str(res, "version", NULL);
    if (!blob || !blen || !v)
        return sh_error_set(err, SH_EPROTO, "the coordinator's refresh answer lacks the secret");
    sh_buf plain;
    sh_buf_init_secret(&plain);
    int rc = sh_open(a->env->keys, a->env->nkeys, blob, blen, a->acct, &plain, err);
    if (!rc)
        rc = oauth_take(a, plain.data, plain.len, err);
    sh_buf_fini(&plain);
    if (!rc)
        snprintf(a->version, sizeof a->version, "%s", v);
    return rc;
}

/* oauth_wait_turn asks the coordinator for the refresh until it is this
 * worker's (SH_OK, *granted) or another worker's refresh brought a newer
 * secret (SH_OK, !*granted). */
static int oauth_wait_turn(sync_auth *a, bool *granted, sh_error *err)
{
    *granted = false;
    int64_t until = sh_mono_ms() + a->wait_ms;
    for (int round = 0;; round++) {
        sh_val *res;
        int rc = oauth_call(a, "oauth.refresh_begin", oauth_args(a), &res, err);
        const char *state = rc ? NULL : sh_val_get_str(res, "state", NULL);
        if (!rc && !state)
            rc = sh_error_set(err, SH_EPROTO, "the coordinator's refresh answer lacks a state");
        if (!rc && strcmp(state, "granted") == 0)
            *granted = true;
        else if (!rc && strcmp(state, "fresh") == 0)
            rc = oauth_open_fresh(a, res, err);
        else if (!rc && strcmp(state, "backoff") == 0)
            rc = sh_error_set(
                err, SH_EUNAVAIL, "OAuth2 token refresh put off until %s after a failed attempt",
                sh_val_get_str(res, "retryAt", NULL) ? sh_val_get_str(res, "retryAt", NULL)
                                                     : "later");
        bool busy = !rc && strcmp(state, "busy") == 0;
        sh_val_free(res);
        if (rc || !busy)
            return rc;
        if (round == 0)
            sh_log_debug("oauth_refresh_wait", "account=%s: another worker refreshes the token",
                         a->acct);
        if (sh_mono_ms() > until)
            return sh_error_set(err, SH_EUNAVAIL,
                                "another sync worker has been refreshing the OAuth2 token for "
                                "over %d s",
                                a->wait_ms / 1000);
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* oauth_store seals the secret with the new tokens of g and hands it to the
 * coordinator; a takes it. */
static int oauth_store(sync_auth *a, const sync_oauth_grant *g, sh_error *err)
{
    sh_oauth_secret next = a->s;
    next.access_token = g->access_token;
    if (g->refresh_token)
        next.refresh_token = g->refresh_token;
    next.expires_ms =
        sh_now_ms() + (g->expires_in_s > 0 ? g->expires_in_s : OAUTH_DEFAULT_TTL_S) * 1000;
    sh_buf plain, blob;
    sh_buf_init_secret(&plain);
    sh_buf_init(&blob);
    int rc = sh_oauth_secret_pack(&next, &plain);
    if (!rc)
        rc = sh_seal(a->env->keys[0], plain.data, plain.len, a->acct, &blob);
    if (rc) {
        sh_buf_fini(&plain);
        sh_buf_fini(&blob);
        return sh_error_set(err, rc, "cannot seal the refreshed token");
    }
    sh_val *args = oauth_args(a), *res = NULL;
    if (args && (sh_val_set_cstr(args, "secretSealed", sh_val_new_bin(blob.data, blob.len)) ||
                 sh_val_set_cstr(args, "expiresAt", sh_val_new_int(next.expires_ms)))) {
        sh_val_free(args);
        args = NULL;
    }
    sh_buf_fini(&blob);
    sh_error e;
    int src = oauth_call(a, "oauth.refresh_end", args, &res, &e);
    const char *v = src ? NULL : sh_val_get_str(res, "version", NULL);
    if (v)
        snprintf(a->version, sizeof a->version, "%s", v);
    else
        /* The token is good for this session; the next run refreshes
         * again (the provider's old refresh token, if rotated, may then
         * be refused: the account shows so). */
        sh_log_warn("oauth_store_failed", "account=%s: %s", a->acct,
                    src ? e.msg : "no version in the answer");
    sh_val_free(res);
    rc = oauth_take(a, plain.data, plain.len, err);
    sh_buf_fini(&plain);
    return rc;
}

/* oauth_release ends a failed refresh (transient ones are counted for the
 * coordinator's backoff). */
static void oauth_release(sync_auth *a, bool transient)
{
    sh_val *args = oauth_args(a), *res = NULL;
    if (args && sh_val_set_cstr(args, "transient", sh_val_new_bool(transient))) {
        sh_val_free(args);
        args = NULL;
    }
    sh_error e;
    if (oauth_call(a, "oauth.refresh_end", args, &res, &e))
        sh_log_warn("oauth_release_failed", "account=%s: %s", a->acct, e.msg);
    sh_val_free(res);
}

/* oauth_refresh brings a fresh access token: this worker's refresh grant,
 * or another worker's result. */
static int oauth_refresh(sync_auth *a, sh_error *err)
{
    if (!sh_oauth_secret_managed(&a->s))
        return sh_error_set(err, SYNC_EAUTH,
                            "the OAuth2 access token is refused or expired and the account has "
                            "no refresh token: push a new accessToken and expiresAt with PATCH "
                            "/api/accounts/:id");
    bool granted;
    int rc = oauth_wait_turn(a, &granted, err);
    if (rc || !granted)
        return rc;
    sh_buf form, body;
    sh_buf_init_secret(&form);
    sh_buf_init_secret(&body);
    long status = 0;
    rc = sync_oauth_grant_form(&a->s, &form);
    if (!rc) {
        atomic_fetch_add(&oauth_refreshes, 1);
        rc = sync_oauth_http_post(a->env->hosts, a->s.token_url, form.data, form.len,
                                  OAUTH_HTTP_TIMEOUT_S, &status, &body, err);
    }
    sh_buf_fini(&form);
    sync_oauth_grant g;
    memset(&g, 0, sizeof g);
    if (!rc)
        rc = sync_oauth_grant_read(status, body.data ? body.data : "", body.len, &g, err);
    sh_buf_fini(&body);
    if (rc == SH_OK) {
        rc = oauth_store(a, &g, err);
        sync_oauth_grant_fini(&g);
        if (!rc)
            sh_log_info("oauth_refreshed", "account=%s", a->acct);
        return rc;
    }
    oauth_release(a, rc != SYNC_EAUTH);
    char said[sizeof err->msg];
    snprintf(said, sizeof said, "%s", err->msg);
    size_t n = strlen(said);
    while (n > 0 && (said[n - 1] == '.' || said[n - 1] == ' '))
        said[--n] = '\0';
    if (rc == SYNC_EAUTH)
        return sh_error_set(err, SYNC_EAUTH,
                            "OAuth2 token refresh refused by the provider: %.400s. Sign in "
                            "again and update the account's auth with a new refreshToken",
                            said);
    return sh_error_set(err, SH_EUNAVAIL, "OAuth2 token refresh failed: %.400s", said);
}

int sync_auth_login(sync_auth *a, sync_imap *imap, const char *user, sh_error *err)
{
    a->refreshed = false;
    bool due =
        !a->s.access_token || (a->s.expires_ms && a->s.expires_ms - sh_now_ms() < OAUTH_EARLY_MS);
    int rc;
    if (due && sh_oauth_secret_managed(&a->s)) {
        if ((rc = oauth_refresh(a, err)))
            return rc;
        a->refreshed = true;
    }
    if (!a->s.access_token)
        return sh_error_set(err, SYNC_EAUTH,
                            "the account has no OAuth2 access token: push one with PATCH "
                            "/api/accounts/:id");
    char mech[16];
    rc = sync_imap_login_oauth(imap, user, a->s.access_token, a->mechs, mech, err);
    if (rc != SYNC_EAUTH || !mech[0] || a->refreshed)
        return rc;
    /* Refused (revoked, or expired early): one refresh, one retry. */
    sh_error first = *err;
    if (!sh_oauth_secret_managed(&a->s))
        return sh_error_set(err, SYNC_EAUTH,
                            "%.500s. Push a new accessToken and expiresAt with PATCH "
                            "/api/accounts/:id",
                            first.msg);
    sh_log_info("oauth_token_refused", "account=%s: refreshing once", a->acct);
    if ((rc = oauth_refresh(a, err)))
        return rc;
    a->refreshed = true;
    return sync_imap_login_oauth(imap, user, a->s.access_token, a->mechs, mech, err);
}
