/* mail_fixture.c - the mail store on a private Redis for the tests of the
 * sync-worker's modules (mail_fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "fixture.h"
#include "keys.h"
#include "mail_fixture.h"
#include "mailstore.h"

int tf_mail_start(tf_mail *m, int command_ms)
{
    memset(m, 0, sizeof *m);
    if (tf_redis_start(&m->redis, 0) != 0)
        return -1;
    sh_redis_url url;
    sh_error err;
    sh_store_opts o = {.connect_timeout_ms = 500, .command_timeout_ms = command_ms};
    if (sh_redis_url_parse(m->redis.url, &url, &err) ||
        sh_store_new(&url, command_ms ? &o : NULL, &m->st, &err)) {
        fprintf(stderr, "store: %s\n", err.msg);
        return -1;
    }
    return 0;
}

void tf_mail_stop(tf_mail *m)
{
    sh_store_free(m->st);
    m->st = NULL;
    tf_redis_stop(&m->redis);
}

static tf_mail mail_the;

int tf_mail_setup(void **state)
{
    (void)state;
    return tf_mail_start(&mail_the, 300);
}

int tf_mail_teardown(void **state)
{
    (void)state;
    tf_mail_stop(&mail_the);
    return 0;
}

int tf_mail_each(void **state)
{
    (void)state;
    tf_mail_flush(mail_the.st);
    return 0;
}

tf_mail *tf_mail_the(void)
{
    return &mail_the;
}

void tf_mail_put(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                 uint32_t uid, const char *flags)
{
    char subject[32];
    snprintf(subject, sizeof subject, "Message %u", (unsigned)uid);
    sync_msg m = {.uid = uid,
                  .flags = flags,
                  .size = 1000 + uid,
                  .internal_date = "2026-01-02T03:04:05Z",
                  .subject = subject,
                  .from = "Sender <s@example.com>",
                  .to = "Test <t@example.com>",
                  .cc = "",
                  .date = "2026-01-02T03:04:05Z",
                  .message_id = "<m@example.test>"};
    sh_cmd *cmds[SYNC_MAIL_PUT_CMDS];
    sh_error err;
    assert_int_equal(sync_mail_put_cmds(acct, folder, uidvalidity, &m, cmds), SH_OK);
    assert_int_equal(sync_mail_run(st, cmds, SYNC_MAIL_PUT_CMDS, &err), SH_OK);
}

void tf_mail_folder(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                    uint32_t uidnext, uint64_t modseq)
{
    sync_folder_state s = {.uidvalidity = uidvalidity,
                           .uidnext = uidnext,
                           .highestmodseq = modseq,
                           .last_full_check = 1};
    sh_error err;
    assert_int_equal(sync_mail_state_set(st, acct, folder, &s, &err), SH_OK);
}

long long tf_mail_int(sh_store *st, sh_cmd *c)
{
    sh_reply *r = NULL;
    sh_error err;
    assert_int_equal(sh_store_call(st, c, &r, &err), SH_OK);
    long long v = -1;
    size_t len;
    if (sh_reply_kind(r) == SH_REPLY_INTEGER) {
        v = sh_reply_integer(r);
    } else if (sh_reply_kind(r) == SH_REPLY_STRING) {
        char buf[32];
        const char *s = sh_reply_string(r, &len);
        snprintf(buf, sizeof buf, "%.*s", (int)len, s);
        v = strtoll(buf, NULL, 10);
    }
    sh_reply_free(r);
    return v;
}

sh_cmd *tf_mail_cmd1(const char *name, const char *arg)
{
    sh_cmd *c = sh_cmd_new(name);
    sh_cmd_str(c, arg);
    return c;
}

int tf_mail_hget(sh_store *st, const char *key, const char *field, char *buf, size_t len)
{
    sh_cmd *c = tf_mail_cmd1("HGET", key);
    sh_cmd_str(c, field);
    sh_reply *r = NULL;
    sh_error err;
    assert_int_equal(sh_store_call(st, c, &r, &err), SH_OK);
    size_t n = 0;
    const char *s = sh_reply_kind(r) == SH_REPLY_STRING ? sh_reply_string(r, &n) : NULL;
    snprintf(buf, len, "%.*s", s ? (int)n : 0, s ? s : "");
    sh_reply_free(r);
    return s ? 0 : -1;
}

long long tf_mail_keys(sh_store *st, const char *acct)
{
    char pattern[SYNC_KEY_MAX];
    assert_true(sync_key_account_pattern(pattern, sizeof pattern, acct) > 0);
    sh_cmd *c = tf_mail_cmd1("EVAL", "return #redis.call('KEYS', ARGV[1])");
    sh_cmd_str(c, "0");
    sh_cmd_str(c, pattern);
    return tf_mail_int(st, c);
}

void tf_mail_flush(sh_store *st)
{
    sh_reply *r = NULL;
    sh_error err;
    assert_int_equal(sh_store_call(st, sh_cmd_new("FLUSHALL"), &r, &err), SH_OK);
    sh_reply_free(r);
}

int tf_mail_events(sh_store *st, sh_pub **pub, sh_sub **sub)
{
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", tf_free_port());
    sh_error err;
    if (sh_pub_new(url, pub, &err) || sh_sub_new(url, 0, sub, &err) ||
        sh_sub_subscribe(*sub, SH_TOPIC_MAIL_EVENT))
        return -1;
    /* Until the subscriber is connected, events are lost. */
    for (int i = 0; i < 100; i++) {
        const char *type = "probe";
        sh_val *none = sh_val_new_map();
        sync_evlog_add(st, *pub, NULL, "probe", &type, &none, 1, &err);
        sh_val_free(none);
        char *topic = NULL;
        sh_val *p = NULL;
        int ms = 100;
        while (sh_sub_recv(*sub, ms, &topic, &p) == SH_OK) {
            free(topic);
            sh_val_free(p);
            ms = 300;
        }
        if (ms == 300)
            return 0;
    }
    fprintf(stderr, "the subscriber never connected\n");
    return -1;
}

sh_val *tf_mail_account(int port)
{
    sh_val *a = sh_val_new_map();
    sh_val_set_cstr(a, "imapHost", sh_val_new_cstr("127.0.0.1"));
    sh_val_set_cstr(a, "imapPort", sh_val_new_int(port));
    sh_val_set_cstr(a, "security", sh_val_new_cstr("none"));
    sh_val_set_cstr(a, "username", sh_val_new_cstr("test"));
    return a;
}

long long tf_mail_xlen(sh_store *st, const char *acct)
{
    char key[SYNC_KEY_MAX];
    assert_true(sync_key_events(key, sizeof key, acct) > 0);
    return tf_mail_int(st, tf_mail_cmd1("XLEN", key));
}

void tf_mail_sync(sync_run *run, int port)
{
    sh_val *a = tf_mail_account(port);
    sh_error err;
    int rc = sync_account(run, a, "secret", &err);
    if (rc)
        fprintf(stderr, "sync: %s\n", err.msg);
    assert_int_equal(rc, SH_OK);
    sh_val_free(a);
}
