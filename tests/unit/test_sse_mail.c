/* test_sse_mail.c - what the mail streams of GET /api/accounts/:id/events
 * decide alone (sse_mail.c): the order of event ids, which decides what a
 * resumed stream sends and drops, and the SSE text of an event. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <string.h>

#include "gw_json.h"
#include "gw_sse_int.h"

static void test_id_order(void **state)
{
    (void)state;
    assert_true(gw__sse_mail_id_cmp("1-0", "2-0") < 0);
    assert_true(gw__sse_mail_id_cmp("2-0", "1-0") > 0);
    assert_int_equal(gw__sse_mail_id_cmp("5-3", "5-3"), 0);
    /* Numbers, not text: 10 comes after 9, in both parts. */
    assert_true(gw__sse_mail_id_cmp("9-0", "10-0") < 0);
    assert_true(gw__sse_mail_id_cmp("7-9", "7-10") < 0);
    assert_true(gw__sse_mail_id_cmp("1733100000000-5", "1733100000001-0") < 0);
    /* Anything that is no id is older than every id ("" is none sent). */
    static const char *const bad[] = {"", "5", "5-", "-5", "a-1", "1-2-3", "1-2x", " 1-2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_true(gw__sse_mail_id_cmp("0-0", bad[i]) > 0);
        assert_true(gw__sse_mail_id_cmp(bad[i], "0-1") < 0);
        assert_int_equal(gw__sse_mail_id_cmp(bad[i], bad[i]), 0);
    }
}

static sh_val *event(const char *id, const char *type)
{
    sh_val *m = sh_val_new_map();
    if (type)
        sh_val_set_cstr(m, "type", sh_val_new_cstr(type));
    sh_val_set_cstr(m, "accountId", sh_val_new_cstr("a1"));
    if (id)
        sh_val_set_cstr(m, "id", sh_val_new_cstr(id));
    sh_val_set_cstr(m, "kind", sh_val_new_cstr("mail.flags"));
    return m;
}

static void test_text(void **state)
{
    (void)state;
    sh_val *ev = event("17-2", "mail.flags");
    sh_val_set_cstr(ev, "prevId", sh_val_new_cstr("17-1"));
    sh_val *flags = sh_val_new_array();
    sh_val_push(flags, sh_val_new_cstr("\\Seen"));
    sh_val_set_cstr(ev, "flags", flags);
    sh_val_set_cstr(ev, "folder",
                    sh_val_new_cstr("Entw\xc3\xbc"
                                    "rfe \"x\"\n"));
    sh_buf out;
    sh_buf_init(&out);
    assert_int_equal(gw__sse_mail_text(ev, &out), SH_OK);
    const char *want_head = "id: 17-2\nevent: mail.flags\ndata: {";
    assert_memory_equal(out.data, want_head, strlen(want_head));
    assert_string_equal(out.data + out.len - 3, "}\n\n");
    /* One data line: the JSON is the event without its kind. */
    const char *json = out.data + strlen(want_head) - 1;
    assert_null(memchr(json, '\n', out.len - strlen(want_head) - 2));
    sh_val *back = NULL;
    char msg[128];
    assert_int_equal(gw_json_parse(json, strlen(json) - 2, &back, msg, sizeof msg), SH_OK);
    assert_null(sh_val_get(back, "kind"));
    assert_null(sh_val_get(back, "prevId"));
    assert_string_equal(sh_val_get_str(back, "id", NULL), "17-2");
    assert_string_equal(sh_val_get_str(back, "type", NULL), "mail.flags");
    assert_string_equal(sh_val_get_str(back, "accountId", NULL), "a1");
    assert_string_equal(sh_val_get_str(back, "folder", NULL), "Entw\xc3\xbc"
                                                              "rfe \"x\"\n");
    assert_string_equal(sh_val_str(sh_val_at(sh_val_get(back, "flags"), 0), NULL), "\\Seen");
    sh_val_free(back);
    sh_val_free(ev);

    /* Without an id or a type, or with a line break in them: refused. */
    const struct {
        const char *id, *type;
    } bad[] = {
        {NULL, "mail.new"}, {"1-1", NULL}, {"1-1\nevent: x", "mail.new"}, {"1-1", "mail.new\r"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ev = event(bad[i].id, bad[i].type);
        out.len = 0;
        assert_int_equal(gw__sse_mail_text(ev, &out), SH_EINVAL);
        sh_val_free(ev);
    }
    sh_buf_fini(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_order),
        cmocka_unit_test(test_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
