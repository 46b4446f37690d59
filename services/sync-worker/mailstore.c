/* mailstore.c - reads and writes of the synced mail in Redis (see
 * mailstore.h); every key comes from keys.c. */
#include "mailstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "shared/util.h"

/* Commands sent per pipeline when deleting or reading many messages. */
#define MAIL_CHUNK 500

static int mail_key_err(sh_error *err)
{
    return sh_error_set(err, SH_EINVAL, "account id or folder name too long for a key");
}

static long long mail_ll(const sh_reply *r)
{
    size_t len;
    const char *s = r ? sh_reply_string(r, &len) : NULL;
    if (!s || sh_reply_kind(r) != SH_REPLY_STRING)
        return 0;
    char buf[32];
    if (len >= sizeof buf)
        return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return strtoll(buf, NULL, 10);
}

int sync_mail_state_get(sh_store *st, const char *acct, const char *folder, sync_folder_state *out,
                        sh_error *err)
{
    memset(out, 0, sizeof *out);
    char key[SYNC_KEY_MAX];
    if (sync_key_state(key, sizeof key, acct, folder) < 0)
        return mail_key_err(err);
    sh_cmd *c = sh_cmd_new("HMGET");
    sh_cmd_str(c, key);
    sh_cmd_str(c, "uidvalidity");
    sh_cmd_str(c, "uidnext");
    sh_cmd_str(c, "highestmodseq");
    sh_cmd_str(c, "lastFullCheck");
    sh_reply *r = NULL;
    int rc = sh_store_call(st, c, &r, err);
    if (rc)
        return rc;
    if (sh_reply_kind(r) == SH_REPLY_ARRAY && sh_reply_count(r) == 4) {
        out->uidvalidity = (uint32_t)mail_ll(sh_reply_elem(r, 0));
        out->uidnext = (uint32_t)mail_ll(sh_reply_elem(r, 1));
        out->highestmodseq = (uint64_t)mail_ll(sh_reply_elem(r, 2));
        out->last_full_check = mail_ll(sh_reply_elem(r, 3));
    }
    sh_reply_free(r);
    return SH_OK;
}

int sync_mail_state_set(sh_store *st, const char *acct, const char *folder,
                        const sync_folder_state *s, sh_error *err)
{
    char key[SYNC_KEY_MAX], set[SYNC_KEY_MAX];
    if (sync_key_state(key, sizeof key, acct, folder) < 0 ||
        sync_key_folders(set, sizeof set, acct) < 0)
        return mail_key_err(err);
    sh_cmd *c[2] = {sh_cmd_new("HSET"), sh_cmd_new("SADD")};
    sh_cmd_str(c[0], key);
    sh_cmd_str(c[0], "uidvalidity");
    sh_cmd_int(c[0], s->uidvalidity);
    sh_cmd_str(c[0], "uidnext");
    sh_cmd_int(c[0], s->uidnext);
    sh_cmd_str(c[0], "highestmodseq");
    sh_cmd_fmt(c[0], "%llu", (unsigned long long)s->highestmodseq);
    sh_cmd_str(c[0], "lastFullCheck");
    sh_cmd_int(c[0], s->last_full_check);
    sh_cmd_str(c[1], set);
    sh_cmd_str(c[1], folder);
    return sync_mail_run(st, c, 2, err);
}

bool sync_mail_flags_seen(const char *flags)
{
    size_t n = strlen("\\Seen");
    for (const char *p = flags; p && (p = strstr(p, "\\Seen")) != NULL; p += n)
        if ((p == flags || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
            return true;
    return false;
}

/* mail_unseen_cmd makes the ZADD (unseen) or ZREM (seen) keeping the
 * folder's set of unseen UIDs in step with flags. */
static sh_cmd *mail_unseen_cmd(const char *acct, const char *folder, uint32_t uidvalidity,
                               uint32_t uid, const char *flags)
{
    char key[SYNC_KEY_MAX];
    if (sync_key_unseen(key, sizeof key, acct, folder, uidvalidity) < 0)
        return NULL;
    bool seen = sync_mail_flags_seen(flags);
    sh_cmd *c = sh_cmd_new(seen ? "ZREM" : "ZADD");
    int rc = sh_cmd_str(c, key);
    if (!seen)
        rc = rc ? rc : sh_cmd_int(c, uid);
    rc = rc ? rc : sh_cmd_int(c, uid);
    if (rc) {
        sh_cmd_free(c);
        return NULL;
    }
    return c;
}

int sync_mail_put_cmds(const char *acct, const char *folder, uint32_t uidvalidity,
                       const sync_msg *m, sh_cmd **cmds)
{
    char key[SYNC_KEY_MAX], idx[SYNC_KEY_MAX];
    cmds[0] = cmds[1] = cmds[2] = NULL;
    if (sync_key_message(key, sizeof key, acct, folder, uidvalidity, m->uid) < 0 ||
        sync_key_index(idx, sizeof idx, acct, folder, uidvalidity) < 0)
        return SH_EINVAL;
    sh_cmd *h = sh_cmd_new("HSET"), *z = sh_cmd_new("ZADD");
    int rc = h && z ? SH_OK : SH_ENOMEM;
    const struct {
        const char *name, *value;
    } fields[] = {
        {"folder", folder},
        {"subject", m->subject},
        {"from", m->from},
        {"to", m->to},
        {"cc", m->cc},
        {"date", m->date},
        {"messageId", m->message_id},
        {"flags", m->flags},
        {"internalDate", m->internal_date},
    };
    rc = rc ? rc : sh_cmd_str(h, key);
    rc = rc ? rc : sh_cmd_str(h, "uid");
    rc = rc ? rc : sh_cmd_int(h, m->uid);
    rc = rc ? rc : sh_cmd_str(h, "uidvalidity");
    rc = rc ? rc : sh_cmd_int(h, uidvalidity);
    rc = rc ? rc : sh_cmd_str(h, "size");
    rc = rc ? rc : sh_cmd_int(h, m->size);
    for (size_t i = 0; !rc && i < sizeof fields / sizeof fields[0]; i++) {
        rc = sh_cmd_str(h, fields[i].name);
        rc = rc ? rc : sh_cmd_str(h, fields[i].value ? fields[i].value : "");
    }
    rc = rc ? rc : sh_cmd_str(z, idx);
    rc = rc ? rc : sh_cmd_int(z, m->uid);
    rc = rc ? rc : sh_cmd_int(z, m->uid);
    sh_cmd *u = rc ? NULL : mail_unseen_cmd(acct, folder, uidvalidity, m->uid, m->flags);
    if (rc || !u) {
        sh_cmd_free(h);
        sh_cmd_free(z);
        return SH_ENOMEM;
    }
    cmds[0] = h;
    cmds[1] = z;
    cmds[2] = u;
    return SH_OK;
}

int sync_mail_flags_cmds(const char *acct, const char *folder, uint32_t uidvalidity, uint32_t uid,
                         const char *flags, sh_cmd **cmds)
{
    char key[SYNC_KEY_MAX];
    cmds[0] = cmds[1] = NULL;
    if (sync_key_message(key, sizeof key, acct, folder, uidvalidity, uid) < 0)
        return SH_EINVAL;
    sh_cmd *c = sh_cmd_new("HSET");
    sh_cmd *u = mail_unseen_cmd(acct, folder, uidvalidity, uid, flags);
    if (!u || sh_cmd_str(c, key) || sh_cmd_str(c, "flags") || sh_cmd_str(c, flags)) {
        sh_cmd_free(c);
        sh_cmd_free(u);
        return SH_ENOMEM;
    }
    cmds[0] = c;
    cmds[1] = u;
    return SH_OK;
}

/* mail_replies checks n replies for an error reply and frees them. */
static int mail_replies(sh_reply **outs, size_t n, int rc, sh_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (rc == SH_OK && outs[i] && sh_reply_kind(outs[i]) == SH_REPLY_ERROR) {
            size_t len;
            const char *s = sh_reply_string(outs[i], &len);
            rc = sh_error_set(err, SH_EINTERNAL, "Redis: %.*s", (int)(len > 200 ? 200 : len), s);
        }
        sh_reply_free(outs[i]);
    }
    return rc;
}

static void mail_cmds_free(sh_cmd **cmds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sh_cmd_free(cmds[i]);
        cmds[i] = NULL;
    }
}

int sync_mail_run(sh_store *st, sh_cmd **cmds, size_t n, sh_error *err)
{
    if (n == 0)
        return SH_OK;
    sh_reply **outs = calloc(n, sizeof *outs);
    int rc = outs ? sh_store_pipeline(st, cmds, n, outs, err)
                  : sh_error_set(err, SH_ENOMEM, "out of memory");
    if (outs)
        rc = mail_replies(outs, n, rc, err);
    mail_cmds_free(cmds, n);
    free(outs);
    return rc;
}

int sync_mail_send(sh_store *st, sh_cmd **cmds, size_t n, sh_error *err)
{
    int rc = sh_store_send(st, cmds, n, err);
    mail_cmds_free(cmds, n);
    return rc;
}

int sync_mail_recv(sh_store *st, size_t n, sh_error *err)
{
    if (n == 0)
        return SH_OK;
    sh_reply **outs = calloc(n, sizeof *outs);
    if (!outs)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    int rc = sh_store_recv(st, outs, n, err);
    rc = mail_replies(outs, n, rc, err);
    free(outs);
    return rc;
}

int sync_mail_index(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                    uint32_t **uids, size_t *n, sh_error *err)
{
    *uids = NULL;
    *n = 0;
    char idx[SYNC_KEY_MAX];
    if (sync_key_index(idx, sizeof idx, acct, folder, uidvalidity) < 0)
        return mail_key_err(err);
    sh_cmd *c = sh_cmd_new("ZRANGE");
    sh_cmd_str(c, idx);
    sh_cmd_str(c, "0");
    sh_cmd_str(c, "-1");
    sh_reply *r = NULL;
    int rc = sh_store_call(st, c, &r, err);
    if (rc)
        return rc;
    size_t count = sh_reply_kind(r) == SH_REPLY_ARRAY ? sh_reply_count(r) : 0;
    uint32_t *v = malloc((count ? count : 1) * sizeof *v);
    if (!v) {
        sh_reply_free(r);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < count; i++)
        v[i] = (uint32_t)mail_ll(sh_reply_elem(r, i));
    sh_reply_free(r);
    *uids = v;
    *n = count;
    return SH_OK;
}

int sync_mail_count(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                    long long *n, sh_error *err)
{
    *n = 0;
    char idx[SYNC_KEY_MAX];
    if (sync_key_index(idx, sizeof idx, acct, folder, uidvalidity) < 0)
        return mail_key_err(err);
    sh_cmd *c = sh_cmd_new("ZCARD");
    sh_cmd_str(c, idx);
    sh_reply *r = NULL;
    int rc = sh_store_call(st, c, &r, err);
    if (!rc)
        *n = sh_reply_kind(r) == SH_REPLY_INTEGER ? sh_reply_integer(r) : 0;
    sh_reply_free(r);
    return rc;
}

int sync_mail_flags(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                    const uint32_t *uids, size_t n, char ***flags, sh_error *err)
{
    *flags = calloc(n ? n : 1, sizeof **flags);
    if (!*flags)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    sh_cmd *cmds[MAIL_CHUNK];
    sh_reply *outs[MAIL_CHUNK];
    for (size_t base = 0; base < n; base += MAIL_CHUNK) {
        size_t k = n - base < MAIL_CHUNK ? n - base : MAIL_CHUNK;
        char key[SYNC_KEY_MAX];
        for (size_t i = 0; i < k; i++) {
            cmds[i] = sh_cmd_new("HGET");
            if (sync_key_message(key, sizeof key, acct, folder, uidvalidity, uids[base + i]) < 0)
                key[0] = '\0';
            sh_cmd_str(cmds[i], key);
            sh_cmd_str(cmds[i], "flags");
        }
        int rc = sh_store_pipeline(st, cmds, k, outs, err);
        for (size_t i = 0; i < k; i++) {
            sh_cmd_free(cmds[i]);
            if (rc)
                continue;
            size_t len;
            const char *s = sh_reply_string(outs[i], &len);
            if (sh_reply_kind(outs[i]) == SH_REPLY_STRING && s)
                (*flags)[base + i] = strndup(s, len);
            sh_reply_free(outs[i]);
        }
        if (rc) {
            sync_mail_flags_free(*flags, n);
            *flags = NULL;
            return rc;
        }
    }
    return SH_OK;
}

void sync_mail_flags_free(char **flags, size_t n)
{
    if (!flags)
        return;
    for (size_t i = 0; i < n; i++)
        free(flags[i]);
    free(flags);
}

int sync_mail_remove(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                     const uint32_t *uids, size_t n, sh_error *err)
{
    char idx[SYNC_KEY_MAX], unseen[SYNC_KEY_MAX], key[SYNC_KEY_MAX];
    if (sync_key_index(idx, sizeof idx, acct, folder, uidvalidity) < 0 ||
        sync_key_unseen(unseen, sizeof unseen, acct, folder, uidvalidity) < 0)
        return mail_key_err(err);
    for (size_t base = 0; base < n; base += MAIL_CHUNK) {
        size_t k = n - base < MAIL_CHUNK ? n - base : MAIL_CHUNK;
        sh_cmd *cmds[3] = {sh_cmd_new("UNLINK"), sh_cmd_new("ZREM"), sh_cmd_new("ZREM")};
        sh_cmd_str(cmds[1], idx);
        sh_cmd_str(cmds[2], unseen);
        for (size_t i = 0; i < k; i++) {
            if (sync_key_message(key, sizeof key, acct, folder, uidvalidity, uids[base + i]) < 0)
                continue;
            sh_cmd_str(cmds[0], key);
            sh_cmd_int(cmds[1], uids[base + i]);
            sh_cmd_int(cmds[2], uids[base + i]);
        }
        int rc = sync_mail_run(st, cmds, 3, err);
        if (rc)
            return rc;
    }
    return SH_OK;
}

int sync_mail_drop_folder(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                          sh_error *err)
{
    uint32_t *uids = NULL;
    size_t n = 0;
    int rc = sync_mail_index(st, acct, folder, uidvalidity, &uids, &n, err);
    if (!rc)
        rc = sync_mail_remove(st, acct, folder, uidvalidity, uids, n, err);
    free(uids);
    char idx[SYNC_KEY_MAX], unseen[SYNC_KEY_MAX], pending[SYNC_KEY_MAX];
    if (!rc && sync_key_index(idx, sizeof idx, acct, folder, uidvalidity) >= 0 &&
        sync_key_unseen(unseen, sizeof unseen, acct, folder, uidvalidity) >= 0 &&
        sync_key_pending(pending, sizeof pending, acct, folder) >= 0) {
        sh_cmd *c = sh_cmd_new("UNLINK");
        sh_cmd_str(c, idx);
        sh_cmd_str(c, unseen);
        sh_cmd_str(c, pending);
        sh_reply *r = NULL;
        rc = sh_store_call(st, c, &r, err);
        sh_reply_free(r);
    }
    return rc;
}

int sync_mail_drop_account(sh_store *st, const char *acct, long long *deleted, sh_error *err)
{
    char pattern[SYNC_KEY_MAX], cursor[32] = "0";
    *deleted = 0;
    if (sync_key_account_pattern(pattern, sizeof pattern, acct) < 0)
        return sh_error_set(err, SH_EINVAL, "invalid account id");
    do {
        sh_cmd *c = sh_cmd_new("SCAN");
        sh_cmd_str(c, cursor);
        sh_cmd_str(c, "MATCH");
        sh_cmd_str(c, pattern);
        sh_cmd_str(c, "COUNT");
        sh_cmd_int(c, 1000);
        sh_reply *r = NULL;
        int rc = sh_store_call(st, c, &r, err);
        if (rc)
            return rc;
        if (sh_reply_kind(r) != SH_REPLY_ARRAY || sh_reply_count(r) != 2) {
            sh_reply_free(r);
            return sh_error_set(err, SH_EINTERNAL, "unexpected SCAN reply");
        }
        size_t len;
        const char *cur = sh_reply_string(sh_reply_elem(r, 0), &len);
        if (!cur || len >= sizeof cursor) {
            sh_reply_free(r);
            return sh_error_set(err, SH_EINTERNAL, "unexpected SCAN cursor");
        }
        memcpy(cursor, cur, len);
        cursor[len] = '\0';
        const sh_reply *keys = sh_reply_elem(r, 1);
        size_t nk = sh_reply_count(keys);
        if (nk) {
            sh_cmd *u = sh_cmd_new("UNLINK");
            for (size_t i = 0; i < nk; i++) {
                const char *k = sh_reply_string(sh_reply_elem(keys, i), &len);
                sh_cmd_arg(u, k, len);
            }
            sh_reply *ur = NULL;
            rc = sh_store_call(st, u, &ur, err);
            if (!rc)
                *deleted += sh_reply_integer(ur);
            sh_reply_free(ur);
        }
        sh_reply_free(r);
        if (rc)
            return rc;
    } while (strcmp(cursor, "0") != 0);
    return SH_OK;
}

/* mail_view turns an HGETALL reply into the public message map. */
static sh_val *mail_view(const sh_reply *h)
{
    size_t n = sh_reply_count(h);
    if (sh_reply_kind(h) != SH_REPLY_ARRAY || n == 0)
        return NULL;
    sh_val *m = sh_val_new_map();
    int rc = m ? SH_OK : SH_ENOMEM;
    for (size_t i = 0; !rc && i + 1 < n; i += 2) {
        size_t kl, vl;
        const char *k = sh_reply_string(sh_reply_elem(h, i), &kl);
        const char *v = sh_reply_string(sh_reply_elem(h, i + 1), &vl);
        if (!k || !v)
            continue;
        sh_val *val;
        if ((kl == 3 && !memcmp(k, "uid", 3)) || (kl == 4 && !memcmp(k, "size", 4)) ||
            (kl == 11 && !memcmp(k, "uidvalidity", 11))) {
            val = sh_val_new_int(mail_ll(sh_reply_elem(h, i + 1)));
        } else if (kl == 5 && !memcmp(k, "flags", 5)) {
            val = sh_val_new_array();
            size_t s = 0;
            while (val && s < vl) {
                size_t e = s;
                while (e < vl && v[e] != ' ')
                    e++;
                if (e > s && sh_val_push(val, sh_val_new_str(v + s, e - s))) {
                    sh_val_free(val);
                    val = NULL;
                }
                s = e + 1;
            }
        } else {
            val = sh_val_new_str(v, vl);
        }
        rc = !val || sh_val_set(m, k, kl, val) ? SH_ENOMEM : SH_OK;
    }
    if (rc) {
        sh_val_free(m);
        return NULL;
    }
    return m;
}

int sync_mail_list(sh_store *st, const char *acct, const char *folder, long long limit,
                   long long cursor, sh_val **out, sh_error *err)
{
    *out = NULL;
    sync_folder_state fs;
    int rc = sync_mail_state_get(st, acct, folder, &fs, err);
    if (rc)
        return rc;
    sh_val *res = sh_val_new_map(), *arr = sh_val_new_array();
    long long next = 0;
    if (!res || !arr) {
        rc = sh_error_set(err, SH_ENOMEM, "out of memory");
        goto fail;
    }
    if (fs.uidvalidity) {
        char idx[SYNC_KEY_MAX], key[SYNC_KEY_MAX];
        if (sync_key_index(idx, sizeof idx, acct, folder, fs.uidvalidity) < 0) {
            rc = mail_key_err(err);
            goto fail;
        }
        sh_cmd *c = sh_cmd_new("ZREVRANGEBYSCORE");
        sh_cmd_str(c, idx);
        if (cursor > 0)
            sh_cmd_fmt(c, "(%lld", cursor);
        else
            sh_cmd_str(c, "+inf");
        sh_cmd_str(c, "-inf");
        sh_cmd_str(c, "LIMIT");
        sh_cmd_str(c, "0");
        sh_cmd_int(c, limit + 1);
        sh_reply *r = NULL;
        rc = sh_store_call(st, c, &r, err);
        if (rc)
            goto fail;
        size_t n = sh_reply_kind(r) == SH_REPLY_ARRAY ? sh_reply_count(r) : 0;
        size_t take = n > (size_t)limit ? (size_t)limit : n;
        sh_cmd **cmds = calloc(take ? take : 1, sizeof *cmds);
        sh_reply **outs = calloc(take ? take : 1, sizeof *outs);
        if (!cmds || !outs) {
            free(cmds);
            free(outs);
            sh_reply_free(r);
            rc = sh_error_set(err, SH_ENOMEM, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < take; i++) {
            uint32_t uid = (uint32_t)mail_ll(sh_reply_elem(r, i));
            if (sync_key_message(key, sizeof key, acct, folder, fs.uidvalidity, uid) < 0)
                key[0] = '\0';
            cmds[i] = sh_cmd_new("HGETALL");
            sh_cmd_str(cmds[i], key);
        }
        if (n > take && take > 0)
            next = mail_ll(sh_reply_elem(r, take - 1));
        sh_reply_free(r);
        rc = take ? sh_store_pipeline(st, cmds, take, outs, err) : SH_OK;
        for (size_t i = 0; i < take; i++) {
            sh_cmd_free(cmds[i]);
            if (!rc) {
                sh_val *m = mail_view(outs[i]);
                if (m && sh_val_push(arr, m))
                    rc = sh_error_set(err, SH_ENOMEM, "out of memory");
                sh_reply_free(outs[i]);
            }
        }
        free(cmds);
        free(outs);
        if (rc)
            goto fail;
    }
    if (sh_val_set_cstr(res, "messages", arr) ||
        sh_val_set_cstr(res, "nextCursor", next ? sh_val_new_int(next) : sh_val_new_nil())) {
        arr = NULL;
        rc = sh_error_set(err, SH_ENOMEM, "out of memory");
        goto fail;
    }
    *out = res;
    return SH_OK;
fail:
    sh_val_free(arr);
    sh_val_free(res);
    return rc;
}

int sync_mail_get(sh_store *st, const char *acct, const char *folder, long long uid, sh_val **out,
                  sh_error *err)
{
    *out = NULL;
    sync_folder_state fs;
    int rc = sync_mail_state_get(st, acct, folder, &fs, err);
    if (rc)
        return rc;
    char key[SYNC_KEY_MAX];
    if (!fs.uidvalidity)
        return sh_error_set(err, SH_ENOTFOUND, "message not found");
    if (sync_key_message(key, sizeof key, acct, folder, fs.uidvalidity, (uint32_t)uid) < 0)
        return mail_key_err(err);
    sh_cmd *c = sh_cmd_new("HGETALL");
    sh_cmd_str(c, key);
    sh_reply *r = NULL;
    rc = sh_store_call(st, c, &r, err);
    if (rc)
        return rc;
    sh_val *m = mail_view(r);
    sh_reply_free(r);
    if (!m)
        return sh_error_set(err, SH_ENOTFOUND, "message not found");
    *out = m;
    return SH_OK;
}

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
        return mail_key_err(err);
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
        return mail_key_err(err);
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
        p->uid = (uint32_t)mail_ll(sh_reply_elem(r, 2 * i));
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
        return mail_key_err(err);
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

int sync_mail_counts(sh_store *st, const char *acct, sh_val **out, sh_error *err)
{
    *out = NULL;
    char set[SYNC_KEY_MAX];
    if (sync_key_folders(set, sizeof set, acct) < 0)
        return mail_key_err(err);
    sh_cmd *c = sh_cmd_new("SMEMBERS");
    sh_cmd_str(c, set);
    sh_reply *names = NULL;
    int rc = sh_store_call(st, c, &names, err);
    if (rc)
        return rc;
    size_t n = sh_reply_kind(names) == SH_REPLY_ARRAY ? sh_reply_count(names) : 0;
    sh_val *arr = sh_val_new_array(), *res = sh_val_new_map();
    if (!arr || !res)
        rc = sh_error_set(err, SH_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < n; i++) {
        size_t len;
        const char *s = sh_reply_string(sh_reply_elem(names, i), &len);
        char folder[SYNC_KEY_MAX], idx[SYNC_KEY_MAX], unseen[SYNC_KEY_MAX];
        if (!s || len == 0 || len >= sizeof folder)
            continue;
        memcpy(folder, s, len);
        folder[len] = '\0';
        sync_folder_state fs;
        rc = sync_mail_state_get(st, acct, folder, &fs, err);
        if (rc)
            break;
        if (!fs.uidvalidity || sync_key_index(idx, sizeof idx, acct, folder, fs.uidvalidity) < 0 ||
            sync_key_unseen(unseen, sizeof unseen, acct, folder, fs.uidvalidity) < 0)
            continue;
        sh_cmd *cmds[2] = {sh_cmd_new("ZCARD"), sh_cmd_new("ZCARD")};
        sh_reply *outs[2] = {NULL, NULL};
        sh_cmd_str(cmds[0], idx);
        sh_cmd_str(cmds[1], unseen);
        rc = sh_store_pipeline(st, cmds, 2, outs, err);
        sh_cmd_free(cmds[0]);
        sh_cmd_free(cmds[1]);
        if (!rc) {
            sh_val *f = sh_val_new_map();
            if (!f || sh_val_set_cstr(f, "name", sh_val_new_cstr(folder)) ||
                sh_val_set_cstr(f, "total", sh_val_new_int(sh_reply_integer(outs[0]))) ||
                sh_val_set_cstr(f, "unread", sh_val_new_int(sh_reply_integer(outs[1])))) {
                sh_val_free(f);
                rc = sh_error_set(err, SH_ENOMEM, "out of memory");
            } else if (sh_val_push(arr, f)) {
                rc = sh_error_set(err, SH_ENOMEM, "out of memory");
            }
        }
        sh_reply_free(outs[0]);
        sh_reply_free(outs[1]);
    }
    sh_reply_free(names);
    if (!rc) {
        /* sh_val_set takes arr even when it fails. */
        if (sh_val_set_cstr(res, "folders", arr))
            rc = sh_error_set(err, SH_ENOMEM, "out of memory");
        arr = NULL;
    }
    sh_val_free(arr);
    if (rc) {
        sh_val_free(res);
        return rc;
    }
    *out = res;
    return SH_OK;
}

int sync_mail_flag_error(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                         uint32_t uid, const char *why, sh_error *err)
{
    char key[SYNC_KEY_MAX];
    if (sync_key_message(key, sizeof key, acct, folder, uidvalidity, uid) < 0)
        return mail_key_err(err);
    sh_cmd *c = sh_cmd_new_eval(&mail_flag_error_script, 1);
    sh_cmd_str(c, key);
    sh_cmd_str(c, why);
    sh_reply *r = NULL;
    int rc = sh_store_call(st, c, &r, err);
    sh_reply_free(r);
    return rc;
}
