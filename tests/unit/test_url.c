/* test_url.c - REDIS_URL / KV_URL parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <string.h>

#include "shared/store.h"

static sh_redis_url parse_ok(const char *s)
{
    sh_redis_url u;
    sh_error err;
    int rc = sh_redis_url_parse(s, &u, &err);
    if (rc != SH_OK)
        fail_msg("%s: %s", s, err.msg);
    return u;
}

static void test_tcp_forms(void **state)
{
    sh_redis_url u = parse_ok("redis://localhost");
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_false(u.tls);

    u = parse_ok("redis://default:s3cr%40t@cache.example:6380/2");
    assert_string_equal(u.user, "default");
    assert_string_equal(u.password, "s3cr@t");
    assert_string_equal(u.host, "cache.example");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);

    u = parse_ok("redis://:onlypass@10.0.0.1");
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "onlypass");

    u = parse_ok("redis://lonepass@h");
    assert_string_equal(u.password, "lonepass");

    u = parse_ok("rediss://u:p@[::1]:7000/");
    assert_true(u.tls);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);

    u = parse_ok("redis://h:1/3?password=x%2Fy");
    assert_int_equal(u.db, 3);
    assert_string_equal(u.password, "x/y");
}

static void test_unix_forms(void **state)
{
    sh_redis_url u = parse_ok("unix:///run/redis/redis.sock");
    assert_true(u.unix_socket);
    assert_string_equal(u.path, "/run/redis/redis.sock");
    u = parse_ok("unix:///tmp/r.sock?db=4&password=pw&user=svc");
    assert_int_equal(u.db, 4);
    assert_string_equal(u.password, "pw");
    assert_string_equal(u.user, "svc");
    u = parse_ok("redis+unix:///tmp/r.sock");
    assert_string_equal(u.path, "/tmp/r.sock");
}

static void expect_bad(const char *s, const char *words)
{
    sh_redis_url u;
    sh_error err;
    assert_int_equal(sh_redis_url_parse(s, &u, &err), SH_EINVAL);
    if (!strstr(err.msg, words))
        fail_msg("%s: \"%s\" lacks \"%s\"", s, err.msg, words);
}

static void test_bad_urls(void **state)
{
    expect_bad("", "empty");
    expect_bad("http://x", "must start with");
    expect_bad("redis://", "no host");
    expect_bad("redis://h:0", "port");
    expect_bad("redis://h:99999", "port");
    expect_bad("redis://h:12ab", "port");
    expect_bad("redis://h/x", "database");
    expect_bad("redis://[::1", "IPv6");
    expect_bad("redis://u:p%zz@h", "escape");
    expect_bad("unix://relative.sock", "absolute");
    expect_bad("unix:///s.sock?db=-1", "db");
    expect_bad("unix:///s.sock?color=red", "unknown query");
}

static void test_display_masks_password(void **state)
{
    sh_redis_url u = parse_ok("redis://user:hunter2@h:1/0");
    char buf[256];
    sh_redis_url_display(&u, buf, sizeof buf);
    assert_null(strstr(buf, "hunter2"));
    assert_non_null(strstr(buf, "user"));
}

/* A primary and its replicas: every host:port kept in order, the first
 * also in host/port; a single host is a list of one. */
static void test_several_hosts(void **state)
{
    sh_redis_url u = parse_ok("redis://svc:pw@10.0.0.1:7000,[::1]:7001,r3/2");
    assert_int_equal(u.nhosts, 3);
    assert_string_equal(u.hosts[0].host, "10.0.0.1");
    assert_int_equal(u.hosts[0].port, 7000);
    assert_string_equal(u.hosts[1].host, "::1");
    assert_int_equal(u.hosts[1].port, 7001);
    assert_string_equal(u.hosts[2].host, "r3");
    assert_int_equal(u.hosts[2].port, 6379);
    assert_string_equal(u.host, "10.0.0.1");
    assert_int_equal(u.port, 7000);
    assert_string_equal(u.user, "svc");
    assert_int_equal(u.db, 2);
    char buf[512];
    sh_redis_url_display(&u, buf, sizeof buf);
    assert_string_equal(buf, "redis://svc:***@10.0.0.1:7000,[::1]:7001,r3:6379/2");
    u = parse_ok("redis://h:1");
    assert_int_equal(u.nhosts, 1);
    assert_string_equal(u.hosts[0].host, "h");
    expect_bad("redis://h:1,", "host 2 of the list is empty");
    expect_bad("redis://h:1,,h:2", "host 2 of the list is empty");
    expect_bad("redis://h:1,h:0", "port");
    expect_bad("redis://a,b,c,d,e,f,g,h,i", "more than 8 hosts");
}

static void test_tls_refused_without_support(void **state)
{
    sh_redis_url u = parse_ok("rediss://h:6380");
    sh_store *s = NULL;
    sh_error err;
    assert_int_equal(sh_store_new(&u, NULL, &s, &err), SH_EINVAL);
    assert_null(s);
    assert_non_null(strstr(err.msg, "TLS"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_forms),     cmocka_unit_test(test_unix_forms),
        cmocka_unit_test(test_bad_urls),      cmocka_unit_test(test_display_masks_password),
        cmocka_unit_test(test_several_hosts), cmocka_unit_test(test_tls_refused_without_support),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
