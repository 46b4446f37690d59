/* mail_views.c - the synced mail as the API shows it: a folder's messages a
 * page at a time, one message, and every folder's counts (mailstore.h). */
#include "mailstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "mailstore_int.h"

/* mail_flags_val splits a space-separated flag list into an array. */
static sh_val *mail_flags_val(const char *v, size_t vl)
{
    sh_val *val = sh_val_new_array();
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
    return val;
}

sh_val *sync_mail_flags_val(const char *flags)
{
    return mail_flags_val(flags, strlen(flags));
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
            val = sh_val_new_int(sh_reply_ll(sh_reply_elem(h, i + 1), NULL));
        } else if (kl == 5 && !memcmp(k, "flags", 5)) {
            val = mail_flags_val(v, vl);
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
    /* Redis reads a negative LIMIT count as "all". */
    if (limit < 1)
        return sh_error_set(err, SH_EINVAL, "limit must be at least 1");
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
            rc = sync__mail_key_err(err);
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
            uint32_t uid = (uint32_t)sh_reply_ll(sh_reply_elem(r, i), NULL);
            if (sync_key_message(key, sizeof key, acct, folder, fs.uidvalidity, uid) < 0)
                key[0] = '\0';
            cmds[i] = sh_cmd_new("HGETALL");
            sh_cmd_str(cmds[i], key);
        }
        if (n > take && take > 0)
            next = sh_reply_ll(sh_reply_elem(r, take - 1), NULL);
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
    /* No message has a UID outside 32 bits; cut to them it would name
     * another. */
    if (uid < 1 || uid > UINT32_MAX)
        return sh_error_set(err, SH_ENOTFOUND, "message not found");
    sync_folder_state fs;
    int rc = sync_mail_state_get(st, acct, folder, &fs, err);
    if (rc)
        return rc;
    char key[SYNC_KEY_MAX];
    if (!fs.uidvalidity)
        return sh_error_set(err, SH_ENOTFOUND, "message not found");
    if (sync_key_message(key, sizeof key, acct, folder, fs.uidvalidity, (uint32_t)uid) < 0)
        return sync__mail_key_err(err);
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

int sync_mail_folder_count(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                           long long *total, long long *unread, sh_error *err)
{
    char idx[SYNC_KEY_MAX], unseen[SYNC_KEY_MAX];
    *total = *unread = 0;
    if (sync_key_index(idx, sizeof idx, acct, folder, uidvalidity) < 0 ||
        sync_key_unseen(unseen, sizeof unseen, acct, folder, uidvalidity) < 0)
        return sh_error_set(err, SH_EINVAL, "folder name too long for a key");
    sh_cmd *cmds[2] = {sh_cmd_new("ZCARD"), sh_cmd_new("ZCARD")};
    sh_reply *outs[2] = {NULL, NULL};
    sh_cmd_str(cmds[0], idx);
    sh_cmd_str(cmds[1], unseen);
    int rc = sh_store_pipeline(st, cmds, 2, outs, err);
    sh_cmd_free(cmds[0]);
    sh_cmd_free(cmds[1]);
    for (int i = 0; !rc && i < 2; i++)
        rc = sh_store_reply_check(outs[i], err);
    if (!rc) {
        *total = sh_reply_integer(outs[0]);
        *unread = sh_reply_integer(outs[1]);
    }
    sh_reply_free(outs[0]);
    sh_reply_free(outs[1]);
    return rc;
}

int sync_mail_views(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                    const uint32_t *uids, size_t n, sh_val ***out, sh_error *err)
{
    *out = NULL;
    if (n == 0)
        return SH_OK;
    sh_cmd **cmds = calloc(n, sizeof *cmds);
    sh_reply **outs = calloc(n, sizeof *outs);
    sh_val **views = calloc(n, sizeof *views);
    int rc = cmds && outs && views ? SH_OK : sh_error_set(err, SH_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < n; i++) {
        char key[SYNC_KEY_MAX];
        if (sync_key_message(key, sizeof key, acct, folder, uidvalidity, uids[i]) < 0)
            rc = sync__mail_key_err(err);
        else if (!(cmds[i] = sh_cmd_new("HGETALL")) || sh_cmd_str(cmds[i], key))
            rc = sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    if (!rc)
        rc = sh_store_pipeline(st, cmds, n, outs, err);
    for (size_t i = 0; i < n && cmds; i++) {
        sh_cmd_free(cmds[i]);
        if (!rc && outs[i])
            views[i] = mail_view(outs[i]);
        if (outs)
            sh_reply_free(outs[i]);
    }
    free(cmds);
    free(outs);
    if (rc) {
        sync_mail_views_free(views, views ? n : 0);
        return rc;
    }
    *out = views;
    return SH_OK;
}

void sync_mail_views_free(sh_val **views, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sh_val_free(views[i]);
    free(views);
}

int sync_mail_counts(sh_store *st, const char *acct, sh_val **out, sh_error *err)
{
    *out = NULL;
    char set[SYNC_KEY_MAX];
    if (sync_key_folders(set, sizeof set, acct) < 0)
        return sync__mail_key_err(err);
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
        char folder[SYNC_KEY_MAX];
        if (!s || len == 0 || len >= sizeof folder)
            continue;
        memcpy(folder, s, len);
        folder[len] = '\0';
        sync_folder_state fs;
        rc = sync_mail_state_get(st, acct, folder, &fs, err);
        if (rc)
            break;
        if (!fs.uidvalidity)
            continue;
        long long total, unread;
        rc = sync_mail_folder_count(st, acct, folder, fs.uidvalidity, &total, &unread, err);
        if (rc == SH_EINVAL) { /* a name too long for a key */
            rc = SH_OK;
            continue;
        }
        if (!rc) {
            sh_val *f = sh_val_new_map();
            if (!f || sh_val_set_cstr(f, "name", sh_val_new_cstr(folder)) ||
                sh_val_set_cstr(f, "total", sh_val_new_int(total)) ||
                sh_val_set_cstr(f, "unread", sh_val_new_int(unread))) {
                sh_val_free(f);
                rc = sh_error_set(err, SH_ENOMEM, "out of memory");
            } else if (sh_val_push(arr, f)) {
                rc = sh_error_set(err, SH_ENOMEM, "out of memory");
            }
        }
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
