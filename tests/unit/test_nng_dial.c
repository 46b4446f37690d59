/* test_nng_dial.c - the dial loop of nng_dial.c (RPC clients, event
 * subscribers): which URL lists it takes or refuses and how it says so, that
 * dialing nothing returns at once, and that a peer starting later is found
 * soon (the reconnect times it sets). Real REQ/REP sockets over ipc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "ipc_dir.h"
#include "nng_dial.h"
#include "shared/util.h"

static int group_setup(void **state)
{
    (void)state;
    return tf_ipc_dir_make("test_nng_dial");
}

static int group_teardown(void **state)
{
    (void)state;
    nng_fini();
    return tf_ipc_dir_remove();
}

static nng_socket req_open(void)
{
    nng_socket s;
    assert_int_equal(nng_req0_open(&s), 0);
    return s;
}

static void test_lists_that_are_taken(void **state)
{
    (void)state;
    char a[128], b[128], list[400];
    tf_ipc_url(a, sizeof a, "a");
    tf_ipc_url(b, sizeof b, "b");
    const char *forms[] = {a, NULL, NULL, NULL, "inproc://dial-list", "tcp://127.0.0.1:1"};
    char two[300], spaced[300];
    snprintf(two, sizeof two, "%s,%s", a, b);
    snprintf(spaced, sizeof spaced, "  %s ,   %s", a, b);
    snprintf(list, sizeof list, ",,%s,, ,%s,", a, b); /* empty entries are skipped */
    forms[1] = two;
    forms[2] = spaced;
    forms[3] = list;
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        nng_socket s = req_open();
        sh_error err;
        sh_error_clear(&err);
        int rc = sh__nng_dial_all(s, forms[i], "RPC", &err);
        if (rc != SH_OK)
            fail_msg("\"%s\" refused: %s", forms[i], err.msg);
        nng_close(s);
    }
}

static void test_empty_lists_are_refused_by_name(void **state)
{
    (void)state;
    const char *empty[] = {"", " ", ",", " , ,  ", NULL};
    for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
        nng_socket s = req_open();
        sh_error err;
        sh_error_clear(&err);
        assert_int_equal(sh__nng_dial_all(s, empty[i], "events", &err), SH_EINVAL);
        assert_int_equal(err.code, SH_EINVAL);
        assert_string_equal(err.msg, "no events URL to dial");
        nng_close(s);
    }
}

static void test_malformed_urls_are_named(void **state)
{
    (void)state;
    char good[128];
    tf_ipc_url(good, sizeof good, "good");
    char after_good[300];
    snprintf(after_good, sizeof after_good, "%s,nope://x", good);
    struct {
        const char *list, *named;
    } bad[] = {
        {"nope://x", "nope://x"},
        {"127.0.0.1:7101", "127.0.0.1:7101"},   /* no scheme */
        {"tcp://127.0.0.1", "tcp://127.0.0.1"}, /* no port */
        {"tcp://:7101", "tcp://:7101"},
        {after_good, "nope://x"}, /* one bad URL spoils the list */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nng_socket s = req_open();
        sh_error err;
        sh_error_clear(&err);
        int rc = sh__nng_dial_all(s, bad[i].list, "RPC", &err);
        if (rc != SH_EINVAL)
            fail_msg("\"%s\" gave %d", bad[i].list, rc);
        char want[200];
        snprintf(want, sizeof want, "cannot dial %s: ", bad[i].named);
        if (strncmp(err.msg, want, strlen(want)) != 0)
            fail_msg("\"%s\": message \"%s\"", bad[i].list, err.msg);
        assert_true(strlen(err.msg) > strlen(want)); /* nng's reason follows */
        nng_close(s);
    }
}

static void test_reconnect_times_are_short(void **state)
{
    (void)state;
    char u[128];
    nng_socket s = req_open();
    sh_error err;
    assert_int_equal(sh__nng_dial_all(s, tf_ipc_url(u, sizeof u, "times"), "RPC", &err), SH_OK);
    nng_duration mint = 0, maxt = 0;
    assert_int_equal(nng_socket_get_ms(s, NNG_OPT_RECONNMINT, &mint), 0);
    assert_int_equal(nng_socket_get_ms(s, NNG_OPT_RECONNMAXT, &maxt), 0);
    assert_int_equal(mint, 20);
    assert_int_equal(maxt, 500);
    nng_close(s);
}

static void test_dialing_nothing_returns_at_once(void **state)
{
    (void)state;
    char u[128], list[300];
    snprintf(list, sizeof list, "%s,tcp://127.0.0.1:%d", tf_ipc_url(u, sizeof u, "nobody"),
             tf_free_port());
    nng_socket s = req_open();
    sh_error err;
    int64_t t0 = sh_mono_ms();
    assert_int_equal(sh__nng_dial_all(s, list, "RPC", &err), SH_OK);
    assert_true(sh_mono_ms() - t0 < 200);
    /* A request then waits for a peer; with a timeout it fails in time. */
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 150);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 150);
    t0 = sh_mono_ms();
    int rv = nng_send(s, "hello", 5, 0);
    if (rv == 0) {
        void *buf = NULL;
        size_t len = 0;
        rv = nng_recv(s, &buf, &len, NNG_FLAG_ALLOC);
    }
    int64_t dt = sh_mono_ms() - t0;
    assert_int_equal(rv, NNG_ETIMEDOUT);
    assert_true(dt >= 140 && dt < 2000);
    nng_close(s);
}

/* round_trip sends "ping" on req and answers it on rep; returns the ms it
 * took for the request to leave. */
static int64_t round_trip(nng_socket req, nng_socket rep)
{
    nng_socket_set_ms(req, NNG_OPT_SENDTIMEO, 5000);
    nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, 5000);
    nng_socket_set_ms(rep, NNG_OPT_RECVTIMEO, 5000);
    int64_t t0 = sh_mono_ms();
    assert_int_equal(nng_send(req, "ping", 4, 0), 0);
    int64_t sent = sh_mono_ms() - t0;
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(nng_recv(rep, &buf, &len, NNG_FLAG_ALLOC), 0);
    assert_int_equal(len, 4);
    assert_memory_equal(buf, "ping", 4);
    nng_free(buf, len);
    assert_int_equal(nng_send(rep, "pong", 4, 0), 0);
    assert_int_equal(nng_recv(req, &buf, &len, NNG_FLAG_ALLOC), 0);
    assert_int_equal(len, 4);
    assert_memory_equal(buf, "pong", 4);
    nng_free(buf, len);
    return sent;
}

static void test_a_listener_appearing_later_is_found_soon(void **state)
{
    (void)state;
    char u[128];
    tf_ipc_url(u, sizeof u, "later");
    nng_socket req = req_open();
    sh_error err;
    assert_int_equal(sh__nng_dial_all(req, u, "RPC", &err), SH_OK);
    /* Several failed attempts first: the backoff has grown to its cap
     * (500 ms, then a random part of it) by the time the peer listens. */
    tf_sleep_ms(800);
    nng_socket rep;
    assert_int_equal(nng_rep0_open(&rep), 0);
    assert_int_equal(nng_listen(rep, u, NULL, 0), 0);
    int64_t waited = round_trip(req, rep);
    if (waited > 1500)
        fail_msg("found the listener only after %lld ms", (long long)waited);

    /* The listener goes away and comes back: redialed the same way. */
    nng_close(rep);
    tf_sleep_ms(800);
    assert_int_equal(nng_rep0_open(&rep), 0);
    assert_int_equal(nng_listen(rep, u, NULL, 0), 0);
    waited = round_trip(req, rep);
    if (waited > 1500)
        fail_msg("found the restarted listener only after %lld ms", (long long)waited);
    nng_close(rep);
    nng_close(req);
}

static void test_every_url_of_the_list_is_dialed(void **state)
{
    (void)state;
    char a[128], b[128], list[300];
    tf_ipc_url(a, sizeof a, "both-a");
    tf_ipc_url(b, sizeof b, "both-b");
    snprintf(list, sizeof list, "%s, %s", a, b);
    nng_socket req = req_open();
    sh_error err;
    assert_int_equal(sh__nng_dial_all(req, list, "RPC", &err), SH_OK);
    /* Only the second one listens: requests reach it. */
    nng_socket rep;
    assert_int_equal(nng_rep0_open(&rep), 0);
    assert_int_equal(nng_listen(rep, b, NULL, 0), 0);
    round_trip(req, rep);
    nng_close(rep);
    /* Only the first one: reached as well. */
    assert_int_equal(nng_rep0_open(&rep), 0);
    assert_int_equal(nng_listen(rep, a, NULL, 0), 0);
    round_trip(req, rep);
    nng_close(rep);
    nng_close(req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lists_that_are_taken),
        cmocka_unit_test(test_empty_lists_are_refused_by_name),
        cmocka_unit_test(test_malformed_urls_are_named),
        cmocka_unit_test(test_reconnect_times_are_short),
        cmocka_unit_test(test_dialing_nothing_returns_at_once),
        cmocka_unit_test(test_a_listener_appearing_later_is_found_soon),
        cmocka_unit_test(test_every_url_of_the_list_is_dialed),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
