/* handlers_watch.c - argument checking for the IDLE watch operations
 * (listed in coord_ops, handlers.c). */
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "ops.h"

/* The most leases one call may name, and accounts one lease may hand out. */
#define HW_LEASES_MAX 10000
#define HW_ERROR_MAX  1000

static int hw_token(const sh_val *m, long long *out, sh_error *err)
{
    const sh_val *v = sh_val_get(m, "token");
    if (!v || sh_val_type_of(v) != SH_VAL_INT || sh_val_int(v) < 1)
        return sh_error_set(err, SH_EINVAL, "field \"token\" must be a positive integer");
    *out = sh_val_int(v);
    return SH_OK;
}

/* hw_refs reads leases: [{accountId, token}] into *refs (caller frees;
 * the ids borrow from args). */
static int hw_refs(const sh_val *args, coord_watch_ref **refs, size_t *n, sh_error *err)
{
    *refs = NULL;
    *n = 0;
    const sh_val *l = sh_val_get(args, "leases");
    if (!l || sh_val_type_of(l) != SH_VAL_ARRAY || sh_val_len(l) > HW_LEASES_MAX)
        return sh_error_set(err, SH_EINVAL,
                            "field \"leases\" must be an array of at most %d {accountId, token}",
                            HW_LEASES_MAX);
    coord_watch_ref *r = calloc(sh_val_len(l) ? sh_val_len(l) : 1, sizeof *r);
    if (!r)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    static const char *const names[] = {"accountId", "token", NULL};
    for (size_t i = 0; i < sh_val_len(l); i++) {
        const sh_val *e = sh_val_at(l, i);
        int rc = coord_args_known(e, names, err);
        if (!rc)
            rc = coord_arg_id(e, "accountId", &r[i].id, err);
        if (!rc)
            rc = hw_token(e, &r[i].token, err);
        if (rc) {
            free(r);
            return rc;
        }
    }
    *refs = r;
    *n = sh_val_len(l);
    return SH_OK;
}

int coord_h_watch_lease(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    static const char *const names[] = {"workerId", "max", NULL};
    const char *worker;
    int rc = coord_args_known(args, names, err);
    if (!rc)
        rc = coord_arg_id(args, "workerId", &worker, err);
    if (rc)
        return rc;
    const sh_val *v = sh_val_get(args, "max");
    if (!v || sh_val_type_of(v) != SH_VAL_INT || sh_val_int(v) < 1 || sh_val_int(v) > HW_LEASES_MAX)
        return sh_error_set(err, SH_EINVAL, "field \"max\" must be an integer 1..%d",
                            HW_LEASES_MAX);
    return coord_watch_lease(state, worker, sh_val_int(v), result, err);
}

/* hw_held runs renew (or release) on the leases named by args. */
static int hw_held(void *state, const sh_val *args, bool renew, sh_val **result, sh_error *err)
{
    static const char *const names[] = {"workerId", "leases", NULL};
    const char *worker;
    coord_watch_ref *refs = NULL;
    size_t n = 0;
    int rc = coord_args_known(args, names, err);
    if (!rc)
        rc = coord_arg_id(args, "workerId", &worker, err);
    if (!rc)
        rc = hw_refs(args, &refs, &n, err);
    if (!rc)
        rc = renew ? coord_watch_renew(state, worker, refs, n, result, err)
                   : coord_watch_release(state, worker, refs, n, result, err);
    free(refs);
    return rc;
}

int coord_h_watch_renew(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    return hw_held(state, args, true, result, err);
}

int coord_h_watch_release(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    return hw_held(state, args, false, result, err);
}

int coord_h_watch_report(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    static const char *const names[] = {"accountId", "token", "state", "error", NULL};
    static const char *const states[] = {"idle", "polling", "connecting", "error", NULL};
    const char *id;
    long long token;
    int rc = coord_args_known(args, names, err);
    if (!rc)
        rc = coord_arg_id(args, "accountId", &id, err);
    if (!rc)
        rc = hw_token(args, &token, err);
    if (rc)
        return rc;
    const char *st = sh_val_get_str(args, "state", NULL);
    bool ok = false;
    for (size_t i = 0; st && states[i] && !ok; i++)
        ok = strcmp(st, states[i]) == 0;
    if (!ok)
        return sh_error_set(err, SH_EINVAL,
                            "field \"state\" must be \"idle\", \"polling\", \"connecting\" or "
                            "\"error\"");
    size_t elen = 0;
    const sh_val *ev = sh_val_get(args, "error");
    const char *e = NULL;
    if (ev && sh_val_type_of(ev) != SH_VAL_NIL) {
        e = sh_val_str(ev, &elen);
        if (sh_val_type_of(ev) != SH_VAL_STR || elen > HW_ERROR_MAX || strlen(e) != elen)
            return sh_error_set(err, SH_EINVAL,
                                "field \"error\" must be a string of at most %d "
                                "bytes",
                                HW_ERROR_MAX);
    }
    return coord_watch_report(state, id, token, st, e, result, err);
}
