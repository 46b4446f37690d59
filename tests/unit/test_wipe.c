/* test_wipe.c - plaintext secrets are wiped before their memory goes back
 * to the allocator: values (sh_val_free: request bodies and call arguments
 * with passwords), secret buffers (sh_buf_init_secret: bodies, encoded
 * calls), also when they grow, and the arguments of a decoded call. Every
 * free() of our code goes through __wrap_free (-Wl,--wrap=free), which
 * looks for the secret in the whole block being freed. */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <malloc.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "shared/buf.h"
#include "shared/msg.h"
#include "shared/val.h"

void __real_free(void *p);
void __wrap_free(void *p);

static const char *wipe_watch; /* the secret looked for, or NULL */
static int wipe_found;         /* blocks freed with it inside */

void __wrap_free(void *p)
{
    if (p && wipe_watch && memmem(p, malloc_usable_size(p), wipe_watch, strlen(wipe_watch)))
        wipe_found++;
    __real_free(p);
}

static void watch(const char *secret)
{
    wipe_watch = secret;
    wipe_found = 0;
}

static void test_detector_sees_unwiped_memory(void **state)
{
    (void)state;
    watch("unwiped-0123456789");
    char *p = malloc(64);
    strcpy(p, "unwiped-0123456789");
    /* The block escapes, so an optimizing build keeps the copy and the free. */
    __asm__ volatile("" : : "r"(p) : "memory");
    free(p);
    assert_int_equal(wipe_found, 1);
    /* An ordinary buffer keeps what it held. */
    watch("plain-buffer-0123456789");
    sh_buf b;
    sh_buf_init(&b);
    sh_buf_puts(&b, "plain-buffer-0123456789");
    sh_buf_fini(&b);
    assert_int_equal(wipe_found, 1);
    wipe_watch = NULL;
}

static void test_values_are_wiped(void **state)
{
    (void)state;
    watch("hunter2-account-password");
    sh_val *body = sh_val_new_map();
    assert_int_equal(sh_val_set_cstr(body, "username", sh_val_new_cstr("ann")), SH_OK);
    assert_int_equal(sh_val_set_cstr(body, "password", sh_val_new_cstr("hunter2-account-password")),
                     SH_OK);
    sh_val *copy = sh_val_clone(body);
    sh_val_free(body);
    sh_val_free(copy);
    sh_val_free(sh_val_new_bin("hunter2-account-password", 24));
    assert_int_equal(wipe_found, 0);
    wipe_watch = NULL;
}

static void test_secret_buffers_are_wiped(void **state)
{
    (void)state;
    watch("body-with-a-password-0123");
    sh_buf b;
    sh_buf_init_secret(&b);
    assert_int_equal(sh_buf_puts(&b, "{\"password\":\"body-with-a-password-0123\"}"), SH_OK);
    /* Growing moves it many times over. */
    for (int i = 0; i < 200; i++)
        assert_int_equal(sh_buf_puts(&b, "0123456789abcdef0123456789abcdef"), SH_OK);
    assert_non_null(strstr(b.data, "body-with-a-password-0123"));
    sh_buf_reset(&b);
    assert_int_equal(sh_buf_puts(&b, "body-with-a-password-0123"), SH_OK);
    sh_buf_fini(&b);
    assert_true(b.secret); /* it stays a secret buffer when used again */
    sh_buf_fini(&b);
    assert_int_equal(wipe_found, 0);
    wipe_watch = NULL;
}

static void test_decoded_call_is_wiped(void **state)
{
    (void)state;
    watch("call-carried-password-01");
    sh_val *args = sh_val_new_map();
    assert_int_equal(sh_val_set_cstr(args, "password", sh_val_new_cstr("call-carried-password-01")),
                     SH_OK);
    sh_buf env;
    sh_buf_init_secret(&env);
    assert_int_equal(sh_call_encode("account.create", 1, args, &env), SH_OK);
    sh_val_free(args);
    sh_call call;
    sh_error err;
    assert_int_equal(sh_call_decode(env.data, env.len, NULL, &call, &err), SH_OK);
    assert_string_equal(sh_val_get_str(call.args, "password", NULL), "call-carried-password-01");
    sh_call_fini(&call);
    sh_buf_fini(&env);
    assert_int_equal(wipe_found, 0);
    wipe_watch = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_are_wiped),
        cmocka_unit_test(test_secret_buffers_are_wiped),
        cmocka_unit_test(test_decoded_call_is_wiped),
        cmocka_unit_test(test_detector_sees_unwiped_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
