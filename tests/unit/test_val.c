/* test_val.c - the value tree: maps with many keys, replace, take, clone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "shared/err.h"
#include "shared/val.h"

static void test_map_many_keys(void **state)
{
    sh_val *m = sh_val_new_map();
    char k[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "key%d", i);
        assert_int_equal(sh_val_set_cstr(m, k, sh_val_new_int(i)), SH_OK);
    }
    assert_int_equal(sh_val_len(m), 5000);
    for (int i = 0; i < 5000; i += 7) {
        snprintf(k, sizeof k, "key%d", i);
        assert_int_equal(sh_val_int(sh_val_get(m, k)), i);
    }
    /* Replacing keeps the count and the order. */
    assert_int_equal(sh_val_set_cstr(m, "key3", sh_val_new_cstr("three")), SH_OK);
    assert_int_equal(sh_val_len(m), 5000);
    assert_string_equal(sh_val_key_at(m, 3, NULL), "key3");
    assert_string_equal(sh_val_get_str(m, "key3", NULL), "three");
    /* Taking removes and keeps lookups right. */
    sh_val *t = sh_val_take(m, "key10");
    assert_int_equal(sh_val_int(t), 10);
    sh_val_free(t);
    assert_null(sh_val_get(m, "key10"));
    assert_int_equal(sh_val_int(sh_val_get(m, "key4999")), 4999);
    sh_val *c = sh_val_clone(m);
    assert_true(sh_val_equal(c, m));
    sh_val_free(c);
    sh_val_free(m);
}

static void test_types_and_misuse(void **state)
{
    sh_val *a = sh_val_new_array();
    assert_int_equal(sh_val_push(a, NULL), SH_ENOMEM);
    sh_val *s = sh_val_new_cstr("x");
    assert_int_equal(sh_val_set_cstr(s, "k", sh_val_new_int(1)), SH_EINVAL);
    assert_null(sh_val_get(a, "k"));
    assert_null(sh_val_at(a, 0));
    assert_null(sh_val_str(a, NULL));
    assert_true(sh_val_equal(NULL, NULL));
    assert_false(sh_val_equal(a, NULL));
    sh_val_free(NULL);
    sh_val_free(s);
    sh_val_free(a);
    assert_string_equal(sh_val_type_name(SH_VAL_MAP), "object");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_many_keys),
        cmocka_unit_test(test_types_and_misuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
