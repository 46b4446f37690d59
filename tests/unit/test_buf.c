/* test_buf.c - the growable buffer of buf.c: growth, appends of binary and
 * text, formatting, the size guard, reset, steal and fini. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "shared/buf.h"
#include "shared/err.h"

/* expect_holds checks b holds exactly the len bytes of want, then a NUL. */
static void expect_holds(const sh_buf *b, const void *want, size_t len)
{
    assert_non_null(b->data);
    assert_int_equal(b->len, len);
    assert_true(b->cap > b->len);
    if (len)
        assert_memory_equal(b->data, want, len);
    assert_int_equal(b->data[len], '\0');
}

static void test_init_is_empty_without_memory(void **state)
{
    (void)state;
    sh_buf b;
    memset(&b, 0x5a, sizeof b);
    sh_buf_init(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    sh_buf_reset(&b); /* nothing to reset: still no memory */
    assert_null(b.data);
    sh_buf_fini(&b);
    sh_buf_fini(&b); /* a second fini is harmless */
    assert_null(b.data);
}

static void test_appends_grow_and_keep_every_byte(void **state)
{
    (void)state;
    sh_buf b;
    sh_buf_init(&b);
    char want[5000];
    for (size_t i = 0; i < sizeof want; i++) {
        want[i] = (char)(i * 7 + 1);
        assert_int_equal(sh_buf_append(&b, &want[i], 1), SH_OK);
        assert_int_equal(b.len, i + 1);
        assert_true(b.cap >= b.len + 1);
    }
    expect_holds(&b, want, sizeof want);
    /* Growth doubles: far fewer sizes than appends. */
    assert_true(b.cap < 2 * (sizeof want + 1) + 64);
    sh_buf_fini(&b);
}

static void test_binary_with_nul_bytes(void **state)
{
    (void)state;
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sh_buf_append(&b, "a\0b\0", 4), SH_OK);
    assert_int_equal(sh_buf_append(&b, "\0", 1), SH_OK);
    expect_holds(&b, "a\0b\0\0", 5);
    sh_buf_fini(&b);
}

static void test_empty_append_allocates_a_string(void **state)
{
    (void)state;
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sh_buf_append(&b, NULL, 0), SH_OK);
    expect_holds(&b, "", 0);
    assert_int_equal(sh_buf_puts(&b, ""), SH_OK);
    expect_holds(&b, "", 0);
    sh_buf_fini(&b);
}

static void test_puts_and_printf_append(void **state)
{
    (void)state;
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sh_buf_puts(&b, "id="), SH_OK);
    assert_int_equal(sh_buf_printf(&b, "%s-%d/%05.1f%%", "abc", -42, 3.14159), SH_OK);
    assert_int_equal(sh_buf_puts(&b, ";"), SH_OK);
    const char *want = "id=abc--42/003.1%;";
    expect_holds(&b, want, strlen(want));
    sh_buf_fini(&b);
}

static void test_printf_longer_than_the_buffer(void **state)
{
    (void)state;
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sh_buf_puts(&b, "x"), SH_OK);
    size_t cap = b.cap;
    char big[3001];
    memset(big, 'q', 3000);
    big[3000] = '\0';
    assert_int_equal(sh_buf_printf(&b, "<%s|%0200d>", big, 7), SH_OK);
    assert_true(b.cap > cap);
    assert_int_equal(b.len, 1 + 1 + 3000 + 1 + 200 + 1);
    assert_int_equal(b.data[0], 'x');
    assert_int_equal(b.data[1], '<');
    assert_memory_equal(b.data + 2, big, 3000);
    assert_int_equal(b.data[3002], '|');
    assert_int_equal(b.data[3003], '0');
    assert_int_equal(b.data[3202], '7');
    assert_string_equal(b.data + 3203, ">");
    sh_buf_fini(&b);
}

static void test_printf_empty_result(void **state)
{
    (void)state;
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sh_buf_printf(&b, "%s", ""), SH_OK);
    expect_holds(&b, "", 0);
    sh_buf_fini(&b);
}

/* vprintf_into shows sh_buf_vprintf takes a va_list that is used once. */
static int vprintf_into(sh_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int vprintf_into(sh_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = sh_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

static void test_vprintf(void **state)
{
    (void)state;
    sh_buf b;
    sh_buf_init(&b);
    for (int i = 0; i < 100; i++)
        assert_int_equal(vprintf_into(&b, "%d,", i), SH_OK);
    assert_int_equal(b.len, 10 * 2 + 90 * 3);
    assert_memory_equal(b.data, "0,1,2,", 6);
    assert_string_equal(b.data + b.len - 6, "98,99,");
    sh_buf_fini(&b);
}

static void test_reserve_makes_room_once(void **state)
{
    (void)state;
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sh_buf_reserve(&b, 10000), SH_OK);
    assert_true(b.cap >= 10001);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, ""); /* memory made by reserve is a string too */
    char *before = b.data;
    size_t cap = b.cap;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(sh_buf_append(&b, "0123456789", 10), SH_OK);
    /* Room was made in advance: no move, no growth. */
    assert_ptr_equal(b.data, before);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.len, 10000);
    assert_int_equal(sh_buf_reserve(&b, 0), SH_OK);
    assert_int_equal(b.cap, cap);
    sh_buf_fini(&b);
}

static void test_sizes_that_overflow_are_refused(void **state)
{
    (void)state;
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sh_buf_puts(&b, "keep"), SH_OK);
    char *data = b.data;
    size_t cap = b.cap;
    /* Each of these would wrap len + extra + 1 or ask for half the address
     * space: refused before any allocation, the contents untouched. */
    assert_int_equal(sh_buf_reserve(&b, SIZE_MAX), SH_ENOMEM);
    assert_int_equal(sh_buf_reserve(&b, SIZE_MAX - 4), SH_ENOMEM);
    assert_int_equal(sh_buf_reserve(&b, SIZE_MAX / 2), SH_ENOMEM);
    assert_int_equal(sh_buf_reserve(&b, SIZE_MAX / 2 - b.len), SH_ENOMEM);
    assert_int_equal(sh_buf_append(&b, "x", SIZE_MAX - 2), SH_ENOMEM);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, cap);
    expect_holds(&b, "keep", 4);
    sh_buf_fini(&b);
}

static void test_reset_keeps_the_memory(void **state)
{
    (void)state;
    sh_buf b;
    sh_buf_init(&b);
    for (int i = 0; i < 50; i++)
        assert_int_equal(sh_buf_puts(&b, "some text "), SH_OK);
    char *data = b.data;
    size_t cap = b.cap;
    sh_buf_reset(&b);
    expect_holds(&b, "", 0);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, cap);
    assert_int_equal(sh_buf_puts(&b, "again"), SH_OK);
    expect_holds(&b, "again", 5);
    assert_ptr_equal(b.data, data);
    sh_buf_fini(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
}

static void test_steal_hands_over_and_empties(void **state)
{
    (void)state;
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sh_buf_printf(&b, "n=%d", 12), SH_OK);
    char *expect_ptr = b.data;
    size_t len = 99;
    char *s = sh_buf_steal(&b, &len);
    assert_ptr_equal(s, expect_ptr);
    assert_int_equal(len, 4);
    assert_string_equal(s, "n=12");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    /* The buffer is usable again, and owns new memory. */
    assert_int_equal(sh_buf_puts(&b, "next"), SH_OK);
    assert_ptr_not_equal(b.data, s);
    expect_holds(&b, "next", 4);
    free(s);
    sh_buf_fini(&b);
}

static void test_steal_of_an_empty_buffer_is_a_string(void **state)
{
    (void)state;
    sh_buf b;
    sh_buf_init(&b);
    size_t len = 99;
    char *s = sh_buf_steal(&b, &len);
    assert_non_null(s);
    assert_int_equal(len, 0);
    assert_string_equal(s, "");
    free(s);
    s = sh_buf_steal(&b, NULL); /* the length is optional */
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
    assert_null(b.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_is_empty_without_memory),
        cmocka_unit_test(test_appends_grow_and_keep_every_byte),
        cmocka_unit_test(test_binary_with_nul_bytes),
        cmocka_unit_test(test_empty_append_allocates_a_string),
        cmocka_unit_test(test_puts_and_printf_append),
        cmocka_unit_test(test_printf_longer_than_the_buffer),
        cmocka_unit_test(test_printf_empty_result),
        cmocka_unit_test(test_vprintf),
        cmocka_unit_test(test_reserve_makes_room_once),
        cmocka_unit_test(test_sizes_that_overflow_are_refused),
        cmocka_unit_test(test_reset_keeps_the_memory),
        cmocka_unit_test(test_steal_hands_over_and_empties),
        cmocka_unit_test(test_steal_of_an_empty_buffer_is_a_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
