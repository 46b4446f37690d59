/* handlers.c - argument decoding of each RPC operation; the work is done by
 * mailstore.c. */
#include "handlers.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "eventlog.h"
#include "mailstore.h"
#include "shared/buf.h"
#include "shared/keys.h"
#include "shared/service.h"
#include "sync.h"
#include "worker.h"

#define HANDLER_LIMIT_DEFAULT  50
#define HANDLER_LIMIT_MAX      500
#define HANDLER_FOLDER_MAX     200
#define HANDLER_EVENTS_DEFAULT 100

static int handler_args(const sh_val *args, const char **acct, const char **folder, sh_error *err)
{
    if (sh_val_type_of(args) != SH_VAL_MAP)
        return sh_error_set(err, SH_EINVAL, "arguments must be a map");
    size_t len;
    const char *id = sh_val_get_str(args, "accountId", &len);
    if (!id || !sh_id_valid(id, len))
        return sh_error_set(err, SH_EINVAL,
                            "accountId is required and must match [A-Za-z0-9._:-]{1,128}");
    *acct = id;
    const sh_val *f = sh_val_get(args, "folder");
    if (!f || sh_val_type_of(f) == SH_VAL_NIL) {
        *folder = "INBOX";
        return SH_OK;
    }
    const char *name = sh_val_str(f, &len);
    if (sh_val_type_of(f) != SH_VAL_STR || len == 0 || len > HANDLER_FOLDER_MAX ||
        strlen(name) != len)
        return sh_error_set(err, SH_EINVAL, "folder must be a name of 1..200 bytes");
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return sh_error_set(err, SH_EINVAL, "folder contains a control character");
    /* INBOX is a name in any case (RFC 3501 5.1). */
    *folder = strcasecmp(name, "INBOX") == 0 ? "INBOX" : name;
    return SH_OK;
}

/* handler_number reads an integer argument given as a number or a string of
 * digits (query strings reach us as text); absent leaves *out. */
static int handler_number(const sh_val *args, const char *name, long long min, long long max,
                          long long *out, sh_error *err)
{
    const sh_val *v = sh_val_get(args, name);
    if (!v || sh_val_type_of(v) == SH_VAL_NIL)
        return SH_OK;
    long long n;
    if (sh_val_type_of(v) == SH_VAL_INT) {
        n = sh_val_int(v);
    } else if (sh_val_type_of(v) == SH_VAL_STR) {
        size_t len;
        const char *s = sh_val_str(v, &len);
        if (len == 0) /* an empty cursor means the first page */
            return SH_OK;
        char *end;
        if (len > 19 || s[0] < '0' || s[0] > '9')
            return sh_error_set(err, SH_EINVAL, "%s must be an integer", name);
        n = strtoll(s, &end, 10);
        if (end != s + len) /* bytes after a NUL too */
            return sh_error_set(err, SH_EINVAL, "%s must be an integer", name);
    } else {
        return sh_error_set(err, SH_EINVAL, "%s must be an integer", name);
    }
    if (n < min || n > max)
        return sh_error_set(err, SH_EINVAL, "%s must be %lld..%lld", name, min, max);
    *out = n;
    return SH_OK;
}

/* handler_message reads the arguments naming one message: the account,
 * the folder and a required uid. */
static int handler_message(const sh_val *args, const char **acct, const char **folder,
                           long long *uid, sh_error *err)
{
    *uid = -1;
    int rc = handler_args(args, acct, folder, err);
    if (!rc)
        rc = handler_number(args, "uid", 1, UINT32_MAX, uid, err);
    if (!rc && *uid < 0)
        rc = sh_error_set(err, SH_EINVAL, "uid is required");
    return rc;
}

static int h_messages_list(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    sh_worker *w = state;
    const char *acct, *folder;
    long long limit = HANDLER_LIMIT_DEFAULT, cursor = 0;
    int rc = handler_args(args, &acct, &folder, err);
    if (!rc)
        rc = handler_number(args, "limit", 1, HANDLER_LIMIT_MAX, &limit, err);
    if (!rc)
        rc = handler_number(args, "cursor", 0, UINT32_MAX, &cursor, err);
    return rc ? rc : sync_mail_list(w->store, acct, folder, limit, cursor, result, err);
}

static int h_messages_get(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    sh_worker *w = state;
    const char *acct, *folder;
    long long uid;
    int rc = handler_message(args, &acct, &folder, &uid, err);
    return rc ? rc : sync_mail_get(w->store, acct, folder, uid, result, err);
}

/* h_messages_set_seen: {accountId, folder?, uid, seen, syncNow?}. The
 * change is stored at once and pushed to the server by the next sync of the
 * account, which syncNow asks the coordinator for. */
static int h_messages_set_seen(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    sh_worker *w = state;
    const char *acct, *folder;
    long long uid;
    int rc = handler_message(args, &acct, &folder, &uid, err);
    const sh_val *seen = rc ? NULL : sh_val_get(args, "seen");
    if (!rc && sh_val_type_of(seen) != SH_VAL_BOOL)
        rc = sh_error_set(err, SH_EINVAL, "seen is required and must be a boolean");
    if (rc)
        return rc;
    rc = sync_mail_set_seen(w->store, acct, folder, uid, sh_val_bool(seen), result, err);
    if (rc)
        return rc;
    /* The event carries the message's flags as stored (space-separated),
     * as the sync's flag events do, not only the one changed. */
    const sh_val *flags = sh_val_get(*result, "flags");
    sh_buf text;
    sh_buf_init(&text);
    int oom = 0;
    for (size_t i = 0; !oom && i < sh_val_len(flags); i++) {
        size_t len;
        const char *f = sh_val_str(sh_val_at(flags, i), &len);
        if (f)
            oom = (text.len && sh_buf_puts(&text, " ")) || sh_buf_append(&text, f, len);
    }
    /* Out of memory, the event is dropped as a full publisher drops one. */
    if (!oom)
        sync_publish(w->pub, acct, SH_EVENT_MAIL_CHANGED, folder,
                     (uint32_t)sh_val_int(sh_val_get(*result, "uidvalidity")), (uint32_t)uid,
                     text.data ? text.data : "");
    sh_buf_fini(&text);
    sh_val *ev = sh_val_new_map();
    const char *type = SYNC_EV_MAIL_FLAGS;
    if (!ev || sh_val_set_cstr(ev, "uid", sh_val_new_int(uid)) ||
        sh_val_set_cstr(ev, "folder", sh_val_new_cstr(folder)) ||
        sh_val_set_cstr(ev, "flags", sh_val_clone(flags)))
        rc = sh_error_set(err, SH_ENOMEM, "out of memory");
    else
        rc = sync_evlog_add(w->store, w->pub, w->env, acct, &type, &ev, 1, err);
    sh_val_free(ev);
    if (rc) {
        sh_val_free(*result);
        *result = NULL;
        return rc;
    }
    if (sh_val_bool(sh_val_get(args, "syncNow")))
        sync_workers_kick(acct);
    return SH_OK;
}

static int h_folders_counts(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    sh_worker *w = state;
    const char *acct, *folder;
    int rc = handler_args(args, &acct, &folder, err);
    return rc ? rc : sync_mail_counts(w->store, acct, result, err);
}

/* h_events_read: {accountId, after?, count?} -> {events, reset, lastId}
 * (eventlog.h); count 1..1000, default 100. */
static int h_events_read(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    sh_worker *w = state;
    const char *acct, *folder;
    long long count = HANDLER_EVENTS_DEFAULT;
    int rc = handler_args(args, &acct, &folder, err);
    if (!rc)
        rc = handler_number(args, "count", 1, SYNC_EVLOG_READ_MAX, &count, err);
    const sh_val *a = rc ? NULL : sh_val_get(args, "after");
    size_t len = 0;
    const char *after = a ? sh_val_str(a, &len) : NULL;
    if (!rc && a && sh_val_type_of(a) != SH_VAL_NIL &&
        (sh_val_type_of(a) != SH_VAL_STR || strlen(after) != len || len > 40))
        rc = sh_error_set(err, SH_EINVAL, "after must be an event id (<ms>-<seq>)");
    return rc ? rc : sync_evlog_read(w->store, acct, after, count, result, err);
}

const sh_rpc_op sync_ops[] = {
    {"ping", sh_service_ping, NULL, NULL},
    {"messages.list", h_messages_list, NULL, NULL},
    {"messages.get", h_messages_get, NULL, NULL},
    {"messages.set_seen", h_messages_set_seen, NULL, NULL},
    {"folders.counts", h_folders_counts, NULL, NULL},
    {"events.read", h_events_read, NULL, NULL},
    {NULL, NULL, NULL, NULL},
};
