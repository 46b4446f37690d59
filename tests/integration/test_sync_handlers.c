/* test_sync_handlers.c - the sync-worker's RPC operations (handlers.c)
 * called through its operation table with a worker state on a private
 * Redis: every argument refusal and its message, then messages.list pages
 * and cursors, messages.get, messages.set_seen (stored flags, the pending
 * change, the `changed` event) and folders.counts over mail stored as a
 * sync stores it, and the answers once Redis is gone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "handlers.h"
#include "mail_fixture.h"
#include "mailstore.h"
#include "shared/events.h"
#include "shared/keys.h"
#include "shared/service.h"
#include "shared/util.h"

#define ACCT     "acct-1"
#define UIDV     7
#define MODSEQ   100
#define NINBOX   5
#define SENT     "Sent Items"
#define SENTUIDV 9

static tf_mail mail;
static sh_worker worker;
static sh_sub *sub;

static void folder_synced(const char *folder, uint32_t uidvalidity, uint32_t count)
{
    /* Even UIDs are \Seen. */
    for (uint32_t u = 1; u <= count; u++)
        tf_mail_put(mail.st, ACCT, folder, uidvalidity, u, u % 2 == 0 ? "\\Seen" : "");
    tf_mail_folder(mail.st, ACCT, folder, uidvalidity, count + 1, MODSEQ);
}

static int group_setup(void **state)
{
    (void)state;
    if (tf_mail_start(&mail, 0))
        return -1;
    worker.store = mail.st;
    sh_error err;
    char pub_url[64];
    snprintf(pub_url, sizeof pub_url, "tcp://127.0.0.1:%d", tf_free_port());
    if (sh_pub_new(pub_url, &worker.pub, &err) || sh_sub_new(pub_url, 0, &sub, &err) ||
        sh_sub_subscribe(sub, SH_TOPIC_MAIL)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    folder_synced("INBOX", UIDV, NINBOX);
    folder_synced(SENT, SENTUIDV, 2);
    /* Let the subscriber connect before any event is sent. */
    tf_sleep_ms(300);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    sh_sub_free(sub);
    sh_pub_free(worker.pub);
    tf_mail_stop(&mail);
    return 0;
}

/* call runs op from the table with args (taken); the result goes to *out
 * (may be NULL: dropped). */
static int call(const char *op, sh_val *args, sh_val **out, sh_error *err)
{
    const sh_rpc_op *o = sync_ops;
    while (o->name && strcmp(o->name, op) != 0)
        o++;
    assert_non_null(o->name);
    sh_val *res = NULL;
    sh_error_clear(err);
    int rc = o->fn(&worker, args, &res, err);
    sh_val_free(args);
    if (rc)
        assert_null(res);
    if (out)
        *out = res;
    else
        sh_val_free(res);
    return rc;
}

/* args builds a map from "key", value pairs ending in NULL; values are
 * taken. */
static sh_val *args(const char *key, ...)
{
    sh_val *m = sh_val_new_map();
    va_list ap;
    va_start(ap, key);
    for (const char *k = key; k; k = va_arg(ap, const char *))
        assert_int_equal(sh_val_set_cstr(m, k, va_arg(ap, sh_val *)), 0);
    va_end(ap);
    return m;
}

static sh_val *str(const char *s)
{
    return sh_val_new_cstr(s);
}

static void expect_refused(const char *op, sh_val *a, const char *msg)
{
    sh_error err;
    int rc = call(op, a, NULL, &err);
    if (rc != SH_EINVAL)
        fail_msg("%s: %d \"%s\", want \"%s\"", op, rc, err.msg, msg);
    if (strcmp(err.msg, msg) != 0)
        fail_msg("%s: \"%s\", want \"%s\"", op, err.msg, msg);
}

static void test_table(void **state)
{
    (void)state;
    static const char *const want[] = {"ping",           "messages.list",
                                       "messages.get",   "messages.set_seen",
                                       "folders.counts", "events.read"};
    size_t n = 0;
    for (; sync_ops[n].name; n++) {
        assert_true(n < 6);
        assert_string_equal(sync_ops[n].name, want[n]);
        assert_non_null(sync_ops[n].fn);
    }
    assert_int_equal(n, 6);
    assert_null(sync_ops[n].fn);
    sh_val *res = NULL;
    sh_error err;
    assert_int_equal(call("ping", NULL, &res, &err), SH_OK);
    assert_string_equal(sh_val_get_str(res, "redis", NULL), "ok");
    sh_val_free(res);
}

static void test_account_and_folder_refused(void **state)
{
    (void)state;
    static const char *const ops[] = {"messages.list", "messages.get", "messages.set_seen",
                                      "folders.counts"};
    const char *acct_msg = "accountId is required and must match [A-Za-z0-9._:-]{1,128}";
    const char *folder_msg = "folder must be a name of 1..200 bytes";
    char long_id[130], long_folder[202];
    memset(long_id, 'a', 129);
    long_id[129] = '\0';
    memset(long_folder, 'f', 201);
    long_folder[201] = '\0';
    for (size_t i = 0; i < 4; i++) {
        const char *op = ops[i];
        expect_refused(op, NULL, "arguments must be a map");
        expect_refused(op, sh_val_new_array(), "arguments must be a map");
        expect_refused(op, str(ACCT), "arguments must be a map");
        expect_refused(op, sh_val_new_map(), acct_msg);
        expect_refused(op, args("accountId", str(""), NULL), acct_msg);
        expect_refused(op, args("accountId", str("a b"), NULL), acct_msg);
        expect_refused(op, args("accountId", str("a}b"), NULL), acct_msg);
        expect_refused(op, args("accountId", str("mail:{x}"), NULL), acct_msg);
        expect_refused(op, args("accountId", str(long_id), NULL), acct_msg);
        expect_refused(op, args("accountId", sh_val_new_int(1), NULL), acct_msg);
        /* A NUL inside would cut the id short in a key. */
        expect_refused(op, args("accountId", sh_val_new_str("acct-1\0x", 8), NULL), acct_msg);

        expect_refused(op, args("accountId", str(ACCT), "folder", str(""), NULL), folder_msg);
        expect_refused(op, args("accountId", str(ACCT), "folder", str(long_folder), NULL),
                       folder_msg);
        expect_refused(op, args("accountId", str(ACCT), "folder", sh_val_new_int(3), NULL),
                       folder_msg);
        expect_refused(op,
                       args("accountId", str(ACCT), "folder", sh_val_new_str("IN\0BOX", 6), NULL),
                       folder_msg);
        expect_refused(op, args("accountId", str(ACCT), "folder", str("a\r\nb"), NULL),
                       "folder contains a control character");
        expect_refused(op, args("accountId", str(ACCT), "folder", str("a\x7f"), NULL),
                       "folder contains a control character");
    }
    /* 200 bytes is still a name (and a folder never synced: empty). */
    long_folder[200] = '\0';
    sh_val *res = NULL;
    sh_error err;
    assert_int_equal(call("messages.list",
                          args("accountId", str(ACCT), "folder", str(long_folder), NULL), &res,
                          &err),
                     SH_OK);
    assert_int_equal(sh_val_len(sh_val_get(res, "messages")), 0);
    sh_val_free(res);
}

static void test_numbers_refused(void **state)
{
    (void)state;
    const char *limit_range = "limit must be 1..500", *limit_int = "limit must be an integer";
    const char *uid_range = "uid must be 1..4294967295";
    sh_val *bad_limits[] = {sh_val_new_int(0), sh_val_new_int(501), sh_val_new_int(-1),
                            str("0"),          str("501"),          NULL};
    for (size_t i = 0; bad_limits[i]; i++)
        expect_refused("messages.list", args("accountId", str(ACCT), "limit", bad_limits[i], NULL),
                       limit_range);
    sh_val *not_ints[] = {str("abc"),
                          str("12x"),
                          str("-3"),
                          str(" 5"),
                          str("+5"),
                          sh_val_new_bool(true),
                          sh_val_new_float(2.5),
                          sh_val_new_array(),
                          str("99999999999999999999"),
                          NULL};
    for (size_t i = 0; not_ints[i]; i++)
        expect_refused("messages.list", args("accountId", str(ACCT), "limit", not_ints[i], NULL),
                       limit_int);
    /* Bytes after a NUL are not ignored. */
    expect_refused("messages.list",
                   args("accountId", str(ACCT), "limit", sh_val_new_str("12\0x", 4), NULL),
                   limit_int);
    expect_refused("messages.list",
                   args("accountId", str(ACCT), "cursor", sh_val_new_int(-1), NULL),
                   "cursor must be 0..4294967295");
    expect_refused("messages.list",
                   args("accountId", str(ACCT), "cursor", sh_val_new_int(4294967296LL), NULL),
                   "cursor must be 0..4294967295");

    expect_refused("messages.get", args("accountId", str(ACCT), NULL), "uid is required");
    expect_refused("messages.get", args("accountId", str(ACCT), "uid", str(""), NULL),
                   "uid is required");
    expect_refused("messages.get", args("accountId", str(ACCT), "uid", sh_val_new_nil(), NULL),
                   "uid is required");
    expect_refused("messages.get", args("accountId", str(ACCT), "uid", sh_val_new_int(0), NULL),
                   uid_range);
    expect_refused("messages.get",
                   args("accountId", str(ACCT), "uid", sh_val_new_int(4294967296LL), NULL),
                   uid_range);
    expect_refused("messages.get", args("accountId", str(ACCT), "uid", str("1e3"), NULL),
                   "uid must be an integer");

    const char *seen_msg = "seen is required and must be a boolean";
    expect_refused("messages.set_seen",
                   args("accountId", str(ACCT), "seen", sh_val_new_bool(true), NULL),
                   "uid is required");
    expect_refused("messages.set_seen",
                   args("accountId", str(ACCT), "uid", sh_val_new_int(1), NULL), seen_msg);
    expect_refused(
        "messages.set_seen",
        args("accountId", str(ACCT), "uid", sh_val_new_int(1), "seen", str("true"), NULL),
        seen_msg);
    expect_refused(
        "messages.set_seen",
        args("accountId", str(ACCT), "uid", sh_val_new_int(1), "seen", sh_val_new_int(1), NULL),
        seen_msg);
    /* None of the refusals changed a message. */
    sh_val *m = NULL;
    sh_error err;
    assert_int_equal(call("messages.get",
                          args("accountId", str(ACCT), "uid", sh_val_new_int(1), NULL), &m, &err),
                     SH_OK);
    assert_int_equal(sh_val_len(sh_val_get(m, "flags")), 0);
    sh_val_free(m);
}

/* list_uids runs messages.list and writes the UIDs it gives, newest first,
 * into uids; returns the nextCursor (0 when nil). */
static long long list_uids(sh_val *a, uint32_t *uids, size_t *n)
{
    sh_val *res = NULL;
    sh_error err;
    assert_int_equal(call("messages.list", a, &res, &err), SH_OK);
    const sh_val *msgs = sh_val_get(res, "messages");
    *n = sh_val_len(msgs);
    for (size_t i = 0; i < *n; i++)
        uids[i] = (uint32_t)sh_val_int(sh_val_get(sh_val_at(msgs, i), "uid"));
    const sh_val *next = sh_val_get(res, "nextCursor");
    assert_non_null(next);
    long long c = sh_val_type_of(next) == SH_VAL_NIL ? 0 : sh_val_int(next);
    sh_val_free(res);
    return c;
}

static void test_list(void **state)
{
    (void)state;
    uint32_t u[16];
    size_t n;
    assert_int_equal(list_uids(args("accountId", str(ACCT), NULL), u, &n), 0);
    assert_int_equal(n, NINBOX);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(u[i], NINBOX - i);
    /* Pages of two: 5 4 | 3 2 | 1, the cursor as a number or as text. */
    assert_int_equal(
        list_uids(args("accountId", str(ACCT), "limit", sh_val_new_int(2), NULL), u, &n), 4);
    assert_int_equal(n, 2);
    assert_int_equal(u[0], 5);
    assert_int_equal(u[1], 4);
    assert_int_equal(list_uids(args("accountId", str(ACCT), "limit", str("2"), "cursor",
                                    sh_val_new_int(4), NULL),
                               u, &n),
                     2);
    assert_int_equal(n, 2);
    assert_int_equal(u[0], 3);
    assert_int_equal(list_uids(args("accountId", str(ACCT), "limit", sh_val_new_int(2), "cursor",
                                    str("2"), NULL),
                               u, &n),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(u[0], 1);
    /* An empty cursor is the first page; INBOX in any case is INBOX. */
    assert_int_equal(list_uids(args("accountId", str(ACCT), "folder", str("iNbOx"), "cursor",
                                    str(""), "limit", sh_val_new_int(500), NULL),
                               u, &n),
                     0);
    assert_int_equal(n, NINBOX);
    assert_int_equal(list_uids(args("accountId", str(ACCT), "folder", str(SENT), NULL), u, &n), 0);
    assert_int_equal(n, 2);
    /* Unknown folders and accounts are empty, not errors. */
    assert_int_equal(list_uids(args("accountId", str(ACCT), "folder", str("Nope"), NULL), u, &n),
                     0);
    assert_int_equal(n, 0);
    assert_int_equal(list_uids(args("accountId", str("nobody"), NULL), u, &n), 0);
    assert_int_equal(n, 0);
}

static void test_get(void **state)
{
    (void)state;
    sh_val *m = NULL;
    sh_error err;
    assert_int_equal(
        call("messages.get", args("accountId", str(ACCT), "uid", str("4"), NULL), &m, &err), SH_OK);
    assert_int_equal(sh_val_int(sh_val_get(m, "uid")), 4);
    assert_int_equal(sh_val_int(sh_val_get(m, "uidvalidity")), UIDV);
    assert_int_equal(sh_val_int(sh_val_get(m, "size")), 1004);
    assert_string_equal(sh_val_get_str(m, "subject", NULL), "Message 4");
    assert_string_equal(sh_val_get_str(m, "from", NULL), "Sender <s@example.com>");
    const sh_val *flags = sh_val_get(m, "flags");
    assert_int_equal(sh_val_len(flags), 1);
    assert_string_equal(sh_val_str(sh_val_at(flags, 0), NULL), "\\Seen");
    sh_val_free(m);
    assert_int_equal(
        call("messages.get",
             args("accountId", str(ACCT), "folder", str(SENT), "uid", sh_val_new_int(2), NULL), &m,
             &err),
        SH_OK);
    assert_int_equal(sh_val_int(sh_val_get(m, "uidvalidity")), SENTUIDV);
    sh_val_free(m);
    assert_int_equal(call("messages.get",
                          args("accountId", str(ACCT), "uid", sh_val_new_int(99), NULL), &m, &err),
                     SH_ENOTFOUND);
    assert_string_equal(err.msg, "message not found");
    assert_int_equal(
        call("messages.get",
             args("accountId", str(ACCT), "folder", str("Nope"), "uid", sh_val_new_int(1), NULL),
             &m, &err),
        SH_ENOTFOUND);
}

/* expect_event reads the next mail event and checks it. */
static void expect_event(const char *kind, uint32_t uid, const char *flags)
{
    char *topic = NULL;
    sh_val *ev = NULL;
    assert_int_equal(sh_sub_recv(sub, 3000, &topic, &ev), SH_OK);
    assert_string_equal(topic, SH_TOPIC_MAIL ACCT);
    assert_string_equal(sh_val_get_str(ev, "kind", NULL), kind);
    assert_string_equal(sh_val_get_str(ev, "accountId", NULL), ACCT);
    assert_string_equal(sh_val_get_str(ev, "folder", NULL), "INBOX");
    assert_int_equal(sh_val_int(sh_val_get(ev, "uidvalidity")), UIDV);
    assert_int_equal(sh_val_int(sh_val_get(ev, "uid")), uid);
    assert_string_equal(sh_val_get_str(ev, "flags", NULL), flags);
    free(topic);
    sh_val_free(ev);
}

static void expect_counts(long long inbox_unread)
{
    sh_val *res = NULL;
    sh_error err;
    assert_int_equal(call("folders.counts", args("accountId", str(ACCT), NULL), &res, &err), SH_OK);
    const sh_val *folders = sh_val_get(res, "folders");
    assert_int_equal(sh_val_len(folders), 2);
    for (size_t i = 0; i < 2; i++) {
        const sh_val *f = sh_val_at(folders, i);
        const char *name = sh_val_get_str(f, "name", NULL);
        bool inbox = strcmp(name, "INBOX") == 0;
        assert_true(inbox || strcmp(name, SENT) == 0);
        assert_int_equal(sh_val_int(sh_val_get(f, "total")), inbox ? NINBOX : 2);
        assert_int_equal(sh_val_int(sh_val_get(f, "unread")), inbox ? inbox_unread : 1);
    }
    sh_val_free(res);
}

static void test_set_seen_and_counts(void **state)
{
    (void)state;
    /* UIDs 1, 3 and 5 are unread. */
    expect_counts(3);
    sh_val *m = NULL;
    sh_error err;
    assert_int_equal(call("messages.set_seen",
                          args("accountId", str(ACCT), "uid", sh_val_new_int(3), "seen",
                               sh_val_new_bool(true), NULL),
                          &m, &err),
                     SH_OK);
    assert_int_equal(sh_val_int(sh_val_get(m, "uid")), 3);
    assert_string_equal(sh_val_str(sh_val_at(sh_val_get(m, "flags"), 0), NULL), "\\Seen");
    sh_val_free(m);
    expect_event("changed", 3, "\\Seen");
    expect_counts(2);
    /* The account's event log has it as mail.flags. */
    sh_val *log = NULL;
    assert_int_equal(call("events.read", args("accountId", str(ACCT), NULL), &log, &err), SH_OK);
    const sh_val *evs = sh_val_get(log, "events");
    assert_int_equal(sh_val_len(evs), 1);
    const sh_val *logged = sh_val_at(evs, 0);
    assert_string_equal(sh_val_get_str(logged, "type", NULL), "mail.flags");
    assert_int_equal(sh_val_int(sh_val_get(logged, "uid")), 3);
    assert_string_equal(sh_val_get_str(logged, "folder", NULL), "INBOX");
    assert_string_equal(sh_val_str(sh_val_at(sh_val_get(logged, "flags"), 0), NULL), "\\Seen");
    sh_val_free(log);
    /* The change waits for the next sync, with the folder's state. */
    sync_pending *p = NULL;
    size_t n = 0;
    assert_int_equal(sync_mail_pending(mail.st, ACCT, "INBOX", &p, &n, &err), SH_OK);
    assert_int_equal(n, 1);
    assert_int_equal(p[0].uid, 3);
    assert_true(p[0].seen);
    assert_int_equal(p[0].uidvalidity, UIDV);
    assert_int_equal(p[0].modseq, MODSEQ);
    free(p);

    /* Back to unread, with syncNow (best effort: no coordinator here). */
    assert_int_equal(call("messages.set_seen",
                          args("accountId", str(ACCT), "uid", str("3"), "seen",
                               sh_val_new_bool(false), "syncNow", sh_val_new_bool(true), NULL),
                          &m, &err),
                     SH_OK);
    assert_int_equal(sh_val_len(sh_val_get(m, "flags")), 0);
    sh_val_free(m);
    expect_event("changed", 3, "");
    expect_counts(3);
    assert_int_equal(sync_mail_pending(mail.st, ACCT, "INBOX", &p, &n, &err), SH_OK);
    assert_int_equal(n, 1);
    assert_false(p[0].seen);
    free(p);

    /* A message not stored: not_found, nothing recorded, no event. */
    assert_int_equal(call("messages.set_seen",
                          args("accountId", str(ACCT), "uid", sh_val_new_int(99), "seen",
                               sh_val_new_bool(true), NULL),
                          &m, &err),
                     SH_ENOTFOUND);
    char *topic = NULL;
    sh_val *ev = NULL;
    assert_int_equal(sh_sub_recv(sub, 300, &topic, &ev), SH_ETIMEDOUT);
    assert_int_equal(sync_mail_pending(mail.st, ACCT, "INBOX", &p, &n, &err), SH_OK);
    assert_int_equal(n, 1);
    free(p);

    /* The event names every flag the message has, not only \Seen. */
    tf_mail_put(mail.st, ACCT, "INBOX", UIDV, 5, "\\Flagged $Work");
    assert_int_equal(call("messages.set_seen",
                          args("accountId", str(ACCT), "uid", sh_val_new_int(5), "seen",
                               sh_val_new_bool(true), NULL),
                          &m, &err),
                     SH_OK);
    assert_int_equal(sh_val_len(sh_val_get(m, "flags")), 3);
    sh_val_free(m);
    expect_event("changed", 5, "\\Flagged $Work \\Seen");

    /* An account with nothing synced counts no folder. */
    sh_val *res = NULL;
    assert_int_equal(call("folders.counts", args("accountId", str("nobody"), NULL), &res, &err),
                     SH_OK);
    assert_int_equal(sh_val_type_of(sh_val_get(res, "folders")), SH_VAL_ARRAY);
    assert_int_equal(sh_val_len(sh_val_get(res, "folders")), 0);
    sh_val_free(res);
}

/* Last: Redis goes away; every operation answers an error, none crashes. */
static void test_redis_gone(void **state)
{
    (void)state;
    tf_redis_kill(&mail.redis);
    sh_error err;
    sh_val *res = NULL;
    assert_int_not_equal(call("ping", NULL, &res, &err), SH_OK);
    assert_int_not_equal(call("messages.list", args("accountId", str(ACCT), NULL), &res, &err),
                         SH_OK);
    assert_int_not_equal(call("messages.get",
                              args("accountId", str(ACCT), "uid", sh_val_new_int(1), NULL), &res,
                              &err),
                         SH_OK);
    assert_true(err.msg[0] != '\0');
    assert_int_not_equal(call("folders.counts", args("accountId", str(ACCT), NULL), &res, &err),
                         SH_OK);
    /* Argument errors are still answered as such. */
    expect_refused("messages.list", args("accountId", str("a b"), NULL),
                   "accountId is required and must match [A-Za-z0-9._:-]{1,128}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_account_and_folder_refused),
        cmocka_unit_test(test_numbers_refused),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_set_seen_and_counts),
        cmocka_unit_test(test_redis_gone),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
