/* handlers.c - argument decoding for each RPC operation (see README.md for
 * the table of operations, their arguments and results). */
#include "handlers.h"

#include <string.h>

#include "ops.h"
#include "shared/keys.h"

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

static int h_ping(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    int rc = prog_ping(state, err);
    if (rc)
        return rc;
    sh_val *m = sh_val_new_map();
    if (!m || sh_val_set_cstr(m, "redis", sh_val_new_cstr("ok"))) {
        sh_val_free(m);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *result = m;
    return SH_OK;
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
    int rc = handler_id(args, "id", &id, err);
    if (!rc)
        rc = handler_map(args, "fields", &fields, err);
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
    int rc = handler_id(args, "id", &id, err);
    if (!rc)
        rc = handler_map(args, "entry", &entry, err);
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
    int rc = handler_id(args, "id", &id, err);
    if (!rc)
        rc = handler_map(args, "fields", &fields, err);
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

const sh_rpc_op prog_ops[] = {
    {"ping", h_ping},
    {"progress.get", h_progress_get},
    {"progress.update", h_progress_update},
    {"progress.delete", h_progress_delete},
    {"log.append", h_log_append},
    {"log.list", h_log_list},
    {"job.create", h_job_create},
    {"job.update", h_job_update},
    {"job.get", h_job_get},
    {"job.by_conversation", h_job_by_conversation},
    {NULL, NULL},
};
