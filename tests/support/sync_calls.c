/* sync_calls.c - what the integration tests ask of a running sync stack:
 * accounts, syncs awaited to their end, messages read back through the
 * sync-worker, keys counted in Redis, and the groups of tests that each
 * run on a stack of their own. A reply that is not what a test can go on
 * from fails the running cmocka test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls.h"
#include "sync_stack.h"

/* How long to wait for a run to complete, and then for the account to
 * settle: SYNC_POLLS times SYNC_POLL_MS (2 minutes) each. */
#define SYNC_POLLS   2400
#define SYNC_POLL_MS 50

int tf_stack_call(sh_rpc_client *c, const char *op, sh_val *args, sh_val **out)
{
    sh_error err;
    int rc = tf_call(c, op, args, 10000, out, &err);
    if (rc != SH_OK)
        fprintf(stderr, "%s: %s\n", op, err.msg);
    return rc;
}

void tf_stack_create_account(tf_stack *s, const tf_account *acct, char *id, size_t len)
{
    const char *security = acct->security ? acct->security : "none";
    int port = acct->port                     ? acct->port
               : strcmp(security, "tls") == 0 ? s->dove.tls_port
                                              : s->dove.port;
    sh_val *a = sh_val_new_map(), *res = NULL;
    tf_put_str(a, "emailAddress", "test@example.com");
    tf_put_str(a, "imapHost", "127.0.0.1");
    sh_val_set_cstr(a, "imapPort", sh_val_new_int(port));
    tf_put_str(a, "security", security);
    if (acct->verify != TF_VERIFY_UNSET)
        sh_val_set_cstr(a, "tlsVerify", sh_val_new_bool(acct->verify == TF_VERIFY_ON));
    tf_put_str(a, "username", acct->user ? acct->user : "test");
    tf_put_str(a, "password", acct->password ? acct->password : "secret");
    if (acct->folder) {
        sh_val *f = sh_val_new_array();
        sh_val_push(f, sh_val_new_cstr(acct->folder));
        sh_val_set_cstr(a, "folders", f);
    }
    if (acct->unwatched)
        sh_val_set_cstr(a, "watchFolders", sh_val_new_array());
    assert_int_equal(tf_stack_call(s->coord, "account.create", a, &res), SH_OK);
    const char *got = sh_val_get_str(res, "id", NULL);
    assert_non_null(got);
    snprintf(id, len, "%s", got);
    sh_val_free(res);
}

void tf_stack_account_status(tf_stack *s, const char *id, char *status, size_t slen, char *msg,
                             size_t mlen)
{
    sh_val *res = NULL;
    assert_int_equal(tf_stack_call(s->coord, "account.get", tf_id_args(id), &res), SH_OK);
    const char *st = sh_val_get_str(res, "syncStatus", NULL);
    const char *em = sh_val_get_str(res, "errorMessage", NULL);
    snprintf(status, slen, "%s", st ? st : "");
    if (msg)
        snprintf(msg, mlen, "%s", em ? em : "");
    sh_val_free(res);
}

void tf_stack_sync_now(tf_stack *s, const char *id, char *progress_id, size_t len)
{
    sh_val *res = NULL;
    assert_int_equal(tf_stack_call(s->coord, "account.sync_now", tf_id_args(id), &res), SH_OK);
    const char *p = sh_val_get_str(res, "progressId", NULL);
    assert_non_null(p);
    if (progress_id)
        snprintf(progress_id, len, "%s", p);
    sh_val_free(res);
}

void tf_stack_wait_settled(tf_stack *s, const char *id, const char *want, char *msg, size_t mlen)
{
    char status[32] = "", em[1024] = "";
    for (int i = 0; i < SYNC_POLLS; i++) {
        tf_stack_account_status(s, id, status, sizeof status, em, sizeof em);
        if (strcmp(status, "queued") && strcmp(status, "syncing"))
            break;
        tf_sleep_ms(SYNC_POLL_MS);
    }
    if (strcmp(status, want))
        fprintf(stderr, "sync ended %s: %s\n", status, em);
    assert_string_equal(status, want);
    if (msg)
        snprintf(msg, mlen, "%s", em);
}

/* calls_wait_complete waits until the progress record says complete. */
static void calls_wait_complete(tf_stack *s, const char *progress_id)
{
    bool complete = false;
    for (int i = 0; i < SYNC_POLLS && !complete; i++) {
        sh_val *args = tf_id_args(progress_id), *res = NULL;
        sh_error err;
        int rc = sh_rpc_call(s->progress, "progress.get", args, 5000, &res, &err);
        sh_val_free(args);
        complete = rc == SH_OK && sh_val_bool(sh_val_get(res, "complete"));
        sh_val_free(res);
        if (!complete)
            tf_sleep_ms(SYNC_POLL_MS);
    }
    if (!complete)
        fprintf(stderr, "progress %s never complete\n", progress_id);
    assert_true(complete);
}

void tf_stack_sync_and_wait(tf_stack *s, const char *id, const char *want, tf_sync_end *end)
{
    tf_sync_end mine;
    if (!end)
        end = &mine;
    tf_stack_sync_now(s, id, end->progress_id, sizeof end->progress_id);
    calls_wait_complete(s, end->progress_id);
    tf_stack_wait_settled(s, id, want, end->error, sizeof end->error);
}

sh_val *tf_stack_list_all(tf_stack *s, const char *id, const char *folder, int limit)
{
    sh_val *all = sh_val_new_array();
    int64_t cursor = 0;
    for (int page = 0; page < 100; page++) {
        sh_val *a = sh_val_new_map(), *res = NULL;
        tf_put_str(a, "accountId", id);
        if (folder)
            tf_put_str(a, "folder", folder);
        sh_val_set_cstr(a, "limit", sh_val_new_int(limit));
        if (cursor)
            sh_val_set_cstr(a, "cursor", sh_val_new_int(cursor));
        assert_int_equal(tf_stack_call(s->worker, "messages.list", a, &res), SH_OK);
        const sh_val *msgs = sh_val_get(res, "messages");
        for (size_t i = 0; i < sh_val_len(msgs); i++)
            sh_val_push(all, sh_val_clone(sh_val_at(msgs, i)));
        const sh_val *next = sh_val_get(res, "nextCursor");
        cursor = sh_val_type_of(next) == SH_VAL_INT ? sh_val_int(next) : 0;
        sh_val_free(res);
        if (!cursor)
            break;
    }
    return all;
}

sh_val *tf_stack_get_message(tf_stack *s, const char *id, int64_t uid)
{
    sh_val *a = sh_val_new_map(), *res = NULL;
    tf_put_str(a, "accountId", id);
    sh_val_set_cstr(a, "uid", sh_val_new_int(uid));
    assert_int_equal(tf_stack_call(s->worker, "messages.get", a, &res), SH_OK);
    return res;
}

bool tf_has_flag(const sh_val *m, const char *flag)
{
    const sh_val *flags = sh_val_get(m, "flags");
    for (size_t i = 0; i < sh_val_len(flags); i++)
        if (strcmp(sh_val_str(sh_val_at(flags, i), NULL), flag) == 0)
            return true;
    return false;
}

int tf_msg_number(const sh_val *m)
{
    const char *mid = sh_val_get_str(m, "messageId", NULL);
    int n;
    if (!mid || sscanf(mid, "<msg%d@example.test>", &n) != 1)
        return -1;
    return n;
}

void tf_check_envelope(const sh_val *m, int n)
{
    char want[128];
    snprintf(want, sizeof want, "Message %d", n);
    assert_string_equal(sh_val_get_str(m, "subject", NULL), want);
    snprintf(want, sizeof want, "Sender %d <sender%d@example.com>", n, n);
    assert_string_equal(sh_val_get_str(m, "from", NULL), want);
    assert_string_equal(sh_val_get_str(m, "to", NULL), "Test User <test@example.com>");
    assert_true(sh_val_int(sh_val_get(m, "size")) > 100);
}

/* calls_redis runs c (taken) and returns the reply (caller frees). */
static sh_reply *calls_redis(tf_stack *s, sh_cmd *c)
{
    sh_reply *r = NULL;
    sh_error err;
    assert_int_equal(sh_store_call(s->store, c, &r, &err), SH_OK);
    return r;
}

long long tf_stack_redis_int(tf_stack *s, sh_cmd *c)
{
    sh_reply *r = calls_redis(s, c);
    long long v = sh_reply_kind(r) == SH_REPLY_INTEGER ? sh_reply_integer(r) : 0;
    if (sh_reply_kind(r) == SH_REPLY_STRING) {
        const char *str = sh_reply_string(r, NULL);
        v = str ? atoll(str) : 0;
    }
    sh_reply_free(r);
    return v;
}

long long tf_stack_hget_ll(tf_stack *s, const char *key, const char *field)
{
    sh_cmd *c = sh_cmd_new("HGET");
    sh_cmd_str(c, key);
    sh_cmd_str(c, field);
    return tf_stack_redis_int(s, c);
}

long long tf_stack_count_keys(tf_stack *s, const char *pattern)
{
    sh_cmd *c = sh_cmd_new("KEYS");
    sh_cmd_str(c, pattern);
    sh_reply *r = calls_redis(s, c);
    long long n = (long long)sh_reply_count(r);
    sh_reply_free(r);
    return n;
}

int tf_stack_worker_log_count(const tf_stack *s, ...)
{
    char path[400];
    snprintf(path, sizeof path, "%s/sync-worker-%d.log", s->redis.dir, s->workers_started - 1);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot read %s\n", path);
        return -1;
    }
    int count = 0;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        va_list ap;
        va_start(ap, s);
        bool all = true;
        for (const char *want = va_arg(ap, const char *); want && all;
             want = va_arg(ap, const char *))
            all = strstr(line, want) != NULL;
        va_end(ap);
        count += all;
    }
    fclose(f);
    return count;
}

int tf_stack_http(tf_stack *s, const char *method, const char *path, char *body, size_t len)
{
    char cmd[800];
    snprintf(cmd, sizeof cmd,
             "curl -s -m 10 -o /dev/stdout -w '\\n%%{http_code}' -X %s 'http://127.0.0.1:%d%s'",
             method, s->http_port, path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(body, 1, len - 1, p);
    body[n] = '\0';
    pclose(p);
    char *nl = strrchr(body, '\n');
    assert_non_null(nl);
    *nl = '\0';
    return atoi(nl + 1);
}

int tf_stack_account_http(tf_stack *s, const char *id, const char *method, const char *rest,
                          char *body, size_t len)
{
    char path[600];
    snprintf(path, sizeof path, "/api/accounts/%s%s", id, rest);
    return tf_stack_http(s, method, path, body, len);
}

static const void *calls_group;

int tf_stack_run_groups(const void *groups, size_t n, size_t stride, int (*setup)(void **state))
{
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        const tf_stack_group *g = (const void *)((const char *)groups + i * stride);
        calls_group = g;
        failed += _cmocka_run_group_tests(g->name, g->tests, g->count, setup, tf_stack_teardown);
    }
    calls_group = NULL;
    return failed;
}

const void *tf_stack_group_current(void)
{
    return calls_group;
}

void tf_stack_expect_bad(const tf_stack *s, int bad)
{
    if (tf_strict_log_count(&s->dove, "BAD ") != bad)
        fail_msg("the strict server answered BAD; see %s.logs/imap.log", s->opts.name);
}
