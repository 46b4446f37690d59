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

sh_val *coord_account_view(const sh_reply *hash, const sh_reply *secret)
{
    sh_val *m = sh_val_new_map();
    if (!m)
        return NULL;
    size_t len;
    const char *f = acc_field(hash, "folders", &len);
    sh_val *folders = NULL;
    if (!f || sh_msg_unpack(f, len, NULL, &folders, NULL) != SH_OK) {
        folders = sh_val_new_array();
        sh_val_push(folders, sh_val_new_cstr("INBOX"));
    }
    const char *tls = acc_field(hash, "tlsVerify", NULL);
    int rc = sh_val_set_cstr(m, "id", acc_str(hash, "id", false));
    rc |= sh_val_set_cstr(m, "emailAddress", acc_str(hash, "emailAddress", false));
    rc |= sh_val_set_cstr(m, "imapHost", acc_str(hash, "imapHost", false));
    rc |= sh_val_set_cstr(m, "imapPort",
                          sh_val_new_int(sh_reply_ll(acc_value(hash, "imapPort"), NULL)));
    rc |= sh_val_set_cstr(m, "security", acc_str(hash, "security", false));
    rc |= sh_val_set_cstr(m, "username", acc_str(hash, "username", false));
    rc |= sh_val_set_cstr(m, "folders", folders);
    rc |= sh_val_set_cstr(m, "tlsVerify", sh_val_new_bool(!tls || tls[0] != '0'));
    rc |= sh_val_set_cstr(m, "syncStatus", acc_str(hash, "status", false));
    rc |= sh_val_set_cstr(m, "errorMessage", acc_str(hash, "error", true));
    rc |= sh_val_set_cstr(m, "lastSyncedAt", acc_time(hash, "lastSyncedAt"));
    rc |= sh_val_set_cstr(m, "nextSyncAt", acc_time(hash, "nextSyncAt"));
    rc |= sh_val_set_cstr(m, "consecutiveFailures",
                          sh_val_new_int(sh_reply_ll(acc_value(hash, "failures"), NULL)));
    rc |= sh_val_set_cstr(m, "createdAt", acc_time(hash, "createdAt"));
    rc |= sh_val_set_cstr(m, "updatedAt", acc_time(hash, "updatedAt"));
    if (secret) {
        const char *pw = sh_reply_string(secret, &len);
        rc |= sh_val_set_cstr(m, "passwordSealed", sh_val_new_bin(pw ? pw : "", pw ? len : 0));
        rc |= sh_val_set_cstr(m, "progressId", acc_str(hash, "progressId", true));
    }
    if (rc) {
        sh_val_free(m);
        return NULL;
    }
    return m;
}
