/* ops.c - the progress service's operations on Redis and its events. */
#include "ops.h"

#include <stdio.h>
#include <string.h>

#include "keys.h"
#include "record.h"
#include "scripts.h"
#include "shared/keys.h"
#include "shared/log.h"
#include "shared/util.h"

static const prog_env *prog_env_of(const prog_worker *w)
{
    return w->env;
}

static int ops_bad_id(const char *what, const char *id, sh_error *err)
{
    return sh_error_set(err, SH_EINVAL, "invalid %s \"%.40s\": must match [A-Za-z0-9._:-]{1,128}",
                        what, id ? id : "");
}

/* The keys of one progress record: the record, its log and the sequence
 * of its log entries. */
typedef struct ops_keys {
    char record[PROG_KEY_MAX], log[PROG_KEY_MAX], seq[PROG_KEY_MAX];
} ops_keys;

static int ops_record_keys(const char *id, ops_keys *k, sh_error *err)
{
    if (prog_key_record(k->record, sizeof k->record, id) < 0 ||
        prog_key_log(k->log, sizeof k->log, id) < 0 ||
        prog_key_log_seq(k->seq, sizeof k->seq, id) < 0)
        return ops_bad_id("id", id, err);
    return SH_OK;
}

static int ops_run(prog_worker *w, sh_cmd *cmd, sh_reply **out, sh_error *err)
{
    return sh_store_call(w->store, cmd, out, err);
}

/* ops_hgetall reads a record hash; an empty one is not_found (missing). */
static int ops_hgetall(prog_worker *w, const char *key, const char *missing, sh_val **out,
                       sh_error *err)
{
    *out = NULL;
    sh_cmd *c = sh_cmd_new("HGETALL");
    sh_cmd_str(c, key);
    sh_reply *r;
    int rc = ops_run(w, c, &r, err);
    if (rc)
        return rc;
    if (sh_reply_count(r) == 0)
        rc = sh_error_set(err, SH_ENOTFOUND, "%s", missing);
    else
        rc = prog_record_from_hash(r, out, err);
    sh_reply_free(r);
    return rc;
}

/* Events of one record can leave out of order when several writers write
 * it at once, so each carries what orders it: the version of the record
 * written (or deleted), or the sequence number of a log entry. An order
 * names one of those for an event whose value does not hold its version. */
typedef struct ops_order {
    const char *name; /* "version" or "seq"; NULL: the value's version */
    long long n;
} ops_order;

/* ops_publish sends {kind, id, version or seq, <key>: value} on topic;
 * value is lent to the event and handed back. */
static void ops_publish(prog_worker *w, const char *topic_prefix, const char *kind, const char *id,
                        ops_order order, const char *key, sh_val **value)
{
    if (!w->pub)
        return;
    char topic[PROG_KEY_MAX];
    snprintf(topic, sizeof topic, "%s%s", topic_prefix, id);
    sh_val *ev = sh_val_new_map();
    if (!ev || sh_val_set_cstr(ev, "kind", sh_val_new_cstr(kind)) ||
        sh_val_set_cstr(ev, "id", sh_val_new_cstr(id))) {
        sh_val_free(ev);
        return;
    }
    const sh_val *version = value ? sh_val_get(*value, "version") : NULL;
    sh_val *ord = order.name ? sh_val_new_int(order.n) : version ? sh_val_clone(version) : NULL;
    if (ord && sh_val_set_cstr(ev, order.name ? order.name : "version", ord)) {
        sh_val_free(ev);
        return;
    }
    if (value && *value) {
        sh_val_set_cstr(ev, key, *value);
        *value = NULL;
    }
    int rc = sh_pub_send(w->pub, topic, ev);
    if (rc)
        sh_log_debug("event_dropped", "topic=%s %s", topic, sh_strerror(rc));
    if (value)
        *value = sh_val_take(ev, key);
    sh_val_free(ev);
}

/* ---- progress records -------------------------------------------------- */

/* ops_hgetall_cmd builds the read of a record hash. */
static int ops_hgetall_cmd(const char *key, sh_cmd **cmd, sh_error *err)
{
    sh_cmd *c = sh_cmd_new("HGETALL");
    if (sh_cmd_str(c, key) != SH_OK) {
        sh_cmd_free(c);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *cmd = c;
    return SH_OK;
}

static int ops_hgetall_reply(const sh_reply *r, const char *missing, sh_val **out, sh_error *err)
{
    *out = NULL;
    if (sh_reply_count(r) == 0)
        return sh_error_set(err, SH_ENOTFOUND, "%s", missing);
    return prog_record_from_hash(r, out, err);
}

int prog_progress_get_cmd(const char *id, sh_cmd **cmd, sh_error *err)
{
    *cmd = NULL;
    char key[PROG_KEY_MAX];
    if (prog_key_record(key, sizeof key, id) < 0)
        return ops_bad_id("id", id, err);
    return ops_hgetall_cmd(key, cmd, err);
}

int prog_progress_get_reply(const sh_reply *r, sh_val **record, sh_error *err)
{
    return ops_hgetall_reply(r, "Session not found", record, err);
}

int prog_progress_get(prog_worker *w, const char *id, sh_val **record, sh_error *err)
{
    *record = NULL;
    char key[PROG_KEY_MAX];
    if (prog_key_record(key, sizeof key, id) < 0)
        return ops_bad_id("id", id, err);
    return ops_hgetall(w, key, "Session not found", record, err);
}

int prog_progress_update_cmd(prog_worker *w, const char *id, const sh_val *fields, sh_cmd **cmd,
                             sh_error *err)
{
    *cmd = NULL;
    ops_keys k;
    int rc = ops_record_keys(id, &k, err);
    if (rc || (rc = prog_check_progress_fields(id, fields, err)))
        return rc;
    char now[SH_ISO_LEN];
    sh_iso8601(sh_now_ms(), now);
    sh_val *nowv = sh_val_new_cstr(now), *idv = sh_val_new_cstr(id);
    const char *const keys[] = {k.record, k.log, k.seq, NULL};
    sh_cmd *c = sh_cmd_new_eval_keys(&prog_script_update, keys);
    sh_cmd_int(c, prog_env_of(w)->ttl);
    sh_cmd_int(c, PROG_MAX_FIELDS + PROG_SERVER_FIELDS);
    rc = prog_cmd_add_value(c, NULL, 0, nowv); /* ARGV[3]: createdAt of a new record */
    /* The server's fields go last so they win over anything the client sent. */
    for (size_t i = 0; i < sh_val_len(fields) && rc == SH_OK; i++) {
        size_t klen;
        const char *name = sh_val_key_at(fields, i, &klen);
        if ((klen == 9 && memcmp(name, "timestamp", 9) == 0) ||
            (klen == 9 && memcmp(name, "sessionId", 9) == 0))
            continue;
        rc = prog_cmd_add_value(c, name, klen, sh_val_value_at(fields, i));
    }
    if (rc == SH_OK)
        rc = prog_cmd_add_value(c, "sessionId", 9, idv);
    if (rc == SH_OK)
        rc = prog_cmd_add_value(c, "timestamp", 9, nowv);
    sh_val_free(nowv);
    sh_val_free(idv);
    if (rc || !nowv || !idv) {
        sh_cmd_free(c);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *cmd = c;
    return SH_OK;
}

int prog_progress_update_reply(prog_worker *w, const char *id, const sh_reply *r, sh_val **record,
                               sh_error *err)
{
    int rc = prog_record_from_hash(r, record, err);
    if (rc == SH_OK)
        ops_publish(w, SH_TOPIC_PROGRESS, SH_EVENT_PROGRESS_UPDATE, id, (ops_order){0}, "record",
                    record);
    return rc;
}

int prog_progress_update(prog_worker *w, const char *id, const sh_val *fields, sh_val **record,
                         sh_error *err)
{
    *record = NULL;
    sh_cmd *c;
    sh_reply *r;
    int rc = prog_progress_update_cmd(w, id, fields, &c, err);
    if (rc || (rc = ops_run(w, c, &r, err)))
        return rc;
    rc = prog_progress_update_reply(w, id, r, record, err);
    sh_reply_free(r);
    return rc;
}

int prog_progress_delete(prog_worker *w, const char *id, bool *deleted, sh_error *err)
{
    *deleted = false;
    ops_keys k;
    int rc = ops_record_keys(id, &k, err);
    if (rc)
        return rc;
    const char *const keys[] = {k.record, k.log, k.seq, NULL};
    sh_reply *r;
    if ((rc = ops_run(w, sh_cmd_new_eval_keys(&prog_script_delete, keys), &r, err)))
        return rc;
    *deleted = sh_reply_integer(sh_reply_elem(r, 0)) > 0;
    ops_order order = {"version", sh_reply_ll(sh_reply_elem(r, 1), NULL)};
    sh_reply_free(r);
    if (*deleted)
        ops_publish(w, SH_TOPIC_PROGRESS, SH_EVENT_PROGRESS_DELETE, id, order, NULL, NULL);
    return SH_OK;
}

/* ---- error log --------------------------------------------------------- */

int prog_log_append_cmd(prog_worker *w, const char *id, const sh_val *entry, sh_cmd **cmd,
                        sh_val **stored, sh_error *err)
{
    *cmd = NULL;
    *stored = NULL;
    ops_keys k;
    int rc = ops_record_keys(id, &k, err);
    if (rc)
        return rc;
    char now[SH_ISO_LEN];
    sh_iso8601(sh_now_ms(), now);
    sh_val *e;
    if ((rc = prog_make_log_entry(entry, now, &e, err)))
        return rc;
    const char *const keys[] = {k.record, k.log, k.seq, NULL};
    sh_cmd *c = sh_cmd_new_eval_keys(&prog_script_log_append, keys);
    sh_cmd_int(c, prog_env_of(w)->ttl);
    sh_cmd_int(c, prog_env_of(w)->log_cap);
    if (prog_cmd_add_value(c, NULL, 0, e) != SH_OK) {
        sh_cmd_free(c);
        sh_val_free(e);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *cmd = c;
    *stored = e;
    return SH_OK;
}

void prog_log_append_reply(prog_worker *w, const char *id, const sh_reply *r, sh_val **stored)
{
    ops_order order = {"seq", sh_reply_integer(r)};
    ops_publish(w, SH_TOPIC_PROGRESS, SH_EVENT_PROGRESS_LOG, id, order, "entry", stored);
}

int prog_log_append(prog_worker *w, const char *id, const sh_val *entry, sh_val **stored,
                    sh_error *err)
{
    sh_cmd *c;
    sh_val *e;
    sh_reply *r;
    *stored = NULL;
    int rc = prog_log_append_cmd(w, id, entry, &c, &e, err);
    if (rc)
        return rc;
    if ((rc = ops_run(w, c, &r, err))) {
        sh_val_free(e);
        return rc;
    }
    prog_log_append_reply(w, id, r, &e);
    sh_reply_free(r);
    *stored = e;
    return SH_OK;
}

int prog_log_list_cmd(const char *id, sh_cmd **cmd, sh_error *err)
{
    *cmd = NULL;
    char logkey[PROG_KEY_MAX];
    if (prog_key_log(logkey, sizeof logkey, id) < 0)
        return ops_bad_id("id", id, err);
    sh_cmd *c = sh_cmd_new("LRANGE");
    sh_cmd_str(c, logkey);
    sh_cmd_str(c, "0");
    if (sh_cmd_str(c, "-1") != SH_OK) {
        sh_cmd_free(c);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *cmd = c;
    return SH_OK;
}

int prog_log_list_reply(const char *id, const sh_reply *r, sh_val **entries, sh_error *err)
{
    *entries = NULL;
    sh_val *arr = sh_val_new_array();
    for (size_t i = 0; arr && i < sh_reply_count(r); i++) {
        size_t len;
        const char *p = sh_reply_string(sh_reply_elem(r, i), &len);
        sh_val *v = NULL;
        sh_error e;
        if (!p || prog_val_from_bytes(p, len, &v, &e) != SH_OK) {
            sh_log_warn("log_entry_corrupt", "id=%s entry %zu skipped", id, i);
            continue;
        }
        if (sh_val_push(arr, v) != SH_OK) {
            sh_val_free(arr);
            arr = NULL;
        }
    }
    if (!arr)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    *entries = arr;
    return SH_OK;
}

int prog_log_list(prog_worker *w, const char *id, sh_val **entries, sh_error *err)
{
    *entries = NULL;
    sh_cmd *c;
    sh_reply *r;
    int rc = prog_log_list_cmd(id, &c, err);
    if (rc || (rc = ops_run(w, c, &r, err)))
        return rc;
    rc = prog_log_list_reply(id, r, entries, err);
    sh_reply_free(r);
    return rc;
}

/* ---- jobs -------------------------------------------------------------- */

int prog_job_write_reply(prog_worker *w, const char *id, const sh_reply *r, sh_val **job,
                         sh_error *err)
{
    *job = NULL;
    int rc;
    if (sh_reply_kind(r) == SH_REPLY_NIL ||
        (sh_reply_kind(r) == SH_REPLY_ARRAY && sh_reply_count(r) == 0))
        rc = sh_error_set(err, SH_ENOTFOUND, "Job not found");
    else
        rc = prog_record_from_hash(r, job, err);
    if (rc == SH_OK)
        ops_publish(w, SH_TOPIC_JOB, SH_EVENT_JOB, id, (ops_order){0}, "record", job);
    return rc;
}

static int ops_job_reply(prog_worker *w, sh_reply *r, const char *id, sh_val **job, sh_error *err)
{
    int rc = prog_job_write_reply(w, id, r, job, err);
    sh_reply_free(r);
    return rc;
}

int prog_job_create_cmd(prog_worker *w, const sh_val *fields, sh_cmd **cmd, char jid[33],
                        sh_error *err)
{
    *cmd = NULL;
    int rc = prog_check_job_fields(fields, true, err);
    if (rc)
        return rc;
    char key[PROG_KEY_MAX], idx[PROG_KEY_MAX];
    sh_random_hex(jid, 16);
    const char *conv = sh_val_get_str(fields, "conversationId", NULL);
    if (prog_key_job(key, sizeof key, jid) < 0 || prog_key_job_index(idx, sizeof idx, conv) < 0)
        return ops_bad_id("conversationId", conv, err);
    char now[SH_ISO_LEN];
    sh_iso8601(sh_now_ms(), now);
    sh_val *server = sh_val_new_map();
    if (server) {
        sh_val_set_cstr(server, "jobId", sh_val_new_cstr(jid));
        if (!sh_val_get(fields, "status"))
            sh_val_set_cstr(server, "status", sh_val_new_cstr("pending"));
        sh_val_set_cstr(server, "createdAt", sh_val_new_cstr(now));
        sh_val_set_cstr(server, "updatedAt", sh_val_new_cstr(now));
    }
    sh_cmd *c = sh_cmd_new_eval(&prog_script_job_create, 2);
    sh_cmd_str(c, key);
    sh_cmd_str(c, idx);
    sh_cmd_int(c, prog_env_of(w)->ttl);
    sh_cmd_int(c, PROG_MAX_FIELDS + PROG_SERVER_FIELDS);
    sh_cmd_str(c, jid);
    rc = server ? prog_cmd_add_fields(c, fields) : SH_ENOMEM;
    if (rc == SH_OK)
        rc = prog_cmd_add_fields(c, server);
    sh_val_free(server);
    if (rc) {
        sh_cmd_free(c);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *cmd = c;
    return SH_OK;
}

int prog_job_create(prog_worker *w, const sh_val *fields, sh_val **job, sh_error *err)
{
    *job = NULL;
    char jid[33];
    sh_cmd *c;
    sh_reply *r;
    int rc = prog_job_create_cmd(w, fields, &c, jid, err);
    if (rc || (rc = ops_run(w, c, &r, err)))
        return rc;
    return ops_job_reply(w, r, jid, job, err);
}

int prog_job_update_cmd(prog_worker *w, const char *id, const sh_val *fields, sh_cmd **cmd,
                        sh_error *err)
{
    *cmd = NULL;
    char key[PROG_KEY_MAX];
    if (prog_key_job(key, sizeof key, id) < 0)
        return ops_bad_id("job id", id, err);
    int rc = prog_check_job_fields(fields, false, err);
    if (rc)
        return rc;
    char now[SH_ISO_LEN];
    sh_iso8601(sh_now_ms(), now);
    sh_val *nowv = sh_val_new_cstr(now);
    sh_cmd *c = sh_cmd_new_eval(&prog_script_job_update, 1);
    sh_cmd_str(c, key);
    sh_cmd_int(c, prog_env_of(w)->ttl);
    sh_cmd_int(c, PROG_MAX_FIELDS + PROG_SERVER_FIELDS);
    sh_cmd_str(c, SH_KEY_JOB_INDEX);
    rc = nowv ? prog_cmd_add_value(c, NULL, 0, nowv) : SH_ENOMEM;
    sh_val_free(nowv);
    if (rc == SH_OK)
        rc = prog_cmd_add_fields(c, fields);
    if (rc) {
        sh_cmd_free(c);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *cmd = c;
    return SH_OK;
}

int prog_job_update(prog_worker *w, const char *id, const sh_val *fields, sh_val **job,
                    sh_error *err)
{
    *job = NULL;
    sh_cmd *c;
    sh_reply *r;
    int rc = prog_job_update_cmd(w, id, fields, &c, err);
    if (rc || (rc = ops_run(w, c, &r, err)))
        return rc;
    return ops_job_reply(w, r, id, job, err);
}

int prog_job_get_cmd(const char *id, sh_cmd **cmd, sh_error *err)
{
    *cmd = NULL;
    char key[PROG_KEY_MAX];
    if (prog_key_job(key, sizeof key, id) < 0)
        return ops_bad_id("job id", id, err);
    return ops_hgetall_cmd(key, cmd, err);
}

int prog_job_get_reply(const sh_reply *r, sh_val **job, sh_error *err)
{
    return ops_hgetall_reply(r, "Job not found", job, err);
}

int prog_job_get(prog_worker *w, const char *id, sh_val **job, sh_error *err)
{
    *job = NULL;
    char key[PROG_KEY_MAX];
    if (prog_key_job(key, sizeof key, id) < 0)
        return ops_bad_id("job id", id, err);
    return ops_hgetall(w, key, "Job not found", job, err);
}

int prog_job_by_conversation(prog_worker *w, const char *conversation_id, sh_val **job,
                             sh_error *err)
{
    *job = NULL;
    char idx[PROG_KEY_MAX];
    if (prog_key_job_index(idx, sizeof idx, conversation_id) < 0)
        return ops_bad_id("conversation id", conversation_id, err);
    sh_cmd *c = sh_cmd_new("GET");
    sh_cmd_str(c, idx);
    sh_reply *r;
    int rc = ops_run(w, c, &r, err);
    if (rc)
        return rc;
    size_t len;
    const char *jid = sh_reply_string(r, &len);
    char id[SH_ID_MAX + 1];
    if (!jid || !sh_id_valid(jid, len)) {
        sh_reply_free(r);
        return sh_error_set(err, SH_ENOTFOUND, "Job not found");
    }
    memcpy(id, jid, len);
    id[len] = '\0';
    sh_reply_free(r);
    return prog_job_get(w, id, job, err);
}
