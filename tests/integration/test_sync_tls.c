/* test_sync_tls.c - the sync-worker against a private Dovecot with a
 * throwaway CA: implicit TLS and STARTTLS accounts sync when IMAP_CA_FILE
 * names the CA, end in error naming the certificate problem with the
 * system store, and sync without the CA when the account sets tlsVerify
 * false. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "sync_stack.h"

#define NMSG 5

static tf_stack st;

static int group_setup(void **state)
{
    const tf_stack_opts opts = {.name = "test_sync_tls", .messages = NMSG, .worker_ca = true};
    *state = &st;
    return tf_stack_start(&st, &opts);
}

/* create_account returns the id of a new account on the test Dovecot. */
static void create_account(const char *security, bool verify, char *id, size_t len)
{
    const tf_account acct = {.security = security, .verify = verify ? TF_VERIFY_ON : TF_VERIFY_OFF};
    tf_stack_create_account(&st, &acct, id, len);
}

/* stored_count is the number of INBOX messages the worker lists. */
static long long stored_count(const char *id)
{
    sh_val *all = tf_stack_list_all(&st, id, NULL, 100);
    long long n = (long long)sh_val_len(all);
    sh_val_free(all);
    return n;
}

/* With IMAP_CA_FILE naming the test CA, implicit TLS and STARTTLS work. */
static void test_tls_with_ca(void **state)
{
    const char *modes[] = {"tls", "starttls"};
    for (size_t i = 0; i < 2; i++) {
        char id[160];
        create_account(modes[i], true, id, sizeof id);
        tf_stack_sync_and_wait(&st, id, "ok", NULL);
        assert_int_equal(stored_count(id), NMSG);
    }
}

/* Without it (the system store) the certificate is refused, naming the
 * problem, unless the account opts out with tlsVerify false. */
static void test_tls_without_ca(void **state)
{
    assert_int_equal(tf_stop(st.worker_pid, SIGTERM, 15000), 0);
    st.worker_pid = 0;
    assert_int_equal(tf_stack_start_worker(&st, false), 0);
    const char *modes[] = {"tls", "starttls"};
    for (size_t i = 0; i < 2; i++) {
        char id[160];
        tf_sync_end end;
        create_account(modes[i], true, id, sizeof id);
        tf_stack_sync_and_wait(&st, id, "error", &end);
        fprintf(stderr, "%s without the CA: %s\n", modes[i], end.error);
        assert_non_null(strstr(end.error, "certificate"));
        assert_non_null(strstr(end.error, "not trusted"));
        assert_int_equal(stored_count(id), 0);

        create_account(modes[i], false, id, sizeof id);
        tf_stack_sync_and_wait(&st, id, "ok", NULL);
        assert_int_equal(stored_count(id), NMSG);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_with_ca),
        cmocka_unit_test(test_tls_without_ca),
    };
    return cmocka_run_group_tests(tests, group_setup, tf_stack_teardown);
}
