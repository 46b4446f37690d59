/* account_view.c - an account's public view, made from its stored hash:
 * never a secret, except the sealed password and progress id that the
 * sync lease asks for. Below accounts.c, account_events.c and schedule.c,
 * which all show accounts. */
#include <stdbool.h>
#include <string.h>

#include "ops.h"
#include "shared/msg.h"
#include "shared/util.h"

/* acc_value finds field name in an HGETALL reply: its value, or NULL. */
static const sh_reply *acc_value(const sh_reply *hash, const char *name)
{
    for (size_t i = 0; i + 1 < sh_reply_count(hash); i += 2) {
        size_t klen;
        const char *k = sh_reply_string(sh_reply_elem(hash, i), &klen);
        if (k && klen == strlen(name) && memcmp(k, name, klen) == 0)
            return sh_reply_elem(hash, i + 1);
    }
    return NULL;
}

static const char *acc_field(const sh_reply *hash, const char *name, size_t *len)
{
    return sh_reply_string(acc_value(hash, name), len);
}

static sh_val *acc_str(const sh_reply *hash, const char *name, bool null_if_empty)
{
    size_t len;
    const char *s = acc_field(hash, name, &len);
    if (!s || (null_if_empty && len == 0))
        return null_if_empty ? sh_val_new_nil() : sh_val_new_str("", 0);
    return sh_val_new_str(s, len);
}

static sh_val *acc_time(const sh_reply *hash, const char *name)
{
    bool present;
    long long ms = sh_reply_ll(acc_value(hash, name), &present);
    if (!present)
        return sh_val_new_nil();
    char iso[SH_ISO_LEN];
    sh_iso8601(ms, iso);
    return sh_val_new_cstr(iso);
}

/* acc_folders reads the msgpack list of folder names field; ["INBOX"]
 * when the hash has none (accounts made before the field existed). */
static sh_val *acc_folders(const sh_reply *hash, const char *field)
{
    size_t len;
    const char *f = acc_field(hash, field, &len);
    sh_val *folders = NULL;
    if (!f || sh_msg_unpack(f, len, NULL, &folders, NULL) != SH_OK ||
        sh_val_type_of(folders) != SH_VAL_ARRAY) {
        sh_val_free(folders);
        folders = sh_val_new_array();
        sh_val_push(folders, sh_val_new_cstr("INBOX"));
    }
    return folders;
}

/* acc_watch is the account's IDLE watch: {state, error?, since}. The state
 * a sync worker last reported holds while its watch lease lives; without a
 * live lease (no worker has taken the watch yet, or its worker went away)
 * or with no folder to watch, the state is "off". */
static sh_val *acc_watch(const sh_reply *hash, const sh_val *watch_folders)
{
    sh_val *w = sh_val_new_map();
    if (!w)
        return NULL;
    bool live;
    long long exp = sh_reply_ll(acc_value(hash, "watchExpires"), &live);
    size_t len;
    const char *st = acc_field(hash, "watchState", &len);
    const char *e = acc_field(hash, "watchError", NULL);
    bool on = live && exp > sh_now_ms() && sh_val_len(watch_folders) > 0 && st && len > 0;
    int rc = sh_val_set_cstr(w, "state", on ? sh_val_new_str(st, len) : sh_val_new_cstr("off"));
    if (on && e && e[0])
        rc |= sh_val_set_cstr(w, "error", acc_str(hash, "watchError", false));
    sh_val *since = acc_time(hash, "watchSince");
    if (sh_val_type_of(since) == SH_VAL_NIL) {
        sh_val_free(since);
        since = acc_time(hash, "createdAt");
    }
    rc |= sh_val_set_cstr(w, "since", since);
    if (rc) {
        sh_val_free(w);
        return NULL;
    }
    return w;
}

int coord_auth_view(sh_val *m, const sh_reply *hash)
{
    size_t len;
    const char *type = acc_field(hash, "authType", &len);
    if (!type || len != 6 || memcmp(type, "oauth2", 6) != 0)
        return SH_OK;
    sh_val *a = sh_val_new_map();
    const char *exp = acc_field(hash, "authExpiresAt", &len);
    int rc = a ? SH_OK : SH_ENOMEM;
    rc |= sh_val_set_cstr(a, "type", sh_val_new_cstr("oauth2"));
    rc |= sh_val_set_cstr(a, "provider", acc_str(hash, "authProvider", true));
    rc |= sh_val_set_cstr(a, "expiresAt",
                          exp && len && strcmp(exp, "0") != 0 ? acc_time(hash, "authExpiresAt")
                                                              : sh_val_new_nil());
    if (rc) {
        sh_val_free(a);
        return SH_ENOMEM;
    }
    return sh_val_set_cstr(m, "auth", a);
}

sh_val *coord_account_view(const sh_reply *hash, const sh_reply *secret)
{
    sh_val *m = sh_val_new_map();
    if (!m)
        return NULL;
    size_t len;
    sh_val *folders = acc_folders(hash, "folders");
    sh_val *watch_folders = acc_folders(hash, "watchFolders");
    sh_val *watch = acc_watch(hash, watch_folders);
    const char *tls = acc_field(hash, "tlsVerify", NULL);
    int rc = sh_val_set_cstr(m, "id", acc_str(hash, "id", false));
    rc |= sh_val_set_cstr(m, "emailAddress", acc_str(hash, "emailAddress", false));
    rc |= sh_val_set_cstr(m, "imapHost", acc_str(hash, "imapHost", false));
    rc |= sh_val_set_cstr(m, "imapPort",
                          sh_val_new_int(sh_reply_ll(acc_value(hash, "imapPort"), NULL)));
    rc |= sh_val_set_cstr(m, "security", acc_str(hash, "security", false));
    rc |= sh_val_set_cstr(m, "username", acc_str(hash, "username", false));
    rc |= sh_val_set_cstr(m, "folders", folders);
    rc |= sh_val_set_cstr(m, "watchFolders", watch_folders);
    rc |= sh_val_set_cstr(m, "watch", watch);
    rc |= sh_val_set_cstr(m, "tlsVerify", sh_val_new_bool(!tls || tls[0] != '0'));
    rc |= sh_val_set_cstr(m, "syncStatus", acc_str(hash, "status", false));
    rc |= sh_val_set_cstr(m, "errorMessage", acc_str(hash, "error", true));
    rc |= sh_val_set_cstr(m, "lastSyncedAt", acc_time(hash, "lastSyncedAt"));
    rc |= sh_val_set_cstr(m, "nextSyncAt", acc_time(hash, "nextSyncAt"));
    rc |= sh_val_set_cstr(m, "consecutiveFailures",
                          sh_val_new_int(sh_reply_ll(acc_value(hash, "failures"), NULL)));
    rc |= sh_val_set_cstr(m, "createdAt", acc_time(hash, "createdAt"));
    rc |= sh_val_set_cstr(m, "updatedAt", acc_time(hash, "updatedAt"));
    rc |= coord_auth_view(m, hash);
    if (secret) {
        const char *pw = sh_reply_string(secret, &len);
        rc |= sh_val_set_cstr(m, "passwordSealed", sh_val_new_bin(pw ? pw : "", pw ? len : 0));
        rc |= sh_val_set_cstr(m, "progressId", acc_str(hash, "progressId", true));
        rc |= sh_val_set_cstr(m, "authVersion", acc_str(hash, "authVersion", false));
        if (acc_field(hash, "syncFirst", NULL))
            rc |= sh_val_set_cstr(m, "syncFirst", acc_str(hash, "syncFirst", false));
    }
    if (rc) {
        sh_val_free(m);
        return NULL;
    }
    return m;
}
