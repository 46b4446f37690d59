/* test_msg.c - msgpack values and the call/reply envelope: round trips and
 * every malformed case the decoder must refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "shared/msg.h"

static sh_val *sample(void)
{
    sh_val *m = sh_val_new_map();
    sh_val_set_cstr(m, "nil", sh_val_new_nil());
    sh_val_set_cstr(m, "t", sh_val_new_bool(true));
    sh_val_set_cstr(m, "f", sh_val_new_bool(false));
    sh_val_set_cstr(m, "small", sh_val_new_int(7));
    sh_val_set_cstr(m, "neg", sh_val_new_int(-33));
    sh_val_set_cstr(m, "i16", sh_val_new_int(-30000));
    sh_val_set_cstr(m, "big", sh_val_new_int(INT64_MAX));
    sh_val_set_cstr(m, "min", sh_val_new_int(INT64_MIN));
    sh_val_set_cstr(m, "pi", sh_val_new_float(3.25));
    sh_val_set_cstr(m, "s", sh_val_new_str("a\0b", 3));
    sh_val_set_cstr(m, "bin", sh_val_new_bin("\x00\xff", 2));
    sh_val *a = sh_val_new_array();
    for (int i = 0; i < 20; i++)
        sh_val_push(a, sh_val_new_int(i * 1000));
    sh_val_set_cstr(m, "arr", a);
    sh_val *nested = sh_val_new_map();
    sh_val_set_cstr(nested, "x", sh_val_new_cstr("y"));
    sh_val_set_cstr(m, "nested", nested);
    char longs[300];
    memset(longs, 'q', sizeof longs);
    sh_val_set_cstr(m, "long", sh_val_new_str(longs, sizeof longs));
    return m;
}

static void test_value_round_trip(void **state)
{
    sh_val *v = sample();
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sh_msg_pack(v, &b), SH_OK);
    sh_val *back = NULL;
    sh_error err;
    assert_int_equal(sh_msg_unpack(b.data, b.len, NULL, &back, &err), SH_OK);
    assert_true(sh_val_equal(v, back));
    size_t len;
    const char *s = sh_val_get_str(back, "s", &len);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "a\0b", 3);
    assert_int_equal(sh_val_int(sh_val_get(back, "min")), INT64_MIN);
    sh_val_free(back);
    sh_val_free(v);
    sh_buf_fini(&b);
}

static void test_call_round_trip(void **state)
{
    sh_val *args = sample();
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sh_call_encode("progress.update", 42, args, &b), SH_OK);
    sh_call c;
    sh_error err;
    assert_int_equal(sh_call_decode(b.data, b.len, NULL, &c, &err), SH_OK);
    assert_string_equal(c.op, "progress.update");
    assert_int_equal(c.id, 42);
    assert_true(sh_val_equal(c.args, args));
    sh_call_fini(&c);

    /* No args decodes as nil. */
    sh_buf_reset(&b);
    assert_int_equal(sh_call_encode("ping", 1, NULL, &b), SH_OK);
    assert_int_equal(sh_call_decode(b.data, b.len, NULL, &c, &err), SH_OK);
    assert_int_equal(sh_val_type_of(c.args), SH_VAL_NIL);
    sh_call_fini(&c);

    /* Op names are 1..64 bytes. */
    char op[80];
    memset(op, 'o', sizeof op);
    op[79] = '\0';
    sh_buf_reset(&b);
    assert_int_equal(sh_call_encode(op, 1, NULL, &b), SH_EINVAL);
    assert_int_equal(sh_call_encode("", 1, NULL, &b), SH_EINVAL);
    sh_val_free(args);
    sh_buf_fini(&b);
}

static void test_reply_round_trip(void **state)
{
    sh_buf b;
    sh_buf_init(&b);
    sh_val *res = sample();
    assert_int_equal(sh_reply_encode_ok(9, res, &b), SH_OK);
    sh_reply_env r;
    sh_error err;
    assert_int_equal(sh_reply_decode(b.data, b.len, NULL, &r, &err), SH_OK);
    assert_true(r.ok);
    assert_int_equal(r.id, 9);
    assert_true(sh_val_equal(r.result, res));
    sh_reply_env_fini(&r);
    sh_val_free(res);

    sh_buf_reset(&b);
    assert_int_equal(sh_reply_encode_err(10, SH_ENOTFOUND, "Session not found", &b), SH_OK);
    assert_int_equal(sh_reply_decode(b.data, b.len, NULL, &r, &err), SH_OK);
    assert_false(r.ok);
    assert_int_equal(r.code, SH_ENOTFOUND);
    assert_string_equal(r.message, "Session not found");
    sh_reply_env_fini(&r);

    /* Every code survives the trip by name. */
    int codes[] = {SH_EINVAL,   SH_ECONFLICT, SH_ELEASE,    SH_ETOOBIG, SH_EPROTO,
                   SH_EUNAVAIL, SH_ETIMEDOUT, SH_EINTERNAL, SH_ENOOP,   SH_ELIMIT};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        sh_buf_reset(&b);
        assert_int_equal(sh_reply_encode_err(1, codes[i], NULL, &b), SH_OK);
        assert_int_equal(sh_reply_decode(b.data, b.len, NULL, &r, &err), SH_OK);
        assert_int_equal(r.code, codes[i]);
        sh_reply_env_fini(&r);
    }
    sh_buf_fini(&b);
}

/* expect_bad decodes raw bytes as a value and expects code rc. */
static void expect_bad(const char *bytes, size_t len, int rc, const char *words)
{
    sh_val *v = (sh_val *)0x1;
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(sh_msg_unpack(bytes, len, NULL, &v, &err), rc);
    assert_null(v);
    if (words && !strstr(err.msg, words))
        fail_msg("error \"%s\" lacks \"%s\"", err.msg, words);
}

static void test_malformed_values(void **state)
{
    expect_bad("", 0, SH_EPROTO, "empty");
    expect_bad("\xc1", 1, SH_EPROTO, "0xc1");                      /* never used */
    expect_bad("\xc7\x01\x05\x00", 4, SH_EPROTO, "not supported"); /* ext */
    expect_bad("\xd4\x01\x00", 3, SH_EPROTO, "not supported");     /* fixext */
    expect_bad("\x92\x01", 2, SH_EPROTO, "claims");                /* array missing an item */
    expect_bad("\x92\xa3"
               "ab",
               4, SH_EPROTO, "truncated");                      /* item cut short */
    expect_bad("\xa5hi", 3, SH_EPROTO, "truncated");            /* string shorter than said */
    expect_bad("\xcd\x01", 2, SH_EPROTO, "truncated");          /* uint16 cut */
    expect_bad("\xcb\x00\x00", 3, SH_EPROTO, "truncated");      /* float64 cut */
    expect_bad("\x01\x02", 2, SH_EPROTO, "trailing");           /* two values */
    expect_bad("\xdd\xff\xff\xff\xff", 5, SH_EPROTO, "claims"); /* 4G items */
    expect_bad("\xdf\x7f\xff\xff\xff", 5, SH_EPROTO, "claims"); /* 2G entries */
    expect_bad("\xdb\xff\xff\xff\xff", 5, SH_EPROTO, "truncated");
    expect_bad("\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9, SH_EPROTO, "out of range");
    expect_bad("\x81\x01\x02", 3, SH_EPROTO, "key must be a string");
    expect_bad("\x82\xa1k\x01\xa1k\x02", 7, SH_EPROTO, "duplicate");
}

static void test_limits(void **state)
{
    /* Nesting beyond the limit. */
    char deep[100];
    memset(deep, 0x91, sizeof deep);
    deep[99] = 0x01;
    sh_msg_limits lim;
    sh_msg_limits_default(&lim);
    sh_val *v = NULL;
    sh_error err;
    assert_int_equal(sh_msg_unpack(deep, sizeof deep, &lim, &v, &err), SH_ELIMIT);
    assert_non_null(strstr(err.msg, "nesting"));

    /* Too many values. */
    lim.max_items = 10;
    char arr[21] = {(char)0x9f};
    memset(arr + 1, 0x01, 15);
    assert_int_equal(sh_msg_unpack(arr, 16, &lim, &v, &err), SH_ELIMIT);

    /* Too many bytes. */
    sh_msg_limits_default(&lim);
    lim.max_bytes = 8;
    assert_int_equal(sh_msg_unpack("\xa9"
                                   "123456789",
                                   10, &lim, &v, &err),
                     SH_ETOOBIG);
    assert_null(v);
}

static void test_malformed_envelopes(void **state)
{
    sh_call c;
    sh_reply_env r;
    sh_error err;
    /* Not a map. */
    assert_int_equal(sh_call_decode("\x01", 1, NULL, &c, &err), SH_EPROTO);
    /* Map without op. */
    assert_int_equal(sh_call_decode("\x81\xa2id\x01", 5, NULL, &c, &err), SH_EPROTO);
    assert_non_null(strstr(err.msg, "op"));
    /* op of the wrong type. */
    assert_int_equal(sh_call_decode("\x82\xa2op\x05\xa2id\x01", 8, NULL, &c, &err), SH_EPROTO);
    /* No id. */
    assert_int_equal(sh_call_decode("\x81\xa2op\xa1x", 6, NULL, &c, &err), SH_EPROTO);
    assert_non_null(strstr(err.msg, "id"));
    /* Negative id. */
    assert_int_equal(sh_call_decode("\x82\xa2op\xa1x\xa2id"
                                    "\xff",
                                    10, NULL, &c, &err),
                     SH_EPROTO);
    /* Unknown key. */
    assert_int_equal(sh_call_decode("\x83\xa2op\xa1x\xa2id\x01\xa3"
                                    "xyz\x01",
                                    15, NULL, &c, &err),
                     SH_EPROTO);
    assert_non_null(strstr(err.msg, "xyz"));
    /* Reply without ok. */
    assert_int_equal(sh_reply_decode("\x81\xa2id\x01", 5, NULL, &r, &err), SH_EPROTO);
    /* Error reply lacking code/message. */
    assert_int_equal(sh_reply_decode("\x83\xa2id\x01\xa2ok\xc2\xa5"
                                     "error\x80",
                                     15, NULL, &r, &err),
                     SH_EPROTO);
}

static void test_every_truncation_is_refused(void **state)
{
    sh_val *v = sample();
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sh_call_encode("op", 5, v, &b), SH_OK);
    for (size_t n = 0; n < b.len; n++) {
        sh_call c;
        sh_error err;
        assert_int_not_equal(sh_call_decode(b.data, n, NULL, &c, &err), SH_OK);
    }
    sh_buf_fini(&b);
    sh_val_free(v);
}

/* ---- batches ------------------------------------------------------------- */

/* split_ok splits the batch b, checks it holds want calls and returns
 * them (caller frees). */
static sh_slice *split_ok(const sh_buf *b, size_t want)
{
    sh_slice *items = NULL;
    size_t n = 0;
    sh_error err;
    assert_int_equal(sh_batch_split(b->data, b->len, &items, &n, &err), SH_OK);
    assert_int_equal(n, want);
    return items;
}

static void test_batch_round_trip(void **state)
{
    (void)state;
    sh_buf one, two, b;
    sh_buf_init(&one);
    sh_buf_init(&two);
    sh_buf_init(&b);
    sh_val *args = sample();
    assert_int_equal(sh_call_encode("a.op", 1, args, &one), SH_OK);
    assert_int_equal(sh_call_encode("b.op", 2, NULL, &two), SH_OK);
    assert_int_equal(sh_batch_begin(2, &b), SH_OK);
    assert_int_equal(sh_batch_add(one.data, one.len, &b), SH_OK);
    assert_int_equal(sh_batch_add(two.data, two.len, &b), SH_OK);
    assert_true(b.len <= one.len + two.len + sh_batch_overhead(2));
    assert_true(sh_batch_is(b.data, b.len));
    assert_false(sh_batch_is(one.data, one.len));
    sh_slice *items = split_ok(&b, 2);
    assert_int_equal(items[0].len, one.len);
    assert_memory_equal(items[0].data, one.data, one.len);
    assert_int_equal(items[1].len, two.len);
    sh_call call;
    sh_error err;
    assert_int_equal(sh_call_decode(items[1].data, items[1].len, NULL, &call, &err), SH_OK);
    assert_string_equal(call.op, "b.op");
    assert_int_equal(call.id, 2);
    sh_call_fini(&call);
    free(items);
    sh_val_free(args);
    sh_buf_fini(&one);
    sh_buf_fini(&two);
    sh_buf_fini(&b);
}

static void test_batch_large(void **state)
{
    (void)state;
    /* 300 calls: an array16 header; one 70 KiB envelope: a bin32. */
    sh_buf b, env;
    sh_buf_init(&b);
    sh_buf_init(&env);
    sh_batch_begin(300, &b);
    for (int i = 0; i < 299; i++) {
        sh_buf_reset(&env);
        sh_call_encode("x", (uint64_t)i, NULL, &env);
        sh_batch_add(env.data, env.len, &b);
    }
    static char big[70000];
    memset(big, 'q', sizeof big);
    sh_val *s = sh_val_new_str(big, sizeof big);
    sh_buf_reset(&env);
    sh_call_encode("x", 299, s, &env);
    sh_batch_add(env.data, env.len, &b);
    sh_slice *items = split_ok(&b, 300);
    assert_int_equal(items[299].len, env.len);
    free(items);
    sh_val_free(s);
    sh_buf_fini(&b);
    sh_buf_fini(&env);
}

static void test_batch_malformed_framing(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        const char *data;
        size_t len;
    } cases[] = {
        {"empty", "", 0},
        {"a map", "\x80", 1},
        {"no items", "\x90", 1},
        {"an item that is not a bin",
         "\x91\xa1"
         "x",
         3},
        {"a truncated bin header", "\x91\xc5\x00", 3},
        {"a bin longer than what remains",
         "\x91\xc4\x05"
         "ab",
         5},
        {"fewer items than claimed",
         "\x92\xc4\x01"
         "x",
         4},
        {"trailing bytes",
         "\x91\xc4\x01"
         "xy",
         5},
        {"a count beyond the bytes", "\xdd\xff\xff\xff\xff\xc4\x00", 7},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sh_slice *items = (sh_slice *)1;
        size_t n = 99;
        sh_error err;
        int rc = sh_batch_split(cases[i].data, cases[i].len, &items, &n, &err);
        if (rc != SH_EPROTO)
            fail_msg("%s: got %d", cases[i].what, rc);
        assert_null(items);
        assert_int_equal(n, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_round_trip),
        cmocka_unit_test(test_call_round_trip),
        cmocka_unit_test(test_reply_round_trip),
        cmocka_unit_test(test_malformed_values),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_malformed_envelopes),
        cmocka_unit_test(test_every_truncation_is_refused),
        cmocka_unit_test(test_batch_round_trip),
        cmocka_unit_test(test_batch_large),
        cmocka_unit_test(test_batch_malformed_framing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
