/* test_store.c - the Redis store against a private redis-server: commands
 * with binary arguments, pipelines, commands sent ahead of their replies
 * (sh_store_send / sh_store_recv) and the misuses they refuse, numbers
 * read from string replies (sh_reply_ll), scripts reloaded after SCRIPT
 * FLUSH, and a server lost between a send and its replies (SH_EUNAVAIL,
 * then recovery when it returns). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <string.h>

#include "fixture.h"
#include "shared/store.h"

static tf_redis redis;
static sh_store *st;

static sh_script script_incr = SH_SCRIPT("incr_by_two", "return redis.call('INCRBY', KEYS[1], 2)");

static int setup(void **state)
{
    if (tf_redis_start(&redis, 0) != 0)
        return -1;
    sh_redis_url url;
    sh_error err;
    if (sh_redis_url_parse(redis.url, &url, &err) || sh_store_new(&url, NULL, &st, &err))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    sh_store_free(st);
    tf_redis_stop(&redis);
    return 0;
}

static sh_cmd *cmd2(const char *name, const char *a)
{
    sh_cmd *c = sh_cmd_new(name);
    sh_cmd_str(c, a);
    return c;
}

static void check_string(sh_reply *r, const void *want, size_t len)
{
    size_t got = 0;
    assert_int_equal(sh_reply_kind(r), SH_REPLY_STRING);
    const char *s = sh_reply_string(r, &got);
    assert_int_equal(got, len);
    assert_memory_equal(s, want, len);
}

/* Arguments holding NUL, CR LF and the protocol's markers, and an empty
 * one, go through unchanged; many arguments grow a command's buffers. */
static void test_binary_arguments_and_pipeline(void **state)
{
    static const char bin[] = "a\0b\r\n$5\r\n*1\r\n\xff";
    sh_cmd *cmds[3];
    cmds[0] = sh_cmd_new("HSET");
    sh_cmd_str(cmds[0], "h");
    for (int i = 0; i < 100; i++) {
        sh_cmd_fmt(cmds[0], "f%d", i);
        sh_cmd_arg(cmds[0], bin, sizeof bin - 1);
    }
    sh_cmd_str(cmds[0], "empty");
    sh_cmd_arg(cmds[0], "", 0);
    cmds[1] = sh_cmd_new("HGET");
    sh_cmd_str(cmds[1], "h");
    sh_cmd_str(cmds[1], "f99");
    cmds[2] = sh_cmd_new("HGET");
    sh_cmd_str(cmds[2], "h");
    sh_cmd_str(cmds[2], "empty");
    sh_reply *out[3];
    sh_error err;
    assert_int_equal(sh_store_pipeline(st, cmds, 3, out, &err), SH_OK);
    assert_int_equal(sh_reply_kind(out[0]), SH_REPLY_INTEGER);
    assert_int_equal(sh_reply_integer(out[0]), 101);
    check_string(out[1], bin, sizeof bin - 1);
    check_string(out[2], "", 0);
    for (int i = 0; i < 3; i++) {
        sh_reply_free(out[i]);
        sh_cmd_free(cmds[i]);
    }
}

/* Sent ahead, read later; nothing else may use the store meanwhile. */
static void test_send_then_recv(void **state)
{
    sh_error err;
    sh_cmd *cmds[3] = {cmd2("INCR", "n"), cmd2("INCR", "n"), cmd2("LPUSH", "n")};
    sh_cmd_str(cmds[2], "x"); /* WRONGTYPE: an error reply, not a failure */
    assert_int_equal(sh_store_send(st, cmds, 3, &err), SH_OK);

    sh_cmd *other = cmd2("GET", "n");
    sh_reply *r = NULL;
    assert_int_equal(sh_store_run(st, other, &r, &err), SH_EINTERNAL);
    assert_int_equal(sh_store_send(st, &other, 1, &err), SH_EINTERNAL);
    sh_reply *out[3];
    assert_int_equal(sh_store_recv(st, out, 2, &err), SH_EINTERNAL);

    assert_int_equal(sh_store_recv(st, out, 3, &err), SH_OK);
    assert_int_equal(sh_reply_integer(out[0]), 1);
    assert_int_equal(sh_reply_integer(out[1]), 2);
    assert_int_equal(sh_reply_kind(out[2]), SH_REPLY_ERROR);
    for (int i = 0; i < 3; i++) {
        sh_reply_free(out[i]);
        sh_cmd_free(cmds[i]);
    }
    /* The store is free again. */
    assert_int_equal(sh_store_run(st, other, &r, &err), SH_OK);
    check_string(r, "2", 1);
    sh_reply_free(r);
    sh_cmd_free(other);

    /* Scripts are not sent ahead (their NOSCRIPT reply needs a resend). */
    sh_cmd *ev = sh_cmd_new_eval(&script_incr, 1);
    sh_cmd_str(ev, "s");
    assert_int_equal(sh_store_send(st, &ev, 1, &err), SH_EINVAL);
    sh_cmd_free(ev);
}

/* sh_reply_ll reads the numbers Redis hands back as strings; what holds
 * none (a missing field, an integer reply, an empty or overlong string)
 * reads as 0, absent. */
static void test_reply_numbers(void **state)
{
    sh_error err;
    sh_cmd *set = cmd2("HSET", "nums");
    const char *const fields[] = {"n",     "-1234567890123",
                                  "lead",  "42abc",
                                  "empty", "",
                                  "long",  "1234567890123456789012345678901234"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        sh_cmd_str(set, fields[i]);
    sh_reply *r = NULL;
    assert_int_equal(sh_store_run(st, set, &r, &err), SH_OK);
    sh_reply_free(r);
    sh_cmd_free(set);
    sh_cmd *get = cmd2("HMGET", "nums");
    const char *const names[] = {"n", "lead", "empty", "long", "missing"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        sh_cmd_str(get, names[i]);
    assert_int_equal(sh_store_run(st, get, &r, &err), SH_OK);
    sh_cmd_free(get);
    bool present = false;
    assert_int_equal(sh_reply_ll(sh_reply_elem(r, 0), &present), -1234567890123LL);
    assert_true(present);
    assert_int_equal(sh_reply_ll(sh_reply_elem(r, 1), &present), 42);
    assert_true(present);
    for (size_t i = 2; i < 5; i++) {
        present = true;
        assert_int_equal(sh_reply_ll(sh_reply_elem(r, i), &present), 0);
        assert_false(present);
    }
    assert_int_equal(sh_reply_ll(sh_reply_elem(r, 0), NULL), -1234567890123LL);
    sh_reply_free(r);
    sh_cmd *len = cmd2("HLEN", "nums");
    assert_int_equal(sh_store_run(st, len, &r, &err), SH_OK);
    sh_cmd_free(len);
    assert_int_equal(sh_reply_kind(r), SH_REPLY_INTEGER);
    assert_int_equal(sh_reply_ll(r, &present), 0);
    assert_false(present);
    sh_reply_free(r);
    assert_int_equal(sh_reply_ll(NULL, NULL), 0);
}

/* A script flushed from the server is sent again as EVAL. */
static void test_script_after_flush(void **state)
{
    sh_error err;
    for (int round = 0; round < 2; round++) {
        sh_cmd *ev = sh_cmd_new_eval(&script_incr, 1);
        sh_cmd_str(ev, "s");
        sh_reply *r = NULL;
        assert_int_equal(sh_store_run(st, ev, &r, &err), SH_OK);
        assert_int_equal(sh_reply_integer(r), 2 * (round + 1));
        sh_reply_free(r);
        sh_cmd_free(ev);
        sh_cmd *flush = cmd2("SCRIPT", "FLUSH");
        assert_int_equal(sh_store_run(st, flush, &r, &err), SH_OK);
        sh_reply_free(r);
        sh_cmd_free(flush);
    }
}

/* The server dies between a send and its replies: the replies are lost,
 * and as INCR is a write its outcome is unknown (SH_EUNKNOWN); the store
 * works again once a server is back. */
static void test_server_lost_before_the_replies(void **state)
{
    sh_error err;
    sh_cmd *c = cmd2("INCR", "lost");
    /* BLPOP keeps its reply back until the server is gone. */
    sh_cmd *cmds[2] = {c, cmd2("BLPOP", "never")};
    sh_cmd_str(cmds[1], "30");
    assert_int_equal(sh_store_send(st, cmds, 2, &err), SH_OK);
    sh_cmd_free(cmds[1]);
    tf_sleep_ms(100);
    int port = redis.port;
    tf_redis_kill(&redis);
    sh_reply *r[2] = {NULL, NULL};
    assert_int_equal(sh_store_recv(st, r, 2, &err), SH_EUNKNOWN);
    assert_non_null(strstr(err.msg, "outcome unknown"));
    assert_null(r[0]);
    assert_null(r[1]);
    tf_redis_stop(&redis);
    assert_int_equal(tf_redis_start(&redis, port), 0);
    int rc = SH_EUNAVAIL;
    sh_reply *one = NULL;
    for (int i = 0; i < 100 && rc != SH_OK; i++) {
        rc = sh_store_run(st, c, &one, &err);
        if (rc != SH_OK)
            tf_sleep_ms(50);
    }
    assert_int_equal(rc, SH_OK);
    assert_int_equal(sh_reply_integer(one), 1);
    sh_reply_free(one);
    sh_cmd_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_arguments_and_pipeline),
        cmocka_unit_test(test_send_then_recv),
        cmocka_unit_test(test_reply_numbers),
        cmocka_unit_test(test_script_after_flush),
        cmocka_unit_test(test_server_lost_before_the_replies),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
