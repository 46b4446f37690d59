/* test_slots.c - the places of event streams (slots.c): the total cap, the
 * cap of one address, IPv6 addresses counted by their /64, IPv4-mapped ones
 * as IPv4, places given back. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "gw_slots.h"

static struct sockaddr_storage v4(const char *a)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    in->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, a, &in->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *a)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in6 *in = (struct sockaddr_in6 *)&ss;
    in->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, a, &in->sin6_addr), 1);
    return ss;
}

static int take(gw_slots *s, const struct sockaddr_storage *ss, gw_slot **out)
{
    return gw_slots_take(s, (const struct sockaddr *)ss, out);
}

static void test_per_address_and_total(void **state)
{
    (void)state;
    gw_slots *s = gw_slots_new(5, 2);
    assert_non_null(s);
    struct sockaddr_storage a = v4("127.0.0.1"), b = v4("127.0.0.2");
    gw_slot *sl[8] = {0}, *no = NULL;
    assert_int_equal(take(s, &a, &sl[0]), GW_SLOTS_OK);
    assert_int_equal(take(s, &a, &sl[1]), GW_SLOTS_OK);
    assert_int_equal(take(s, &a, &no), GW_SLOTS_ADDRESS);
    assert_null(no);
    assert_int_equal(take(s, &b, &sl[2]), GW_SLOTS_OK);
    assert_int_equal(take(s, &b, &sl[3]), GW_SLOTS_OK);
    assert_int_equal(gw_slots_open(s), 4);
    /* An unknown address counts against the total only. */
    assert_int_equal(gw_slots_take(s, NULL, &sl[4]), GW_SLOTS_OK);
    struct sockaddr_storage c = v4("10.0.0.1");
    assert_int_equal(take(s, &c, &no), GW_SLOTS_FULL);
    gw_slot_release(sl[0]);
    assert_int_equal(take(s, &c, &sl[0]), GW_SLOTS_OK);
    assert_int_equal(take(s, &a, &no), GW_SLOTS_FULL);
    gw_slot_release(sl[2]);
    assert_int_equal(take(s, &a, &sl[2]), GW_SLOTS_OK);
    assert_int_equal(take(s, &a, &no), GW_SLOTS_ADDRESS);
    for (int i = 0; i < 5; i++)
        gw_slot_release(sl[i]);
    gw_slot_release(NULL);
    assert_int_equal(gw_slots_open(s), 0);
    assert_int_equal(gw_slots_total(s), 5);
    assert_int_equal(gw_slots_per_address(s), 2);
    gw_slots_free(s);
    gw_slots_free(NULL);
}

static void test_ipv6_by_64_and_mapped(void **state)
{
    (void)state;
    gw_slots *s = gw_slots_new(100, 1);
    struct sockaddr_storage a = v6("2001:db8:1:2::1"), a2 = v6("2001:db8:1:2:ffff::9"),
                            b = v6("2001:db8:1:3::1"), m = v6("::ffff:127.0.0.1"),
                            four = v4("127.0.0.1"), lo = v6("::1");
    gw_slot *x = NULL, *y = NULL, *z = NULL, *w = NULL, *no = NULL;
    assert_int_equal(take(s, &a, &x), GW_SLOTS_OK);
    assert_int_equal(take(s, &a2, &no), GW_SLOTS_ADDRESS); /* the same /64 */
    assert_int_equal(take(s, &b, &y), GW_SLOTS_OK);        /* another /64 */
    assert_int_equal(take(s, &m, &z), GW_SLOTS_OK);
    assert_int_equal(take(s, &four, &no), GW_SLOTS_ADDRESS); /* mapped is the IPv4 one */
    assert_int_equal(take(s, &lo, &w), GW_SLOTS_OK);
    gw_slot_release(x);
    assert_int_equal(take(s, &a2, &x), GW_SLOTS_OK);
    gw_slot_release(x);
    gw_slot_release(y);
    gw_slot_release(z);
    gw_slot_release(w);
    gw_slots_free(s);
}

static void test_no_address_cap(void **state)
{
    (void)state;
    gw_slots *s = gw_slots_new(3, 0);
    struct sockaddr_storage a = v4("127.0.0.1");
    gw_slot *sl[3], *no = NULL;
    for (int i = 0; i < 3; i++)
        assert_int_equal(take(s, &a, &sl[i]), GW_SLOTS_OK);
    assert_int_equal(take(s, &a, &no), GW_SLOTS_FULL);
    for (int i = 0; i < 3; i++)
        gw_slot_release(sl[i]);
    gw_slots_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_address_and_total),
        cmocka_unit_test(test_ipv6_by_64_and_mapped),
        cmocka_unit_test(test_no_address_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
