/* watch_client.c - the argument maps of the watch operations and their
 * calls. */
#include "watch_client.h"

static int wc_call(sh_rpc_client *c, const char *op, sh_val *args, sh_val **reply, sh_error *err)
{
    int rc = args ? sh_rpc_call(c, op, args, SYNC_WC_TIMEOUT_MS, reply, err)
                  : sh_error_set(err, SH_ENOMEM, "out of memory");
    sh_val_free(args);
    return rc;
}

static sh_val *wc_refs_args(const char *worker, const sync_wc_ref *refs, size_t n)
{
    sh_val *a = sh_val_new_map(), *arr = sh_val_new_array();
    int rc = !a || !arr;
    for (size_t i = 0; !rc && i < n; i++) {
        sh_val *r = sh_val_new_map();
        rc = !r || sh_val_set_cstr(r, "accountId", sh_val_new_cstr(refs[i].id)) ||
             sh_val_set_cstr(r, "token", sh_val_new_int(refs[i].token));
        if (rc || sh_val_push(arr, r)) {
            sh_val_free(r);
            rc = 1;
        }
    }
    if (!rc) {
        rc = sh_val_set_cstr(a, "workerId", sh_val_new_cstr(worker)) ||
             sh_val_set_cstr(a, "leases", arr);
        arr = NULL;
    }
    sh_val_free(arr);
    if (rc) {
        sh_val_free(a);
        return NULL;
    }
    return a;
}

int sync_wc_lease(sh_rpc_client *c, const char *worker, int max, sh_val **reply,
                  const sh_val **leases, sh_error *err)
{
    *reply = NULL;
    *leases = NULL;
    sh_val *a = sh_val_new_map();
    if (a && (sh_val_set_cstr(a, "workerId", sh_val_new_cstr(worker)) ||
              sh_val_set_cstr(a, "max", sh_val_new_int(max)))) {
        sh_val_free(a);
        a = NULL;
    }
    int rc = wc_call(c, "watch.lease", a, reply, err);
    if (rc)
        return rc;
    *leases = sh_val_get(*reply, "leases");
    if (sh_val_type_of(*leases) != SH_VAL_ARRAY)
        return sh_error_set(err, SH_EPROTO, "watch.lease: no leases in the reply");
    return SH_OK;
}

int sync_wc_renew(sh_rpc_client *c, const char *worker, const sync_wc_ref *refs, size_t n,
                  sh_val **reply, sh_error *err)
{
    *reply = NULL;
    return wc_call(c, "watch.renew", wc_refs_args(worker, refs, n), reply, err);
}

int sync_wc_release(sh_rpc_client *c, const char *worker, const sync_wc_ref *refs, size_t n,
                    sh_error *err)
{
    sh_val *reply = NULL;
    int rc = wc_call(c, "watch.release", wc_refs_args(worker, refs, n), &reply, err);
    sh_val_free(reply);
    return rc;
}

int sync_wc_report(sh_rpc_client *c, const sync_wc_ref *ref, const char *state, const char *error,
                   sh_error *err)
{
    sh_val *a = sh_val_new_map(), *reply = NULL;
    if (a && (sh_val_set_cstr(a, "accountId", sh_val_new_cstr(ref->id)) ||
              sh_val_set_cstr(a, "token", sh_val_new_int(ref->token)) ||
              sh_val_set_cstr(a, "state", sh_val_new_cstr(state)) ||
              (error && error[0] && sh_val_set_cstr(a, "error", sh_val_new_cstr(error))))) {
        sh_val_free(a);
        a = NULL;
    }
    int rc = wc_call(c, "watch.report", a, &reply, err);
    sh_val_free(reply);
    return rc;
}

int sync_wc_sync_now(sh_rpc_client *c, const char *id, const char *folder, sh_error *err)
{
    sh_val *a = sh_val_new_map(), *reply = NULL;
    if (a && (sh_val_set_cstr(a, "id", sh_val_new_cstr(id)) ||
              (folder && sh_val_set_cstr(a, "folder", sh_val_new_cstr(folder))))) {
        sh_val_free(a);
        a = NULL;
    }
    int rc = wc_call(c, "account.sync_now", a, &reply, err);
    sh_val_free(reply);
    return rc;
}
