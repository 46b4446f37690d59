/* mail_pending.c - read/unread changes made through the API: stored at once
 * and recorded as pending for the next sync to push, and what the push
 * leaves (done, put off, refused with the server's reason) (mailstore.h). */
#include "mailstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "mailstore_int.h"

/* KEYS: message hash, unseen set, pending hash; ARGV: uid, "1" to mark
 * seen or "0" unseen, the pending entry. Returns the new flags, or nil
 * when the message is not stored. */
static sh_script mail_set_seen_script = SH_SCRIPT("mail_set_seen", "\
local f = redis.call('HGET', KEYS[1], 'flags')\n\
if not f then return false end\n\
local out = {}\n\
for w in string.gmatch(f, '%S+') do\n\
  if w ~= '\\\\Seen' then out[#out + 1] = w end\n\
end\n\
if ARGV[2] == '1' then\n\
  out[#out + 1] = '\\\\Seen'\n\
  redis.call('ZREM', KEYS[2], ARGV[1])\n\
else\n\
  redis.call('ZADD', KEYS[2], ARGV[1], ARGV[1])\n\
end\n\
local nf = table.concat(out, ' ')\n\
redis.call('HSET', KEYS[1], 'flags', nf)\n\
redis.call('HDEL', KEYS[1], 'flagError')\n\
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])\n\
return nf\n");

/* KEYS: pending hash; ARGV: uid, the entry that was applied. Deletes the
 * entry unless a newer change replaced it meanwhile. */
static sh_script mail_pending_done_script = SH_SCRIPT("mail_pending_done", "\
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then\n\
  return redis.call('HDEL', KEYS[1], ARGV[1])\n\
end\n\
return 0\n");

/* KEYS: pending hash; ARGV: uid, the entry pushed, the entry with one
 * more attempt. Counts the attempt unless a newer change replaced it. */
static sh_script mail_pending_retry_script = SH_SCRIPT("mail_pending_retry", "\
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then\n\
  return redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])\n\
end\n\
return 0\n");

/* KEYS: message hash; ARGV: the reason. Only a stored message gets it. */
static sh_script mail_flag_error_script = SH_SCRIPT("mail_flag_error", "\
if redis.call('EXISTS', KEYS[1]) == 1 then\n\
  return redis.call('HSET', KEYS[1], 'flagError', ARGV[1])\n\
end\n\
return 0\n");

int sync_mail_set_seen(sh_store *st, const char *acct, const char *folder, long long uid, bool seen,
                       sh_val **out, sh_error *err)
{
    *out = NULL;
    if (uid < 1 || uid > UINT32_MAX) /* as in sync_mail_get */
        return sh_error_set(err, SH_ENOTFOUND, "message not found");
    sync_folder_state fs;
    int rc = sync_mail_state_get(st, acct, folder, &fs, err);
    if (rc)
        return rc;
    if (!fs.uidvalidity)
        return sh_error_set(err, SH_ENOTFOUND, "message not found");
    char key[SYNC_KEY_MAX], unseen[SYNC_KEY_MAX], pending[SYNC_KEY_MAX];
    if (sync_key_message(key, sizeof key, acct, folder, fs.uidvalidity, (uint32_t)uid) < 0 ||
        sync_key_unseen(unseen, sizeof unseen, acct, folder, fs.uidvalidity) < 0 ||
        sync_key_pending(pending, sizeof pending, acct, folder) < 0)
        return sync__mail_key_err(err);
    sh_cmd *c = sh_cmd_new_eval(&mail_set_seen_script, 3);
    sh_cmd_str(c, key);
    sh_cmd_str(c, unseen);
    sh_cmd_str(c, pending);
    sh_cmd_int(c, uid);
    sh_cmd_str(c, seen ? "1" : "0");
    sh_cmd_fmt(c, "%c:%u:%llu", seen ? '+' : '-', (unsigned)fs.uidvalidity,
               (unsigned long long)fs.highestmodseq);
    sh_reply *r = NULL;
    rc = sh_store_call(st, c, &r, err);
    if (rc)
        return rc;
    bool found = sh_reply_kind(r) == SH_REPLY_STRING;
    sh_reply_free(r);
    if (!found)
        return sh_error_set(err, SH_ENOTFOUND, "message not found");
    return sync_mail_get(st, acct, folder, uid, out, err);
}

int sync_mail_pending(sh_store *st, const char *acct, const char *folder, sync_pending **out,
                      size_t *n, sh_error *err)
{
    *out = NULL;
    *n = 0;
    char key[SYNC_KEY_MAX];
    if (sync_key_pending(key, sizeof key, acct, folder) < 0)
        return sync__mail_key_err(err);
    sh_cmd *c = sh_cmd_new("HGETALL");
    sh_cmd_str(c, key);
    sh_reply *r = NULL;
    int rc = sh_store_call(st, c, &r, err);
    if (rc)
        return rc;
    size_t count = sh_reply_kind(r) == SH_REPLY_ARRAY ? sh_reply_count(r) / 2 : 0;
    sync_pending *v = calloc(count ? count : 1, sizeof *v);
    if (!v) {
        sh_reply_free(r);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < count; i++) {
        size_t len;
        const char *val = sh_reply_string(sh_reply_elem(r, 2 * i + 1), &len);
        sync_pending *p = &v[k];
        unsigned uv;
        unsigned long long ms;
        int attempts = 0;
        char sign;
        p->uid = (uint32_t)sh_reply_ll(sh_reply_elem(r, 2 * i), NULL);
        if (!val || len >= sizeof p->value || p->uid == 0)
            continue;
        memcpy(p->value, val, len);
        p->value[len] = '\0';
        /* "+:<uidvalidity>:<modseq>", then ":<attempts>" once put off */
        int got = sscanf(p->value, "%c:%u:%llu:%d", &sign, &uv, &ms, &attempts);
        if (got < 3 || (sign != '+' && sign != '-') || attempts < 0)
            continue;
        p->attempts = got == 4 ? attempts : 0;
        p->seen = sign == '+';
        p->uidvalidity = uv;
        p->modseq = ms;
        k++;
    }
    sh_reply_free(r);
    *out = v;
    *n = k;
    return SH_OK;
}

/* mail_pending_apply runs script (pending_done or pending_retry) on the
 * pending entry of p; a retry also passes the entry with one more attempt. */
static int mail_pending_apply(sh_store *st, const char *acct, const char *folder,
                              const sync_pending *p, sh_script *script, bool retry, sh_error *err)
{
    char key[SYNC_KEY_MAX];
    if (sync_key_pending(key, sizeof key, acct, folder) < 0)
        return sync__mail_key_err(err);
    sh_cmd *c = sh_cmd_new_eval(script, 1);
    sh_cmd_str(c, key);
    sh_cmd_int(c, p->uid);
    sh_cmd_str(c, p->value);
    if (retry)
        sh_cmd_fmt(c, "%c:%u:%llu:%d", p->seen ? '+' : '-', (unsigned)p->uidvalidity,
                   (unsigned long long)p->modseq, p->attempts + 1);
    sh_reply *r = NULL;
    int rc = sh_store_call(st, c, &r, err);
    sh_reply_free(r);
    return rc;
}

int sync_mail_pending_done(sh_store *st, const char *acct, const char *folder,
                           const sync_pending *p, sh_error *err)
{
    return mail_pending_apply(st, acct, folder, p, &mail_pending_done_script, false, err);
}

int sync_mail_pending_retry(sh_store *st, const char *acct, const char *folder,
                            const sync_pending *p, sh_error *err)
{
    return mail_pending_apply(st, acct, folder, p, &mail_pending_retry_script, true, err);
}

int sync_mail_flag_error(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                         uint32_t uid, const char *why, sh_error *err)
{
    char key[SYNC_KEY_MAX];
    if (sync_key_message(key, sizeof key, acct, folder, uidvalidity, uid) < 0)
        return sync__mail_key_err(err);
    sh_cmd *c = sh_cmd_new_eval(&mail_flag_error_script, 1);
    sh_cmd_str(c, key);
    sh_cmd_str(c, why);
    sh_reply *r = NULL;
    int rc = sh_store_call(st, c, &r, err);
    sh_reply_free(r);
    return rc;
}
