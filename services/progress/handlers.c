/* handlers.c - argument decoding for each RPC operation (see README.md for
 * the table of operations, their arguments and results). */
#include "handlers.h"

#include <string.h>

#include "ops.h"
#include "shared/keys.h"
#include "shared/service.h"

/* handler_id fetches the string argument name of args as a valid id. */
static int handler_id(const sh_val *args, const char *name, const char **out, sh_error *err)
{
    if (sh_val_type_of(args) != SH_VAL_MAP)
        return sh_error_set(err, SH_EINVAL, "arguments must be a map, got %s",
                            sh_val_type_name(sh_val_type_of(args)));
    const sh_val *v = sh_val_get(args, name);
    if (!v)
        return sh_error_set(err, SH_EINVAL, "argument \"%s\" is required", name);
    size_t len;
    const char *s = sh_val_str(v, &len);
    if (sh_val_type_of(v) != SH_VAL_STR)
        return sh_error_set(err, SH_EINVAL, "argument \"%s\" must be a string, got %s", name,
                            sh_val_type_name(sh_val_type_of(v)));
    if (!sh_id_valid(s, len))
        return sh_error_set(err, SH_EINVAL,
                            "invalid %s \"%.40s\": must match [A-Za-z0-9._:-]{1,128}", name, s);
    *out = s;
    return SH_OK;
}

static int handler_map(const sh_val *args, const char *name, const sh_val **out, sh_error *err)
{
    const sh_val *v = sh_val_get(args, name);
    if (!v)
        return sh_error_set(err, SH_EINVAL, "argument \"%s\" is required", name);
    if (sh_val_type_of(v) != SH_VAL_MAP)
        return sh_error_set(err, SH_EINVAL, "argument \"%s\" must be an object, got %s", name,
                            sh_val_type_name(sh_val_type_of(v)));
    *out = v;
    return SH_OK;
}

/* handler_id_map reads the "id" argument and the map argument name, the
 * pair every write takes. */
static int handler_id_map(const sh_val *args, const char *name, const char **id, const sh_val **map,
                          sh_error *err)
{
    int rc = handler_id(args, "id", id, err);
    return rc ? rc : handler_map(args, name, map, err);
}

static int h_progress_get(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    const char *id;
    int rc = handler_id(args, "id", &id, err);
    return rc ? rc : prog_progress_get(state, id, result, err);
}

static int h_progress_update(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    const char *id;
    const sh_val *fields;
    int rc = handler_id_map(args, "fields", &id, &fields, err);
    return rc ? rc : prog_progress_update(state, id, fields, result, err);
}

static int h_progress_delete(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    const char *id;
    bool deleted;
    int rc = handler_id(args, "id", &id, err);
    if (!rc)
        rc = prog_progress_delete(state, id, &deleted, err);
    if (rc)
        return rc;
    sh_val *m = sh_val_new_map();
    if (!m || sh_val_set_cstr(m, "deleted", sh_val_new_bool(deleted))) {
        sh_val_free(m);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *result = m;
    return SH_OK;
}

static int h_log_append(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    const char *id;
    const sh_val *entry;
    int rc = handler_id_map(args, "entry", &id, &entry, err);
    return rc ? rc : prog_log_append(state, id, entry, result, err);
}

static int h_log_list(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    const char *id;
    int rc = handler_id(args, "id", &id, err);
    return rc ? rc : prog_log_list(state, id, result, err);
}

static int h_job_create(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    const sh_val *fields;
    if (sh_val_type_of(args) != SH_VAL_MAP)
        return sh_error_set(err, SH_EINVAL, "arguments must be a map");
    int rc = handler_map(args, "fields", &fields, err);
    return rc ? rc : prog_job_create(state, fields, result, err);
}

static int h_job_update(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    const char *id;
    const sh_val *fields;
    int rc = handler_id_map(args, "fields", &id, &fields, err);
    return rc ? rc : prog_job_update(state, id, fields, result, err);
}

static int h_job_get(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    const char *id;
    int rc = handler_id(args, "id", &id, err);
    return rc ? rc : prog_job_get(state, id, result, err);
}

static int h_job_by_conversation(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    const char *id;
    int rc = handler_id(args, "conversationId", &id, err);
    return rc ? rc : prog_job_by_conversation(state, id, result, err);
}

/* ---- split forms: one command each, so a batch of them is one pipeline ---- */

static int p_progress_get(void *state, const sh_val *args, sh_cmd **cmd, sh_val **ctx,
                          sh_error *err)
{
    (void)state, (void)ctx;
    const char *id;
    int rc = handler_id(args, "id", &id, err);
    return rc ? rc : prog_progress_get_cmd(id, cmd, err);
}

static int f_progress_get(void *state, const sh_val *args, sh_val *ctx, const sh_reply *reply,
                          sh_val **result, sh_error *err)
{
    (void)state, (void)args, (void)ctx;
    return prog_progress_get_reply(reply, result, err);
}

static int p_progress_update(void *state, const sh_val *args, sh_cmd **cmd, sh_val **ctx,
                             sh_error *err)
{
    (void)ctx;
    const char *id;
    const sh_val *fields;
    int rc = handler_id_map(args, "fields", &id, &fields, err);
    return rc ? rc : prog_progress_update_cmd(state, id, fields, cmd, err);
}

static int f_progress_update(void *state, const sh_val *args, sh_val *ctx, const sh_reply *reply,
                             sh_val **result, sh_error *err)
{
    (void)ctx;
    return prog_progress_update_reply(state, sh_val_get_str(args, "id", NULL), reply, result, err);
}

static int p_log_append(void *state, const sh_val *args, sh_cmd **cmd, sh_val **ctx, sh_error *err)
{
    const char *id;
    const sh_val *entry;
    int rc = handler_id_map(args, "entry", &id, &entry, err);
    return rc ? rc : prog_log_append_cmd(state, id, entry, cmd, ctx, err);
}

/* The stored entry waited in ctx; the result is a copy, ctx is the server's. */
static int f_log_append(void *state, const sh_val *args, sh_val *ctx, const sh_reply *reply,
                        sh_val **result, sh_error *err)
{
    sh_val *e = sh_val_clone(ctx);
    if (!e)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    prog_log_append_reply(state, sh_val_get_str(args, "id", NULL), reply, &e);
    *result = e;
    return SH_OK;
}

static int p_log_list(void *state, const sh_val *args, sh_cmd **cmd, sh_val **ctx, sh_error *err)
{
    (void)state, (void)ctx;
    const char *id;
    int rc = handler_id(args, "id", &id, err);
    return rc ? rc : prog_log_list_cmd(id, cmd, err);
}

static int f_log_list(void *state, const sh_val *args, sh_val *ctx, const sh_reply *reply,
                      sh_val **result, sh_error *err)
{
    (void)state, (void)ctx;
    return prog_log_list_reply(sh_val_get_str(args, "id", NULL), reply, result, err);
}

static int p_job_create(void *state, const sh_val *args, sh_cmd **cmd, sh_val **ctx, sh_error *err)
{
    const sh_val *fields;
    char jid[33];
    if (sh_val_type_of(args) != SH_VAL_MAP)
        return sh_error_set(err, SH_EINVAL, "arguments must be a map");
    int rc = handler_map(args, "fields", &fields, err);
    if (!rc)
        rc = prog_job_create_cmd(state, fields, cmd, jid, err);
    if (!rc && !(*ctx = sh_val_new_cstr(jid)))
        rc = sh_error_set(err, SH_ENOMEM, "out of memory");
    return rc;
}

static int f_job_create(void *state, const sh_val *args, sh_val *ctx, const sh_reply *reply,
                        sh_val **result, sh_error *err)
{
    (void)args;
    return prog_job_write_reply(state, sh_val_str(ctx, NULL), reply, result, err);
}

static int p_job_update(void *state, const sh_val *args, sh_cmd **cmd, sh_val **ctx, sh_error *err)
{
    (void)ctx;
    const char *id;
    const sh_val *fields;
    int rc = handler_id_map(args, "fields", &id, &fields, err);
    return rc ? rc : prog_job_update_cmd(state, id, fields, cmd, err);
}

static int f_job_update(void *state, const sh_val *args, sh_val *ctx, const sh_reply *reply,
                        sh_val **result, sh_error *err)
{
    (void)ctx;
    return prog_job_write_reply(state, sh_val_get_str(args, "id", NULL), reply, result, err);
}

static int p_job_get(void *state, const sh_val *args, sh_cmd **cmd, sh_val **ctx, sh_error *err)
{
    (void)state, (void)ctx;
    const char *id;
    int rc = handler_id(args, "id", &id, err);
    return rc ? rc : prog_job_get_cmd(id, cmd, err);
}

static int f_job_get(void *state, const sh_val *args, sh_val *ctx, const sh_reply *reply,
                     sh_val **result, sh_error *err)
{
    (void)state, (void)args, (void)ctx;
    return prog_job_get_reply(reply, result, err);
}

/* Operations with a prep and a finish are pipelined within a batch; the
 * others (ping, delete, the two-step job lookup by conversation) run alone. */
const sh_rpc_op prog_ops[] = {
    {"ping", sh_service_ping, NULL, NULL},
    {"progress.get", h_progress_get, p_progress_get, f_progress_get},
    {"progress.update", h_progress_update, p_progress_update, f_progress_update},
    {"progress.delete", h_progress_delete, NULL, NULL},
    {"log.append", h_log_append, p_log_append, f_log_append},
    {"log.list", h_log_list, p_log_list, f_log_list},
    {"job.create", h_job_create, p_job_create, f_job_create},
    {"job.update", h_job_update, p_job_update, f_job_update},
    {"job.get", h_job_get, p_job_get, f_job_get},
    {"job.by_conversation", h_job_by_conversation, NULL, NULL},
    {NULL, NULL, NULL, NULL},
};
