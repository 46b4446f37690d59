/* test_sync_stall.c - a stalled IMAP server costs one sync thread for the
 * deadline and no more: an account on the strict test server that trickles
 * its UID FETCH reply a byte every 2 s, never complete, holds one of the
 * worker's two threads while accounts on Dovecot go on syncing on the
 * other; it ends `error` with a message naming the stall within the
 * deadline (IMAP_COMMAND_DEADLINE_SECONDS=6), and its next run, to a
 * server that answers, is `ok`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shared/util.h"
#include "strict_fixture.h"
#include "sync_stack.h"

#define NMSG     30
#define DEADLINE 6

static tf_stack st;
static tf_dovecot trickle;

static int group_setup(void **state)
{
    const tf_stack_opts opts = {.name = "test_sync_stall",
                                .messages = NMSG,
                                .command_timeout = 20,
                                .command_deadline = DEADLINE};
    *state = &st;
    if (tf_stack_start(&st, &opts))
        return -1;
    return tf_strict_start(&trickle, "test", "secret", NMSG, NULL);
}

static int group_teardown(void **state)
{
    tf_dovecot_stop(&trickle);
    return tf_stack_teardown(state);
}

static void status_of(const char *id, char *status, size_t len)
{
    tf_stack_account_status(&st, id, status, len, NULL, 0);
}

static void test_stalled_server_costs_one_thread(void **state)
{
    (void)state;
    char stalled[64], other[3][64], status[32], msg[1024];
    const tf_account on_strict = {.port = trickle.port};
    tf_stack_create_account(&st, &on_strict, stalled, sizeof stalled);
    static const char *const users[] = {"test", "u1", "u2"};
    for (int i = 0; i < 3; i++) {
        if (i > 0)
            assert_int_equal(tf_dovecot_add_user(&st.dove, users[i], "secret", NMSG), 0);
        const tf_account a = {.user = users[i]};
        tf_stack_create_account(&st, &a, other[i], sizeof other[i]);
    }
    const char *cmds[] = {"XSTRICT HOSTILE FETCH TRICKLE", NULL};
    assert_int_equal(tf_dovecot_imap(&trickle, cmds, NULL, 0), 0);

    int64_t t0 = sh_mono_ms();
    tf_stack_sync_now(&st, stalled, NULL, 0);
    /* Wait until the trickle holds a thread. */
    while (tf_strict_log_count(&trickle, "hostile answer TRICKLE") == 0 &&
           sh_mono_ms() - t0 < 10000)
        usleep(50 * 1000);
    assert_int_equal(tf_strict_log_count(&trickle, "hostile answer TRICKLE"), 1);
    /* Meanwhile the other thread syncs every other account. */
    for (int i = 0; i < 3; i++)
        tf_stack_sync_and_wait(&st, other[i], "ok", NULL);
    int64_t others_done = sh_mono_ms() - t0;
    status_of(stalled, status, sizeof status);
    fprintf(stderr, "others synced in %lld ms; the stalled account is %s\n", (long long)others_done,
            status);
    assert_true(others_done < DEADLINE * 1000);
    assert_string_equal(status, "syncing");

    /* The stalled one ends at its deadline, naming the stall. */
    tf_stack_wait_settled(&st, stalled, "error", msg, sizeof msg);
    int64_t took = sh_mono_ms() - t0;
    fprintf(stderr, "stalled account: error after %lld ms: %s\n", (long long)took, msg);
    char want[160];
    snprintf(want, sizeof want, "IMAP server stalled: no complete reply to UID FETCH within %d s",
             DEADLINE);
    assert_non_null(strstr(msg, want));
    assert_true(took >= DEADLINE * 1000 && took < (DEADLINE + 6) * 1000);
    /* No more than the one command of the stalled run was tried. */
    assert_int_equal(tf_strict_log_count(&trickle, "hostile answer"), 1);

    /* A server that answers again: the next run is ok. */
    tf_stack_sync_and_wait(&st, stalled, "ok", NULL);
    for (int i = 0; i < 3; i++) {
        status_of(other[i], status, sizeof status);
        assert_string_equal(status, "ok");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stalled_server_costs_one_thread),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
