/* test_cmd.c - Redis commands built with sh_cmd_* and written in the Redis
 * protocol by cmd.c, checked byte for byte without a server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <string.h>

#include "cmd.h"
#include "shared/store.h"

static void expect_resp(const sh_cmd *c, const char *sha, bool body, const char *want, size_t len)
{
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sh__cmd_resp(&b, c, sha, body), SH_OK);
    assert_int_equal(b.len, len);
    assert_memory_equal(b.data, want, len);
    sh_buf_fini(&b);
}

static void test_plain_command(void **state)
{
    (void)state;
    sh_cmd *c = sh_cmd_new("SET");
    assert_int_equal(sh_cmd_str(c, "k"), SH_OK);
    assert_int_equal(sh_cmd_int(c, -42), SH_OK);
    assert_int_equal(sh__cmd_argc(c), 3);
    assert_false(sh__cmd_oom(c));
    assert_null(sh__cmd_script(c));
    static const char want[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n-42\r\n";
    expect_resp(c, NULL, false, want, sizeof want - 1);
    sh_cmd_free(c);
}

static void test_binary_and_empty_arguments(void **state)
{
    (void)state;
    sh_cmd *c = sh_cmd_new("HSET");
    sh_cmd_arg(c, "a\0\r\nb", 5);
    sh_cmd_arg(c, "", 0);
    sh_cmd_fmt(c, "%s:%d", "x", 12);
    static const char want[] = "*4\r\n$4\r\nHSET\r\n$5\r\na\0\r\nb\r\n$0\r\n\r\n$4\r\nx:12\r\n";
    expect_resp(c, NULL, false, want, sizeof want - 1);
    sh_cmd_free(c);
}

static void test_many_arguments_grow(void **state)
{
    (void)state;
    sh_cmd *c = sh_cmd_new("RPUSH");
    char big[1000];
    memset(big, 'z', sizeof big);
    for (int i = 0; i < 100; i++)
        assert_int_equal(sh_cmd_arg(c, big, sizeof big), SH_OK);
    assert_int_equal(sh__cmd_argc(c), 101);
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sh__cmd_resp(&b, c, NULL, false), SH_OK);
    /* "*101\r\n" + "$5\r\nRPUSH\r\n" + 100 x ("$1000\r\n" + 1000 + "\r\n") */
    assert_int_equal(b.len, 6 + 11 + 100 * (7 + 1000 + 2));
    sh_buf_fini(&b);
    sh_cmd_free(c);
}

static sh_script test_script = SH_SCRIPT("t", "return 1");

static void test_script_as_evalsha_and_eval(void **state)
{
    (void)state;
    sh_cmd *c = sh_cmd_new_eval(&test_script, 1);
    sh_cmd_str(c, "key");
    assert_ptr_equal(sh__cmd_script(c), &test_script);
    const char *sha = "0123456789012345678901234567890123456789";
    static const char want[] =
        "*4\r\n$7\r\nEVALSHA\r\n$40\r\n"
        "0123456789012345678901234567890123456789\r\n$1\r\n1\r\n$3\r\nkey\r\n";
    expect_resp(c, sha, false, want, sizeof want - 1);
    static const char body[] = "*4\r\n$4\r\nEVAL\r\n$8\r\nreturn 1\r\n$1\r\n1\r\n$3\r\nkey\r\n";
    expect_resp(c, NULL, true, body, sizeof body - 1);
    sh_cmd_free(c);
}

/* The keys of a NULL-terminated list become the script's keys, counted. */
static void test_script_with_its_keys(void **state)
{
    (void)state;
    const char *const keys[] = {"k1", "key2", NULL};
    sh_cmd *c = sh_cmd_new_eval_keys(&test_script, keys);
    sh_cmd_str(c, "arg");
    assert_ptr_equal(sh__cmd_script(c), &test_script);
    static const char want[] = "*6\r\n$4\r\nEVAL\r\n$8\r\nreturn 1\r\n$1\r\n2\r\n"
                               "$2\r\nk1\r\n$4\r\nkey2\r\n$3\r\narg\r\n";
    expect_resp(c, NULL, true, want, sizeof want - 1);
    sh_cmd_free(c);
    const char *const none[] = {NULL};
    c = sh_cmd_new_eval_keys(&test_script, none);
    static const char bare[] = "*3\r\n$4\r\nEVAL\r\n$8\r\nreturn 1\r\n$1\r\n0\r\n";
    expect_resp(c, NULL, true, bare, sizeof bare - 1);
    sh_cmd_free(c);
}

static void test_null_and_overlong(void **state)
{
    (void)state;
    assert_true(sh__cmd_oom(NULL));
    assert_int_equal(sh_cmd_str(NULL, "x"), SH_ENOMEM);
    sh_cmd *c = sh_cmd_new("GET");
    char fmt[600];
    memset(fmt, 'a', sizeof fmt - 1);
    fmt[sizeof fmt - 1] = '\0';
    /* sh_cmd_fmt has a bounded buffer: too long sticks as out of memory. */
    assert_int_equal(sh_cmd_fmt(c, "%s", fmt), SH_ENOMEM);
    assert_true(sh__cmd_oom(c));
    assert_int_equal(sh_cmd_str(c, "k"), SH_ENOMEM);
    sh_cmd_free(c);
    sh_cmd_free(NULL);
}

/* Which commands the store may send again: reads by name (any case),
 * scripts by their declaration, others when marked. */
static void test_retry_safety(void **state)
{
    (void)state;
    static sh_script plain = SH_SCRIPT("plain", "return 1");
    static sh_script safe = SH_SCRIPT_RETRY_SAFE("safe", "return 1");
    const char *const reads[] = {"GET", "hgetall", "LRANGE", "Scan", "ROLE", NULL};
    const char *const writes[] = {"SET", "INCR", "RPUSH", "DEL", "EVAL", "DEBUG", NULL};
    for (int i = 0; reads[i]; i++) {
        sh_cmd *c = sh_cmd_new(reads[i]);
        assert_true(sh__cmd_retry_safe(c));
        sh_cmd_free(c);
    }
    for (int i = 0; writes[i]; i++) {
        sh_cmd *c = sh_cmd_new(writes[i]);
        assert_false(sh__cmd_retry_safe(c));
        sh_cmd_retry_safe(c);
        assert_true(sh__cmd_retry_safe(c));
        sh_cmd_free(c);
    }
    sh_cmd *c = sh_cmd_new_eval(&plain, 0);
    assert_false(sh__cmd_retry_safe(c));
    sh_cmd_free(c);
    c = sh_cmd_new_eval(&safe, 0);
    assert_true(sh__cmd_retry_safe(c));
    sh_cmd_free(c);
    assert_false(sh__cmd_retry_safe(NULL));
    sh_cmd_retry_safe(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_command),
        cmocka_unit_test(test_binary_and_empty_arguments),
        cmocka_unit_test(test_many_arguments_grow),
        cmocka_unit_test(test_script_as_evalsha_and_eval),
        cmocka_unit_test(test_script_with_its_keys),
        cmocka_unit_test(test_null_and_overlong),
        cmocka_unit_test(test_retry_safety),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
