/* test_keys.c - the key registry, id syntax and the progress service's key
 * builders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <string.h>

#include "keys.h"
#include "shared/keys.h"

static void test_id_syntax(void **state)
{
    assert_true(sh_id_valid("abc", 3));
    assert_true(sh_id_valid("A-z_0.9:x", 9));
    assert_false(sh_id_valid("", 0));
    assert_false(sh_id_valid("a b", 3));
    assert_false(sh_id_valid("a/b", 3));
    assert_false(sh_id_valid("a{b}", 4));
    assert_false(sh_id_valid("\xc3\xa9", 2));
    char id[130];
    memset(id, 'x', sizeof id);
    assert_true(sh_id_valid(id, 128));
    assert_false(sh_id_valid(id, 129));
}

static void test_builders(void **state)
{
    char k[PROG_KEY_MAX];
    assert_int_equal(prog_key_record(k, sizeof k, "abc"), 14);
    assert_string_equal(k, "progress:{abc}");
    prog_key_log(k, sizeof k, "abc");
    assert_string_equal(k, "progress:{abc}:log");
    prog_key_job(k, sizeof k, "j1");
    assert_string_equal(k, "job:{j1}");
    prog_key_job_index(k, sizeof k, "c1");
    assert_string_equal(k, "job_index:{c1}");
    assert_int_equal(prog_key_record(k, sizeof k, "bad id"), -1);
    assert_int_equal(prog_key_record(k, 8, "abc"), -1);
    char id[129];
    memset(id, 'y', 128);
    id[128] = '\0';
    assert_true(prog_key_log(k, sizeof k, id) > 0);
}

static void test_registry(void **state)
{
    assert_string_equal(sh_key_owner("progress:{a}", 12), "progress");
    assert_string_equal(sh_key_owner("job_index:{a}", 13), "progress");
    assert_string_equal(sh_key_owner("sq:{1}", 6), "coordinator");
    assert_string_equal(sh_key_owner("mail:{a}:x", 10), "sync-worker");
    assert_null(sh_key_owner("other", 5));
    /* No prefix is a prefix of another owner's prefix. */
    for (size_t i = 0; sh_key_prefixes[i].prefix; i++)
        for (size_t j = 0; sh_key_prefixes[j].prefix; j++) {
            if (i == j)
                continue;
            const char *a = sh_key_prefixes[i].prefix, *b = sh_key_prefixes[j].prefix;
            if (strncmp(a, b, strlen(a)) == 0)
                assert_string_equal(sh_key_prefixes[i].owner, sh_key_prefixes[j].owner);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_syntax),
        cmocka_unit_test(test_builders),
        cmocka_unit_test(test_registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
