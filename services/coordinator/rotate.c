/* rotate.c - re-sealing every account's password under a new key: run as
 * `coordinator rotate-keys` with ENCRYPTION_KEY set to the new key and
 * ENCRYPTION_KEY_PREVIOUS to the old one. Each password is opened, sealed
 * again and written only if nobody changed it meanwhile; running it twice
 * is harmless. */
#include <string.h>

#include "ops.h"
#include "scripts.h"
#include "shared/buf.h"
#include "shared/log.h"

static int rot_one(sh_store *store, const coord_env *env, const char *id, sh_buf *plain,
                   sh_buf *blob, long long *resealed, long long *current, sh_error *err)
{
    char key[COORD_KEY_MAX];
    if (coord_key_account_secret(key, sizeof key, id) < 0)
        return SH_OK;
    sh_cmd *c = sh_cmd_new("GET");
    sh_cmd_str(c, key);
    sh_reply *r = NULL;
    int rc = sh_store_run(store, c, &r, err);
    sh_cmd_free(c);
    if (rc)
        return rc;
    size_t len;
    const char *old = sh_reply_string(r, &len);
    if (!old || sh_reply_kind(r) != SH_REPLY_STRING) {
        sh_reply_free(r);
        return SH_OK; /* deleted meanwhile */
    }
    if (sh_seal_key_id(old, len) == env->key->id) {
        (*current)++;
        sh_reply_free(r);
        return SH_OK;
    }
    const sh_key *keys[] = {env->key, env->key_prev};
    sh_buf_reset(plain);
    sh_buf_reset(blob);
    rc = sh_open(keys, 2, old, len, id, plain, err);
    if (rc == SH_OK)
        rc = sh_seal(env->key, plain->data, plain->len, id, blob);
    sh_wipe(plain->data, plain->len);
    if (rc) {
        sh_reply_free(r);
        return sh_error_set(err, rc, "account %s: %s", id, err->msg);
    }
    c = sh_cmd_new_eval(&coord_script_reseal, 1);
    sh_cmd_str(c, key);
    sh_cmd_arg(c, old, len);
    sh_cmd_arg(c, blob->data, blob->len);
    sh_reply_free(r);
    r = NULL;
    rc = sh_store_run(store, c, &r, err);
    sh_cmd_free(c);
    if (rc == SH_OK && sh_reply_integer(r) == 1)
        (*resealed)++;
    sh_reply_free(r);
    return rc;
}

int coord_rotate(sh_store *store, const coord_env *env, long long *resealed, long long *current,
                 sh_error *err)
{
    *resealed = *current = 0;
    if (!env->key)
        return sh_error_set(err, SH_EINVAL, "ENCRYPTION_KEY (the new key) is not set");
    coord_sched_keys k;
    coord_sched_keys_init(&k);
    sh_cmd *c = sh_cmd_new("ZRANGE");
    sh_cmd_str(c, k.ids);
    sh_cmd_str(c, "0");
    sh_cmd_str(c, "-1");
    sh_reply *ids = NULL;
    int rc = sh_store_run(store, c, &ids, err);
    sh_cmd_free(c);
    if (rc)
        return rc;
    sh_buf plain, blob;
    sh_buf_init(&plain);
    sh_buf_init(&blob);
    for (size_t i = 0; rc == SH_OK && i < sh_reply_count(ids); i++) {
        size_t len;
        const char *s = sh_reply_string(sh_reply_elem(ids, i), &len);
        char id[SH_ID_MAX + 1];
        if (!s || len > SH_ID_MAX)
            continue;
        memcpy(id, s, len);
        id[len] = '\0';
        rc = rot_one(store, env, id, &plain, &blob, resealed, current, err);
    }
    sh_buf_fini(&plain);
    sh_buf_fini(&blob);
    sh_reply_free(ids);
    return rc;
}
