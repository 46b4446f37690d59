/* eventlog.c - the account's event log in a Redis Stream (eventlog.h).
 *
 * Stream entry: one field "e" holding the msgpack map {type, accountId,
 * createdAt, ...fields}; the entry's id is the event's "id", added when it
 * is read or published. Each append trims the stream to
 * MAIL_EVENTS_MAX_LEN entries and MAIL_EVENTS_MAX_AGE_SECONDS of age, both
 * approximately ("~": whole stream nodes go, which keeps trimming cheap). */
#include "eventlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "shared/buf.h"
#include "shared/keys.h"
#include "shared/msg.h"
#include "shared/util.h"

/* KEYS[1] the stream, KEYS[2] (sync.status only) the last status.
 * ARGV: max length, min id (ms), the entry, the status to compare.
 * Returns {id, prevId}, or false when the status was unchanged. */
static sh_script evlog_append_script = SH_SCRIPT("evlog_append", "\
if #KEYS == 2 then\n\
  if redis.call('GET', KEYS[2]) == ARGV[4] then return false end\n\
  redis.call('SET', KEYS[2], ARGV[4])\n\
end\n" SYNC_EVLOG_LUA_ADD "return {id, prev}\n");

/* KEYS[1] the stream. ARGV: after ("" for the oldest), count.
 * Returns {reset, lastId, entries}. Events were lost after `after` when
 * some were trimmed (entries-added > length) and `after` is older than the
 * first kept (or than the last ever added, once none is kept). */
static sh_script evlog_read_script = SH_SCRIPT("evlog_read", "\
local key, after = KEYS[1], ARGV[1]\n\
if redis.call('EXISTS', key) == 0 then\n\
  return {after ~= '' and 1 or 0, '', {}}\n\
end\n\
local function older(a, b)\n\
  local am, as = string.match(a, '^(%d+)-(%d+)$')\n\
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')\n\
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)\n\
  if am ~= bm then return am < bm end\n\
  return as < bs\n\
end\n\
local info = redis.call('XINFO', 'STREAM', key)\n\
local last, added, len = '0-0', 0, 0\n\
for i = 1, #info, 2 do\n\
  if info[i] == 'last-generated-id' then last = info[i + 1] end\n\
  if info[i] == 'entries-added' then added = info[i + 1] end\n\
  if info[i] == 'length' then len = info[i + 1] end\n\
end\n\
if after ~= '' and added > len then\n\
  local first = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)[1]\n\
  local edge = first and first[1] or last\n\
  if older(after, edge) and (first or after ~= last) then return {1, last, {}} end\n\
end\n\
local start = after == '' and '-' or ('(' .. after)\n\
return {0, last, redis.call('XRANGE', key, start, '+', 'COUNT', ARGV[2])}\n");

sh_val *sync_evlog_entry(const char *acct, const char *type, const sh_val *fields, sh_buf *blob)
{
    char iso[SH_ISO_LEN];
    sh_iso8601(sh_now_ms(), iso);
    sh_val *ev = sh_val_new_map();
    int rc = !ev;
    rc = rc || sh_val_set_cstr(ev, "type", sh_val_new_cstr(type));
    rc = rc || sh_val_set_cstr(ev, "accountId", sh_val_new_cstr(acct));
    rc = rc || sh_val_set_cstr(ev, "createdAt", sh_val_new_cstr(iso));
    for (size_t i = 0; !rc && i < sh_val_len(fields); i++) {
        size_t kl;
        const char *k = sh_val_key_at(fields, i, &kl);
        rc = sh_val_set(ev, k, kl, sh_val_clone(sh_val_value_at(fields, i)));
    }
    rc = rc || sh_msg_pack(ev, blob);
    if (rc) {
        sh_val_free(ev);
        return NULL;
    }
    return ev;
}

bool sync_evlog_publish(sh_pub *pub, const char *acct, sh_val *ev, const sh_reply *r)
{
    size_t len, pl = 0;
    const char *id = sh_reply_string(sh_reply_elem(r, 0), &len);
    const char *prev = sh_reply_string(sh_reply_elem(r, 1), &pl);
    if (sh_reply_kind(r) != SH_REPLY_ARRAY || !id)
        return false;
    if (!pub)
        return true;
    char topic[SH_ID_MAX + 32];
    snprintf(topic, sizeof topic, "%s%s", SH_TOPIC_MAIL_EVENT, acct);
    if (sh_val_set_cstr(ev, "id", sh_val_new_str(id, len)) == SH_OK &&
        sh_val_set_cstr(ev, "prevId", sh_val_new_str(prev ? prev : "", prev ? pl : 0)) == SH_OK &&
        sh_val_set_cstr(ev, "kind", sh_val_clone(sh_val_get(ev, "type"))) == SH_OK)
        sh_pub_send(pub, topic, ev);
    return true;
}

int sync_evlog_trim_args(sh_cmd *c, const sync_env *env)
{
    /* A zeroed env (a test's) keeps the defaults. */
    long long max_len = env && env->events_max_len ? env->events_max_len : SYNC_EVLOG_MAX_LEN;
    long long age = env && env->events_max_age_s ? env->events_max_age_s : SYNC_EVLOG_MAX_AGE;
    long long min_ms = sh_now_ms() - age * 1000;
    return sh_cmd_int(c, max_len) || sh_cmd_int(c, min_ms > 0 ? min_ms : 0) ? SH_ENOMEM : SH_OK;
}

/* evlog_cmd makes the append of one event (status: compare with the last
 * status first). */
static sh_cmd *evlog_cmd(const sync_env *env, const char *acct, const sh_buf *blob,
                         const char *status)
{
    char key[SYNC_KEY_MAX], skey[SYNC_KEY_MAX];
    if (sync_key_events(key, sizeof key, acct) < 0 ||
        sync_key_events_status(skey, sizeof skey, acct) < 0)
        return NULL;
    const char *keys[] = {key, status ? skey : NULL, NULL};
    sh_cmd *c = sh_cmd_new_eval_keys(&evlog_append_script, keys);
    if (sync_evlog_trim_args(c, env) || sh_cmd_arg(c, blob->data, blob->len) ||
        sh_cmd_str(c, status ? status : "")) {
        sh_cmd_free(c);
        return NULL;
    }
    return c;
}

/* evlog_run appends the n events (their blobs made by sync_evlog_entry) and
 * publishes each appended one. */
static int evlog_run(sh_store *st, sh_pub *pub, const char *acct, sh_cmd **cmds, sh_val **evs,
                     size_t n, sh_error *err)
{
    sh_reply **outs = calloc(n, sizeof *outs);
    int rc = outs ? sh_store_pipeline(st, cmds, n, outs, err)
                  : sh_error_set(err, SH_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < n; i++)
        rc = sh_store_reply_check(outs[i], err);
    for (size_t i = 0; !rc && i < n; i++)
        sync_evlog_publish(pub, acct, evs[i], outs[i]);
    for (size_t i = 0; outs && i < n; i++)
        sh_reply_free(outs[i]);
    free(outs);
    return rc;
}

int sync_evlog_add(sh_store *st, sh_pub *pub, const sync_env *env, const char *acct,
                   const char *const *types, sh_val *const *fields, size_t n, sh_error *err)
{
    if (n == 0)
        return SH_OK;
    sh_cmd **cmds = calloc(n, sizeof *cmds);
    sh_val **evs = calloc(n, sizeof *evs);
    int rc = cmds && evs ? SH_OK : sh_error_set(err, SH_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < n; i++) {
        sh_buf blob;
        sh_buf_init(&blob);
        evs[i] = sync_evlog_entry(acct, types[i], fields[i], &blob);
        cmds[i] = evs[i] ? evlog_cmd(env, acct, &blob, NULL) : NULL;
        sh_buf_fini(&blob);
        if (!cmds[i])
            rc = sh_error_set(err, SH_ENOMEM, "cannot build the event of %s", types[i]);
    }
    if (!rc)
        rc = evlog_run(st, pub, acct, cmds, evs, n, err);
    for (size_t i = 0; i < n && cmds && evs; i++) {
        sh_cmd_free(cmds[i]);
        sh_val_free(evs[i]);
    }
    free(cmds);
    free(evs);
    return rc;
}

int sync_evlog_status(sh_store *st, sh_pub *pub, const sync_env *env, const char *acct,
                      const char *status, const char *message, sh_error *err)
{
    sh_val *f = sh_val_new_map();
    int rc =
        !f || sh_val_set_cstr(f, "syncStatus", sh_val_new_cstr(status)) ||
        sh_val_set_cstr(f, "errorMessage", message ? sh_val_new_cstr(message) : sh_val_new_nil());
    sh_buf blob;
    sh_buf_init(&blob);
    sh_val *ev = rc ? NULL : sync_evlog_entry(acct, SYNC_EV_SYNC_STATUS, f, &blob);
    /* What is compared is the status and its message, not the time. */
    char last[512];
    snprintf(last, sizeof last, "%s\n%s", status, message ? message : "");
    sh_cmd *c = ev ? evlog_cmd(env, acct, &blob, last) : NULL;
    if (!c)
        rc = sh_error_set(err, SH_ENOMEM, "cannot build the status event");
    if (!rc) {
        sh_reply *r = NULL;
        rc = sh_store_call(st, c, &r, err);
        c = NULL;
        if (!rc)
            sync_evlog_publish(pub, acct, ev, r);
        sh_reply_free(r);
    }
    sh_cmd_free(c);
    sh_buf_fini(&blob);
    sh_val_free(ev);
    sh_val_free(f);
    return rc;
}

/* evlog_id_norm checks an id given by a client (<ms>-<seq> or <ms>) and
 * writes it whole into out. */
static int evlog_id_norm(const char *id, char *out, size_t len, sh_error *err)
{
    size_t n = strlen(id), dash = 0, digits = 0;
    for (size_t i = 0; i < n; i++) {
        if (id[i] == '-' && !dash && digits) {
            dash = i;
            digits = 0;
        } else if (id[i] >= '0' && id[i] <= '9' && digits < 19) {
            digits++;
        } else {
            digits = 0;
            break;
        }
    }
    if (!digits)
        return sh_error_set(err, SH_EINVAL, "after must be an event id (<ms>-<seq>)");
    snprintf(out, len, "%s%s", id, dash ? "" : "-0");
    return SH_OK;
}

/* evlog_event decodes one XRANGE entry [id, ["e", blob]] into the event
 * with its id; NULL when it is not one of ours. */
static sh_val *evlog_event(const sh_reply *entry)
{
    size_t il, bl;
    const char *id = sh_reply_string(sh_reply_elem(entry, 0), &il);
    const sh_reply *kv = sh_reply_elem(entry, 1);
    if (!id || sh_reply_count(kv) < 2)
        return NULL;
    const char *blob = sh_reply_string(sh_reply_elem(kv, 1), &bl);
    sh_msg_limits lim;
    sh_msg_limits_default(&lim);
    sh_val *ev = NULL;
    sh_error e;
    if (!blob || sh_msg_unpack(blob, bl, &lim, &ev, &e) || sh_val_type_of(ev) != SH_VAL_MAP ||
        sh_val_set_cstr(ev, "id", sh_val_new_str(id, il))) {
        sh_val_free(ev);
        return NULL;
    }
    return ev;
}

int sync_evlog_read(sh_store *st, const char *acct, const char *after, long long count,
                    sh_val **out, sh_error *err)
{
    *out = NULL;
    char key[SYNC_KEY_MAX], from[48] = "";
    if (count < 1 || count > SYNC_EVLOG_READ_MAX)
        return sh_error_set(err, SH_EINVAL, "count must be 1..%d", SYNC_EVLOG_READ_MAX);
    if (after && after[0] && evlog_id_norm(after, from, sizeof from, err))
        return SH_EINVAL;
    if (sync_key_events(key, sizeof key, acct) < 0)
        return sh_error_set(err, SH_EINVAL, "accountId too long for a key");
    const char *keys[] = {key, NULL};
    sh_cmd *c = sh_cmd_new_eval_keys(&evlog_read_script, keys);
    sh_cmd_str(c, from);
    sh_cmd_int(c, count);
    sh_reply *r = NULL;
    int rc = sh_store_call(st, c, &r, err);
    if (rc)
        return rc;
    const sh_reply *entries = sh_reply_elem(r, 2);
    size_t ll = 0;
    const char *last = sh_reply_string(sh_reply_elem(r, 1), &ll);
    sh_val *res = sh_val_new_map(), *arr = sh_val_new_array();
    rc = !res || !arr;
    for (size_t i = 0; !rc && i < sh_reply_count(entries); i++) {
        sh_val *ev = evlog_event(sh_reply_elem(entries, i));
        if (ev)
            rc = sh_val_push(arr, ev);
    }
    rc = rc || sh_val_set_cstr(res, "events", arr);
    arr = NULL;
    rc =
        rc || sh_val_set_cstr(res, "reset", sh_val_new_bool(sh_reply_integer(sh_reply_elem(r, 0))));
    rc = rc || sh_val_set_cstr(res, "lastId", sh_val_new_str(last ? last : "", last ? ll : 0));
    sh_reply_free(r);
    sh_val_free(arr);
    if (rc) {
        sh_val_free(res);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *out = res;
    return SH_OK;
}
