/* test_eventlog.c - the account's event log (eventlog.c) against a private
 * Redis and Dovecot: one entry per change a real sync makes (new message
 * with the messages route's fields, flags changed, expunged, the folder's
 * counts), each published with its log id; sync.status only when it
 * changes; the log capped by length and by age; and the read, through
 * the events.read operation too: resuming after an id, counts, ids
 * refused, and a reset once the events after an id were trimmed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dovecot_fixture.h"
#include "eventlog.h"
#include "handlers.h"
#include "hosts.h"
#include "keys.h"
#include "mail_fixture.h"
#include "mailstore.h"
#include "shared/events.h"
#include "shared/keys.h"
#include "shared/service.h"
#include "sync.h"

#define ST       (tf_mail_the()->st)
#define MESSAGES 4

static tf_dovecot dove;
static sh_pub *pub;
static sh_sub *sub;
static sync_env env = {.fetch_batch = 100, .fetch_budget = 1000, .renew_s = 30};
static sync_report report;

/* published collects the events published until 400 ms pass without one
 * into arr (an array), returning how many. */
static size_t published(sh_val *arr)
{
    size_t n = 0;
    for (;;) {
        char *topic = NULL;
        sh_val *p = NULL;
        if (sh_sub_recv(sub, 400, &topic, &p) != SH_OK)
            break;
        const char *acct = sh_val_get_str(p, "accountId", NULL);
        assert_non_null(acct);
        assert_string_equal(topic + strlen(SH_TOPIC_MAIL_EVENT), acct);
        free(topic);
        if (strcmp(acct, "probe") == 0) {
            sh_val_free(p);
            continue;
        }
        assert_int_equal(sh_val_push(arr, p), 0);
        n++;
    }
    return n;
}

static int setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    if (tf_mail_setup(state) || tf_dovecot_start(&dove, "test", "secret", MESSAGES))
        return -1;
    env.hosts = tf_loopback_hosts();
    env.allow_insecure = true;
    return tf_mail_events(ST, &pub, &sub);
}

static int teardown(void **state)
{
    sh_sub_free(sub);
    sh_pub_free(pub);
    tf_dovecot_stop(&dove);
    return tf_mail_teardown(state);
}

/* each empties Redis and sets the stream nodes small, so "~" trimming
 * shows at test sizes. */
static int each(void **state)
{
    int rc = tf_mail_each(state);
    sh_cmd *c = sh_cmd_new("CONFIG");
    sh_cmd_str(c, "SET");
    sh_cmd_str(c, "stream-node-max-entries");
    sh_cmd_str(c, "5");
    sh_reply *r = NULL;
    sh_error err;
    if (sh_store_call(ST, c, &r, &err))
        rc = -1;
    sh_reply_free(r);
    return rc;
}

static void sync_now(const char *acct)
{
    sync_run run = {.env = &env, .store = ST, .pub = pub, .report = &report, .acct = acct};
    tf_mail_sync(&run, dove.port);
}

static sh_val *read_log(const char *acct, const char *after, long long count)
{
    sh_val *out = NULL;
    sh_error err;
    int rc = sync_evlog_read(ST, acct, after, count, &out, &err);
    if (rc)
        fprintf(stderr, "read: %s\n", err.msg);
    assert_int_equal(rc, SH_OK);
    return out;
}

static long long xlen(const char *acct)
{
    char key[SYNC_KEY_MAX];
    assert_true(sync_key_events(key, sizeof key, acct) > 0);
    return tf_mail_int(ST, tf_mail_cmd1("XLEN", key));
}

/* count_type counts the events of type in arr; *last the last of them. */
static size_t count_type(const sh_val *arr, const char *type, const sh_val **last)
{
    size_t n = 0;
    for (size_t i = 0; i < sh_val_len(arr); i++) {
        const sh_val *e = sh_val_at(arr, i);
        if (strcmp(sh_val_get_str(e, "type", NULL), type) == 0) {
            n++;
            if (last)
                *last = e;
        }
    }
    return n;
}

static bool has_flag(const sh_val *e, const char *flag)
{
    const sh_val *fl = sh_val_get(e, "flags");
    assert_int_equal(sh_val_type_of(fl), SH_VAL_ARRAY);
    for (size_t i = 0; i < sh_val_len(fl); i++)
        if (strcmp(sh_val_str(sh_val_at(fl, i), NULL), flag) == 0)
            return true;
    return false;
}

static void server(const char *cmd1, const char *cmd2)
{
    const char *cmds[] = {"SELECT INBOX", cmd1, cmd2, NULL};
    assert_int_equal(tf_dovecot_imap(&dove, cmds, NULL, 0), 0);
}

/* Every change of a real sync is logged once, in order, with the fields
 * of its type, and published with the id it has in the log. */
static void test_sync_changes(void **state)
{
    (void)state;
    sync_now("e1");
    sh_val *log = read_log("e1", NULL, 1000);
    const sh_val *evs = sh_val_get(log, "events");
    assert_false(sh_val_bool(sh_val_get(log, "reset")));
    assert_int_equal(count_type(evs, "mail.new", NULL), MESSAGES);
    const sh_val *counts = NULL;
    assert_int_equal(count_type(evs, "folder.counts", &counts), 1);
    assert_int_equal(sh_val_int(sh_val_get(counts, "total")), MESSAGES);
    /* Messages 3 (n % 3 == 0) is \Seen. */
    assert_int_equal(sh_val_int(sh_val_get(counts, "unread")), MESSAGES - 1);
    assert_string_equal(sh_val_get_str(counts, "folder", NULL), "INBOX");
    /* mail.new carries the message as messages.get shows it. */
    const sh_val *first = sh_val_at(evs, 0);
    assert_string_equal(sh_val_get_str(first, "type", NULL), "mail.new");
    assert_string_equal(sh_val_get_str(first, "accountId", NULL), "e1");
    assert_non_null(sh_val_get_str(first, "createdAt", NULL));
    long long uid = sh_val_int(sh_val_get(first, "uid"));
    sh_val *view = NULL;
    sh_error err;
    assert_int_equal(sync_mail_get(ST, "e1", "INBOX", uid, &view, &err), SH_OK);
    for (size_t i = 0; i < sh_val_len(view); i++) {
        size_t kl;
        const char *k = sh_val_key_at(view, i, &kl);
        assert_true(sh_val_equal(sh_val_value_at(view, i), sh_val_get_n(first, k, kl)));
    }
    sh_val_free(view);
    char subject[32];
    snprintf(subject, sizeof subject, "Message %lld", uid);
    assert_string_equal(sh_val_get_str(first, "subject", NULL), subject);
    /* Published with the same ids and types, in the same order. */
    sh_val *pubs = sh_val_new_array();
    size_t npub = published(pubs);
    size_t nlog = sh_val_len(evs);
    assert_int_equal(npub, nlog);
    for (size_t i = 0; i < nlog; i++) {
        const sh_val *a = sh_val_at(evs, i), *b = sh_val_at(pubs, i);
        assert_string_equal(sh_val_get_str(a, "id", NULL), sh_val_get_str(b, "id", NULL));
        assert_string_equal(sh_val_get_str(a, "type", NULL), sh_val_get_str(b, "kind", NULL));
    }
    sh_val_free(pubs);
    char last[48];
    snprintf(last, sizeof last, "%s", sh_val_get_str(sh_val_at(evs, nlog - 1), "id", NULL));
    assert_string_equal(sh_val_get_str(log, "lastId", NULL), last);
    sh_val_free(log);

    /* An unchanged folder logs nothing. */
    sync_now("e1");
    log = read_log("e1", last, 1000);
    assert_int_equal(sh_val_len(sh_val_get(log, "events")), 0);
    sh_val_free(log);

    /* Changed elsewhere: flags of 1, message 2 expunged, one appended. */
    const char *msg = "From: a@example.com\r\nSubject: Fresh\r\n\r\nbody\r\n";
    char append[256];
    snprintf(append, sizeof append, "APPEND INBOX {%zu+}\r\n%s", strlen(msg), msg);
    server("UID STORE 1 +FLAGS (\\Flagged)", "UID STORE 2 +FLAGS (\\Deleted)");
    server("EXPUNGE", append);
    sync_now("e1");
    log = read_log("e1", last, 1000);
    evs = sh_val_get(log, "events");
    const sh_val *e = NULL;
    assert_int_equal(count_type(evs, "mail.flags", &e), 1);
    assert_int_equal(sh_val_int(sh_val_get(e, "uid")), 1);
    assert_string_equal(sh_val_get_str(e, "folder", NULL), "INBOX");
    assert_true(has_flag(e, "\\Flagged"));
    assert_int_equal(count_type(evs, "mail.removed", &e), 1);
    assert_int_equal(sh_val_int(sh_val_get(e, "uid")), 2);
    assert_null(sh_val_get(e, "flags"));
    assert_int_equal(count_type(evs, "mail.new", &e), 1);
    assert_string_equal(sh_val_get_str(e, "subject", NULL), "Fresh");
    assert_int_equal(sh_val_int(sh_val_get(e, "uid")), MESSAGES + 1);
    assert_int_equal(count_type(evs, "folder.counts", &e), 1);
    assert_int_equal(sh_val_int(sh_val_get(e, "total")), MESSAGES);
    assert_int_equal(sh_val_int(sh_val_get(e, "unread")), MESSAGES - 1);
    /* folder.counts comes after the changes it counts. */
    assert_string_equal(sh_val_get_str(sh_val_at(evs, sh_val_len(evs) - 1), "type", NULL),
                        "folder.counts");
    sh_val_free(log);
    sh_val *drain = sh_val_new_array();
    assert_int_equal(published(drain), 4);
    sh_val_free(drain);
}

/* sync.status is logged when it changes, not at every run. */
static void test_status(void **state)
{
    (void)state;
    sh_error err;
    assert_int_equal(sync_evlog_status(ST, pub, &env, "s1", "syncing", NULL, &err), SH_OK);
    assert_int_equal(sync_evlog_status(ST, pub, &env, "s1", "syncing", NULL, &err), SH_OK);
    assert_int_equal(sync_evlog_status(ST, pub, &env, "s1", "error", "boom", &err), SH_OK);
    assert_int_equal(sync_evlog_status(ST, pub, &env, "s1", "error", "other", &err), SH_OK);
    assert_int_equal(sync_evlog_status(ST, pub, &env, "s1", "error", "other", &err), SH_OK);
    sh_val *log = read_log("s1", NULL, 100);
    const sh_val *evs = sh_val_get(log, "events");
    assert_int_equal(sh_val_len(evs), 3);
    const sh_val *e = sh_val_at(evs, 0);
    assert_string_equal(sh_val_get_str(e, "type", NULL), "sync.status");
    assert_string_equal(sh_val_get_str(e, "syncStatus", NULL), "syncing");
    assert_int_equal(sh_val_type_of(sh_val_get(e, "errorMessage")), SH_VAL_NIL);
    e = sh_val_at(evs, 2);
    assert_string_equal(sh_val_get_str(e, "syncStatus", NULL), "error");
    assert_string_equal(sh_val_get_str(e, "errorMessage", NULL), "other");
    sh_val_free(log);
    sh_val *pubs = sh_val_new_array();
    assert_int_equal(published(pubs), 3);
    sh_val_free(pubs);
}

static void add_n(const sync_env *e, const char *acct, int n)
{
    sh_error err;
    for (int i = 0; i < n; i++) {
        sh_val *f = sh_val_new_map();
        sh_val_set_cstr(f, "uid", sh_val_new_int(i));
        const char *type = SYNC_EV_MAIL_REMOVED;
        assert_int_equal(sync_evlog_add(ST, NULL, e, acct, &type, &f, 1, &err), SH_OK);
        sh_val_free(f);
    }
}

/* The log keeps about MAIL_EVENTS_MAX_LEN entries (whole stream nodes of
 * 5 go); a read after a trimmed id is a reset, one after a kept id is not. */
static void test_cap_length(void **state)
{
    (void)state;
    sync_env small = env;
    small.events_max_len = 10;
    add_n(&small, "c1", 1);
    sh_val *log = read_log("c1", NULL, 10);
    char oldest[48];
    snprintf(oldest, sizeof oldest, "%s",
             sh_val_get_str(sh_val_at(sh_val_get(log, "events"), 0), "id", NULL));
    sh_val_free(log);
    add_n(&small, "c1", 199);
    long long len = xlen("c1");
    assert_true(len >= 10 && len <= 15);
    log = read_log("c1", oldest, 100);
    assert_true(sh_val_bool(sh_val_get(log, "reset")));
    assert_int_equal(sh_val_len(sh_val_get(log, "events")), 0);
    sh_val_free(log);
    /* From the oldest kept on: every later one, not a reset. */
    log = read_log("c1", NULL, 100);
    const sh_val *evs = sh_val_get(log, "events");
    assert_int_equal((long long)sh_val_len(evs), len);
    assert_int_equal(sh_val_int(sh_val_get(sh_val_at(evs, len - 1), "uid")), 198);
    char kept[48];
    snprintf(kept, sizeof kept, "%s", sh_val_get_str(sh_val_at(evs, 0), "id", NULL));
    sh_val_free(log);
    log = read_log("c1", kept, 100);
    assert_false(sh_val_bool(sh_val_get(log, "reset")));
    assert_int_equal((long long)sh_val_len(sh_val_get(log, "events")), len - 1);
    sh_val_free(log);
}

/* Entries older than MAIL_EVENTS_MAX_AGE_SECONDS go at the next append. */
static void test_cap_age(void **state)
{
    (void)state;
    sync_env brief = env;
    brief.events_max_age_s = 1;
    add_n(&brief, "g1", 10); /* two full nodes */
    assert_int_equal(xlen("g1"), 10);
    tf_sleep_ms(1200);
    add_n(&brief, "g1", 1);
    assert_int_equal(xlen("g1"), 1);
    sh_val *log = read_log("g1", "1-0", 10);
    assert_true(sh_val_bool(sh_val_get(log, "reset")));
    sh_val_free(log);
}

static int op_read(sh_val *args, sh_val **out, char *msg, size_t len)
{
    const sh_rpc_op *o = sync_ops;
    while (o->name && strcmp(o->name, "events.read") != 0)
        o++;
    assert_non_null(o->name);
    sh_worker w = {.store = ST, .env = &env};
    sh_error err;
    sh_error_clear(&err);
    *out = NULL;
    int rc = o->fn(&w, args, out, &err);
    snprintf(msg, len, "%s", err.msg);
    sh_val_free(args);
    return rc;
}

static sh_val *read_args(const char *acct, sh_val *after, sh_val *count)
{
    sh_val *a = sh_val_new_map();
    sh_val_set_cstr(a, "accountId", sh_val_new_cstr(acct));
    if (after)
        sh_val_set_cstr(a, "after", after);
    if (count)
        sh_val_set_cstr(a, "count", count);
    return a;
}

/* events.read: pages in order from an id, counts and ids refused, an
 * account without a log. */
static void test_read_op(void **state)
{
    (void)state;
    add_n(&env, "r1", 12);
    sh_val *out = NULL;
    char msg[256];
    assert_int_equal(op_read(read_args("r1", NULL, sh_val_new_int(5)), &out, msg, sizeof msg),
                     SH_OK);
    const sh_val *evs = sh_val_get(out, "events");
    assert_int_equal(sh_val_len(evs), 5);
    char after[48];
    snprintf(after, sizeof after, "%s", sh_val_get_str(sh_val_at(evs, 4), "id", NULL));
    sh_val_free(out);
    /* After the fifth: the other seven, in order; a count as text too. */
    assert_int_equal(op_read(read_args("r1", sh_val_new_cstr(after), sh_val_new_cstr("100")), &out,
                             msg, sizeof msg),
                     SH_OK);
    evs = sh_val_get(out, "events");
    assert_int_equal(sh_val_len(evs), 7);
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(sh_val_int(sh_val_get(sh_val_at(evs, i), "uid")), 5 + (long long)i);
    assert_false(sh_val_bool(sh_val_get(out, "reset")));
    assert_string_equal(sh_val_get_str(out, "lastId", NULL),
                        sh_val_get_str(sh_val_at(evs, 6), "id", NULL));
    sh_val_free(out);
    /* An id as milliseconds alone means <ms>-0. */
    char ms[32];
    snprintf(ms, sizeof ms, "%.*s", (int)(strchr(after, '-') - after), after);
    assert_int_equal(op_read(read_args("r1", sh_val_new_cstr(ms), NULL), &out, msg, sizeof msg),
                     SH_OK);
    assert_true(sh_val_len(sh_val_get(out, "events")) >= 7);
    sh_val_free(out);

    static const char *const bad_ids[] = {"x", "1-", "-1", "1-2-3", "12345678901234567890", ""};
    for (size_t i = 0; i + 1 < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        assert_int_equal(
            op_read(read_args("r1", sh_val_new_cstr(bad_ids[i]), NULL), &out, msg, sizeof msg),
            SH_EINVAL);
        assert_non_null(strstr(msg, "event id"));
    }
    assert_int_equal(op_read(read_args("r1", sh_val_new_int(5), NULL), &out, msg, sizeof msg),
                     SH_EINVAL);
    assert_int_equal(op_read(read_args("r1", NULL, sh_val_new_int(0)), &out, msg, sizeof msg),
                     SH_EINVAL);
    assert_int_equal(op_read(read_args("r1", NULL, sh_val_new_int(1001)), &out, msg, sizeof msg),
                     SH_EINVAL);
    assert_int_equal(op_read(read_args("a{b", NULL, NULL), &out, msg, sizeof msg), SH_EINVAL);

    /* No log: nothing, and a reset for a client that saw some. */
    assert_int_equal(op_read(read_args("none", NULL, NULL), &out, msg, sizeof msg), SH_OK);
    assert_int_equal(sh_val_len(sh_val_get(out, "events")), 0);
    assert_false(sh_val_bool(sh_val_get(out, "reset")));
    assert_string_equal(sh_val_get_str(out, "lastId", NULL), "");
    sh_val_free(out);
    assert_int_equal(
        op_read(read_args("none", sh_val_new_cstr("5-0"), NULL), &out, msg, sizeof msg), SH_OK);
    assert_true(sh_val_bool(sh_val_get(out, "reset")));
    sh_val_free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_sync_changes, each), cmocka_unit_test_setup(test_status, each),
        cmocka_unit_test_setup(test_cap_length, each),   cmocka_unit_test_setup(test_cap_age, each),
        cmocka_unit_test_setup(test_read_op, each),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
