/* test_imap_decode.c - what the sync-worker makes of an IMAP server's
 * replies (imap_decode.c), without a server: the UTF-8 cleaner (control
 * bytes, invalid, overlong and surrogate sequences, code points past
 * U+10FFFF, the length cut), MIME encoded words, and FETCH replies given
 * as raw bytes to libetpan's parser on a memory stream, decoded into
 * messages: every field, \Recent left out, and the refusals of a reply
 * that lacks what was asked for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "imap_int.h"
#include "imap_mem.h"

static void expect_clean(const char *in, size_t len, const char *want)
{
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sync__imap_clean(&b, in, len), SH_OK);
    assert_string_equal(b.data ? b.data : "", want);
    sh_buf_fini(&b);
}

static void test_clean(void **state)
{
    expect_clean("plain", 5, "plain");
    expect_clean("a\x01\tb\x7f", 5, "a  b ");
    /* valid: 2, 3 and 4 bytes */
    expect_clean("\xc3\xa9\xe2\x82\xac\xf0\x9f\x93\xa7", 9, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x93\xa7");
    /* invalid sequences become U+FFFD (every class: tests/unit/test_text.c) */
    expect_clean("ab\xff", 3, "ab\xef\xbf\xbd");
    expect_clean("\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd");                 /* overlong "/" */
    expect_clean("\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* a surrogate */
    expect_clean("\xe2\x82", 2, "\xef\xbf\xbd");                             /* cut short */
    /* cut at the field limit */
    static char big[SYNC__IMAP_FIELD_MAX + 100];
    memset(big, 'x', sizeof big);
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sync__imap_clean(&b, big, sizeof big), SH_OK);
    assert_int_equal(b.len, SYNC__IMAP_FIELD_MAX);
    sh_buf_fini(&b);
}

static void expect_header(const char *in, const char *want)
{
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sync__imap_header(&b, in), SH_OK);
    assert_string_equal(b.data ? b.data : "", want);
    sh_buf_fini(&b);
}

static void test_header(void **state)
{
    expect_header("Hello", "Hello");
    expect_header("=?ISO-8859-1?Q?Fran=E7ois_M=FCller?=", "Fran\xc3\xa7ois M\xc3\xbcller");
    expect_header("=?UTF-8?B?w6lsw6h2ZQ==?= and more", "\xc3\xa9l\xc3\xa8ve and more");
    expect_header("raw \xc3\x89mile \xff", "raw \xc3\x89mile \xef\xbf\xbd");
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sync__imap_header(&b, NULL), SH_OK);
    assert_int_equal(b.len, 0);
    sh_buf_fini(&b);
}

/* A decoded message, copied out of the callback. */
typedef struct got {
    int count;
    uint32_t uid, size;
    char flags[200], date[40], subject[200], from[200], to[200], cc[200], message_id[100];
} got;

static int collect(void *arg, const sync_msg *m)
{
    got *g = arg;
    g->count++;
    g->uid = m->uid;
    g->size = m->size;
    snprintf(g->flags, sizeof g->flags, "%s", m->flags);
    snprintf(g->date, sizeof g->date, "%s", m->internal_date);
    snprintf(g->subject, sizeof g->subject, "%s", m->subject);
    snprintf(g->from, sizeof g->from, "%s", m->from);
    snprintf(g->to, sizeof g->to, "%s", m->to);
    snprintf(g->cc, sizeof g->cc, "%s", m->cc);
    snprintf(g->message_id, sizeof g->message_id, "%s", m->message_id);
    return SH_OK;
}

/* decode parses reply (untagged lines; "1 OK done" is added) as libetpan
 * does for a session and decodes its FETCH results. */
static int decode(const char *reply, bool full, got *g, sh_error *err)
{
    char all[8192];
    snprintf(all, sizeof all, "%s1 OK done\r\n", reply);
    clist *res = NULL;
    assert_int_equal(tf_imap_parse_fetch(all, strlen(all), &res), 0);
    memset(g, 0, sizeof *g);
    sh_error_clear(err);
    return sync__imap_fetch_results(res, full, collect, g, err);
}

static void test_fetch_full(void **state)
{
    got g;
    sh_error err;
    const char *reply =
        "* 1 FETCH (UID 7 FLAGS (\\Seen \\Recent $Label) RFC822.SIZE 321 "
        "INTERNALDATE \"01-Jan-2024 10:00:00 +0100\" ENVELOPE (\"Mon, 01 Jan 2024 10:00:00 "
        "+0100\" \"=?UTF-8?B?w6lsw6h2ZQ==?=\" ((\"Fran\\\"cois\" NIL \"f\" \"example.com\")) NIL "
        "NIL ((\"A\" NIL \"a\" \"x.org\")(NIL NIL \"b\" \"y.org\")) NIL NIL NIL \"<id@x>\"))\r\n";
    assert_int_equal(decode(reply, true, &g, &err), SH_OK);
    assert_int_equal(g.count, 1);
    assert_int_equal(g.uid, 7);
    assert_int_equal(g.size, 321);
    assert_string_equal(g.flags, "\\Seen $Label"); /* \Recent is session state */
    assert_string_equal(g.date, "2024-01-01T09:00:00.000Z");
    assert_string_equal(g.subject, "\xc3\xa9l\xc3\xa8ve");
    assert_string_equal(g.from, "Fran\"cois <f@example.com>");
    assert_string_equal(g.to, "A <a@x.org>, b@y.org");
    assert_string_equal(g.cc, "");
    assert_string_equal(g.message_id, "<id@x>");
}

static void test_fetch_literal_text(void **state)
{
    got g;
    sh_error err;
    /* a subject sent as a literal, with bytes that are not UTF-8 */
    const char *reply = "* 2 FETCH (UID 9 FLAGS () RFC822.SIZE 10 INTERNALDATE "
                        "\"02-Feb-2024 00:00:00 +0000\" ENVELOPE (NIL {7}\r\nab\xff\xc0\xaf\x01z "
                        "NIL NIL NIL NIL NIL NIL NIL NIL))\r\n";
    assert_int_equal(decode(reply, true, &g, &err), SH_OK);
    assert_int_equal(g.uid, 9);
    assert_string_equal(g.subject, "ab\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd z");
    assert_string_equal(g.flags, "");
}

static void test_fetch_flags_only(void **state)
{
    got g;
    sh_error err;
    assert_int_equal(decode("* 3 FETCH (UID 11 FLAGS (\\Answered \\Flagged))\r\n", false, &g, &err),
                     SH_OK);
    assert_int_equal(g.uid, 11);
    assert_string_equal(g.flags, "\\Answered \\Flagged");
}

static void test_fetch_refused(void **state)
{
    got g;
    sh_error err;
    /* a full fetch without ENVELOPE */
    assert_int_equal(decode("* 4 FETCH (UID 12 FLAGS () RFC822.SIZE 5 INTERNALDATE "
                            "\"02-Feb-2024 00:00:00 +0000\")\r\n",
                            true, &g, &err),
                     SH_EPROTO);
    assert_non_null(strstr(err.msg, "lacks a requested field"));
    assert_int_equal(g.count, 0);
    /* no UID */
    assert_int_equal(decode("* 5 FETCH (FLAGS ())\r\n", false, &g, &err), SH_EPROTO);
    assert_non_null(strstr(err.msg, "its UID"));
    /* no FLAGS */
    assert_int_equal(decode("* 6 FETCH (UID 3)\r\n", false, &g, &err), SH_EPROTO);
    assert_non_null(strstr(err.msg, "FLAGS"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean),
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_fetch_full),
        cmocka_unit_test(test_fetch_literal_text),
        cmocka_unit_test(test_fetch_flags_only),
        cmocka_unit_test(test_fetch_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
