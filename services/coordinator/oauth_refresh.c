/* oauth_refresh.c - the coordinator's side of an OAuth2 token refresh: a
 * sync worker asks to refresh an account's token (granted to one worker at
 * a time, for COORD_OAUTH_LEASE_MS), then hands back the new secret, sealed
 * by itself, which is written only if nobody changed the account's secret
 * meanwhile. The sync worker never writes the coordinator's keys. */
#include <string.h>

#include "ops.h"
#include "scripts.h"
#include "shared/log.h"
#include "shared/util.h"

/* Longer than a refresh can take (the worker's HTTP timeout is 20 s). */
#define COORD_OAUTH_LEASE_MS 60000

/* oauth_run runs a script of this file: its reply is an array led by a
 * state. */
static int oauth_run(sh_worker *w, sh_cmd *c, sh_reply **out, sh_error *err)
{
    int rc = sh_store_call(w->store, c, out, err);
    if (rc == SH_OK && (sh_reply_kind(*out) != SH_REPLY_ARRAY || sh_reply_count(*out) < 1)) {
        sh_reply_free(*out);
        *out = NULL;
        rc = sh_error_set(err, SH_EINTERNAL, "unexpected reply from a coordinator script");
    }
    return rc;
}

static int oauth_keys(const char *id, char key[COORD_KEY_MAX], char lease[COORD_KEY_MAX],
                      char secret[COORD_KEY_MAX], sh_error *err)
{
    if (coord_key_account(key, COORD_KEY_MAX, id) < 0 ||
        coord_key_account_refresh(lease, COORD_KEY_MAX, id) < 0 ||
        coord_key_account_secret(secret, COORD_KEY_MAX, id) < 0)
        return sh_error_set(err, SH_EINVAL, "invalid account id");
    return SH_OK;
}

/* oauth_result turns a script's {state, version, secret|retryAt...} into
 * the operation's map; blob_at is the index of the sealed secret (0: none)
 * and retry_at that of the retry time (0: none). */
static int oauth_result(sh_reply *r, size_t blob_at, size_t retry_at, sh_val **out, sh_error *err)
{
    char state[16], version[40];
    coord_reply_str(r, 0, state, sizeof state);
    coord_reply_str(r, 1, version, sizeof version);
    sh_val *m = sh_val_new_map();
    int rc = m ? SH_OK : SH_ENOMEM;
    if (strcmp(state, "gone") == 0) {
        sh_val_free(m);
        sh_reply_free(r);
        return sh_error_set(err, SH_ENOTFOUND, "Account not found or not an OAuth2 account");
    }
    if (strcmp(state, "lost") == 0) {
        sh_val_free(m);
        sh_reply_free(r);
        return sh_error_set(err, SH_ELEASE,
                            "the refresh lease ran out or the account's secret changed");
    }
    rc = rc ? rc : sh_val_set_cstr(m, "state", sh_val_new_cstr(state));
    rc = rc ? rc : sh_val_set_cstr(m, "version", sh_val_new_cstr(version));
    size_t len;
    const char *blob = blob_at && strcmp(state, "fresh") == 0
                           ? sh_reply_string(sh_reply_elem(r, blob_at), &len)
                           : NULL;
    if (!rc && blob)
        rc = sh_val_set_cstr(m, "secretSealed", sh_val_new_bin(blob, len));
    bool present = false;
    long long at = retry_at && strcmp(state, "backoff") == 0
                       ? sh_reply_ll(sh_reply_elem(r, retry_at), &present)
                       : 0;
    if (!rc && present) {
        char iso[SH_ISO_LEN];
        sh_iso8601(at, iso);
        rc = sh_val_set_cstr(m, "retryAt", sh_val_new_cstr(iso));
    }
    sh_reply_free(r);
    if (rc) {
        sh_val_free(m);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *out = m;
    return SH_OK;
}

int coord_oauth_begin(sh_worker *w, const char *id, const char *worker, const char *version,
                      sh_val **out, sh_error *err)
{
    *out = NULL;
    char key[COORD_KEY_MAX], lease[COORD_KEY_MAX], secret[COORD_KEY_MAX];
    int rc = oauth_keys(id, key, lease, secret, err);
    if (rc)
        return rc;
    const char *const keys[] = {key, lease, secret, NULL};
    sh_cmd *c = sh_cmd_new_eval_keys(&coord_script_oauth_begin, keys);
    sh_cmd_str(c, worker);
    sh_cmd_str(c, version);
    sh_cmd_int(c, sh_now_ms());
    sh_cmd_int(c, COORD_OAUTH_LEASE_MS);
    sh_reply *r;
    if ((rc = oauth_run(w, c, &r, err)))
        return rc;
    return oauth_result(r, 2, 3, out, err);
}

int coord_oauth_end(sh_worker *w, const char *id, const char *worker, const char *version,
                    const void *sealed, size_t len, long long expires_ms, bool transient,
                    sh_val **out, sh_error *err)
{
    *out = NULL;
    char key[COORD_KEY_MAX], lease[COORD_KEY_MAX], secret[COORD_KEY_MAX];
    int rc = oauth_keys(id, key, lease, secret, err);
    if (rc)
        return rc;
    char next[17];
    sh_random_hex(next, 8);
    const char *const keys[] = {key, lease, secret, NULL};
    sh_cmd *c = sh_cmd_new_eval_keys(&coord_script_oauth_end, keys);
    sh_cmd_str(c, worker);
    sh_cmd_str(c, version);
    sh_cmd_arg(c, sealed ? sealed : "", sealed ? len : 0);
    sh_cmd_int(c, expires_ms);
    sh_cmd_int(c, sh_now_ms());
    sh_cmd_str(c, next);
    sh_cmd_str(c, transient ? "1" : "0");
    sh_reply *r;
    if ((rc = oauth_run(w, c, &r, err)))
        return rc;
    if (sealed && len)
        sh_log_info("oauth_token_stored", "id=%s", id);
    return oauth_result(r, 0, 2, out, err);
}
