/* mail_drop.c - removing the mail of accounts: every key under the hash tag
 * of an account, found by SCAN (which walks the keyspace in steps and never
 * holds Redis up) and removed by UNLINK (which frees in the background). */
#include <string.h>

#include "keys.h"
#include "mailstore.h"

/* Keys asked for by one SCAN step. */
#define DROP_SCAN_COUNT 1000

/* drop_fn decides, for one key of a SCAN step, whether it goes. */
typedef bool (*drop_fn)(const char *key, size_t len, const void *ctx);

/* drop_scan_step runs one SCAN step from cursor (updated in place) and
 * hands back its reply, whose element 1 holds the keys (caller frees). */
static int drop_scan_step(sh_store *st, const char *pattern, char cursor[32], sh_reply **out,
                          sh_error *err)
{
    *out = NULL;
    sh_cmd *c = sh_cmd_new("SCAN");
    sh_cmd_str(c, cursor);
    sh_cmd_str(c, "MATCH");
    sh_cmd_str(c, pattern);
    sh_cmd_str(c, "COUNT");
    sh_cmd_int(c, DROP_SCAN_COUNT);
    sh_reply *r = NULL;
    int rc = sh_store_call(st, c, &r, err);
    if (rc)
        return rc;
    size_t len;
    const char *cur = sh_reply_string(sh_reply_elem(r, 0), &len);
    if (sh_reply_count(r) != 2 || !cur || len >= 32) {
        sh_reply_free(r);
        return sh_error_set(err, SH_EINTERNAL, "unexpected SCAN reply");
    }
    memcpy(cursor, cur, len);
    cursor[len] = '\0';
    *out = r;
    return SH_OK;
}

/* drop_scan walks the keys matching pattern and unlinks those goes picks
 * (every one when goes is NULL), counting them in *deleted. */
static int drop_scan(sh_store *st, const char *pattern, drop_fn goes, const void *ctx,
                     long long *deleted, sh_error *err)
{
    char cursor[32] = "0";
    do {
        sh_reply *r;
        int rc = drop_scan_step(st, pattern, cursor, &r, err);
        if (rc)
            return rc;
        size_t len;
        const sh_reply *keys = sh_reply_elem(r, 1);
        sh_cmd *u = NULL;
        for (size_t i = 0; i < sh_reply_count(keys); i++) {
            const char *k = sh_reply_string(sh_reply_elem(keys, i), &len);
            if (!k || (goes && !goes(k, len, ctx)))
                continue;
            if (!u)
                u = sh_cmd_new("UNLINK");
            sh_cmd_arg(u, k, len);
        }
        sh_reply_free(r);
        if (u) {
            sh_reply *ur = NULL;
            rc = sh_store_call(st, u, &ur, err);
            if (!rc)
                *deleted += sh_reply_integer(ur);
            sh_reply_free(ur);
            if (rc)
                return rc;
        }
    } while (strcmp(cursor, "0") != 0);
    return SH_OK;
}

int sync_mail_drop_account(sh_store *st, const char *acct, long long *deleted, sh_error *err)
{
    char pattern[SYNC_KEY_MAX];
    *deleted = 0;
    if (sync_key_account_pattern(pattern, sizeof pattern, acct) < 0)
        return sh_error_set(err, SH_EINVAL, "invalid account id");
    return drop_scan(st, pattern, NULL, NULL, deleted, err);
}

/* drop_listed: the key's account is a key of the map ctx. */
static bool drop_listed(const char *key, size_t len, const void *ctx)
{
    char id[SYNC_KEY_MAX];
    return sync_key_account_of(key, len, id, sizeof id) > 0 && sh_val_get(ctx, id) != NULL;
}

int sync_mail_drop_accounts(sh_store *st, const sh_val *accts, long long *deleted, sh_error *err)
{
    char pattern[SYNC_KEY_MAX];
    *deleted = 0;
    if (sync_key_all_pattern(pattern, sizeof pattern) < 0)
        return sh_error_set(err, SH_EINTERNAL, "no key pattern");
    return sh_val_len(accts) ? drop_scan(st, pattern, drop_listed, accts, deleted, err) : SH_OK;
}

int sync_mail_accounts(sh_store *st, sh_val **accts, sh_error *err)
{
    char pattern[SYNC_KEY_MAX], cursor[32] = "0";
    *accts = NULL;
    if (sync_key_all_pattern(pattern, sizeof pattern) < 0)
        return sh_error_set(err, SH_EINTERNAL, "no key pattern");
    sh_val *set = sh_val_new_map();
    if (!set)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    do {
        sh_reply *r;
        int rc = drop_scan_step(st, pattern, cursor, &r, err);
        size_t len;
        const sh_reply *keys = sh_reply_elem(r, 1);
        for (size_t i = 0; !rc && i < sh_reply_count(keys); i++) {
            char id[SYNC_KEY_MAX];
            const char *k = sh_reply_string(sh_reply_elem(keys, i), &len);
            int n = k ? sync_key_account_of(k, len, id, sizeof id) : -1;
            if (n > 0 && !sh_val_get(set, id) &&
                sh_val_set(set, id, (size_t)n, sh_val_new_nil()) != SH_OK)
                rc = sh_error_set(err, SH_ENOMEM, "out of memory");
        }
        sh_reply_free(r);
        if (rc) {
            sh_val_free(set);
            return rc;
        }
    } while (strcmp(cursor, "0") != 0);
    *accts = set;
    return SH_OK;
}
