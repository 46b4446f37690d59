/* routes_messages.c - the synced messages of an account (seed 004), read
 * from the sync-worker, and read/unread marks, which the sync-worker stores
 * at once and pushes to the IMAP server on the account's next sync. */
#include <stdlib.h>
#include <string.h>

#include "gw_routes.h"
#include "gw_routes_int.h"

static const char messages_not_found[] = "Message not found";

/* The public fields of a message (services/sync-worker/README.md). */
static const char *const messages_fields[] = {
    "uid",       "folder", "subject", "from",         "to",        "cc", "date",
    "messageId", "size",   "flags",   "internalDate", "flagError", NULL};

static sh_val *messages_view(const sh_val *msg)
{
    return gw__routes_pick(msg, messages_fields);
}

static void messages_reply(gw_req *r, sh_val *v)
{
    if (!v) {
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    gw_req_reply_json(r, 200, v);
    sh_val_free(v);
}

/* messages_error answers the failure of a call to svc within a fan-out. */
static void messages_error(gw_req *r, int svc, int rc, const sh_error *err, const char *not_found)
{
    if (rc == SH_ETIMEDOUT || rc == SH_ECLOSED)
        gw_req_reply_error(r, 503, "%s service unavailable: %s", gw_service_name(svc),
                           err->msg[0] ? err->msg : sh_strerror(rc));
    else
        gw_req_reply_rpc_error(r, rc, err, not_found);
}

static void messages_listed(gw_req *r, size_t n, const int *rc, sh_val *const *results,
                            const sh_error *errs)
{
    if (rc[0] != SH_OK) {
        messages_error(r, GW_SVC_COORDINATOR, rc[0], &errs[0], "Account not found");
        return;
    }
    if (rc[1] != SH_OK) {
        messages_error(r, GW_SVC_SYNC, rc[1], &errs[1], messages_not_found);
        return;
    }
    const sh_val *list = sh_val_get(results[1], "messages");
    if (sh_val_type_of(list) != SH_VAL_ARRAY) {
        gw_req_reply_error(r, 500, "internal error: the sync-worker answered without messages");
        return;
    }
    sh_val *arr = sh_val_new_array();
    for (size_t i = 0; arr && i < sh_val_len(list); i++) {
        if (sh_val_push(arr, messages_view(sh_val_at(list, i))) != SH_OK) {
            sh_val_free(arr);
            arr = NULL;
        }
    }
    const sh_val *next = sh_val_get(results[1], "nextCursor");
    sh_val *m = sh_val_new_map();
    /* sh_val_set takes the value even when it fails. */
    if (sh_val_set_cstr(m, "messages", arr) != SH_OK ||
        sh_val_set_cstr(m, "nextCursor", next ? sh_val_clone(next) : sh_val_new_nil()) != SH_OK) {
        sh_val_free(m);
        m = NULL;
    }
    messages_reply(r, m);
}

/* messages_args starts {accountId, folder?} from the path and the query;
 * NULL when out of memory. */
static sh_val *messages_args(gw_req *r)
{
    sh_val *a = sh_val_new_map();
    const char *folder = gw_req_query(r, "folder");
    if (!a || sh_val_set_cstr(a, "accountId", sh_val_new_cstr(gw_req_param(r))) != SH_OK ||
        (folder && folder[0] && sh_val_set_cstr(a, "folder", sh_val_new_cstr(folder)) != SH_OK)) {
        sh_val_free(a);
        return NULL;
    }
    return a;
}

void gw_route_messages_list(gw_req *r)
{
    sh_val *a = messages_args(r), *acc = sh_val_new_map();
    const char *names[] = {"limit", "cursor"};
    bool ok = a && acc && sh_val_set_cstr(acc, "id", sh_val_new_cstr(gw_req_param(r))) == SH_OK;
    for (size_t i = 0; ok && i < 2; i++) {
        const char *v = gw_req_query(r, names[i]);
        if (v && v[0] && sh_val_set_cstr(a, names[i], sh_val_new_cstr(v)) != SH_OK)
            ok = false;
    }
    if (!ok) {
        sh_val_free(a);
        sh_val_free(acc);
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    /* The account is read beside the page so that an unknown one is a 404
     * rather than an empty list. */
    gw_call_spec calls[2] = {{GW_SVC_COORDINATOR, "account.get", acc},
                             {GW_SVC_SYNC, "messages.list", a}};
    gw_req_call_all(r, 2, calls, 0, messages_listed);
}

bool gw__routes_uid_parse(const char *s, long long *uid)
{
    char *end;
    size_t len = strlen(s);
    if (len == 0 || len > 10 || s[0] < '1' || s[0] > '9')
        return false;
    long long v = strtoll(s, &end, 10);
    if (*end || v < 1 || v > 4294967295LL)
        return false;
    *uid = v;
    return true;
}

/* messages_uid_ok checks the :uid segment, answering 400 when it is not a
 * UID. */
static bool messages_uid_ok(gw_req *r, long long *uid)
{
    if (gw__routes_uid_parse(gw_req_param2(r), uid))
        return true;
    gw_req_reply_error(r, 400, "invalid uid: a UID is an integer 1..4294967295");
    return false;
}

static void messages_one(gw_req *r, int rc, const sh_val *result, const sh_error *err)
{
    if (rc != SH_OK) {
        gw_req_reply_rpc_error(r, rc, err, messages_not_found);
        return;
    }
    messages_reply(r, messages_view(result));
}

/* messages_call calls op of the sync-worker with the message's arguments,
 * plus {seen, syncNow: true} when seen is 0 or 1. */
static void messages_call(gw_req *r, const char *op, int seen)
{
    long long uid;
    if (!messages_uid_ok(r, &uid))
        return;
    sh_val *a = messages_args(r);
    if (!a || sh_val_set_cstr(a, "uid", sh_val_new_int(uid)) != SH_OK ||
        (seen >= 0 && (sh_val_set_cstr(a, "seen", sh_val_new_bool(seen == 1)) != SH_OK ||
                       sh_val_set_cstr(a, "syncNow", sh_val_new_bool(true)) != SH_OK))) {
        sh_val_free(a);
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    gw_req_call_svc(r, GW_SVC_SYNC, op, a, 0, 200, messages_not_found, messages_one);
}

void gw_route_message_get(gw_req *r)
{
    messages_call(r, "messages.get", -1);
}

void gw_route_message_read(gw_req *r)
{
    messages_call(r, "messages.set_seen", 1);
}

void gw_route_message_unread(gw_req *r)
{
    messages_call(r, "messages.set_seen", 0);
}
