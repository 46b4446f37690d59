/* accounts.c - email accounts: validation, sealed passwords and the
 * operations (the public view is account_view.c's). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ops.h"
#include "scripts.h"
#include "shared/buf.h"
#include "shared/keys.h"
#include "shared/log.h"
#include "shared/msg.h"
#include "shared/secret.h"
#include "shared/util.h"

#define ACC_EMAIL_MAX       254
#define ACC_HOST_MAX        253
#define ACC_USER_MAX        256
#define ACC_PASSWORD_MAX    1024
#define ACC_FOLDERS_MAX     32
#define ACC_FOLDER_NAME_MAX 200

static int acc_key_required(const sh_worker *w, sh_error *err)
{
    if (!coord_env_of(w)->key)
        return sh_error_set(err, SH_EUNAVAIL,
                            "ENCRYPTION_KEY is not set: email accounts are disabled (generate "
                            "one with `openssl rand -hex 32`)");
    return SH_OK;
}

static bool acc_email_ok(const char *s, size_t len)
{
    const char *at = memchr(s, '@', len);
    if (!at || len > ACC_EMAIL_MAX || at == s || (size_t)(at - s) > 64 || at == s + len - 1)
        return false;
    if (memchr(at + 1, '@', len - (size_t)(at - s) - 1))
        return false;
    for (const char *p = s; p < at; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '"' || *p == ',')
            return false;
    for (const char *p = at + 1; p < s + len; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-'))
            return false;
    }
    return at[1] != '.' && s[len - 1] != '.';
}

static bool acc_host_ok(const char *s, size_t len)
{
    if (len == 0 || len > ACC_HOST_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
            return false;
    }
    return true;
}

static bool acc_utf8_text(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* acc_check_folders checks the optional list of folder names field: min..
 * ACC_FOLDERS_MAX names of 1..ACC_FOLDER_NAME_MAX bytes. */
static int acc_check_folders(const sh_val *fields, const char *field, size_t min, sh_error *err)
{
    const sh_val *v = sh_val_get(fields, field);
    if (!v)
        return SH_OK;
    if (sh_val_type_of(v) != SH_VAL_ARRAY || sh_val_len(v) < min || sh_val_len(v) > ACC_FOLDERS_MAX)
        return sh_error_set(err, SH_EINVAL, "field \"%s\" must be an array of %zu..%d folder names",
                            field, min, ACC_FOLDERS_MAX);
    for (size_t i = 0; i < sh_val_len(v); i++) {
        size_t len;
        const char *s = sh_val_str(sh_val_at(v, i), &len);
        if (sh_val_type_of(sh_val_at(v, i)) != SH_VAL_STR || len == 0 ||
            len > ACC_FOLDER_NAME_MAX || !acc_utf8_text(s, len))
            return sh_error_set(err, SH_EINVAL,
                                "field \"%s\": entry %zu must be a name of 1..%d characters", field,
                                i, ACC_FOLDER_NAME_MAX);
    }
    return SH_OK;
}

/* acc_check validates fields for a create (all required fields present) or
 * an update (any subset); unknown fields are refused. */
static int acc_check(const sh_val *fields, bool create, sh_error *err)
{
    static const char *const known[] = {"emailAddress", "imapHost", "imapPort", "security",
                                        "username",     "password", "folders",  "tlsVerify",
                                        "watchFolders", "auth",     NULL};
    if (sh_val_type_of(fields) != SH_VAL_MAP)
        return sh_error_set(err, SH_EINVAL, "an account must be an object, got %s",
                            sh_val_type_name(sh_val_type_of(fields)));
    for (size_t i = 0; i < sh_val_len(fields); i++) {
        const char *k = sh_val_key_at(fields, i, NULL);
        bool ok = false;
        for (size_t j = 0; known[j] && !ok; j++)
            ok = strcmp(k, known[j]) == 0;
        if (!ok)
            return sh_error_set(err, SH_EINVAL,
                                "unknown field \"%.40s\" (allowed: emailAddress, imapHost, "
                                "imapPort, security, username, password, auth, folders, "
                                "tlsVerify, watchFolders)",
                                k);
    }
    static const char *const required[] = {"emailAddress", "imapHost", "imapPort",
                                           "security",     "username", NULL};
    for (size_t j = 0; create && required[j]; j++)
        if (!sh_val_get(fields, required[j]))
            return sh_error_set(err, SH_EINVAL, "field \"%s\" is required", required[j]);
    size_t len;
    const sh_val *v;
    int rc = coord_auth_check(fields, create, err);
    if (rc)
        return rc;
    if ((v = sh_val_get(fields, "emailAddress"))) {
        const char *s = sh_val_str(v, &len);
        if (sh_val_type_of(v) != SH_VAL_STR || !acc_email_ok(s, len))
            return sh_error_set(err, SH_EINVAL,
                                "field \"emailAddress\" must be an address like "
                                "name@example.com (at most %d characters)",
                                ACC_EMAIL_MAX);
    }
    if ((v = sh_val_get(fields, "imapHost"))) {
        const char *s = sh_val_str(v, &len);
        if (sh_val_type_of(v) != SH_VAL_STR || !acc_host_ok(s, len))
            return sh_error_set(err, SH_EINVAL,
                                "field \"imapHost\" must be a host name or address (1..%d "
                                "characters)",
                                ACC_HOST_MAX);
    }
    if ((v = sh_val_get(fields, "imapPort")) &&
        (sh_val_type_of(v) != SH_VAL_INT || sh_val_int(v) < 1 || sh_val_int(v) > 65535))
        return sh_error_set(err, SH_EINVAL, "field \"imapPort\" must be an integer 1..65535");
    if ((v = sh_val_get(fields, "security"))) {
        const char *s = sh_val_str(v, NULL);
        if (sh_val_type_of(v) != SH_VAL_STR ||
            (strcmp(s, "tls") && strcmp(s, "starttls") && strcmp(s, "none")))
            return sh_error_set(err, SH_EINVAL,
                                "field \"security\" must be \"tls\", \"starttls\" or \"none\"");
    }
    if ((v = sh_val_get(fields, "username"))) {
        const char *s = sh_val_str(v, &len);
        if (sh_val_type_of(v) != SH_VAL_STR || len == 0 || len > ACC_USER_MAX ||
            !acc_utf8_text(s, len))
            return sh_error_set(err, SH_EINVAL,
                                "field \"username\" must be 1..%d characters without control "
                                "characters",
                                ACC_USER_MAX);
    }
    if ((v = sh_val_get(fields, "password"))) {
        sh_val_str(v, &len);
        if (sh_val_type_of(v) != SH_VAL_STR || len == 0 || len > ACC_PASSWORD_MAX)
            return sh_error_set(err, SH_EINVAL,
                                "field \"password\" must be a string of 1..%d "
                                "bytes",
                                ACC_PASSWORD_MAX);
    }
    if ((rc = acc_check_folders(fields, "folders", 1, err)) ||
        (rc = acc_check_folders(fields, "watchFolders", 0, err)))
        return rc;
    if ((v = sh_val_get(fields, "tlsVerify")) && sh_val_type_of(v) != SH_VAL_BOOL)
        return sh_error_set(err, SH_EINVAL, "field \"tlsVerify\" must be true or false");
    return SH_OK;
}

/* acc_seal seals the password of fields (if any) for account id into blob;
 * *present tells whether there was one. */
static int acc_seal(sh_worker *w, const char *id, const sh_val *fields, sh_buf *blob, bool *present,
                    sh_error *err)
{
    size_t len;
    const char *pw = sh_val_get_str(fields, "password", &len);
    const sh_val *auth = sh_val_get(fields, "auth");
    *present = pw != NULL || auth != NULL;
    if (auth)
        return coord_auth_seal(coord_env_of(w)->key, id, auth, blob, err);
    if (!pw)
        return SH_OK;
    int rc = sh_seal(coord_env_of(w)->key, pw, len, id, blob);
    return rc ? sh_error_set(err, rc, "cannot seal the password") : SH_OK;
}

/* acc_add_fields appends the hash field/value pairs of fields (the
 * password, sealed apart, excepted). */
static void acc_add_fields(sh_cmd *c, const sh_val *fields)
{
    for (size_t i = 0; i < sh_val_len(fields); i++) {
        size_t klen, len;
        const char *k = sh_val_key_at(fields, i, &klen);
        const sh_val *v = sh_val_value_at(fields, i);
        if (strcmp(k, "password") == 0 || strcmp(k, "auth") == 0)
            continue;
        sh_cmd_arg(c, k, klen);
        if (strcmp(k, "folders") == 0 || strcmp(k, "watchFolders") == 0) {
            /* INBOX is a name in any case (RFC 3501 5.1): stored as
             * "INBOX", so that every view of the folder agrees. */
            sh_val *names = sh_val_new_array();
            for (size_t j = 0; names && j < sh_val_len(v); j++) {
                size_t nl;
                const char *name = sh_val_str(sh_val_at(v, j), &nl);
                bool inbox = nl == 5 && strncasecmp(name, "INBOX", 5) == 0;
                if (sh_val_push(names, inbox ? sh_val_new_cstr("INBOX") : sh_val_new_str(name, nl)))
                    break;
            }
            sh_buf b;
            sh_buf_init(&b);
            sh_msg_pack(names ? names : v, &b);
            sh_cmd_arg(c, b.data, b.len);
            sh_buf_fini(&b);
            sh_val_free(names);
        } else if (strcmp(k, "tlsVerify") == 0) {
            sh_cmd_str(c, sh_val_bool(v) ? "1" : "0");
        } else if (sh_val_type_of(v) == SH_VAL_INT) {
            sh_cmd_int(c, sh_val_int(v));
        } else {
            const char *str = sh_val_str(v, &len);
            sh_cmd_arg(c, str, len);
        }
    }
    coord_auth_add_fields(c, fields);
}

/* ---- operations -------------------------------------------------------- */

/* acc_write_cmd seals the password of fields (if any) and starts the call
 * of script, the account's create or update: KEYS are the account's hash,
 * then keys, then its secret; ARGV begins with id, the time, the sync
 * interval and the sealed password ("" for none). The caller adds the
 * fields. */
static int acc_write_cmd(sh_worker *w, sh_script *script, const char *id, const char *const *keys,
                         int nkeys, const sh_val *fields, sh_cmd **out, sh_error *err)
{
    char key[COORD_KEY_MAX], skey[COORD_KEY_MAX];
    if (coord_key_account(key, sizeof key, id) < 0 ||
        coord_key_account_secret(skey, sizeof skey, id) < 0)
        return sh_error_set(err, SH_EINVAL, "invalid account id");
    sh_buf blob;
    sh_buf_init(&blob);
    bool has_pw;
    int rc = acc_seal(w, id, fields, &blob, &has_pw, err);
    if (rc) {
        sh_buf_fini(&blob);
        return rc;
    }
    sh_cmd *c = sh_cmd_new_eval(script, nkeys + 2);
    sh_cmd_str(c, key);
    for (int i = 0; i < nkeys; i++)
        sh_cmd_str(c, keys[i]);
    sh_cmd_str(c, skey);
    sh_cmd_str(c, id);
    sh_cmd_int(c, sh_now_ms());
    sh_cmd_int(c, coord_env_of(w)->interval_min);
    sh_cmd_arg(c, blob.data, blob.len);
    sh_buf_fini(&blob);
    *out = c;
    return SH_OK;
}

static int acc_view_reply(sh_reply *r, sh_val **out, sh_error *err)
{
    int rc = SH_OK;
    if (sh_reply_kind(r) != SH_REPLY_ARRAY || sh_reply_count(r) == 0)
        rc = sh_error_set(err, SH_ENOTFOUND, "Account not found");
    else if (!(*out = coord_account_view(r, NULL)))
        rc = sh_error_set(err, SH_ENOMEM, "out of memory");
    sh_reply_free(r);
    return rc;
}

/* acc_fingerprint writes the hex MAC (under the encryption key, as the
 * fields hold the password) of the fields of a create: what a request id is
 * recorded with, so that a repeat with other fields is told apart. */
static int acc_fingerprint(sh_worker *w, const sh_val *fields, char hex[2 * SH_MAC_BYTES + 1],
                           sh_error *err)
{
    sh_buf b;
    sh_buf_init_secret(&b);
    if (sh_msg_pack(fields, &b) != SH_OK) {
        sh_buf_fini(&b);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    unsigned char mac[SH_MAC_BYTES];
    sh_mac(coord_env_of(w)->key, b.data, b.len, mac);
    sh_buf_fini(&b);
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < SH_MAC_BYTES; i++) {
        hex[2 * i] = digits[mac[i] >> 4];
        hex[2 * i + 1] = digits[mac[i] & 15];
    }
    hex[2 * SH_MAC_BYTES] = '\0';
    return SH_OK;
}

int coord_account_create(sh_worker *w, const sh_val *fields, const char *request_id, sh_val **out,
                         sh_error *err)
{
    *out = NULL;
    int rc = acc_key_required(w, err);
    if (!rc)
        rc = acc_check(fields, true, err);
    if (!rc)
        rc = coord_account_policy(coord_env_of(w), fields, err);
    if (rc)
        return rc;
    char id[25];
    id[0] = 'a';
    sh_random_hex(id + 1, 11);
    /* Without the client's request id the account's own id serves: the
     * store may then resend the create, which finds its own record. */
    char reqkey[COORD_KEY_MAX], fp[2 * SH_MAC_BYTES + 1];
    if (coord_key_account_req(reqkey, sizeof reqkey, request_id ? request_id : id) < 0)
        return sh_error_set(err, SH_EINVAL,
                            "invalid request id: must match [A-Za-z0-9._:-]{1,128}");
    if ((rc = acc_fingerprint(w, fields, fp, err)))
        return rc;
    coord_sched_keys k;
    coord_sched_keys_init(&k);
    const char *const keys[] = {k.ids, k.due, k.slots, reqkey};
    sh_cmd *c;
    if ((rc = acc_write_cmd(w, &coord_script_account_create, id, keys, 4, fields, &c, err)))
        return rc;
    sh_cmd_str(c, fp);
    sh_cmd_int(c, request_id ? SH_REQUEST_TTL : SH_REQUEST_TTL_INTERNAL);
    sh_cmd_str(c, SH_KEY_ACCOUNT);
    sh_cmd_str(c, "id");
    sh_cmd_str(c, id);
    if (!sh_val_get(fields, "folders")) {
        sh_cmd_str(c, "folders");
        sh_val *inbox = sh_val_new_array();
        sh_val_push(inbox, sh_val_new_cstr("INBOX"));
        sh_buf b;
        sh_buf_init(&b);
        sh_msg_pack(inbox, &b);
        sh_cmd_arg(c, b.data, b.len);
        sh_buf_fini(&b);
        sh_val_free(inbox);
    }
    acc_add_fields(c, fields);
    sh_reply *r;
    if ((rc = sh_store_call(w->store, c, &r, err)))
        return rc;
    rc = acc_view_reply(r, out, err);
    /* A repeated request answers the account it created, already announced. */
    const char *got = rc == SH_OK ? sh_val_get_str(*out, "id", NULL) : NULL;
    if (got && strcmp(got, id) == 0) {
        sh_log_info("account_created", "id=%s", id);
        coord_account_event(w, SH_EVENT_CREATED, id, *out);
    }
    return rc;
}

int coord_account_get(sh_worker *w, const char *id, sh_val **out, sh_error *err)
{
    *out = NULL;
    char key[COORD_KEY_MAX];
    int rc = coord_account_keys(id, key, NULL, err);
    if (rc)
        return rc;
    sh_cmd *c = sh_cmd_new("HGETALL");
    sh_cmd_str(c, key);
    sh_reply *r;
    rc = sh_store_call(w->store, c, &r, err);
    return rc ? rc : acc_view_reply(r, out, err);
}

int coord_account_update(sh_worker *w, const char *id, const sh_val *fields, sh_val **out,
                         sh_error *err)
{
    *out = NULL;
    char key[COORD_KEY_MAX];
    coord_sched_keys k;
    int rc = coord_account_keys(id, key, &k, err);
    if (!rc)
        rc = acc_key_required(w, err);
    if (!rc)
        rc = acc_check(fields, false, err);
    if (!rc)
        rc = coord_account_policy(coord_env_of(w), fields, err);
    if (rc)
        return rc;
    const char *const keys[] = {k.due, k.errors, k.watchers};
    sh_cmd *c;
    if ((rc = acc_write_cmd(w, &coord_script_account_update, id, keys, 3, fields, &c, err)))
        return rc;
    acc_add_fields(c, fields);
    sh_reply *r;
    if ((rc = sh_store_call(w->store, c, &r, err)))
        return rc;
    rc = acc_view_reply(r, out, err);
    if (rc == SH_OK)
        coord_account_event(w, SH_EVENT_UPDATED, id, *out);
    return rc;
}

int coord_account_delete(sh_worker *w, const char *id, bool *deleted, sh_error *err)
{
    *deleted = false;
    char key[COORD_KEY_MAX];
    coord_sched_keys k;
    int rc = coord_account_keys(id, key, &k, err);
    if (rc)
        return rc;
    char skey[COORD_KEY_MAX];
    coord_key_account_secret(skey, sizeof skey, id);
    const char *const keys[] = {key,     k.ids,    k.due, k.queue,    k.leases,
                                k.slots, k.errors, skey,  k.watchers, NULL};
    sh_cmd *c = sh_cmd_new_eval_keys(&coord_script_account_delete, keys);
    sh_cmd_str(c, id);
    sh_reply *r;
    rc = sh_store_call(w->store, c, &r, err);
    if (rc)
        return rc;
    *deleted = sh_reply_integer(r) == 1;
    sh_reply_free(r);
    if (!*deleted)
        return sh_error_set(err, SH_ENOTFOUND, "Account not found");
    /* The sync worker owns the synced mail: it drops it on this event. */
    coord_account_event(w, SH_EVENT_DELETED, id, NULL);
    sh_log_info("account_deleted", "id=%s", id);
    return SH_OK;
}
