/* mail_change.c - changes to the synced mail stored with their events in
 * one script (mail_change.h). The keys are those of keys.c, all in the
 * account's hash slot, so the script runs on Redis Cluster too. */
#include "mail_change.h"

#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "keys.h"
#include "mailstore.h"
#include "mailstore_int.h"

/* KEYS: the event stream, the message's hash, the folder's index, its
 * unseen set. ARGV: max length, min id, the event entry (see
 * SYNC_EVLOG_LUA_ADD), the change ("new", "flags", "removed"), the UID,
 * "1" when the message is \Seen, then the hash's name, value pairs (new)
 * or the flags (flags). Returns false when the store holds the change,
 * else {id, prevId}. The event goes first: a script stops at its first
 * failing command with what it did kept, so a change is never stored
 * without its event. */
static sh_script change_script = SH_SCRIPT("mail_change", "\
local msg, idx, unseen = KEYS[2], KEYS[3], KEYS[4]\n\
local op, uid = ARGV[4], ARGV[5]\n\
local stored = redis.call('ZSCORE', idx, uid)\n\
if op == 'new' then\n\
  if stored then return false end\n\
elseif op == 'flags' then\n\
  local cur = redis.call('HGET', msg, 'flags')\n\
  if not cur or cur == ARGV[7] then return false end\n\
elseif op == 'removed' then\n\
  if not stored and redis.call('EXISTS', msg) == 0 then return false end\n\
else\n\
  return redis.error_reply('unknown mail change ' .. op)\n\
end\n" SYNC_EVLOG_LUA_ADD "\
if op == 'new' then\n\
  redis.call('HSET', msg, unpack(ARGV, 7))\n\
  redis.call('ZADD', idx, uid, uid)\n\
elseif op == 'flags' then\n\
  redis.call('HSET', msg, 'flags', ARGV[7])\n\
else\n\
  redis.call('DEL', msg)\n\
  redis.call('ZREM', idx, uid)\n\
  redis.call('ZREM', unseen, uid)\n\
end\n\
if op ~= 'removed' then\n\
  if ARGV[6] == '1' then redis.call('ZREM', unseen, uid)\n\
  else redis.call('ZADD', unseen, uid, uid) end\n\
end\n\
return {id, prev}\n");

/* change_make builds the script command of one change to message uid
 * and its event of type with fields (borrowed). */
static int change_make(const sync_env *env, const char *acct, const char *folder,
                       uint32_t uidvalidity, uint32_t uid, const char *op, bool seen,
                       const char *type, const sh_val *fields, sync_change *out)
{
    memset(out, 0, sizeof *out);
    char ev_key[SYNC_KEY_MAX], msg[SYNC_KEY_MAX], idx[SYNC_KEY_MAX], unseen[SYNC_KEY_MAX];
    if (sync_key_events(ev_key, sizeof ev_key, acct) < 0 ||
        sync_key_message(msg, sizeof msg, acct, folder, uidvalidity, uid) < 0 ||
        sync_key_index(idx, sizeof idx, acct, folder, uidvalidity) < 0 ||
        sync_key_unseen(unseen, sizeof unseen, acct, folder, uidvalidity) < 0)
        return SH_EINVAL;
    sh_buf blob;
    sh_buf_init(&blob);
    out->ev = sync_evlog_entry(acct, type, fields, &blob);
    const char *keys[] = {ev_key, msg, idx, unseen, NULL};
    out->cmd = out->ev ? sh_cmd_new_eval_keys(&change_script, keys) : NULL;
    int rc = !out->cmd || sync_evlog_trim_args(out->cmd, env) ||
                     sh_cmd_arg(out->cmd, blob.data, blob.len) || sh_cmd_str(out->cmd, op) ||
                     sh_cmd_int(out->cmd, uid) || sh_cmd_str(out->cmd, seen ? "1" : "0")
                 ? SH_ENOMEM
                 : SH_OK;
    sh_buf_fini(&blob);
    if (rc)
        sync_change_fini(out);
    return rc;
}

/* change_fields makes {uid, folder} (and flags as an array when given). */
static sh_val *change_fields(const char *folder, uint32_t uid, const char *flags)
{
    sh_val *m = sh_val_new_map();
    if (!m || sh_val_set_cstr(m, "uid", sh_val_new_int(uid)) ||
        sh_val_set_cstr(m, "folder", sh_val_new_cstr(folder)) ||
        (flags && sh_val_set_cstr(m, "flags", sync_mail_flags_val(flags)))) {
        sh_val_free(m);
        return NULL;
    }
    return m;
}

int sync_change_new(const sync_env *env, const char *acct, const char *folder, uint32_t uidvalidity,
                    const sync_msg *m, sync_change *out)
{
    sync__mail_field f[SYNC__MAIL_FIELDS];
    sync__mail_fields(folder, uidvalidity, m, f);
    sh_val *view = sh_val_new_map();
    int rc = view ? SH_OK : SH_ENOMEM;
    for (size_t i = 0; !rc && i < SYNC__MAIL_FIELDS; i++) {
        sh_val *v = !f[i].str                         ? sh_val_new_int(f[i].num)
                    : strcmp(f[i].name, "flags") == 0 ? sync_mail_flags_val(f[i].str)
                                                      : sh_val_new_cstr(f[i].str);
        rc = sh_val_set_cstr(view, f[i].name, v) ? SH_ENOMEM : SH_OK;
    }
    if (!rc)
        rc = change_make(env, acct, folder, uidvalidity, m->uid, "new",
                         sync_mail_flags_seen(m->flags), SYNC_EV_MAIL_NEW, view, out);
    if (!rc && sync__mail_fields_args(out->cmd, f)) {
        sync_change_fini(out);
        rc = SH_ENOMEM;
    }
    sh_val_free(view);
    return rc;
}

int sync_change_flags(const sync_env *env, const char *acct, const char *folder,
                      uint32_t uidvalidity, uint32_t uid, const char *flags, sync_change *out)
{
    sh_val *fields = change_fields(folder, uid, flags);
    int rc = fields ? change_make(env, acct, folder, uidvalidity, uid, "flags",
                                  sync_mail_flags_seen(flags), SYNC_EV_MAIL_FLAGS, fields, out)
                    : SH_ENOMEM;
    if (!rc && sh_cmd_str(out->cmd, flags)) {
        sync_change_fini(out);
        rc = SH_ENOMEM;
    }
    sh_val_free(fields);
    return rc;
}

int sync_change_removed(const sync_env *env, const char *acct, const char *folder,
                        uint32_t uidvalidity, uint32_t uid, sync_change *out)
{
    sh_val *fields = change_fields(folder, uid, NULL);
    int rc = fields ? change_make(env, acct, folder, uidvalidity, uid, "removed", false,
                                  SYNC_EV_MAIL_REMOVED, fields, out)
                    : SH_ENOMEM;
    sh_val_free(fields);
    return rc;
}

int sync_change_run(sh_store *st, sh_pub *pub, const char *acct, sync_change *c, size_t n,
                    size_t *napplied, sh_error *err)
{
    if (napplied)
        *napplied = 0;
    if (n == 0)
        return SH_OK;
    sh_cmd **cmds = calloc(n, sizeof *cmds);
    sh_reply **outs = calloc(n, sizeof *outs);
    int rc = cmds && outs ? SH_OK : sh_error_set(err, SH_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < n; i++)
        if (!(cmds[i] = c[i].cmd))
            rc = sh_error_set(err, SH_EINVAL, "a mail change was run twice");
    if (!rc)
        rc = sh_store_pipeline(st, cmds, n, outs, err);
    for (size_t i = 0; !rc && i < n; i++)
        rc = sh_store_reply_check(outs[i], err);
    for (size_t i = 0; !rc && i < n; i++) {
        c[i].applied = sync_evlog_publish(pub, acct, c[i].ev, outs[i]);
        if (napplied && c[i].applied)
            (*napplied)++;
    }
    for (size_t i = 0; i < n; i++) {
        if (outs)
            sh_reply_free(outs[i]);
        sh_cmd_free(c[i].cmd);
        c[i].cmd = NULL;
    }
    free(cmds);
    free(outs);
    return rc;
}

void sync_change_fini(sync_change *c)
{
    if (!c)
        return;
    sh_cmd_free(c->cmd);
    sh_val_free(c->ev);
    c->cmd = NULL;
    c->ev = NULL;
}
