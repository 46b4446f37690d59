/* test_util.c - util.c: the wall and monotonic clocks, ISO 8601 timestamps
 * and the loopback check that decides which hosts may be used without TLS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "shared/util.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_wall_clock_is_the_epoch_in_ms(void **state)
{
    (void)state;
    /* time() may lag a clock tick behind: a second of slack each side. */
    int64_t before = ((int64_t)time(NULL) - 1) * 1000;
    int64_t now = sh_now_ms();
    int64_t after = ((int64_t)time(NULL) + 2) * 1000;
    assert_true(now >= before && now <= after);
}

static void test_monotonic_clock_advances(void **state)
{
    (void)state;
    int64_t a = sh_mono_ms();
    for (int i = 0; i < 1000; i++) {
        int64_t b = sh_mono_ms();
        assert_true(b >= a);
        a = b;
    }
    int64_t t0 = sh_mono_ms();
    sleep_ms(60);
    int64_t dt = sh_mono_ms() - t0;
    assert_true(dt >= 59 && dt < 5000);
}

static void expect_iso(int64_t ms, const char *want)
{
    char out[SH_ISO_LEN + 8];
    memset(out, '#', sizeof out);
    sh_iso8601(ms, out);
    assert_string_equal(out, want);
    /* Never past SH_ISO_LEN. */
    for (size_t i = SH_ISO_LEN; i < sizeof out; i++)
        assert_int_equal(out[i], '#');
}

static void test_iso8601_known_instants(void **state)
{
    (void)state;
    expect_iso(0, "1970-01-01T00:00:00.000Z");
    expect_iso(1, "1970-01-01T00:00:00.001Z");
    expect_iso(1767225600000, "2026-01-01T00:00:00.000Z");
    expect_iso(1767225600000 + 45296789, "2026-01-01T12:34:56.789Z");
    expect_iso(951868799999, "2000-02-29T23:59:59.999Z"); /* a leap day */
    expect_iso(253402300799999, "9999-12-31T23:59:59.999Z");
    /* Whole seconds before the epoch (dates read from IMAP servers). */
    expect_iso(-86400000, "1969-12-31T00:00:00.000Z");
    expect_iso(-2208988800000, "1900-01-01T00:00:00.000Z");
}

static void test_iso8601_of_now_matches_the_clock(void **state)
{
    (void)state;
    int64_t ms = sh_now_ms();
    char out[SH_ISO_LEN];
    sh_iso8601(ms, out);
    assert_int_equal(strlen(out), SH_ISO_LEN - 1);
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char want[SH_ISO_LEN + 16];
    strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%S", &tm);
    assert_memory_equal(out, want, 19);
    assert_int_equal(out[19], '.');
    assert_int_equal((out[20] - '0') * 100 + (out[21] - '0') * 10 + (out[22] - '0'), ms % 1000);
    assert_int_equal(out[23], 'Z');
}

static void test_loopback_hosts(void **state)
{
    (void)state;
    const char *yes[] = {"localhost",       "LocalHost", "127.0.0.1",       "127.0.0.2",
                         "127.255.255.254", "::1",       "0:0:0:0:0:0:0:1", "0000::0001"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_true(sh_is_loopback_host(yes[i]));
}

static void test_other_hosts_are_not_loopback(void **state)
{
    (void)state;
    /* Anything else is treated as remote, also the look-alikes. */
    const char *no[] = {"",
                        "redis.example.com",
                        "localhost.example.com",
                        "localhost.",
                        "mylocalhost",
                        " localhost",
                        "localhost ",
                        "126.255.255.255",
                        "128.0.0.1",
                        "0.0.0.0",
                        "10.0.0.1",
                        "127.0.0.1.example.com",
                        "127.0.0.256",
                        "127.1",
                        "::",
                        "::2",
                        "fe80::1",
                        "[::1]",
                        "::ffff:10.0.0.1"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        if (sh_is_loopback_host(no[i]))
            fail_msg("\"%s\" taken for loopback", no[i]);
    }
}

static void test_ip_literals(void **state)
{
    (void)state;
    const char *yes[] = {"192.0.2.1",   "::1",           "[::1]",
                         "2001:db8::7", "[2001:db8::7]", "::ffff:10.0.0.1"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!sh_is_ip_literal(yes[i]))
            fail_msg("\"%s\" not taken for an address", yes[i]);
    const char *no[] = {
        "",          "imap.example.com", "[192.0.2.1]", "192.0.2",           "[::1", "::1]", "[]",
        "1.2.3.4.5", " 1.2.3.4",         "localhost",   "[imap.example.com]"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (sh_is_ip_literal(no[i]))
            fail_msg("\"%s\" taken for an address", no[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wall_clock_is_the_epoch_in_ms),
        cmocka_unit_test(test_monotonic_clock_advances),
        cmocka_unit_test(test_iso8601_known_instants),
        cmocka_unit_test(test_iso8601_of_now_matches_the_clock),
        cmocka_unit_test(test_loopback_hosts),
        cmocka_unit_test(test_other_hosts_are_not_loopback),
        cmocka_unit_test(test_ip_literals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
