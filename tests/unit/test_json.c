/* test_json.c - JSON text to sh_val and back (services/gateway/json.c):
 * types and nesting, 64-bit integers against doubles, strings with escapes,
 * UTF-8 and NUL bytes, malformed input refused with the byte where it
 * failed, the depth and size limits, and round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_json.h"
#include "shared/err.h"
#include "shared/msg.h"

/* json_parse parses the C string text; NULL (and msg) when refused. */
static sh_val *json_parse(const char *text, char *msg, size_t msglen)
{
    sh_val *v = NULL;
    int rc = gw_json_parse(text, strlen(text), &v, msg, msglen);
    if (rc == 0) {
        assert_non_null(v);
        return v;
    }
    assert_int_equal(rc, -1);
    assert_null(v);
    assert_true(msg[0] != '\0');
    return NULL;
}

static sh_val *json_ok(const char *text)
{
    char msg[256];
    sh_val *v = json_parse(text, msg, sizeof msg);
    if (!v)
        fail_msg("%s: refused: %s", text, msg);
    return v;
}

/* json_refused expects text refused with a message holding words. */
static void json_refused(const char *text, const char *words)
{
    char msg[256];
    sh_val *v = json_parse(text, msg, sizeof msg);
    if (v) {
        sh_val_free(v);
        fail_msg("%s: accepted", text);
    }
    if (!strstr(msg, words))
        fail_msg("%s: \"%s\" lacks \"%s\"", text, msg, words);
}

/* json_text returns the JSON of v as a new C string (caller frees). */
static char *json_text(const sh_val *v)
{
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(gw_json_write(v, &b), SH_OK);
    char *s = sh_buf_steal(&b, NULL);
    assert_non_null(s);
    return s;
}

static void json_writes(const sh_val *v, const char *want)
{
    char *s = json_text(v);
    if (strcmp(s, want) != 0)
        fail_msg("wrote %s, not %s", s, want);
    free(s);
}

static void test_types_and_nesting(void **state)
{
    (void)state;
    sh_val *v = json_ok(" {\"a\": [1, 2.5, {\"b\": null}, [], {}],\n \"c\": true, \"d\": false, "
                        "\"e\": \"x\"} ");
    assert_int_equal(sh_val_type_of(v), SH_VAL_MAP);
    assert_int_equal(sh_val_len(v), 4);
    const sh_val *a = sh_val_get(v, "a");
    assert_int_equal(sh_val_type_of(a), SH_VAL_ARRAY);
    assert_int_equal(sh_val_len(a), 5);
    assert_int_equal(sh_val_type_of(sh_val_at(a, 0)), SH_VAL_INT);
    assert_int_equal(sh_val_int(sh_val_at(a, 0)), 1);
    assert_int_equal(sh_val_type_of(sh_val_at(a, 1)), SH_VAL_FLOAT);
    assert_true(sh_val_float(sh_val_at(a, 1)) == 2.5);
    const sh_val *inner = sh_val_at(a, 2);
    assert_int_equal(sh_val_type_of(inner), SH_VAL_MAP);
    assert_int_equal(sh_val_type_of(sh_val_get(inner, "b")), SH_VAL_NIL);
    assert_int_equal(sh_val_type_of(sh_val_at(a, 3)), SH_VAL_ARRAY);
    assert_int_equal(sh_val_len(sh_val_at(a, 3)), 0);
    assert_int_equal(sh_val_type_of(sh_val_at(a, 4)), SH_VAL_MAP);
    assert_int_equal(sh_val_type_of(sh_val_get(v, "c")), SH_VAL_BOOL);
    assert_true(sh_val_bool(sh_val_get(v, "c")));
    assert_false(sh_val_bool(sh_val_get(v, "d")));
    assert_string_equal(sh_val_get_str(v, "e", NULL), "x");
    /* Keys keep their order; the writer is compact. */
    json_writes(v, "{\"a\":[1,2.5,{\"b\":null},[],{}],\"c\":true,\"d\":false,\"e\":\"x\"}");
    sh_val_free(v);

    /* Any value may stand at the top, a number too. */
    v = json_ok("42");
    assert_int_equal(sh_val_type_of(v), SH_VAL_INT);
    assert_int_equal(sh_val_int(v), 42);
    sh_val_free(v);
    v = json_ok("\"s\"");
    assert_string_equal(sh_val_str(v, NULL), "s");
    sh_val_free(v);
    v = json_ok("null");
    assert_int_equal(sh_val_type_of(v), SH_VAL_NIL);
    sh_val_free(v);

    /* A repeated key keeps its last value. */
    v = json_ok("{\"k\":1,\"k\":2}");
    assert_int_equal(sh_val_len(v), 1);
    assert_int_equal(sh_val_int(sh_val_get(v, "k")), 2);
    sh_val_free(v);
}

static void json_int(const char *text, int64_t want)
{
    sh_val *v = json_ok(text);
    if (sh_val_type_of(v) != SH_VAL_INT)
        fail_msg("%s: %s, not an integer", text, sh_val_type_name(sh_val_type_of(v)));
    assert_true(sh_val_int(v) == want);
    sh_val_free(v);
}

static void json_double(const char *text, double want)
{
    sh_val *v = json_ok(text);
    if (sh_val_type_of(v) != SH_VAL_FLOAT)
        fail_msg("%s: %s, not a float", text, sh_val_type_name(sh_val_type_of(v)));
    assert_true(sh_val_float(v) == want);
    sh_val_free(v);
}

static void test_numbers(void **state)
{
    (void)state;
    json_int("0", 0);
    json_int("-0", 0);
    json_int("-17", -17);
    json_int("9007199254740993", 9007199254740993LL); /* not exact as a double */
    json_int("9223372036854775807", INT64_MAX);
    json_int("-9223372036854775808", INT64_MIN);
    json_double("1.0", 1.0);
    json_double("-0.5", -0.5);
    json_double("1e3", 1000.0);
    json_double("2.5E-3", 0.0025);
    json_double("1.7976931348623157e308", 1.7976931348623157e308);

    /* Beyond 64 bits an integer is refused, not rounded or clamped. */
    json_refused("9223372036854775808", "64-bit range");
    json_refused("18446744073709551615", "64-bit range");
    json_refused("-9223372036854775809", "64-bit range");
    json_refused("{\"a\":[-99999999999999999999]}", "64-bit range");
    /* ...also when INT64_MIN itself is there too. */
    json_refused("[-9223372036854775808, -9223372036854775809]", "64-bit range");
    /* A string that looks like a smaller number is no integer at all. */
    sh_val *v = json_ok("[-9223372036854775808, \"-9223372036854775809\"]");
    assert_true(sh_val_int(sh_val_at(v, 0)) == INT64_MIN);
    assert_string_equal(sh_val_str(sh_val_at(v, 1), NULL), "-9223372036854775809");
    sh_val_free(v);
    v = json_ok("[-9223372036854775808, \"a\\\"-9223372036854775809\"]");
    sh_val_free(v);

    /* No NaN or infinity gets in: not as a word, nor as an overflow. */
    json_refused("NaN", "malformed JSON");
    json_refused("[Infinity]", "malformed JSON");
    json_refused("-Infinity", "malformed JSON");
    json_refused("1e400", "malformed JSON");
    json_refused("[-1e400]", "malformed JSON");
    /* RFC 8259 number syntax. */
    json_refused("01", "malformed JSON");
    json_refused("+1", "malformed JSON");
    json_refused(".5", "malformed JSON");
    json_refused("0x10", "malformed JSON");
}

static void test_write_numbers(void **state)
{
    (void)state;
    static const struct {
        double d;
        const char *text;
    } cases[] = {
        {0.1, "0.1"},
        {1.0, "1.0"},
        {-2.0, "-2.0"},
        {1e300, "1e+300"},
        {0.1 + 0.2, "0.30000000000000004"},
        {5e-324, "4.94065645841247e-324"},
        {123456789.0, "123456789.0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sh_val *v = sh_val_new_float(cases[i].d);
        json_writes(v, cases[i].text);
        /* The text reads back as the same double, and as a double. */
        char *s = json_text(v);
        sh_val *back = json_ok(s);
        assert_int_equal(sh_val_type_of(back), SH_VAL_FLOAT);
        assert_true(sh_val_float(back) == cases[i].d);
        sh_val_free(back);
        free(s);
        sh_val_free(v);
    }
    /* A value from elsewhere (msgpack) may be NaN or infinite: JSON has no
     * such number, so it is written as null. */
    sh_val *a = sh_val_new_array();
    assert_int_equal(sh_val_push(a, sh_val_new_float(NAN)), SH_OK);
    assert_int_equal(sh_val_push(a, sh_val_new_float(INFINITY)), SH_OK);
    assert_int_equal(sh_val_push(a, sh_val_new_float(-INFINITY)), SH_OK);
    assert_int_equal(sh_val_push(a, sh_val_new_int(INT64_MIN)), SH_OK);
    assert_int_equal(sh_val_push(a, sh_val_new_int(INT64_MAX)), SH_OK);
    json_writes(a, "[null,null,null,-9223372036854775808,9223372036854775807]");
    sh_val_free(a);
}

static void test_strings(void **state)
{
    (void)state;
    size_t len;
    sh_val *v = json_ok("\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t \\u00e9 \\u20ac \\ud83d\\ude00\"");
    const char *s = sh_val_str(v, &len);
    static const char want[] = "q\" b\\ s/ \b\f\n\r\t \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    assert_int_equal(len, sizeof want - 1);
    assert_memory_equal(s, want, len);
    sh_val_free(v);

    /* Raw UTF-8 passes as it is. */
    v = json_ok("{\"na\xc3\xafve\":\"Entw\xc3\xbcrfe \xe6\x97\xa5\"}");
    assert_string_equal(sh_val_get_str(v, "na\xc3\xafve", NULL), "Entw\xc3\xbcrfe \xe6\x97\xa5");
    json_writes(v, "{\"na\xc3\xafve\":\"Entw\xc3\xbcrfe \xe6\x97\xa5\"}");
    sh_val_free(v);

    /* \u0000 is a NUL byte inside the string, its length kept. */
    v = json_ok("[\"a\\u0000b\"]");
    s = sh_val_str(sh_val_at(v, 0), &len);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "a\0b", 3);
    json_writes(v, "[\"a\\u0000b\"]");
    sh_val_free(v);

    /* Invalid UTF-8 is refused (RFC 3629), and where it starts is named:
     * bytes that are never UTF-8, a sequence cut short, a stray continuation
     * byte, overlong forms, surrogates and code points above U+10FFFF. */
    json_refused("\"\xff\"", "at byte 1: invalid UTF-8");
    json_refused("\"ab\xc3\"", "at byte 3: invalid UTF-8");
    json_refused("\"\xe2\x82\"", "at byte 1: invalid UTF-8");
    json_refused("[\"\x80\"]", "at byte 2: invalid UTF-8");
    json_refused("\"\xc0\xaf\"", "at byte 1: invalid UTF-8");
    json_refused("\"\xc1\xbf\"", "at byte 1: invalid UTF-8");
    json_refused("\"\xe0\x80\xaf\"", "at byte 1: invalid UTF-8");
    json_refused("\"\xf0\x80\x80\xaf\"", "at byte 1: invalid UTF-8");
    json_refused("\"\xed\xa0\x80\"", "at byte 1: invalid UTF-8");
    json_refused("{\"\xed\xbf\xbf\":1}", "at byte 2: invalid UTF-8");
    json_refused("\"\xf4\x90\x80\x80\"", "at byte 1: invalid UTF-8");
    json_refused("\"\xf5\x80\x80\x80\"", "at byte 1: invalid UTF-8");
    json_refused("\"\xf8\x88\x80\x80\x80\"", "at byte 1: invalid UTF-8");
    /* The edges of every range are taken. */
    v = json_ok("\"\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xed\x9f\xbf \xee\x80\x80 \xef\xbf\xbf "
                "\xf0\x90\x80\x80 \xf4\x8f\xbf\xbf\"");
    s = sh_val_str(v, &len);
    assert_int_equal(len, 2 + 2 + 3 + 3 + 3 + 3 + 4 + 4 + 7);
    sh_val_free(v);
    /* An escaped lone surrogate cannot make invalid UTF-8 either: json-c
     * writes U+FFFD in its place. */
    v = json_ok("\"\\ud800\"");
    assert_string_equal(sh_val_str(v, NULL), "\xef\xbf\xbd");
    sh_val_free(v);
    /* Bad escapes. */
    json_refused("\"\\x41\"", "malformed JSON");
    json_refused("\"\\u12\"", "malformed JSON");
    json_refused("\"\\u12G4\"", "malformed JSON");
    json_refused("'single'", "malformed JSON");
}

static void test_write_strings(void **state)
{
    (void)state;
    static const char raw[] = "\"\\/\b\f\n\r\t\x01\x1f\x7f \xc3\xa9";
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(gw_json_write_str(&b, raw, sizeof raw - 1), SH_OK);
    static const char want[] = "\"\\\"\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f \xc3\xa9\"";
    assert_int_equal(b.len, sizeof want - 1);
    assert_memory_equal(b.data, want, b.len);
    sh_buf_fini(&b);

    /* Every byte below 0x20 is written escaped and reads back as itself. */
    char all[32];
    for (int i = 0; i < 32; i++)
        all[i] = (char)i;
    sh_val *v = sh_val_new_str(all, sizeof all);
    char *text = json_text(v);
    for (const char *p = text; *p; p++)
        assert_true((unsigned char)*p >= 0x20);
    sh_val *back = json_ok(text);
    assert_true(sh_val_equal(v, back));
    sh_val_free(back);
    free(text);
    sh_val_free(v);

    /* Binary strings are written as strings; keys are escaped too. */
    sh_val *m = sh_val_new_map();
    assert_int_equal(sh_val_set_cstr(m, "k\"1", sh_val_new_bin("\x01z", 2)), SH_OK);
    json_writes(m, "{\"k\\\"1\":\"\\u0001z\"}");
    sh_val_free(m);
}

static void test_malformed(void **state)
{
    (void)state;
    /* A body cut short says so, with its length. */
    json_refused("", "unexpected end of the body after 0 bytes");
    json_refused("{", "unexpected end of the body after 1 bytes");
    json_refused("{\"a\":", "unexpected end");
    json_refused("[1,2", "unexpected end");
    json_refused("\"abc", "unexpected end");
    json_refused("   ", "unexpected end");
    /* Otherwise the byte where parsing failed is named. */
    json_refused("{\"a\":}", "malformed JSON at byte 5");
    json_refused("[1,]", "malformed JSON at byte 3");
    json_refused("{\"a\":1,}", "malformed JSON at byte 7");
    json_refused("{a:1}", "malformed JSON at byte 1");
    json_refused("tru", "malformed JSON");
    json_refused("nul", "malformed JSON");
    json_refused("[1 2]", "malformed JSON at byte 3");
    json_refused("/* c */ {}", "malformed JSON at byte 0");
    /* One value and nothing after it but blanks. */
    json_refused("1 2", "malformed JSON at byte 2");
    json_refused("{}  x", "malformed JSON at byte 4");
    json_refused("[] []", "malformed JSON at byte 3");
    sh_val *v = json_ok(" \t\r\n{} \t\r\n");
    assert_int_equal(sh_val_type_of(v), SH_VAL_MAP);
    sh_val_free(v);

    /* A NUL byte inside the text ends it: what follows is not JSON. */
    static const char with_nul[] = "{}\0{}";
    char msg[128];
    v = (sh_val *)1;
    assert_int_equal(gw_json_parse(with_nul, sizeof with_nul - 1, &v, msg, sizeof msg), -1);
    assert_null(v);
    assert_non_null(strstr(msg, "malformed JSON"));

    /* A short message buffer is filled, not overrun. */
    char tiny[8];
    v = (sh_val *)1;
    assert_int_equal(gw_json_parse("[1,]", 4, &v, tiny, sizeof tiny), -1);
    assert_null(v);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
}

/* json_nested returns depth arrays around 1 as a new C string. */
static char *json_nested(int depth)
{
    char *s = malloc((size_t)depth * 2 + 2);
    assert_non_null(s);
    memset(s, '[', (size_t)depth);
    s[depth] = '1';
    memset(s + depth + 1, ']', (size_t)depth);
    s[2 * depth + 1] = '\0';
    return s;
}

static void test_limits(void **state)
{
    (void)state;
    char *s = json_nested(GW_JSON_MAX_DEPTH);
    sh_val *v = json_ok(s);
    const sh_val *p = v;
    for (int i = 0; i < GW_JSON_MAX_DEPTH; i++) {
        assert_int_equal(sh_val_type_of(p), SH_VAL_ARRAY);
        p = sh_val_at(p, 0);
    }
    assert_int_equal(sh_val_int(p), 1);
    sh_val_free(v);
    free(s);

    s = json_nested(GW_JSON_MAX_DEPTH + 1);
    json_refused(s, "nesting too deep");
    free(s);
    /* The limit is the services': a body as deep as the gateway takes,
     * sent as the "fields" of a call, decodes there; one level more would
     * not. */
    for (int depth = GW_JSON_MAX_DEPTH; depth <= GW_JSON_MAX_DEPTH + 1; depth++) {
        sh_val *body = sh_val_new_int(1);
        for (int i = 0; i < depth; i++) {
            sh_val *a = sh_val_new_array();
            assert_int_equal(sh_val_push(a, body), SH_OK);
            body = a;
        }
        sh_val *args = sh_val_new_map();
        assert_int_equal(sh_val_set_cstr(args, "id", sh_val_new_cstr("s1")), SH_OK);
        assert_int_equal(sh_val_set_cstr(args, "fields", body), SH_OK);
        sh_buf b;
        sh_buf_init(&b);
        assert_int_equal(sh_call_encode("progress.update", 1, args, &b), SH_OK);
        sh_msg_limits lim;
        sh_msg_limits_default(&lim);
        sh_call call;
        sh_error err;
        int rc = sh_call_decode(b.data, b.len, &lim, &call, &err);
        if (rc == SH_OK)
            sh_call_fini(&call);
        assert_int_equal(rc, depth == GW_JSON_MAX_DEPTH ? SH_OK : SH_ELIMIT);
        sh_buf_fini(&b);
        sh_val_free(args);
    }
    s = json_nested(10000);
    json_refused(s, "nesting too deep");
    free(s);

    /* A length json-c cannot take is refused before the text is read. */
    char msg[128];
    v = (sh_val *)1;
    assert_int_equal(gw_json_parse("{}", (size_t)INT32_MAX, &v, msg, sizeof msg), -1);
    assert_null(v);
    assert_non_null(strstr(msg, "too large"));

    /* A large flat body parses whole. */
    size_t n = 100000;
    char *big = malloc(n * 2 + 3);
    assert_non_null(big);
    big[0] = '[';
    for (size_t i = 0; i < n; i++) {
        big[1 + 2 * i] = '7';
        big[2 + 2 * i] = i + 1 < n ? ',' : ']';
    }
    big[2 * n + 1] = '\0';
    v = json_ok(big);
    assert_int_equal(sh_val_len(v), n);
    assert_int_equal(sh_val_int(sh_val_at(v, n - 1)), 7);
    sh_val_free(v);
    free(big);
}

static void test_round_trip(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "{\"id\":\"s1\",\"version\":3,\"ratio\":0.25,\"done\":false,\"tags\":[\"a\",\"b\"],"
        "\"meta\":{\"n\":null,\"deep\":[[[{}]]]},\"big\":-9223372036854775808}",
        "[\"\\u0000\\u001f\\\"\\\\\",\"\xe2\x82\xac\",1e-7,-0.0,9223372036854775807]",
        "[]",
        "{}",
        "\"\"",
        "true",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        sh_val *v = json_ok(texts[i]);
        char *once = json_text(v);
        sh_val *back = json_ok(once);
        if (!sh_val_equal(v, back))
            fail_msg("%s: %s reads back different", texts[i], once);
        /* The writer's text is its own fixed point. */
        char *twice = json_text(back);
        assert_string_equal(once, twice);
        free(twice);
        free(once);
        sh_val_free(back);
        sh_val_free(v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types_and_nesting),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_write_numbers),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_write_strings),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
