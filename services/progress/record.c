/* record.c - validation of records, log entries and jobs, and their mapping
 * to and from Redis hashes. */
#include "record.h"

#include <string.h>

#include "shared/buf.h"
#include "shared/keys.h"
#include "shared/log.h"
#include "shared/msg.h"

typedef enum { FT_INT, FT_INT_ARRAY, FT_STR, FT_MAP, FT_ARRAY, FT_BOOL, FT_ANY } field_type;

typedef struct field_rule {
    const char *name;
    field_type type;
} field_rule;

/* The fields of seed 001 and their types; other fields are free-form. */
static const field_rule progress_rules[] = {
    {"currentStep", FT_INT},   {"completedSteps", FT_INT_ARRAY},
    {"currentAction", FT_STR}, {"toolStatus", FT_MAP},
    {"errors", FT_ARRAY},      {"phase", FT_STR},
    {"complete", FT_BOOL},     {"timestamp", FT_STR},
    {"sessionId", FT_STR},     {NULL, FT_ANY},
};

static const field_rule job_rules[] = {
    {"conversationId", FT_STR},
    {"status", FT_STR},
    {"result", FT_ANY},
    {NULL, FT_ANY},
};

static const char *type_word(field_type t)
{
    switch (t) {
    case FT_INT:
        return "an integer";
    case FT_INT_ARRAY:
        return "an array of integers";
    case FT_STR:
        return "a string";
    case FT_MAP:
        return "an object";
    case FT_ARRAY:
        return "an array";
    case FT_BOOL:
        return "a boolean";
    default:
        return "a value";
    }
}

static bool type_ok(field_type t, const sh_val *v)
{
    sh_val_type vt = sh_val_type_of(v);
    switch (t) {
    case FT_INT:
        return vt == SH_VAL_INT;
    case FT_STR:
        return vt == SH_VAL_STR;
    case FT_MAP:
        return vt == SH_VAL_MAP;
    case FT_ARRAY:
        return vt == SH_VAL_ARRAY;
    case FT_BOOL:
        return vt == SH_VAL_BOOL;
    case FT_INT_ARRAY:
        if (vt != SH_VAL_ARRAY)
            return false;
        for (size_t i = 0; i < sh_val_len(v); i++)
            if (sh_val_type_of(sh_val_at(v, i)) != SH_VAL_INT)
                return false;
        return true;
    default:
        return true;
    }
}

static const field_rule *rule_find(const field_rule *rules, const char *name)
{
    for (const field_rule *r = rules; r->name; r++)
        if (strcmp(r->name, name) == 0)
            return r;
    return NULL;
}

static int check_name(const char *k, size_t klen, sh_error *err)
{
    if (klen == 0 || klen > PROG_MAX_FIELD_NAME)
        return sh_error_set(err, SH_EINVAL, "field names must be 1..%d bytes", PROG_MAX_FIELD_NAME);
    for (size_t i = 0; i < klen; i++)
        if ((unsigned char)k[i] < 0x20)
            return sh_error_set(err, SH_EINVAL, "field name \"%.40s\" has a control character", k);
    return SH_OK;
}

/* check_map runs the checks common to progress and job updates. */
static int check_map(const sh_val *fields, const field_rule *rules, const char *const *server,
                     size_t max_bytes, sh_error *err)
{
    if (sh_val_type_of(fields) != SH_VAL_MAP)
        return sh_error_set(err, SH_EINVAL, "fields must be an object, got %s",
                            sh_val_type_name(sh_val_type_of(fields)));
    if (sh_val_len(fields) > PROG_MAX_FIELDS)
        return sh_error_set(err, SH_ELIMIT, "at most %d fields per update, got %zu",
                            PROG_MAX_FIELDS, sh_val_len(fields));
    for (size_t i = 0; i < sh_val_len(fields); i++) {
        size_t klen;
        const char *k = sh_val_key_at(fields, i, &klen);
        int rc = check_name(k, klen, err);
        if (rc)
            return rc;
        for (const char *const *s = server; *s; s++)
            if (strcmp(k, *s) == 0)
                return sh_error_set(err, SH_EINVAL, "field \"%s\" is set by the server", k);
        const field_rule *rule = rule_find(rules, k);
        const sh_val *v = sh_val_value_at(fields, i);
        if (rule && !type_ok(rule->type, v))
            return sh_error_set(err, SH_EINVAL, "field \"%s\" must be %s, got %s", k,
                                type_word(rule->type), sh_val_type_name(sh_val_type_of(v)));
    }
    sh_buf b;
    sh_buf_init(&b);
    int rc = sh_msg_pack(fields, &b);
    size_t size = b.len;
    sh_buf_fini(&b);
    if (rc)
        return sh_error_set(err, rc, "cannot encode the fields");
    if (size > max_bytes)
        return sh_error_set(err, SH_ETOOBIG, "update of %zu bytes exceeds the limit of %zu", size,
                            max_bytes);
    return SH_OK;
}

int prog_check_progress_fields(const char *id, const sh_val *fields, sh_error *err)
{
    static const char *const server[] = {"version", "createdAt", NULL};
    int rc = check_map(fields, progress_rules, server, PROG_MAX_UPDATE, err);
    if (rc)
        return rc;
    size_t len;
    const char *sid = sh_val_get_str(fields, "sessionId", &len);
    if (sid && (len != strlen(id) || memcmp(sid, id, len) != 0))
        return sh_error_set(err, SH_EINVAL, "field \"sessionId\" must equal the id \"%s\"", id);
    return SH_OK;
}

int prog_check_job_fields(const sh_val *fields, bool create, sh_error *err)
{
    static const char *const server_create[] = {"jobId", "createdAt", "updatedAt", "version", NULL};
    static const char *const server_update[] = {"jobId",   "createdAt",      "updatedAt",
                                                "version", "conversationId", NULL};
    int rc = check_map(fields, job_rules, create ? server_create : server_update,
                       PROG_MAX_JOB_UPDATE, err);
    if (rc)
        return rc;
    if (create) {
        size_t len;
        const char *conv = sh_val_get_str(fields, "conversationId", &len);
        if (!conv)
            return sh_error_set(err, SH_EINVAL, "field \"conversationId\" is required");
        if (!sh_id_valid(conv, len))
            return sh_error_set(err, SH_EINVAL,
                                "field \"conversationId\" must match [A-Za-z0-9._:-]{1,128}");
    }
    size_t slen;
    if (sh_val_get_str(fields, "status", &slen) && (slen == 0 || slen > 64))
        return sh_error_set(err, SH_EINVAL, "field \"status\" must be 1..64 characters");
    const sh_val *result = sh_val_get(fields, "result");
    if (result) {
        sh_buf b;
        sh_buf_init(&b);
        rc = sh_msg_pack(result, &b);
        size_t size = b.len;
        sh_buf_fini(&b);
        if (rc)
            return sh_error_set(err, rc, "cannot encode the result");
        /* A 1 MiB string or array encodes to 1 MiB plus its 5-byte header. */
        if (size > PROG_JOB_RESULT_MAX + 16)
            return sh_error_set(err, SH_ETOOBIG, "result of %zu bytes exceeds the limit of %u",
                                size, PROG_JOB_RESULT_MAX);
    }
    return SH_OK;
}

int prog_make_log_entry(const sh_val *entry, const char *iso, sh_val **out, sh_error *err)
{
    static const field_rule rules[] = {{"tool", FT_STR},
                                       {"error", FT_STR},
                                       {"suggestedFix", FT_STR},
                                       {"step", FT_INT},
                                       {NULL, FT_ANY}};
    *out = NULL;
    if (sh_val_type_of(entry) != SH_VAL_MAP)
        return sh_error_set(err, SH_EINVAL, "a log entry must be an object, got %s",
                            sh_val_type_name(sh_val_type_of(entry)));
    for (size_t i = 0; i < sh_val_len(entry); i++) {
        const char *k = sh_val_key_at(entry, i, NULL);
        const sh_val *v = sh_val_value_at(entry, i);
        const field_rule *rule = rule_find(rules, k);
        if (!rule)
            return sh_error_set(err, SH_EINVAL,
                                "unknown field \"%.40s\" in log entry (allowed: tool, error, "
                                "suggestedFix, step)",
                                k);
        if (!type_ok(rule->type, v))
            return sh_error_set(err, SH_EINVAL, "log entry field \"%s\" must be %s, got %s", k,
                                type_word(rule->type), sh_val_type_name(sh_val_type_of(v)));
        size_t len;
        if (sh_val_str(v, &len) && len > PROG_LOG_TEXT_MAX)
            return sh_error_set(err, SH_ETOOBIG, "log entry field \"%s\" exceeds %d bytes", k,
                                PROG_LOG_TEXT_MAX);
    }
    if (!sh_val_get_str(entry, "error", NULL))
        return sh_error_set(err, SH_EINVAL, "log entry field \"error\" is required");
    sh_val *e = sh_val_new_map();
    static const char *order[] = {"tool", "error", "suggestedFix", "step", NULL};
    int rc = e ? SH_OK : SH_ENOMEM;
    for (int i = 0; order[i] && rc == SH_OK; i++) {
        const sh_val *v = sh_val_get(entry, order[i]);
        if (v)
            rc = sh_val_set_cstr(e, order[i], sh_val_clone(v));
    }
    if (rc == SH_OK)
        rc = sh_val_set_cstr(e, "timestamp", sh_val_new_cstr(iso));
    if (rc) {
        sh_val_free(e);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *out = e;
    return SH_OK;
}

int prog_cmd_add_value(sh_cmd *cmd, const char *name, size_t nlen, const sh_val *v)
{
    sh_buf b;
    sh_buf_init(&b);
    int rc = sh_msg_pack(v, &b);
    if (!rc && name)
        rc = sh_cmd_arg(cmd, name, nlen);
    if (!rc)
        rc = sh_cmd_arg(cmd, b.data, b.len);
    sh_buf_fini(&b);
    return rc;
}

int prog_cmd_add_fields(sh_cmd *cmd, const sh_val *map)
{
    for (size_t i = 0; i < sh_val_len(map); i++) {
        size_t klen;
        const char *k = sh_val_key_at(map, i, &klen);
        int rc = prog_cmd_add_value(cmd, k, klen, sh_val_value_at(map, i));
        if (rc)
            return rc;
    }
    return SH_OK;
}

int prog_val_from_bytes(const char *p, size_t len, sh_val **out, sh_error *err)
{
    return sh_msg_unpack(p, len, NULL, out, err);
}

int prog_record_from_hash(const sh_reply *r, sh_val **out, sh_error *err)
{
    *out = NULL;
    if (sh_reply_kind(r) != SH_REPLY_ARRAY || sh_reply_count(r) % 2)
        return sh_error_set(err, SH_EINTERNAL, "unexpected reply shape from Redis");
    sh_val *rec = sh_val_new_map();
    if (!rec)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    for (size_t i = 0; i + 1 < sh_reply_count(r); i += 2) {
        size_t klen, vlen;
        const char *k = sh_reply_string(sh_reply_elem(r, i), &klen);
        const char *v = sh_reply_string(sh_reply_elem(r, i + 1), &vlen);
        if (!k || !v)
            continue;
        sh_val *val = NULL;
        if (klen == 7 && memcmp(k, "version", 7) == 0) {
            long long n = 0;
            for (size_t j = 0; j < vlen && v[j] >= '0' && v[j] <= '9'; j++)
                n = n * 10 + (v[j] - '0');
            val = sh_val_new_int(n);
        } else {
            sh_error e;
            if (prog_val_from_bytes(v, vlen, &val, &e) != SH_OK) {
                sh_log_warn("record_field_corrupt", "field %.*s: %s", (int)klen, k, e.msg);
                continue;
            }
        }
        if (sh_val_set(rec, k, klen, val) != SH_OK) {
            sh_val_free(rec);
            return sh_error_set(err, SH_ENOMEM, "out of memory");
        }
    }
    *out = rec;
    return SH_OK;
}
