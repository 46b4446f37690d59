/* watch.c - the IDLE watch leases: which sync worker holds the IMAP IDLE
 * sessions of which account, with a fencing token per lease, and the state
 * each worker reports for the account's view. */
#include <stdio.h>
#include <string.h>

#include "ops.h"
#include "scripts.h"
#include "shared/log.h"
#include "shared/util.h"

/* watch_lease_val makes one lease of a row {id, token, expiry, hash,
 * secret}: what a worker needs to open the sessions, nothing more. */
static sh_val *watch_lease_val(const sh_reply *row)
{
    sh_val *acct = coord_account_view(sh_reply_elem(row, 3), sh_reply_elem(row, 4));
    sh_val *l = sh_val_new_map();
    size_t len;
    const char *id = sh_reply_string(sh_reply_elem(row, 0), &len);
    char iso[SH_ISO_LEN];
    sh_iso8601(sh_reply_ll(sh_reply_elem(row, 2), NULL), iso);
    static const char *const copy[][2] = {
        {"imapHost", "host"},
        {"imapPort", "port"},
        {"security", "security"},
        {"tlsVerify", "tlsVerify"},
        {"username", "username"},
        {"passwordSealed", "passwordSealed"},
        {"watchFolders", "watchFolders"},
    };
    int rc = !acct || !l || !id;
    if (!rc) {
        rc |= sh_val_set_cstr(l, "accountId", sh_val_new_str(id, len));
        rc |= sh_val_set_cstr(l, "token", sh_val_new_int(sh_reply_ll(sh_reply_elem(row, 1), NULL)));
        rc |= sh_val_set_cstr(l, "leaseExpiresAt", sh_val_new_cstr(iso));
    }
    for (size_t i = 0; !rc && i < sizeof copy / sizeof copy[0]; i++)
        rc |= sh_val_set_cstr(l, copy[i][1], sh_val_take(acct, copy[i][0]));
    /* An OAuth2 account's sign-in: passwordSealed holds its secrets. */
    if (!rc && sh_val_get(acct, "auth")) {
        rc |= sh_val_set_cstr(l, "auth", sh_val_take(acct, "auth"));
        rc |= sh_val_set_cstr(l, "authVersion", sh_val_take(acct, "authVersion"));
    }
    sh_val_free(acct);
    if (rc) {
        sh_val_free(l);
        return NULL;
    }
    return l;
}

int coord_watch_lease(sh_worker *w, const char *worker, long long max, sh_val **out, sh_error *err)
{
    *out = NULL;
    coord_sched_keys k;
    coord_sched_keys_init(&k);
    sh_cmd *c = sh_cmd_new_eval(&coord_script_watch_lease, 2);
    sh_cmd_str(c, k.ids);
    sh_cmd_str(c, k.watchers);
    sh_cmd_str(c, worker);
    sh_cmd_int(c, max);
    sh_cmd_int(c, coord_env_of(w)->watch_lease_s * 1000);
    sh_cmd_str(c, k.account_prefix);
    sh_reply *r;
    int rc = sh_store_call(w->store, c, &r, err);
    if (rc)
        return rc;
    sh_val *arr = sh_val_new_array(), *m = sh_val_new_map();
    for (size_t i = 0; arr && i < sh_reply_count(r); i++) {
        sh_val *l = watch_lease_val(sh_reply_elem(r, i));
        if (!l || sh_val_push(arr, l) != SH_OK) {
            sh_val_free(arr);
            arr = NULL;
        } else {
            sh_log_info("watch_lease", "account=%s worker=%s token=%lld",
                        sh_val_get_str(l, "accountId", NULL), worker,
                        (long long)sh_val_int(sh_val_get(l, "token")));
        }
    }
    sh_reply_free(r);
    if (!arr || !m || sh_val_set_cstr(m, "leases", arr)) {
        sh_val_free(m);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *out = m;
    return SH_OK;
}

/* watch_refs_cmd starts script with the watchers key, worker, the account
 * prefix, extra (NULL: none) and the id/token pairs of refs. */
static sh_cmd *watch_refs_cmd(sh_script *script, const char *worker, const char *extra,
                              const coord_watch_ref *refs, size_t n)
{
    coord_sched_keys k;
    coord_sched_keys_init(&k);
    sh_cmd *c = sh_cmd_new_eval(script, 1);
    sh_cmd_str(c, k.watchers);
    sh_cmd_str(c, worker);
    sh_cmd_str(c, k.account_prefix);
    if (extra)
        sh_cmd_str(c, extra);
    for (size_t i = 0; i < n; i++) {
        sh_cmd_str(c, refs[i].id);
        sh_cmd_int(c, refs[i].token);
    }
    return c;
}

int coord_watch_renew(sh_worker *w, const char *worker, const coord_watch_ref *refs, size_t n,
                      sh_val **out, sh_error *err)
{
    *out = NULL;
    char ms[32];
    snprintf(ms, sizeof ms, "%lld", coord_env_of(w)->watch_lease_s * 1000);
    sh_reply *r;
    int rc = sh_store_call(w->store, watch_refs_cmd(&coord_script_watch_renew, worker, ms, refs, n),
                           &r, err);
    if (rc)
        return rc;
    sh_val *m = sh_val_new_map();
    if (sh_reply_kind(r) != SH_REPLY_ARRAY || sh_reply_count(r) != 2 || !m ||
        sh_val_set_cstr(m, "held", coord_ids_val(sh_reply_elem(r, 0))) ||
        sh_val_set_cstr(m, "lost", coord_ids_val(sh_reply_elem(r, 1)))) {
        sh_val_free(m);
        sh_reply_free(r);
        return sh_error_set(err, SH_EINTERNAL, "unexpected reply to a watch renewal");
    }
    sh_reply_free(r);
    *out = m;
    return SH_OK;
}

int coord_watch_release(sh_worker *w, const char *worker, const coord_watch_ref *refs, size_t n,
                        sh_val **out, sh_error *err)
{
    *out = NULL;
    sh_reply *r;
    int rc = sh_store_call(
        w->store, watch_refs_cmd(&coord_script_watch_release, worker, NULL, refs, n), &r, err);
    if (rc)
        return rc;
    sh_val *m = sh_val_new_map();
    if (!m || sh_val_set_cstr(m, "released", coord_ids_val(r))) {
        sh_val_free(m);
        sh_reply_free(r);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    sh_log_info("watch_release", "worker=%s released=%zu", worker, sh_reply_count(r));
    sh_reply_free(r);
    *out = m;
    return SH_OK;
}

int coord_watch_report(sh_worker *w, const char *id, long long token, const char *state,
                       const char *error, sh_val **out, sh_error *err)
{
    *out = NULL;
    char key[COORD_KEY_MAX];
    int rc = coord_account_keys(id, key, NULL, err);
    if (rc)
        return rc;
    sh_cmd *c = sh_cmd_new_eval(&coord_script_watch_report, 1);
    sh_cmd_str(c, key);
    sh_cmd_int(c, token);
    sh_cmd_str(c, state);
    sh_cmd_str(c, error ? error : "");
    sh_reply *r;
    if ((rc = sh_store_call(w->store, c, &r, err)))
        return rc;
    long long ok = sh_reply_integer(r);
    sh_reply_free(r);
    if (ok != 1)
        return sh_error_set(err, SH_ELEASE,
                            "lease_lost: the watch of %s is not held with token %lld", id, token);
    sh_val *m = sh_val_new_map();
    if (!m || sh_val_set_cstr(m, "state", sh_val_new_cstr(state))) {
        sh_val_free(m);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *out = m;
    return SH_OK;
}
