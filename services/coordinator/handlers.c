/* handlers.c - argument checking for each RPC operation of the coordinator. */
#include "handlers.h"

#include <stdio.h>
#include <string.h>

#include "ops.h"

/* The arguments an operation takes: a NULL-terminated list of names. */
typedef const char *const arg_names[];

/* arg_id reads a required id-syntax string of at most max bytes. */
static int arg_id(const sh_val *args, const char *name, size_t max, const char **out, sh_error *err)
{
    const sh_val *v = sh_val_get(args, name);
    if (!v || sh_val_type_of(v) == SH_VAL_NIL)
        return sh_error_set(err, SH_EINVAL, "field \"%s\" is required", name);
    if (sh_val_type_of(v) != SH_VAL_STR)
        return sh_error_set(err, SH_EINVAL, "field \"%s\" must be a string, got %s", name,
                            sh_val_type_name(sh_val_type_of(v)));
    size_t len;
    const char *s = sh_val_str(v, &len);
    if (len == 0 || len > max)
        return sh_error_set(err, SH_EINVAL, "field \"%s\" must be 1..%zu characters, got %zu", name,
                            max, len);
    if (!sh_id_valid(s, len))
        return sh_error_set(err, SH_EINVAL,
                            "field \"%s\" may only hold letters, digits and . _ : -", name);
    *out = s;
    return SH_OK;
}

/* arg_name reads an optional namespace or log name (default deflt). */
static int arg_name(const sh_val *args, const char *name, const char *deflt, const char **out,
                    sh_error *err)
{
    const sh_val *v = sh_val_get(args, name);
    if (!v || sh_val_type_of(v) == SH_VAL_NIL) {
        *out = deflt;
        return SH_OK;
    }
    const char *s = sh_val_str(v, NULL);
    if (sh_val_type_of(v) != SH_VAL_STR || !coord_name_valid(s))
        return sh_error_set(err, SH_EINVAL,
                            "field \"%s\" must match [a-z][a-z0-9_-]{0,31}, e.g. \"%s\"", name,
                            deflt);
    *out = s;
    return SH_OK;
}

/* arg_int reads an integer in [lo, hi]; optional ones default to 0. */
static int arg_int(const sh_val *args, const char *name, bool required, long long lo, long long hi,
                   long long *out, sh_error *err)
{
    const sh_val *v = sh_val_get(args, name);
    *out = 0;
    if (!v || sh_val_type_of(v) == SH_VAL_NIL)
        return required ? sh_error_set(err, SH_EINVAL, "field \"%s\" is required", name) : SH_OK;
    if (sh_val_type_of(v) != SH_VAL_INT)
        return sh_error_set(err, SH_EINVAL, "field \"%s\" must be an integer, got %s", name,
                            sh_val_type_name(sh_val_type_of(v)));
    long long n = sh_val_int(v);
    if (n < lo || n > hi)
        return sh_error_set(err, SH_EINVAL, "field \"%s\" must be between %lld and %lld, got %lld",
                            name, lo, hi, n);
    *out = n;
    return SH_OK;
}

static int arg_status(const sh_val *args, bool required, const char **out, sh_error *err)
{
    *out = NULL;
    if (!required && !sh_val_get(args, "status"))
        return SH_OK;
    return arg_id(args, "status", COORD_STATUS_MAX, out, err);
}

/* The item and owner every claim and reservation operation names. */
typedef struct item_args {
    const char *ns, *id, *bot;
    long long token, ttl;
} item_args;

static int item_read(const sh_val *args, sh_worker *w, const char *ns_field, const char *deflt,
                     bool token, bool ttl, item_args *a, sh_error *err)
{
    int rc = arg_name(args, ns_field, deflt, &a->ns, err);
    if (!rc)
        rc = arg_id(args, "sq", SH_ID_MAX, &a->id, err);
    if (!rc)
        rc = arg_id(args, "botId", SH_ID_MAX, &a->bot, err);
    if (!rc && token)
        rc = arg_int(args, "token", true, 1, INT64_MAX, &a->token, err);
    if (!rc && ttl)
        rc = arg_int(args, "ttlSeconds", false, 1, coord_env_of(w)->max_ttl, &a->ttl, err);
    return rc;
}

static int reply_with(sh_val **result, const char *flag, bool value, const char *key, sh_val *body,
                      sh_error *err)
{
    sh_val *m = sh_val_new_map();
    int rc = m && body ? SH_OK : SH_ENOMEM;
    if (!rc && flag)
        rc = sh_val_set_cstr(m, flag, sh_val_new_bool(value));
    if (!rc) {
        rc = sh_val_set_cstr(m, key, body);
        body = NULL;
    }
    sh_val_free(body);
    if (rc) {
        sh_val_free(m);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *result = m;
    return SH_OK;
}

/* reply_conflict answers {flag: false, key: holder, error: message}: a
 * conflict is an expected outcome, not a failure of the call. */
static int reply_conflict(sh_val **result, const char *flag, const char *key, sh_val *holder,
                          sh_error *err)
{
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg);
    int rc = reply_with(result, flag, false, key, holder, err);
    if (rc == SH_OK && sh_val_set_cstr(*result, "error", sh_val_new_cstr(msg)) != SH_OK) {
        sh_val_free(*result);
        *result = NULL;
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    return rc;
}

/* The answers of claim operations, shared by the whole and split forms. */
static int claim_answer(int rc, coord_claim *c, bool renewed, sh_val **result, sh_error *err)
{
    if (rc == SH_ECONFLICT) {
        sh_val *holder = coord_claim_val(c);
        sh_val_free(sh_val_take(holder, "token"));
        return reply_conflict(result, "claimed", "claim", holder, err);
    }
    if (rc)
        return rc;
    sh_val *body = coord_claim_val(c);
    if (body)
        sh_val_set_cstr(body, "renewed", sh_val_new_bool(renewed));
    return reply_with(result, "claimed", true, "claim", body, err);
}

static int holder_answer(int rc, coord_claim *c, sh_val **result, sh_error *err)
{
    return rc ? rc : reply_with(result, NULL, false, "claim", coord_claim_val(c), err);
}

static int reserve_answer(int rc, coord_reservation *r, sh_val **result, sh_error *err)
{
    if (rc == SH_ECONFLICT)
        return reply_conflict(result, "reserved", "reservation", coord_reservation_val(r), err);
    return rc ? rc
              : reply_with(result, "reserved", true, "reservation", coord_reservation_val(r), err);
}

/* claim_read checks the arguments of a claim. */
static int claim_read(void *state, const sh_val *args, item_args *a, const char **status,
                      sh_error *err)
{
    static arg_names names = {"sq", "botId", "ttlSeconds", "status", "namespace", NULL};
    int rc = coord_args_known(args, names, err);
    if (!rc)
        rc = item_read(args, state, "namespace", "sq", false, true, a, err);
    if (!rc)
        rc = arg_status(args, false, status, err);
    return rc;
}

static int p_claim(void *state, const sh_val *args, sh_cmd **cmd, sh_val **ctx, sh_error *err)
{
    (void)ctx;
    item_args a;
    const char *status;
    int rc = claim_read(state, args, &a, &status, err);
    return rc ? rc : coord_claim_cmd(state, a.ns, a.id, a.bot, a.ttl, status, cmd, err);
}

static int f_claim(void *state, const sh_val *args, sh_val *ctx, const sh_reply *reply,
                   sh_val **result, sh_error *err)
{
    (void)ctx;
    item_args a;
    const char *status;
    coord_claim c;
    bool renewed = false;
    int rc = claim_read(state, args, &a, &status, err);
    if (rc)
        return rc;
    rc = coord_claim_reply(state, a.ns, a.id, reply, &c, &renewed, err);
    return claim_answer(rc, &c, renewed, result, err);
}

/* holder_read checks the arguments of renew, release and status, and makes
 * the command's extra argument. */
static int holder_read(coord_holder_op op, void *state, const sh_val *args, item_args *a,
                       char extra[COORD_STATUS_MAX + 32], sh_error *err)
{
    static arg_names renew = {"sq", "botId", "token", "ttlSeconds", "namespace", NULL};
    static arg_names release = {"sq", "botId", "token", "namespace", NULL};
    static arg_names status = {"sq", "botId", "token", "status", "namespace", NULL};
    int rc = coord_args_known(args,
                              op == COORD_RENEW     ? renew
                              : op == COORD_RELEASE ? release
                                                    : status,
                              err);
    if (!rc)
        rc = item_read(args, state, "namespace", "sq", true, op == COORD_RENEW, a, err);
    extra[0] = '\0';
    if (!rc && op == COORD_RENEW)
        coord_renew_ttl(a->ttl, extra);
    if (!rc && op == COORD_STATUS) {
        const char *st;
        rc = arg_status(args, true, &st, err);
        if (!rc)
            snprintf(extra, COORD_STATUS_MAX + 32, "%s", st);
    }
    return rc;
}

static int holder_prep(coord_holder_op op, void *state, const sh_val *args, sh_cmd **cmd,
                       sh_error *err)
{
    item_args a;
    char extra[COORD_STATUS_MAX + 32];
    int rc = holder_read(op, state, args, &a, extra, err);
    return rc ? rc
              : coord_holder_cmd(op, a.ns, a.id, a.bot, a.token, op == COORD_RELEASE ? NULL : extra,
                                 cmd, err);
}

static int holder_finish(coord_holder_op op, void *state, const sh_val *args, const sh_reply *reply,
                         sh_val **result, sh_error *err)
{
    item_args a;
    char extra[COORD_STATUS_MAX + 32];
    coord_claim c;
    int rc = holder_read(op, state, args, &a, extra, err);
    if (rc)
        return rc;
    rc = coord_holder_reply(state, op, a.ns, a.id, a.token, reply, &c, err);
    return holder_answer(rc, &c, result, err);
}

/* HOLDER_OPS defines the prep and finish of a holder operation: p_<name>
 * and f_<name>. */
#define HOLDER_OPS(name, op)                                                                       \
    static int p_##name(void *state, const sh_val *args, sh_cmd **cmd, sh_val **ctx,               \
                        sh_error *err)                                                             \
    {                                                                                              \
        (void)ctx;                                                                                 \
        return holder_prep(op, state, args, cmd, err);                                             \
    }                                                                                              \
    static int f_##name(void *state, const sh_val *args, sh_val *ctx, const sh_reply *reply,       \
                        sh_val **result, sh_error *err)                                            \
    {                                                                                              \
        (void)ctx;                                                                                 \
        return holder_finish(op, state, args, reply, result, err);                                 \
    }

HOLDER_OPS(renew, COORD_RENEW)
HOLDER_OPS(release, COORD_RELEASE)
HOLDER_OPS(status, COORD_STATUS)

static int reserve_read(void *state, const sh_val *args, item_args *a, long long *rows,
                        sh_error *err)
{
    static arg_names names = {"sq", "botId", "rowCount", "ttlSeconds", "log", NULL};
    int rc = coord_args_known(args, names, err);
    if (!rc)
        rc = item_read(args, state, "log", "refund", false, true, a, err);
    if (!rc)
        rc = arg_int(args, "rowCount", true, 1, coord_env_of(state)->max_rows, rows, err);
    return rc;
}

static int p_reserve(void *state, const sh_val *args, sh_cmd **cmd, sh_val **ctx, sh_error *err)
{
    (void)ctx;
    item_args a;
    long long rows;
    int rc = reserve_read(state, args, &a, &rows, err);
    return rc ? rc : coord_reserve_cmd(state, a.ns, a.id, a.bot, rows, a.ttl, cmd, err);
}

static int f_reserve(void *state, const sh_val *args, sh_val *ctx, const sh_reply *reply,
                     sh_val **result, sh_error *err)
{
    (void)ctx;
    item_args a;
    long long rows;
    coord_reservation r;
    int rc = reserve_read(state, args, &a, &rows, err);
    if (rc)
        return rc;
    rc = coord_reserve_reply(state, a.ns, a.id, reply, &r, err);
    return reserve_answer(rc, &r, result, err);
}

static int h_reserve_release(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    static arg_names names = {"sq", "botId", "log", NULL};
    item_args a;
    coord_reservation r;
    int rc = coord_args_known(args, names, err);
    if (!rc)
        rc = item_read(args, state, "log", "refund", false, false, &a, err);
    if (!rc)
        rc = coord_reserve_release(state, a.ns, a.id, a.bot, &r, err);
    return rc ? rc : reply_with(result, NULL, false, "reservation", coord_reservation_val(&r), err);
}

static int h_list(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    static arg_names names = {"namespace", "log", NULL};
    const char *ns = "sq", *log = "refund";
    int rc = sh_val_type_of(args) == SH_VAL_NIL ? SH_OK : coord_args_known(args, names, err);
    if (!rc && sh_val_type_of(args) == SH_VAL_MAP) {
        rc = arg_name(args, "namespace", "sq", &ns, err);
        if (!rc)
            rc = arg_name(args, "log", "refund", &log, err);
    }
    return rc ? rc : coord_list(state, ns, log, result, err);
}

/* The claim and reservation operations are split only: the service's
 * server has a pipeline, which runs a lone call as a pipeline of one. */
const sh_rpc_op coord_ops[] = {
    {"ping", sh_service_ping, NULL, NULL},
    {"claim", NULL, p_claim, f_claim},
    {"claim.renew", NULL, p_renew, f_renew},
    {"claim.release", NULL, p_release, f_release},
    {"claim.status", NULL, p_status, f_status},
    {"reserve", NULL, p_reserve, f_reserve},
    {"reserve.release", h_reserve_release, NULL, NULL},
    {"list", h_list, NULL, NULL},
    {"account.create", coord_h_account_create, NULL, NULL},
    {"account.get", coord_h_account_get, NULL, NULL},
    {"account.list", coord_h_account_list, NULL, NULL},
    {"account.exists", coord_h_account_exists, NULL, NULL},
    {"account.update", coord_h_account_update, NULL, NULL},
    {"account.delete", coord_h_account_delete, NULL, NULL},
    {"account.sync_now", coord_h_sync_now, NULL, NULL},
    {"sched.tick", coord_h_tick, NULL, NULL},
    {"sched.status", coord_h_sched_status, NULL, NULL},
    {"sync.lease", coord_h_lease, NULL, NULL},
    {"sync.renew", coord_h_lease_renew, NULL, NULL},
    {"sync.complete", coord_h_lease_complete, NULL, NULL},
    {"watch.lease", coord_h_watch_lease, NULL, NULL},
    {"watch.renew", coord_h_watch_renew, NULL, NULL},
    {"watch.release", coord_h_watch_release, NULL, NULL},
    {"watch.report", coord_h_watch_report, NULL, NULL},
    {"oauth.refresh_begin", coord_h_oauth_begin, NULL, NULL},
    {"oauth.refresh_end", coord_h_oauth_end, NULL, NULL},
    {NULL, NULL, NULL, NULL},
};
