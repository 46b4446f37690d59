/* handlers_accounts.c - argument checking for the account and schedule
 * operations (listed in coord_ops, handlers.c). */
#include <string.h>

#include "handlers.h"
#include "ops.h"
#include "shared/text.h"

static int ha_map(const sh_val *args, sh_error *err)
{
    if (sh_val_type_of(args) != SH_VAL_MAP)
        return sh_error_set(err, SH_EINVAL, "arguments must be an object, got %s",
                            sh_val_type_name(sh_val_type_of(args)));
    return SH_OK;
}

/* The arguments are the account's fields, plus the request id if any. */
int coord_h_account_create(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    if (sh_val_type_of(args) != SH_VAL_MAP || !sh_val_get(args, "requestId"))
        return coord_account_create(state, args, NULL, result, err);
    const char *rid;
    int rc = coord_arg_id(args, "requestId", &rid, err);
    if (rc)
        return rc;
    sh_val *fields = sh_val_clone(args);
    sh_val *idv = fields ? sh_val_take(fields, "requestId") : NULL;
    if (!idv) {
        sh_val_free(fields);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    rc = coord_account_create(state, fields, sh_val_str(idv, NULL), result, err);
    sh_val_free(idv);
    sh_val_free(fields);
    return rc;
}

int coord_h_account_get(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    const char *id;
    int rc = coord_arg_id(args, "id", &id, err);
    return rc ? rc : coord_account_get(state, id, result, err);
}

int coord_h_account_list(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    static const char *const statuses[] = {"idle",  "queued",     "syncing", "ok",
                                           "error", "auth_error", NULL};
    const char *status = NULL;
    if (sh_val_type_of(args) == SH_VAL_MAP && sh_val_get(args, "status")) {
        status = sh_val_get_str(args, "status", NULL);
        bool ok = false;
        for (size_t i = 0; status && statuses[i] && !ok; i++)
            ok = strcmp(status, statuses[i]) == 0;
        if (!ok)
            return sh_error_set(err, SH_EINVAL,
                                "status must be one of idle, queued, syncing, ok, error, "
                                "auth_error");
    }
    return coord_account_list(state, status, result, err);
}

int coord_h_account_exists(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    int rc = ha_map(args, err);
    return rc ? rc : coord_account_exists(state, sh_val_get(args, "ids"), result, err);
}

int coord_h_account_update(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    const char *id;
    int rc = coord_arg_id(args, "id", &id, err);
    if (rc)
        return rc;
    const sh_val *fields = sh_val_get(args, "fields");
    if (!fields)
        return sh_error_set(err, SH_EINVAL, "field \"fields\" is required");
    return coord_account_update(state, id, fields, result, err);
}

int coord_h_account_delete(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    const char *id;
    bool deleted;
    int rc = coord_arg_id(args, "id", &id, err);
    if (!rc)
        rc = coord_account_delete(state, id, &deleted, err);
    if (rc)
        return rc;
    sh_val *m = sh_val_new_map();
    if (!m || sh_val_set_cstr(m, "deleted", sh_val_new_bool(true))) {
        sh_val_free(m);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *result = m;
    return SH_OK;
}

/* The longest folder name an account may list (accounts.c). */
#define HA_FOLDER_MAX 200

int coord_h_sync_now(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    const char *id;
    int rc = coord_arg_id(args, "id", &id, err);
    if (rc)
        return rc;
    const sh_val *f = sh_val_get(args, "folder");
    const char *folder = NULL;
    if (f && sh_val_type_of(f) != SH_VAL_NIL) {
        size_t len = 0;
        folder = sh_val_str(f, &len);
        bool ok = sh_val_type_of(f) == SH_VAL_STR && len > 0 && len <= HA_FOLDER_MAX &&
                  strlen(folder) == len;
        for (size_t i = 0; ok && i < len; i++)
            ok = (unsigned char)folder[i] >= 0x20 && folder[i] != 0x7f;
        if (!ok)
            return sh_error_set(err, SH_EINVAL,
                                "field \"folder\" must be a folder name of 1..%d characters",
                                HA_FOLDER_MAX);
    }
    return coord_sync_now(state, id, folder, result, err);
}

int coord_h_tick(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    long long now = -1, batch = 0;
    bool force = false;
    if (sh_val_type_of(args) == SH_VAL_MAP) {
        const sh_val *v;
        if ((v = sh_val_get(args, "now"))) {
            if (sh_val_type_of(v) != SH_VAL_INT || sh_val_int(v) < 0)
                return sh_error_set(err, SH_EINVAL, "\"now\" must be ms since the epoch");
            now = sh_val_int(v);
        }
        if ((v = sh_val_get(args, "batchSize"))) {
            if (sh_val_type_of(v) != SH_VAL_INT || sh_val_int(v) < 1 || sh_val_int(v) > 1000)
                return sh_error_set(err, SH_EINVAL,
                                    "batchSize must be an integer between 1 and 1000");
            batch = sh_val_int(v);
        }
        if ((v = sh_val_get(args, "force")))
            force = sh_val_bool(v);
    } else if (sh_val_type_of(args) != SH_VAL_NIL) {
        return ha_map(args, err);
    }
    return coord_tick(state, now, batch, force, result, err);
}

int coord_h_sched_status(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    return coord_sched_status(state, result, err);
}

int coord_h_lease(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    const char *worker = "-";
    if (sh_val_type_of(args) == SH_VAL_MAP && sh_val_get_str(args, "worker", NULL))
        worker = sh_val_get_str(args, "worker", NULL);
    return coord_lease(state, worker, result, err);
}

static int ha_lease_args(const sh_val *args, const char **id, const char **token, sh_error *err)
{
    int rc = coord_arg_id(args, "accountId", id, err);
    if (!rc)
        rc = coord_arg_id(args, "leaseToken", token, err);
    return rc;
}

int coord_h_lease_renew(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    const char *id, *token;
    int rc = ha_lease_args(args, &id, &token, err);
    return rc ? rc : coord_lease_renew(state, id, token, result, err);
}

int coord_h_lease_complete(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    const char *id, *token;
    int rc = ha_lease_args(args, &id, &token, err);
    if (rc)
        return rc;
    const char *outcome = sh_val_get_str(args, "outcome", NULL);
    if (!outcome ||
        (strcmp(outcome, "ok") && strcmp(outcome, "error") && strcmp(outcome, "auth_error")))
        return sh_error_set(err, SH_EINVAL, "outcome must be \"ok\", \"error\" or \"auth_error\"");
    size_t mlen = 0;
    const char *msg = sh_val_get_str(args, "message", &mlen);
    if (msg && mlen > 1000)
        return sh_error_set(err, SH_EINVAL, "message must be at most 1000 bytes");
    /* It becomes the account's errorMessage: server text, bounded and
     * cleaned like every error text. */
    char text[SH_TEXT_ERROR_MAX + 1];
    if (msg)
        sh_text_bound(text, sizeof text, msg, mlen);
    return coord_lease_complete(state, id, token, outcome, msg ? text : NULL, result, err);
}
