/* test_hostpolicy.c - libshared's host policy (hostpolicy.c): the lists'
 * syntax and the entries refused with the setting named, the built-in
 * ranges (metadata and link-local never, private and loopback only when
 * allowed, IPv4-mapped IPv6 taken as IPv4), allow over deny, names
 * matched without case or final dot, and resolution keeping only the
 * allowed addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "shared/hostpolicy.h"

static sh_hostpolicy *policy(const char *allow, const char *deny)
{
    sh_hostpolicy *p = NULL;
    sh_error err;
    if (sh_hostpolicy_new(allow, deny, SH_IMAP_ALLOW_HOSTS, SH_IMAP_DENY_HOSTS, &p, &err) != SH_OK)
        fail_msg("policy %s / %s: %s", allow ? allow : "-", deny ? deny : "-", err.msg);
    return p;
}

/* check runs the policy on host resolved to addr (an IP literal). */
static int check(const sh_hostpolicy *p, const char *host, const char *addr, sh_error *err)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1)
        s4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1)
        s6->sin6_family = AF_INET6;
    else
        fail_msg("not an address: %s", addr);
    return sh_hostpolicy_check_addr(p, host, (struct sockaddr *)&ss, err);
}

static void expect(const sh_hostpolicy *p, const char *host, const char *addr, int rc,
                   const char *msg)
{
    sh_error err;
    sh_error_clear(&err);
    int got = check(p, host, addr, &err);
    if (got != rc || (msg && strcmp(err.msg, msg) != 0))
        fail_msg("%s (%s): got %d \"%s\", want %d \"%s\"", host, addr, got, err.msg, rc,
                 msg ? msg : "");
}

static void test_syntax(void **state)
{
    (void)state;
    static const char *const bad[] = {"10.0.0.0/33",  "::/129", "10.0.0.300", "1.2.3.4/",
                                      "a b",          "x/8",    "exa mple",   "10.0.0.0/8x",
                                      "fe80::1%eth0", NULL};
    for (size_t i = 0; bad[i]; i++) {
        sh_hostpolicy *p = (sh_hostpolicy *)1;
        sh_error err;
        assert_int_equal(sh_hostpolicy_new("127.0.0.1", bad[i], SH_IMAP_ALLOW_HOSTS,
                                           SH_IMAP_DENY_HOSTS, &p, &err),
                         SH_EINVAL);
        assert_null(p);
        char want[200];
        snprintf(want, sizeof want,
                 "IMAP_DENY_HOSTS: \"%s\" is not a host name, an IP address or a CIDR range "
                 "(like 10.0.0.0/8 or fd00::/8)",
                 bad[i]);
        assert_string_equal(err.msg, want);
    }
    /* Spaces around entries and empty entries are fine. */
    sh_hostpolicy *p = policy(" 10.0.0.0/8 , ,mail.internal,[fd00::1], 192.168.1.7/32,", "");
    expect(p, "10.1.2.3", "10.1.2.3", SH_OK, NULL);
    expect(p, "mail.internal", "172.16.0.1", SH_OK, NULL);
    expect(p, "fd00::1", "fd00::1", SH_OK, NULL);
    expect(p, "192.168.1.7", "192.168.1.7", SH_OK, NULL);
    expect(p, "192.168.1.8", "192.168.1.8", SH_EINVAL, NULL);
    sh_hostpolicy_free(p);
    sh_hostpolicy_free(NULL);
}

static void test_builtin(void **state)
{
    (void)state;
    sh_hostpolicy *p = policy(NULL, NULL);
    static const char *const never[] = {"169.254.169.254",
                                        "169.254.0.1",
                                        "fe80::1",
                                        "100.100.100.200",
                                        "fd00:ec2::254",
                                        "0.0.0.0",
                                        "::",
                                        "::ffff:169.254.169.254",
                                        NULL};
    for (size_t i = 0; never[i]; i++) {
        sh_error err;
        assert_int_equal(check(p, never[i], never[i], &err), SH_EINVAL);
        assert_non_null(strstr(err.msg, "; never connected to"));
    }
    expect(p, "169.254.169.254", "169.254.169.254", SH_EINVAL,
           "host 169.254.169.254 is a link-local or metadata address; never connected to");
    static const char *const private[] = {
        "127.0.0.1",   "127.1.2.3", "::1",     "10.0.0.1",         "172.16.0.1", "172.31.255.255",
        "192.168.0.1", "fc00::1",   "fd12::1", "::ffff:127.0.0.1", "100.64.0.1", NULL};
    for (size_t i = 0; private[i]; i++) {
        sh_error err;
        assert_int_equal(check(p, private[i], private[i], &err), SH_EINVAL);
        assert_non_null(strstr(err.msg, "refused unless IMAP_ALLOW_HOSTS allows it"));
    }
    expect(p, "10.0.0.1", "10.0.0.1", SH_EINVAL,
           "host 10.0.0.1 is a private address; refused unless IMAP_ALLOW_HOSTS allows it (e.g. "
           "10.0.0.1)");
    expect(p, "localhost", "127.0.0.1", SH_EINVAL,
           "host localhost resolves to 127.0.0.1, a loopback address; refused unless "
           "IMAP_ALLOW_HOSTS allows it (e.g. 127.0.0.1)");
    static const char *const public[] = {"8.8.8.8",     "172.32.0.1",  "172.15.255.255",
                                         "192.169.0.1", "2001:db8::1", "169.253.255.255",
                                         "11.0.0.1",    NULL};
    for (size_t i = 0; public[i]; i++)
        expect(p, public[i], public[i], SH_OK, NULL);
    sh_hostpolicy_free(p);

    /* Allowing everything still never allows metadata. */
    p = policy("0.0.0.0/0,::/0", NULL);
    expect(p, "127.0.0.1", "127.0.0.1", SH_OK, NULL);
    expect(p, "169.254.169.254", "169.254.169.254", SH_EINVAL, NULL);
    expect(p, "fd00:ec2::254", "fd00:ec2::254", SH_EINVAL,
           "host fd00:ec2::254 is a metadata address; never connected to");
    sh_hostpolicy_free(p);
}

static void test_allow_deny(void **state)
{
    (void)state;
    /* Deny everything but one server: allow wins over deny. */
    sh_hostpolicy *p = policy("imap.example.com", "0.0.0.0/0,::/0,Bad.Example.");
    expect(p, "imap.example.com", "93.184.216.34", SH_OK, NULL);
    expect(p, "IMAP.EXAMPLE.COM.", "93.184.216.34", SH_OK, NULL);
    expect(p, "other.example.com", "93.184.216.34", SH_EINVAL,
           "host other.example.com resolves to 93.184.216.34, listed in IMAP_DENY_HOSTS; refused");
    expect(p, "2001:db8::1", "2001:db8::1", SH_EINVAL,
           "host 2001:db8::1 is listed in IMAP_DENY_HOSTS; refused");
    sh_hostpolicy_free(p);
    p = policy(NULL, "bad.example, 203.0.113.0/24");
    expect(p, "bad.example", "8.8.8.8", SH_EINVAL, NULL);
    expect(p, "203.0.113.9", "203.0.113.9", SH_EINVAL, NULL);
    expect(p, "good.example", "8.8.8.8", SH_OK, NULL);
    sh_hostpolicy_free(p);
}

static void test_resolve(void **state)
{
    (void)state;
    sh_hostaddr a[SH_HOSTADDR_MAX];
    size_t n = 99;
    sh_error err;
    sh_hostpolicy *p = policy(NULL, NULL);
    assert_int_equal(sh_hostpolicy_resolve(p, "localhost", 143, a, &n, &err), SH_EINVAL);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err.msg, "host localhost resolves to "));
    assert_int_equal(sh_hostpolicy_resolve(p, "169.254.169.254", 143, a, &n, &err), SH_EINVAL);
    assert_int_equal(sh_hostpolicy_resolve(p, "[::1]", 143, a, &n, &err), SH_EINVAL);
    assert_string_equal(err.msg, "host ::1 is a loopback address; refused unless "
                                 "IMAP_ALLOW_HOSTS allows it (e.g. ::1)");
    /* The legacy forms the resolver takes are checked as what they are. */
    assert_int_equal(sh_hostpolicy_resolve(p, "2852039166", 143, a, &n, &err), SH_EINVAL);
    assert_string_equal(err.msg, "host 2852039166 resolves to 169.254.169.254, a link-local or "
                                 "metadata address; never connected to");
    assert_int_equal(sh_hostpolicy_resolve(p, "0x7f.1", 143, a, &n, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "resolves to 127.0.0.1, a loopback address"));
    assert_int_equal(sh_hostpolicy_resolve(p, "[::ffff:10.0.0.1]", 143, a, &n, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "10.0.0.1, a private address"));
    assert_int_equal(sh_hostpolicy_resolve(p, "no-such-host.invalid", 143, a, &n, &err),
                     SH_EUNAVAIL);
    assert_non_null(strstr(err.msg, "cannot resolve no-such-host.invalid"));
    sh_hostpolicy_free(p);
    /* Allowed: the addresses come back with the port. */
    p = policy("127.0.0.0/8", NULL);
    assert_int_equal(sh_hostpolicy_resolve(p, "127.0.0.1", 993, a, &n, &err), SH_OK);
    assert_int_equal(n, 1);
    assert_string_equal(a[0].text, "127.0.0.1");
    assert_int_equal(ntohs(((struct sockaddr_in *)&a[0].sa)->sin_port), 993);
    /* localhost: 127.0.0.1 kept, ::1 (when listed) left out. */
    assert_int_equal(sh_hostpolicy_resolve(p, "localhost", 143, a, &n, &err), SH_OK);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(a[i].text, "127.0.0.1");
    sh_hostpolicy_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_builtin),
        cmocka_unit_test(test_allow_deny),
        cmocka_unit_test(test_resolve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
