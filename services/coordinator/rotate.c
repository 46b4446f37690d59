/* rotate.c - re-sealing every account's secret (its password, or its
 * OAuth2 secrets: one sealed blob either way) under a new key: run as
 * `coordinator rotate-keys` with ENCRYPTION_KEY set to the new key and
 * ENCRYPTION_KEY_PREVIOUS to the old one. Every blob not in the newest
 * format under the new key is opened, sealed again, checked to open with
 * the new key alone, and written only if nobody changed it meanwhile; what
 * was written is read back and checked again. Running it twice is
 * harmless. */
#include <stdio.h>
#include <string.h>

#include "ops.h"
#include "scripts.h"
#include "shared/buf.h"
#include "shared/log.h"

#define ROT_ATTEMPTS 3

typedef struct rot_ctx {
    sh_store *store;
    const coord_env *env;
    sh_buf plain, check, blob;
    coord_rotate_counts *n;
    char first_failure[256];
} rot_ctx;

/* rot_get reads key into *r; *blob is NULL when it is gone. */
static int rot_get(rot_ctx *x, const char *key, sh_reply **r, const char **blob, size_t *len,
                   sh_error *err)
{
    sh_cmd *c = sh_cmd_new("GET");
    sh_cmd_str(c, key);
    *r = NULL;
    int rc = sh_store_call(x->store, c, r, err);
    if (rc)
        return rc;
    *blob = sh_reply_kind(*r) == SH_REPLY_STRING ? sh_reply_string(*r, len) : NULL;
    return SH_OK;
}

/* rot_opens_with_new reports whether blob opens with the new key alone,
 * and (want non-NULL) gives want's bytes back. */
static bool rot_opens_with_new(rot_ctx *x, const char *blob, size_t len, const char *id,
                               const sh_buf *want, sh_error *err)
{
    const sh_key *only[] = {x->env->key};
    sh_buf_reset(&x->check);
    bool ok =
        sh_open(only, 1, blob, len, id, &x->check, err) == SH_OK &&
        (!want || (x->check.len == want->len && memcmp(x->check.data, want->data, want->len) == 0));
    sh_wipe(x->check.data, x->check.len);
    if (!ok && err->code == SH_OK)
        sh_error_set(err, SH_EINTERNAL, "re-sealed secret opens to other bytes");
    return ok;
}

static void rot_failed(rot_ctx *x, const char *id, const char *why)
{
    x->n->failed++;
    sh_log_error("rotate_failed", "account %s: %s", id, why);
    if (!x->first_failure[0])
        snprintf(x->first_failure, sizeof x->first_failure, "account %.64s: %.160s", id, why);
}

/* rot_reseal seals plain (the password of id) under the new key and writes
 * it in place of old unless old changed. *written: 1 done, 0 changed. */
static int rot_reseal(rot_ctx *x, const char *key, const char *id, const char *old, size_t len,
                      int *written, sh_error *err)
{
    *written = 0;
    sh_buf_reset(&x->blob);
    int rc = sh_seal(x->env->key, x->plain.data, x->plain.len, id, &x->blob);
    if (rc)
        return sh_error_set(err, rc, "out of memory");
    if (!rot_opens_with_new(x, x->blob.data, x->blob.len, id, &x->plain, err))
        return SH_EINTERNAL;
    sh_cmd *c = sh_cmd_new_eval(&coord_script_reseal, 1);
    sh_cmd_str(c, key);
    sh_cmd_arg(c, old, len);
    sh_cmd_arg(c, x->blob.data, x->blob.len);
    sh_reply *r = NULL;
    rc = sh_store_call(x->store, c, &r, err);
    if (rc == SH_OK)
        *written = sh_reply_integer(r) == 1;
    sh_reply_free(r);
    return rc;
}

/* rot_one brings the secret of account id to the new key. Only Redis
 * errors are returned; a blob that cannot be brought over is counted. */
static int rot_one(rot_ctx *x, const char *id, sh_error *err)
{
    char key[COORD_KEY_MAX];
    if (coord_key_account_secret(key, sizeof key, id) < 0)
        return SH_OK;
    const sh_key *keys[] = {x->env->key, x->env->key_prev};
    bool counted = false;
    for (int attempt = 0; attempt < ROT_ATTEMPTS; attempt++) {
        sh_reply *r;
        const char *old;
        size_t len = 0;
        int rc = rot_get(x, key, &r, &old, &len, err);
        if (rc)
            return rc;
        if (!old) {
            sh_reply_free(r);
            return SH_OK; /* deleted meanwhile */
        }
        if (!counted)
            x->n->scanned++;
        counted = true;
        sh_error e = {0};
        if (sh_seal_is_current(x->env->key, old, len)) {
            if (rot_opens_with_new(x, old, len, id, NULL, &e))
                x->n->current++;
            else
                rot_failed(x, id, e.msg);
            sh_reply_free(r);
            return SH_OK;
        }
        sh_buf_reset(&x->plain);
        rc = sh_open(keys, 2, old, len, id, &x->plain, &e);
        int written = 0;
        if (rc == SH_OK)
            rc = rot_reseal(x, key, id, old, len, &written, &e);
        sh_wipe(x->plain.data, x->plain.len);
        sh_reply_free(r);
        /* Redis down, or a reseal's reply lost (running it again is
         * harmless): the pass stops here and the next one goes on. */
        if (rc == SH_EUNAVAIL || rc == SH_ETIMEDOUT || rc == SH_EUNKNOWN) {
            *err = e;
            return rc;
        }
        if (rc) {
            rot_failed(x, id, e.msg);
            return SH_OK;
        }
        if (!written)
            continue; /* changed meanwhile: look again */
        /* Read back what Redis holds now. */
        if ((rc = rot_get(x, key, &r, &old, &len, err)))
            return rc;
        if (old && !rot_opens_with_new(x, old, len, id, NULL, &e))
            rot_failed(x, id, e.msg);
        else
            x->n->resealed++;
        sh_reply_free(r);
        return SH_OK;
    }
    rot_failed(x, id, "changed during every attempt to re-seal it");
    return SH_OK;
}

int coord_rotate(sh_store *store, const coord_env *env, coord_rotate_counts *n, sh_error *err)
{
    memset(n, 0, sizeof *n);
    if (!env->key)
        return sh_error_set(err, SH_EINVAL, "ENCRYPTION_KEY (the new key) is not set");
    coord_sched_keys k;
    coord_sched_keys_init(&k);
    sh_cmd *c = sh_cmd_new("ZRANGE");
    sh_cmd_str(c, k.ids);
    sh_cmd_str(c, "0");
    sh_cmd_str(c, "-1");
    sh_reply *ids = NULL;
    int rc = sh_store_call(store, c, &ids, err);
    if (rc)
        return rc;
    rot_ctx x = {.store = store, .env = env, .n = n};
    /* plain and check hold opened passwords and tokens. */
    sh_buf_init_secret(&x.plain);
    sh_buf_init_secret(&x.check);
    sh_buf_init(&x.blob);
    for (size_t i = 0; rc == SH_OK && i < sh_reply_count(ids); i++) {
        size_t len;
        const char *s = sh_reply_string(sh_reply_elem(ids, i), &len);
        char id[SH_ID_MAX + 1];
        if (!s || len > SH_ID_MAX)
            continue;
        memcpy(id, s, len);
        id[len] = '\0';
        rc = rot_one(&x, id, err);
    }
    sh_buf_fini(&x.plain);
    sh_buf_fini(&x.check);
    sh_buf_fini(&x.blob);
    sh_reply_free(ids);
    if (rc == SH_OK && n->failed)
        rc = sh_error_set(err, SH_EINVAL,
                          "%lld secrets were not re-sealed under the new key (first: %s); keep "
                          "ENCRYPTION_KEY_PREVIOUS until they are",
                          n->failed, x.first_failure);
    return rc;
}
