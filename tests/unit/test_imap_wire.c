/* test_imap_wire.c - the bytes of every IMAP command form the sync-worker
 * composes (imap_wire.c), checked against the grammar's examples: atoms,
 * quoted strings with their escapes, synchronizing and LITERAL+ literals,
 * sequence sets, modified UTF-7 folder names (RFC 3501 5.1.3) both ways,
 * and the refusals (NUL bytes, invalid UTF-8, malformed modified UTF-7). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <string.h>

#include "imap_wire.h"
#include "shared/err.h"

/* expect_astring checks how s is sent as an astring. */
static void expect_astring(const char *s, size_t len, const char *want)
{
    sync_wire w;
    sync_wire_init(&w, false);
    sync_wire_astring(&w, s, len);
    assert_int_equal(w.err, SH_OK);
    assert_int_equal(w.buf.len, strlen(want));
    assert_memory_equal(w.buf.data, want, w.buf.len);
    sync_wire_fini(&w);
}

static void test_astring_forms(void **state)
{
    expect_astring("INBOX", 5, "INBOX");
    expect_astring("user@example.com", 16, "user@example.com");
    expect_astring("a]b", 3, "a]b"); /* resp-specials are ASTRING-CHARs */
    expect_astring("", 0, "\"\"");
    expect_astring("Sent Items", 10, "\"Sent Items\"");
    expect_astring("\"quoted\"", 8, "\"\\\"quoted\\\"\"");
    expect_astring("Back\\Slash", 10, "\"Back\\\\Slash\"");
    expect_astring("50%", 3, "\"50%\"");
    expect_astring("a*", 2, "\"a*\"");
    expect_astring("(x)", 3, "\"(x)\"");
    expect_astring("{x", 2, "\"{x\"");
}

static void test_literals(void **state)
{
    /* 8-bit bytes and line ends need a literal; the sender waits for "+"
     * after "{n}\r\n" unless the server offers LITERAL+. */
    sync_wire w;
    sync_wire_init(&w, false);
    sync_wire_raw(&w, "LOGIN ");
    sync_wire_astring(&w, "j\xc3\xbcrgen", 7);
    sync_wire_raw(&w, " ");
    sync_wire_astring(&w, "a\r\nb", 4);
    assert_int_equal(w.err, SH_OK);
    const char want[] = "LOGIN {7}\r\nj\xc3\xbcrgen {4}\r\na\r\nb";
    assert_int_equal(w.buf.len, sizeof want - 1);
    assert_memory_equal(w.buf.data, want, w.buf.len);
    assert_int_equal(w.nlits, 2);
    assert_int_equal(w.lits[0], strlen("LOGIN {7}\r\n"));
    assert_int_equal(w.lits[1], strlen("LOGIN {7}\r\nj\xc3\xbcrgen {4}\r\n"));
    sync_wire_fini(&w);

    sync_wire_init(&w, true);
    sync_wire_astring(&w, "p\xc3\xa4ss", 5);
    assert_string_equal(w.buf.data, "{5+}\r\np\xc3\xa4ss");
    assert_int_equal(w.nlits, 0);
    sync_wire_fini(&w);

    /* A NUL byte cannot be sent at all; later appends do nothing. */
    sync_wire_init(&w, false);
    sync_wire_astring(&w, "a\0b", 3);
    assert_int_equal(w.err, SH_EINVAL);
    assert_non_null(strstr(w.why, "NUL"));
    size_t len = w.buf.len;
    sync_wire_raw(&w, "more");
    assert_int_equal(w.buf.len, len);
    sync_wire_fini(&w);
}

static void test_sequence_sets(void **state)
{
    sync_wire w;
    sync_wire_init(&w, false);
    const uint32_t uids[] = {1, 2, 3, 7, 9, 10, 4294967295u};
    sync_wire_set(&w, uids, sizeof uids / sizeof *uids);
    assert_string_equal(w.buf.data, "1:3,7,9:10,4294967295");
    sync_wire_fini(&w);
    sync_wire_init(&w, false);
    const uint32_t one = 42;
    sync_wire_set(&w, &one, 1);
    assert_string_equal(w.buf.data, "42");
    sync_wire_fini(&w);
}

/* The command forms the worker sends, as imap.c composes them. */
static void test_command_forms(void **state)
{
    sync_wire w;
    sync_wire_init(&w, true);
    sync_wire_raw(&w, "UID STORE ");
    sync_wire_num(&w, 3);
    sync_wire_raw(&w, " (UNCHANGEDSINCE ");
    sync_wire_num(&w, 999999);
    sync_wire_raw(&w, ")");
    sync_wire_raw(&w, " +FLAGS.SILENT (\\Seen)");
    /* exactly what a strict server takes, with no space before CRLF */
    assert_string_equal(w.buf.data, "UID STORE 3 (UNCHANGEDSINCE 999999) +FLAGS.SILENT (\\Seen)");
    sync_wire_fini(&w);

    sync_wire_init(&w, true);
    sync_wire_raw(&w, "SELECT ");
    sync_wire_mailbox(&w, "Entw\xc3\xbcrfe");
    sync_wire_raw(&w, " (CONDSTORE)");
    assert_string_equal(w.buf.data, "SELECT Entw&APw-rfe (CONDSTORE)");
    sync_wire_fini(&w);

    sync_wire_init(&w, true);
    sync_wire_raw(&w, "SELECT ");
    sync_wire_mailbox(&w, "Sent Items");
    assert_string_equal(w.buf.data, "SELECT \"Sent Items\"");
    sync_wire_fini(&w);

    sync_wire_init(&w, true);
    sync_wire_raw(&w, "SELECT ");
    sync_wire_mailbox(&w, "INBOX.Archive/2026");
    assert_string_equal(w.buf.data, "SELECT INBOX.Archive/2026");
    sync_wire_fini(&w);

    sync_wire_init(&w, true);
    sync_wire_mailbox(&w, "bad \xff name");
    assert_int_equal(w.err, SH_EINVAL);
    sync_wire_fini(&w);
}

/* expect_mutf7 checks both directions of one name. */
static void expect_mutf7(const char *utf8, const char *mutf7)
{
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sync_mutf7_encode(&b, utf8, strlen(utf8)), SH_OK);
    assert_string_equal(b.data ? b.data : "", mutf7);
    sh_buf_reset(&b);
    assert_int_equal(sync_mutf7_decode(&b, mutf7, strlen(mutf7)), SH_OK);
    assert_string_equal(b.data ? b.data : "", utf8);
    sh_buf_fini(&b);
}

static void test_mutf7(void **state)
{
    expect_mutf7("INBOX", "INBOX");
    expect_mutf7("Entw\xc3\xbcrfe", "Entw&APw-rfe");
    expect_mutf7("A&B", "A&-B");
    /* RFC 3501 5.1.3's example */
    expect_mutf7("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
                 "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
    /* outside the BMP: a surrogate pair */
    expect_mutf7("\xf0\x9f\x93\xa7 Mail", "&2D3c5w- Mail");
    expect_mutf7("Gel\xc3\xb6scht", "Gel&APY-scht");
}

static void test_mutf7_refused(void **state)
{
    static const char *const bad[] = {
        "Entw\xc3\xbcrfe", /* raw 8-bit */
        "A&B",             /* & not closed */
        "&APw",            /* run not closed */
        "&A*w-",           /* not base64 */
        "&2D0-",           /* a high surrogate alone */
        "&3gA-",           /* a low surrogate alone */
        "&APx-",           /* padding bits not zero */
        "tab\there",       /* control character */
        "&AAA-",           /* NUL, base64-encoded */
        "&AAk-",           /* a tab, base64-encoded */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sh_buf b;
        sh_buf_init(&b);
        if (sync_mutf7_decode(&b, bad[i], strlen(bad[i])) != SH_EINVAL)
            fail_msg("%s decoded", bad[i]);
        sh_buf_fini(&b);
    }
    static const char *const bad_utf8[] = {"\xc3", "\xc0\xaf", "\xed\xa0\x80", "a\x01"};
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof *bad_utf8; i++) {
        sh_buf b;
        sh_buf_init(&b);
        assert_int_equal(sync_mutf7_encode(&b, bad_utf8[i], strlen(bad_utf8[i])), SH_EINVAL);
        sh_buf_fini(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_astring_forms), cmocka_unit_test(test_literals),
        cmocka_unit_test(test_sequence_sets), cmocka_unit_test(test_command_forms),
        cmocka_unit_test(test_mutf7),         cmocka_unit_test(test_mutf7_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
