/* mailstore.c - the reads and writes of the synced mail that a sync needs
 * (folder state, message writes, index and flag reads, removal), and the
 * helpers the store's files share (mailstore_int.h). Every key comes from
 * keys.c. */
#include "mailstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "mailstore_int.h"
#include "shared/util.h"

/* Commands sent per pipeline when deleting or reading many messages. */
#define MAIL_CHUNK 500

int sync__mail_key_err(sh_error *err)
{
    return sh_error_set(err, SH_EINVAL, "account id or folder name too long for a key");
}

int sync_mail_state_get(sh_store *st, const char *acct, const char *folder, sync_folder_state *out,
                        sh_error *err)
{
    memset(out, 0, sizeof *out);
    char key[SYNC_KEY_MAX];
    if (sync_key_state(key, sizeof key, acct, folder) < 0)
        return sync__mail_key_err(err);
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
        out->uidvalidity = (uint32_t)sh_reply_ll(sh_reply_elem(r, 0), NULL);
        out->uidnext = (uint32_t)sh_reply_ll(sh_reply_elem(r, 1), NULL);
        out->highestmodseq = (uint64_t)sh_reply_ll(sh_reply_elem(r, 2), NULL);
        out->last_full_check = sh_reply_ll(sh_reply_elem(r, 3), NULL);
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
        return sync__mail_key_err(err);
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

void sync__mail_fields(const char *folder, uint32_t uidvalidity, const sync_msg *m,
                       sync__mail_field *out)
{
    const sync__mail_field fields[SYNC__MAIL_FIELDS] = {
        {"uid", NULL, m->uid},
        {"uidvalidity", NULL, uidvalidity},
        {"size", NULL, (long long)m->size},
        {"folder", folder, 0},
        {"subject", m->subject, 0},
        {"from", m->from, 0},
        {"to", m->to, 0},
        {"cc", m->cc, 0},
        {"date", m->date, 0},
        {"messageId", m->message_id, 0},
        {"flags", m->flags, 0},
        {"internalDate", m->internal_date, 0},
    };
    for (size_t i = 0; i < SYNC__MAIL_FIELDS; i++) {
        out[i] = fields[i];
        if (i >= 3 && !out[i].str)
            out[i].str = "";
    }
}

int sync__mail_fields_args(sh_cmd *c, const sync__mail_field *f)
{
    int rc = SH_OK;
    for (size_t i = 0; !rc && i < SYNC__MAIL_FIELDS; i++) {
        rc = sh_cmd_str(c, f[i].name);
        rc = rc ? rc : f[i].str ? sh_cmd_str(c, f[i].str) : sh_cmd_int(c, f[i].num);
    }
    return rc;
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
    sync__mail_field fields[SYNC__MAIL_FIELDS];
    sync__mail_fields(folder, uidvalidity, m, fields);
    rc = rc ? rc : sh_cmd_str(h, key);
    rc = rc ? rc : sync__mail_fields_args(h, fields);
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

/* mail_index_read runs c, a ZRANGE or ZRANGEBYSCORE of an index, and
 * returns the UIDs of its reply in *uids (caller frees). */
static int mail_index_read(sh_store *st, sh_cmd *c, uint32_t **uids, size_t *n, sh_error *err)
{
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
        v[i] = (uint32_t)sh_reply_ll(sh_reply_elem(r, i), NULL);
    sh_reply_free(r);
    *uids = v;
    *n = count;
    return SH_OK;
}

int sync_mail_index(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                    uint32_t **uids, size_t *n, sh_error *err)
{
    *uids = NULL;
    *n = 0;
    char idx[SYNC_KEY_MAX];
    if (sync_key_index(idx, sizeof idx, acct, folder, uidvalidity) < 0)
        return sync__mail_key_err(err);
    sh_cmd *c = sh_cmd_new("ZRANGE");
    sh_cmd_str(c, idx);
    sh_cmd_str(c, "0");
    sh_cmd_str(c, "-1");
    return mail_index_read(st, c, uids, n, err);
}

int sync_mail_index_range(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                          uint32_t lo, uint32_t hi, size_t max, uint32_t **uids, size_t *n,
                          sh_error *err)
{
    *uids = NULL;
    *n = 0;
    char idx[SYNC_KEY_MAX];
    if (sync_key_index(idx, sizeof idx, acct, folder, uidvalidity) < 0)
        return sync__mail_key_err(err);
    if (max == 0)
        return sh_error_set(err, SH_EINVAL, "an index window of no UIDs");
    sh_cmd *c = sh_cmd_new("ZRANGEBYSCORE");
    sh_cmd_str(c, idx);
    sh_cmd_int(c, lo);
    sh_cmd_int(c, hi);
    sh_cmd_str(c, "LIMIT");
    sh_cmd_str(c, "0");
    sh_cmd_int(c, (long long)max);
    return mail_index_read(st, c, uids, n, err);
}

int sync_mail_count(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                    long long *n, sh_error *err)
{
    *n = 0;
    char idx[SYNC_KEY_MAX];
    if (sync_key_index(idx, sizeof idx, acct, folder, uidvalidity) < 0)
        return sync__mail_key_err(err);
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
        return sync__mail_key_err(err);
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
    /* A chunk at a time, so that a folder of millions of messages is
     * dropped in bounded memory. */
    int rc = SH_OK;
    for (size_t n = MAIL_CHUNK; !rc && n == MAIL_CHUNK;) {
        uint32_t *uids = NULL;
        rc = sync_mail_index_range(st, acct, folder, uidvalidity, 0, UINT32_MAX, MAIL_CHUNK, &uids,
                                   &n, err);
        if (!rc)
            rc = sync_mail_remove(st, acct, folder, uidvalidity, uids, n, err);
        free(uids);
    }
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
