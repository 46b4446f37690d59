/* test_ws_handshake.c - the WebSocket handshake and event text
 * (services/gateway/ws_handshake.c, ws_conn.c): Sec-WebSocket-Accept against
 * RFC 6455's own example and an independent SHA-1 of other keys, which
 * headers a handshake needs and the status of each refusal, header token
 * lists, and the JSON taken from each SSE event block. Frames and their
 * close codes are checked end to end in tests/e2e/test_websocket.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <string.h>

#include "gw_ws_int.h"

static void test_accept_rfc_example(void **state)
{
    (void)state;
    char out[GW__WS_ACCEPT_LEN + 1];
    /* RFC 6455, section 1.3. */
    assert_int_equal(gw__ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /* Worked out apart: base64(sha1(key + GUID)) with Python's hashlib. */
    assert_int_equal(gw__ws_accept_key("AAAAAAAAAAAAAAAAAAAAAA==", out), 0);
    assert_string_equal(out, "ICX+Yqv66kxgM0FcWaLWlFLwTAI=");
}

static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==";

static void test_handshake_ok(void **state)
{
    (void)state;
    const char *why = NULL;
    assert_int_equal(gw__ws_handshake_check("websocket", "Upgrade", "13", key, &why), 0);
    assert_int_equal(gw__ws_handshake_check("WebSocket", "keep-alive, Upgrade", "13", key, &why),
                     0);
}

static void test_handshake_refused(void **state)
{
    (void)state;
    const char *why = NULL;
    assert_int_equal(gw__ws_handshake_check(NULL, "Upgrade", "13", key, &why), 400);
    assert_int_equal(gw__ws_handshake_check("h2c", "Upgrade", "13", key, &why), 400);
    assert_int_equal(gw__ws_handshake_check("websocket", "keep-alive", "13", key, &why), 400);
    assert_non_null(strstr(why, "Connection"));
    assert_int_equal(gw__ws_handshake_check("websocket", NULL, "13", key, &why), 400);
    assert_int_equal(gw__ws_handshake_check("websocket", "Upgrade", NULL, key, &why), 400);
    assert_non_null(strstr(why, "Sec-WebSocket-Version"));
    assert_int_equal(gw__ws_handshake_check("websocket", "Upgrade", "8", key, &why), 426);
    assert_int_equal(gw__ws_handshake_check("websocket", "Upgrade", "13 ", key, &why), 426);
    assert_int_equal(gw__ws_handshake_check("websocket", "Upgrade", "13", NULL, &why), 400);
    assert_non_null(strstr(why, "Sec-WebSocket-Key"));
    static const char *const bad[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ",     /* no padding */
        "dGhlIHNhbXBsZSBub25jZQ=",    /* short padding */
        "dGhlIHNhbXBsZSBub25jZQ===",  /* 17 bytes' worth */
        "dGhlIHNhbXBsZSBub25jZR==",   /* stray bits in the last character */
        "dGhlIHNhbXBsZSBub25j*Q==",   /* not base64 */
        "dGhlIHNhbXBsZSBub25jZQ==AA", /* too long */
        "AAAAAAAAAAAAAAAAAAAAAAAA",   /* 18 bytes */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        if (gw__ws_handshake_check("websocket", "Upgrade", "13", bad[i], &why) != 400)
            fail_msg("key \"%s\" accepted", bad[i]);
        assert_non_null(strstr(why, "Sec-WebSocket-Key"));
    }
}

static void test_header_tokens(void **state)
{
    (void)state;
    assert_true(gw__ws_header_has("Upgrade", "upgrade"));
    assert_true(gw__ws_header_has("keep-alive,upgrade", "upgrade"));
    assert_true(gw__ws_header_has(" keep-alive ,\tUPGRADE\t", "upgrade"));
    assert_false(gw__ws_header_has("upgrades", "upgrade"));
    assert_false(gw__ws_header_has("no-upgrade", "upgrade"));
    assert_false(gw__ws_header_has("", "upgrade"));
    assert_false(gw__ws_header_has(NULL, "upgrade"));
}

static void test_event_of(void **state)
{
    (void)state;
    const char *d = NULL, *id = NULL;
    size_t n = 0, idn = 0;
    static const char ev[] = "id: 7\nevent: health\ndata: {\"id\":7,\"type\":\"health\"}";
    assert_int_equal(gw__ws_event_of(ev, sizeof ev - 1, &d, &n, &id, &idn), 1);
    assert_int_equal(n, strlen("{\"id\":7,\"type\":\"health\"}"));
    assert_memory_equal(d, "{\"id\":7,\"type\":\"health\"}", n);
    assert_int_equal(idn, 1);
    assert_memory_equal(id, "7", 1);
    static const char hb[] = ": heartbeat 2026-01-01T00:00:00.000Z";
    assert_int_equal(gw__ws_event_of(hb, sizeof hb - 1, &d, &n, &id, &idn), 0);
    static const char retry[] = "retry: 2000";
    assert_int_equal(gw__ws_event_of(retry, sizeof retry - 1, &d, &n, &id, &idn), 0);
    static const char bye[] = "event: shutdown\ndata: {}";
    assert_int_equal(gw__ws_event_of(bye, sizeof bye - 1, &d, &n, &id, &idn), 2);
    static const char reset[] = "id: 1700000000000-3\nevent: reset\ndata: {}";
    assert_int_equal(gw__ws_event_of(reset, sizeof reset - 1, &d, &n, &id, &idn), 3);
    assert_int_equal(idn, strlen("1700000000000-3"));
    assert_memory_equal(id, "1700000000000-3", idn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_rfc_example), cmocka_unit_test(test_handshake_ok),
        cmocka_unit_test(test_handshake_refused),  cmocka_unit_test(test_header_tokens),
        cmocka_unit_test(test_event_of),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
