/* routes_accounts.c - email accounts of seed 004 over the coordinator, which
 * checks every field and keeps the password sealed. Replies carry only the
 * account's public fields, so no secret the coordinator may hold can leave
 * through this edge. */
#include <string.h>

#include "gw_routes.h"
#include "gw_routes_int.h"

static const char accounts_not_found[] = "Account not found";

/* The public view of an account (services/coordinator/README.md). */
static const char *const accounts_fields[] = {
    "id",           "emailAddress", "imapHost",   "imapPort",
    "security",     "username",     "auth",       "folders",
    "watchFolders", "watch",        "tlsVerify",  "syncStatus",
    "errorMessage", "lastSyncedAt", "nextSyncAt", "consecutiveFailures",
    "createdAt",    "updatedAt",    NULL};

/* Filters of GET /api/accounts?status=; "error" also matches auth_error. */
static const char *const accounts_statuses[] = {"idle",  "queued",     "syncing", "ok",
                                                "error", "auth_error", NULL};

sh_val *gw__routes_account_view(const sh_val *account)
{
    return gw__routes_pick(account, accounts_fields);
}

bool gw__routes_account_status_ok(const char *s)
{
    for (size_t i = 0; accounts_statuses[i]; i++)
        if (strcmp(accounts_statuses[i], s) == 0)
            return true;
    return false;
}

/* accounts_reply answers status with v (taken), or 503 when v is NULL. */
static void accounts_reply(gw_req *r, int status, sh_val *v)
{
    if (!v) {
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    gw_req_reply_json(r, status, v);
    sh_val_free(v);
}

static void accounts_one_done(gw_req *r, int status, int rc, const sh_val *result,
                              const sh_error *err)
{
    if (rc != SH_OK) {
        gw_req_reply_rpc_error(r, rc, err, accounts_not_found);
        return;
    }
    if (sh_val_type_of(result) != SH_VAL_MAP || !sh_val_get_str(result, "id", NULL)) {
        gw_req_reply_error(r, 500, "internal error: the coordinator answered without an account");
        return;
    }
    accounts_reply(r, status, gw__routes_account_view(result));
}

static void accounts_created(gw_req *r, int rc, const sh_val *result, const sh_error *err)
{
    accounts_one_done(r, 201, rc, result, err);
}

static void accounts_one(gw_req *r, int rc, const sh_val *result, const sh_error *err)
{
    accounts_one_done(r, 200, rc, result, err);
}

static void accounts_listed(gw_req *r, int rc, const sh_val *result, const sh_error *err)
{
    if (rc != SH_OK) {
        gw_req_reply_rpc_error(r, rc, err, NULL);
        return;
    }
    const sh_val *list = sh_val_get(result, "accounts");
    if (sh_val_type_of(list) != SH_VAL_ARRAY) {
        gw_req_reply_error(r, 500,
                           "internal error: the coordinator answered without an account list");
        return;
    }
    sh_val *arr = sh_val_new_array();
    for (size_t i = 0; arr && i < sh_val_len(list); i++) {
        if (sh_val_push(arr, gw__routes_account_view(sh_val_at(list, i))) != SH_OK) {
            sh_val_free(arr);
            arr = NULL;
        }
    }
    /* sh_val_set takes arr even when it fails, and fails on a NULL map. */
    sh_val *m = sh_val_new_map();
    if (sh_val_set_cstr(m, "accounts", arr) != SH_OK) {
        sh_val_free(m);
        m = NULL;
    }
    accounts_reply(r, 200, m);
}

static void accounts_deleted(gw_req *r, int rc, const sh_val *result, const sh_error *err)
{
    if (rc != SH_OK) {
        gw_req_reply_rpc_error(r, rc, err, accounts_not_found);
        return;
    }
    sh_val *m = sh_val_new_map();
    if (sh_val_set_cstr(m, "deleted", sh_val_new_bool(true)) != SH_OK) {
        sh_val_free(m);
        m = NULL;
    }
    accounts_reply(r, 200, m);
}

static void accounts_sync_queued(gw_req *r, int rc, const sh_val *result, const sh_error *err)
{
    if (rc != SH_OK) {
        gw_req_reply_rpc_error(r, rc, err, accounts_not_found);
        return;
    }
    const char *pid = sh_val_get_str(result, "progressId", NULL);
    if (!pid) {
        gw_req_reply_error(r, 500, "internal error: the coordinator answered without a progressId");
        return;
    }
    bool queued = sh_val_bool(sh_val_get(result, "queued"));
    sh_val *m = sh_val_new_map();
    if (sh_val_set_cstr(m, "progressId", sh_val_new_cstr(pid)) != SH_OK ||
        sh_val_set_cstr(m, "queued", sh_val_new_bool(queued)) != SH_OK) {
        sh_val_free(m);
        m = NULL;
    }
    accounts_reply(r, 202, m);
}

/* accounts_call calls op with {id: the :id of the path (if with_id), key:
 * the request body (if key)}. */
static void accounts_call(gw_req *r, const char *op, bool with_id, const char *key, gw_call_fn fn)
{
    sh_val *args = sh_val_new_map();
    int rc = args ? SH_OK : SH_ENOMEM;
    if (rc == SH_OK && with_id)
        rc = sh_val_set_cstr(args, "id", sh_val_new_cstr(gw_req_param(r)));
    if (rc == SH_OK && key)
        rc = sh_val_set_cstr(args, key, gw_req_take_body(r));
    if (rc != SH_OK) {
        sh_val_free(args);
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    gw_req_call_svc(r, GW_SVC_COORDINATOR, op, args, 0, 200, accounts_not_found, fn);
}

void gw_route_account_create(gw_req *r)
{
    /* The body is the arguments, as they are: the coordinator refuses
     * unknown fields and names the one that is wrong. The request id joins
     * them, from the Idempotency-Key header only. */
    sh_val *args = gw_req_take_body(r);
    if (sh_val_type_of(args) == SH_VAL_MAP && sh_val_get(args, "requestId")) {
        sh_val_free(args);
        gw_req_reply_error(r, 400,
                           "unknown field \"requestId\" (a request id goes in the "
                           "Idempotency-Key header)");
        return;
    }
    if (sh_val_type_of(args) == SH_VAL_MAP && !gw__routes_add_request_id(r, args)) {
        sh_val_free(args);
        return;
    }
    gw_req_call_svc(r, GW_SVC_COORDINATOR, "account.create", args, 0, 201, NULL, accounts_created);
}

void gw_route_account_list(gw_req *r)
{
    const char *status = gw_req_query(r, "status");
    if (status && !gw__routes_account_status_ok(status)) {
        gw_req_reply_error(r, 400,
                           "status must be one of idle, queued, syncing, ok, error, auth_error");
        return;
    }
    sh_val *args = sh_val_new_map();
    if (!args || (status && sh_val_set_cstr(args, "status", sh_val_new_cstr(status)) != SH_OK)) {
        sh_val_free(args);
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    gw_req_call_svc(r, GW_SVC_COORDINATOR, "account.list", args, 0, 200, NULL, accounts_listed);
}

int gw__routes_folder_counts(sh_val *view, const sh_val *counts)
{
    const sh_val *names = sh_val_get(view, "folders");
    const sh_val *known = counts ? sh_val_get(counts, "folders") : NULL;
    size_t n = sh_val_type_of(names) == SH_VAL_ARRAY ? sh_val_len(names) : 0;
    sh_val *arr = sh_val_new_array();
    int rc = arr ? SH_OK : SH_ENOMEM;
    for (size_t i = 0; !rc && i < (n ? n : 1); i++) {
        const char *name = n ? sh_val_str(sh_val_at(names, i), NULL) : "INBOX";
        if (!name)
            continue;
        sh_val *f = sh_val_new_map();
        rc = f && sh_val_set_cstr(f, "name", sh_val_new_cstr(name)) == SH_OK ? SH_OK : SH_ENOMEM;
        long long total = 0, unread = 0;
        for (size_t k = 0; counts && k < sh_val_len(known); k++) {
            const sh_val *c = sh_val_at(known, k);
            const char *cn = sh_val_get_str(c, "name", NULL);
            if (cn && strcmp(cn, name) == 0) {
                total = sh_val_int(sh_val_get(c, "total"));
                unread = sh_val_int(sh_val_get(c, "unread"));
            }
        }
        if (!rc && counts &&
            (sh_val_set_cstr(f, "total", sh_val_new_int(total)) != SH_OK ||
             sh_val_set_cstr(f, "unread", sh_val_new_int(unread)) != SH_OK))
            rc = SH_ENOMEM;
        if (rc)
            sh_val_free(f);
        else if (sh_val_push(arr, f) != SH_OK)
            rc = SH_ENOMEM;
    }
    if (rc) {
        sh_val_free(arr);
        return rc;
    }
    return sh_val_set_cstr(view, "folders", arr) == SH_OK ? SH_OK : SH_ENOMEM;
}

static void accounts_one_counted(gw_req *r, size_t n, const int *rc, sh_val *const *results,
                                 const sh_error *errs)
{
    if (rc[0] != SH_OK) {
        gw_req_reply_rpc_error(r, rc[0], &errs[0], accounts_not_found);
        return;
    }
    if (sh_val_type_of(results[0]) != SH_VAL_MAP || !sh_val_get_str(results[0], "id", NULL)) {
        gw_req_reply_error(r, 500, "internal error: the coordinator answered without an account");
        return;
    }
    sh_val *view = gw__routes_account_view(results[0]);
    if (view && gw__routes_folder_counts(view, rc[1] == SH_OK ? results[1] : NULL) != SH_OK) {
        sh_val_free(view);
        view = NULL;
    }
    accounts_reply(r, 200, view);
}

void gw_route_account_get(gw_req *r)
{
    /* The counts come from the sync-worker beside the account; without
     * them the folders are listed by name only. */
    sh_val *a = sh_val_new_map(), *c = sh_val_new_map();
    if (!a || !c || sh_val_set_cstr(a, "id", sh_val_new_cstr(gw_req_param(r))) != SH_OK ||
        sh_val_set_cstr(c, "accountId", sh_val_new_cstr(gw_req_param(r))) != SH_OK) {
        sh_val_free(a);
        sh_val_free(c);
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    gw_call_spec calls[2] = {{GW_SVC_COORDINATOR, "account.get", a},
                             {GW_SVC_SYNC, "folders.counts", c}};
    gw_req_call_all(r, 2, calls, 0, accounts_one_counted);
}

void gw_route_account_update(gw_req *r)
{
    accounts_call(r, "account.update", true, "fields", accounts_one);
}

void gw_route_account_delete(gw_req *r)
{
    accounts_call(r, "account.delete", true, NULL, accounts_deleted);
}

void gw_route_account_sync(gw_req *r)
{
    accounts_call(r, "account.sync_now", true, NULL, accounts_sync_queued);
}
