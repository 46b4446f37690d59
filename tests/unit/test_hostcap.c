/* test_hostcap.c - the count of IMAP connections per host (hostcap.c):
 * counted with or without a cap, refused at the cap with the host and the
 * setting named, hosts compared without case and apart from each other,
 * counts given back to zero, and many threads taking and giving at once
 * never going over the cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "hostcap.h"

static void test_cap_counts_and_refuses(void **state)
{
    (void)state;
    sh_error err;
    assert_int_equal(sync_hostcap_count("imap.example.com"), 0);
    assert_int_equal(sync_hostcap_take("imap.example.com", 2, &err), SH_OK);
    assert_int_equal(sync_hostcap_take("IMAP.Example.com", 2, &err), SH_OK);
    assert_int_equal(sync_hostcap_count("imap.example.com"), 2);
    assert_int_equal(sync_hostcap_take("imap.example.com", 2, &err), SH_ELIMIT);
    assert_non_null(strstr(err.msg, "imap.example.com"));
    assert_non_null(strstr(err.msg, "IMAP_MAX_CONNECTIONS_PER_HOST"));
    /* Another host is counted apart; no cap (0) only counts. */
    assert_int_equal(sync_hostcap_take("other.example.com", 1, &err), SH_OK);
    assert_int_equal(sync_hostcap_take("imap.example.com", 0, &err), SH_OK);
    assert_int_equal(sync_hostcap_count("imap.example.com"), 3);
    for (int i = 0; i < 3; i++)
        sync_hostcap_give("imap.example.com");
    sync_hostcap_give("other.example.com");
    assert_int_equal(sync_hostcap_count("imap.example.com"), 0);
    assert_int_equal(sync_hostcap_count("other.example.com"), 0);
    assert_int_equal(sync_hostcap_take("imap.example.com", 1, &err), SH_OK);
    sync_hostcap_give("imap.example.com");
}

#define RACERS 8
#define LIMIT  3

static int over; /* times a racer saw more than LIMIT held */

static void *racer_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        sh_error err;
        if (sync_hostcap_take("race.example.com", LIMIT, &err) != SH_OK)
            continue;
        if (sync_hostcap_count("race.example.com") > LIMIT)
            __atomic_add_fetch(&over, 1, __ATOMIC_RELAXED);
        sync_hostcap_give("race.example.com");
    }
    return NULL;
}

static void test_cap_holds_under_threads(void **state)
{
    (void)state;
    pthread_t t[RACERS];
    for (int i = 0; i < RACERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, racer_main, NULL), 0);
    for (int i = 0; i < RACERS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(over, 0);
    assert_int_equal(sync_hostcap_count("race.example.com"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap_counts_and_refuses),
        cmocka_unit_test(test_cap_holds_under_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
