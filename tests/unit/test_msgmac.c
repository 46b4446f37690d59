/* test_msgmac.c - the MAC of messages between services (msgmac.c): signed
 * messages open, every field tampered with is refused with its reason, the
 * window's edges hold, the nonce cache refuses replays within its bound
 * and never takes a nonce again once it has let it go, and the start-up
 * warning names the URLs that listen beyond loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/buf.h"
#include "shared/log.h"
#include "shared/msgmac.h"
#include "shared/util.h"

#define KEY   "3c9f1e7a5b2d4c6e8a0f1b3d5c7e9a2b4d6f8e0c1a3b5d7f9e2c4a6b8d0f1e3a"
#define OTHER "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define NOW   1800000000000LL

static sh_msgmac_conf conf;

static int setup(void **state)
{
    (void)state;
    sh_error err;
    return sh_msgmac_conf_make(KEY, 30, &conf, &err);
}

/* sign appends payload signed as kind at ts (nonce NULL: a new one). */
static void sign(const sh_msgmac_conf *c, sh_msgmac_kind kind, const char *payload, int64_t ts,
                 const unsigned char *nonce, sh_buf *out)
{
    unsigned char head[SH_MSGMAC_HEAD_BYTES], tag[SH_MSGMAC_TAG_BYTES];
    sh_msgmac_head(kind, ts, nonce, NULL, head);
    size_t mark = out->len;
    assert_int_equal(sh_buf_append(out, head, sizeof head), SH_OK);
    assert_int_equal(sh_buf_append(out, payload, strlen(payload)), SH_OK);
    sh_msgmac_tag(c, out->data + mark, out->len - mark, tag);
    assert_int_equal(sh_buf_append(out, tag, sizeof tag), SH_OK);
}

/* check opens b as kind at now with seen and returns the code; why gets
 * the error text. */
static int check(const sh_buf *b, sh_msgmac_kind kind, sh_msgmac_seen *seen, int64_t now, char *why,
                 size_t cap)
{
    const void *p = NULL;
    size_t n = 0;
    sh_error err;
    sh_error_clear(&err);
    int rc = sh_msgmac_open(&conf, kind, seen, now, b->data, b->len, NULL, NULL, &p, &n, &err);
    snprintf(why, cap, "%s", rc ? err.msg : "");
    return rc;
}

static void assert_refused(const sh_buf *b, sh_msgmac_kind kind, sh_msgmac_seen *seen, int64_t now,
                           const char *reason)
{
    char why[256];
    assert_int_equal(check(b, kind, seen, now, why, sizeof why), SH_EAUTH);
    if (!strstr(why, reason))
        fail_msg("refused for \"%s\", expected \"%s\"", why, reason);
}

static void test_settings_are_checked(void **state)
{
    (void)state;
    sh_msgmac_conf c;
    sh_error err;
    assert_int_equal(sh_msgmac_conf_make(NULL, 30, &c, &err), SH_OK);
    assert_false(c.on);
    assert_int_equal(sh_msgmac_conf_make("", 30, &c, &err), SH_OK);
    assert_false(c.on);
    assert_int_equal(sh_msgmac_conf_make("short", 30, &c, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "RPC_SECRET"));
    assert_int_equal(sh_msgmac_conf_make(KEY, 0, &c, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "RPC_MAC_WINDOW_SECONDS"));
    assert_int_equal(sh_msgmac_conf_make(KEY, 3601, &c, &err), SH_EINVAL);
    assert_int_equal(sh_msgmac_conf_make(KEY, 5, &c, &err), SH_OK);
    assert_true(c.on);
    assert_int_equal(c.window_ms, 5000);
}

static void test_signed_message_opens(void **state)
{
    (void)state;
    sh_msgmac_kind kinds[] = {SH_MSGMAC_CALL, SH_MSGMAC_REPLY, SH_MSGMAC_EVENT};
    for (size_t k = 0; k < 3; k++) {
        sh_buf b;
        sh_buf_init(&b);
        sign(&conf, kinds[k], "\x81\xa2op\xa4ping", NOW, NULL, &b);
        assert_int_equal(b.len, SH_MSGMAC_OVERHEAD + 9);
        assert_true(sh_msgmac_is_signed(b.data, b.len));
        const void *p;
        size_t n;
        unsigned char nonce[SH_MSGMAC_NONCE_BYTES];
        sh_error err;
        assert_int_equal(
            sh_msgmac_open(&conf, kinds[k], NULL, NOW, b.data, b.len, NULL, nonce, &p, &n, &err),
            SH_OK);
        assert_int_equal(n, 9);
        assert_memory_equal(p, "\x81\xa2op\xa4ping", 9);
        assert_memory_equal(nonce, b.data + 12, SH_MSGMAC_NONCE_BYTES);
        sh_buf_fini(&b);
    }
    /* A plain envelope (a msgpack map or array) is never taken for one. */
    assert_false(sh_msgmac_is_signed("\x83\xa2op", 4));
    assert_false(sh_msgmac_is_signed("\x92\xc4\x01", 3));
}

static void test_every_field_tampered_is_refused(void **state)
{
    (void)state;
    sh_buf b;
    sh_buf_init(&b);
    sign(&conf, SH_MSGMAC_CALL, "payload bytes", NOW, NULL, &b);
    struct {
        size_t at;
        const char *reason;
    } cases[] = {
        {0, "missing MAC"},                       /* magic */
        {1, "missing MAC"},                       /* magic */
        {2, "version"},                           /* version */
        {3, "belongs"},                           /* kind */
        {4, "bad MAC"},                           /* timestamp, high byte */
        {11, "bad MAC"},                          /* timestamp, low byte */
        {12, "bad MAC"},                          /* nonce */
        {27, "bad MAC"},                          /* nonce */
        {SH_MSGMAC_HEAD_BYTES, "bad MAC"},        /* payload */
        {b.len - SH_MSGMAC_TAG_BYTES, "bad MAC"}, /* tag */
        {b.len - 1, "bad MAC"},                   /* tag */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        b.data[cases[i].at] ^= 0x01;
        assert_refused(&b, SH_MSGMAC_CALL, NULL, NOW, cases[i].reason);
        b.data[cases[i].at] ^= 0x01;
    }
    char why[256];
    assert_int_equal(check(&b, SH_MSGMAC_CALL, NULL, NOW, why, sizeof why), SH_OK);

    /* Truncated, or extended by a byte. */
    sh_buf c;
    sh_buf_init(&c);
    assert_int_equal(sh_buf_append(&c, b.data, b.len - 1), SH_OK);
    assert_refused(&c, SH_MSGMAC_CALL, NULL, NOW, "bad MAC");
    sh_buf_reset(&c);
    assert_int_equal(sh_buf_append(&c, b.data, SH_MSGMAC_OVERHEAD - 1), SH_OK);
    assert_refused(&c, SH_MSGMAC_CALL, NULL, NOW, "too short");
    sh_buf_reset(&c);
    assert_int_equal(sh_buf_append(&c, b.data, b.len), SH_OK);
    assert_int_equal(sh_buf_append(&c, "x", 1), SH_OK);
    assert_refused(&c, SH_MSGMAC_CALL, NULL, NOW, "bad MAC");

    /* Another kind: a call does not pass for a reply or an event. */
    assert_refused(&b, SH_MSGMAC_REPLY, NULL, NOW, "a call was sent where a reply belongs");
    assert_refused(&b, SH_MSGMAC_EVENT, NULL, NOW, "belongs");

    /* Another key. */
    sh_msgmac_conf other;
    sh_error err;
    assert_int_equal(sh_msgmac_conf_make(OTHER, 30, &other, &err), SH_OK);
    sh_buf_reset(&c);
    sign(&other, SH_MSGMAC_CALL, "payload bytes", NOW, NULL, &c);
    assert_refused(&c, SH_MSGMAC_CALL, NULL, NOW, "bad MAC");

    /* No MAC at all. */
    sh_buf_reset(&c);
    assert_int_equal(sh_buf_puts(&c, "\x83\xa2op\xa4ping"), SH_OK);
    assert_refused(&c, SH_MSGMAC_CALL, NULL, NOW, "missing MAC");
    sh_buf_fini(&c);
    sh_buf_fini(&b);
}

static void test_window_edges(void **state)
{
    (void)state;
    const int64_t w = 30000;
    struct {
        int64_t skew; /* message time - now */
        int ok;
    } cases[] = {{0, 1}, {-w, 1}, {w, 1}, {-w - 1, 0}, {w + 1, 0}, {-3600000, 0}, {3600000, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sh_buf b;
        sh_buf_init(&b);
        sign(&conf, SH_MSGMAC_EVENT, "e", NOW + cases[i].skew, NULL, &b);
        char why[256];
        int rc = check(&b, SH_MSGMAC_EVENT, NULL, NOW, why, sizeof why);
        if (cases[i].ok)
            assert_int_equal(rc, SH_OK);
        else
            assert_refused(&b, SH_MSGMAC_EVENT, NULL, NOW, "stale timestamp");
        sh_buf_fini(&b);
    }
}

static void test_reply_carries_its_request_nonce(void **state)
{
    (void)state;
    unsigned char mine[SH_MSGMAC_NONCE_BYTES], theirs[SH_MSGMAC_NONCE_BYTES];
    memset(mine, 7, sizeof mine);
    memset(theirs, 8, sizeof theirs);
    sh_buf b;
    sh_buf_init(&b);
    sign(&conf, SH_MSGMAC_REPLY, "r", NOW, theirs, &b);
    const void *p;
    size_t n;
    sh_error err;
    assert_int_equal(
        sh_msgmac_open(&conf, SH_MSGMAC_REPLY, NULL, NOW, b.data, b.len, mine, NULL, &p, &n, &err),
        SH_EAUTH);
    assert_non_null(strstr(err.msg, "nonce of another request"));
    assert_int_equal(sh_msgmac_open(&conf, SH_MSGMAC_REPLY, NULL, NOW, b.data, b.len, theirs, NULL,
                                    &p, &n, &err),
                     SH_OK);
    sh_buf_fini(&b);
}

static void test_nonce_cache_refuses_replays_within_its_bound(void **state)
{
    (void)state;
    sh_msgmac_seen *seen = NULL;
    assert_int_equal(sh_msgmac_seen_new(0, &seen), SH_EINVAL);
    assert_int_equal(sh_msgmac_seen_new(4, &seen), SH_OK);
    sh_buf m[6];
    for (int i = 0; i < 6; i++) {
        sh_buf_init(&m[i]);
        sign(&conf, SH_MSGMAC_CALL, "c", NOW + i, NULL, &m[i]);
    }
    char why[256];
    /* A message refused for its MAC leaves no trace: its nonce, sent
     * properly signed, is still new. */
    m[0].data[m[0].len - 1] ^= 1;
    assert_refused(&m[0], SH_MSGMAC_CALL, seen, NOW, "bad MAC");
    m[0].data[m[0].len - 1] ^= 1;
    for (int i = 0; i < 4; i++)
        assert_int_equal(check(&m[i], SH_MSGMAC_CALL, seen, NOW, why, sizeof why), SH_OK);
    for (int i = 0; i < 4; i++)
        assert_refused(&m[i], SH_MSGMAC_CALL, seen, NOW, "replayed nonce");
    /* Full: the fifth pushes out the oldest, whose replay is then refused
     * as older than what the cache remembers, never taken again. */
    assert_int_equal(check(&m[4], SH_MSGMAC_CALL, seen, NOW, why, sizeof why), SH_OK);
    assert_refused(&m[0], SH_MSGMAC_CALL, seen, NOW, "replay cache is full");
    for (int i = 1; i < 5; i++)
        assert_refused(&m[i], SH_MSGMAC_CALL, seen, NOW, "replayed nonce");
    /* A new nonce no newer than the one that left is refused too; a newer
     * one is taken. */
    sh_buf old;
    sh_buf_init(&old);
    sign(&conf, SH_MSGMAC_CALL, "c", NOW, NULL, &old);
    assert_refused(&old, SH_MSGMAC_CALL, seen, NOW, "replay cache is full");
    assert_int_equal(check(&m[5], SH_MSGMAC_CALL, seen, NOW, why, sizeof why), SH_OK);
    /* Many more than it holds: memory stays at four entries, and every one
     * of them is refused the second time. */
    for (int i = 0; i < 1000; i++) {
        sh_buf b;
        sh_buf_init(&b);
        sign(&conf, SH_MSGMAC_CALL, "c", NOW + 10 + i, NULL, &b);
        assert_int_equal(check(&b, SH_MSGMAC_CALL, seen, NOW, why, sizeof why), SH_OK);
        assert_int_equal(check(&b, SH_MSGMAC_CALL, seen, NOW, why, sizeof why), SH_EAUTH);
        sh_buf_fini(&b);
    }
    for (int i = 0; i < 6; i++)
        assert_int_equal(check(&m[i], SH_MSGMAC_CALL, seen, NOW, why, sizeof why), SH_EAUTH);
    sh_buf_fini(&old);
    for (int i = 0; i < 6; i++)
        sh_buf_fini(&m[i]);
    sh_msgmac_seen_free(seen);
    sh_msgmac_seen_free(NULL);
}

/* The nonces of one process share their first half and count in the
 * second: the cache must still spread them, or every lookup walks one
 * chain (measured: 200 us a message instead of 3 with a hash of the first
 * half alone). A full cache's worth must go in within seconds. */
static void test_nonce_cache_spreads_one_process_nonces(void **state)
{
    (void)state;
    sh_msgmac_seen *seen = NULL;
    assert_int_equal(sh_msgmac_seen_new(SH_MSGMAC_SEEN_DEFAULT, &seen), SH_OK);
    sh_buf b;
    sh_buf_init(&b);
    int64_t t0 = sh_mono_ms();
    char why[256];
    for (int i = 0; i < SH_MSGMAC_SEEN_DEFAULT; i++) {
        sh_buf_reset(&b);
        sign(&conf, SH_MSGMAC_CALL, "c", NOW, NULL, &b);
        assert_int_equal(check(&b, SH_MSGMAC_CALL, seen, NOW, why, sizeof why), SH_OK);
    }
    int64_t ms = sh_mono_ms() - t0;
    if (ms > 10000)
        fail_msg("%d nonces took %lld ms to take", SH_MSGMAC_SEEN_DEFAULT, (long long)ms);
    assert_int_equal(check(&b, SH_MSGMAC_CALL, seen, NOW, why, sizeof why), SH_EAUTH);
    sh_buf_fini(&b);
    sh_msgmac_seen_free(seen);
}

/* warnings runs sh_msgmac_warn_open on url and returns how many warning
 * lines it logged. */
static int warnings(const char *what, const char *url)
{
    char path[] = "/tmp/test_msgmac_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    sh_msgmac_warn_open(what, url);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    FILE *f = fdopen(fd, "r");
    rewind(f);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, "event=rpc_unauthenticated") && strstr(line, "beyond loopback") ? 1 : 0;
    fclose(f);
    unlink(path);
    return n;
}

static void test_open_listener_warns(void **state)
{
    (void)state;
    sh_log_init("test", SH_LOG_INFO);
    sh_error err;
    assert_int_equal(sh_msgmac_setup(NULL, 30, &err), SH_OK);
    const struct {
        const char *what, *url;
        int warned;
    } cases[] = {
        {"RPC", "tcp://0.0.0.0:7101", 1},
        {"RPC", "tcp://10.1.2.3:7101", 1},
        {"RPC", "tcp://coordinator:7111", 1},
        {"RPC", "tcp://[::]:7101", 1},
        {"RPC", "tcp://:7101", 1},
        {"events", "tcp://127.0.0.1:7102,tcp://0.0.0.0:7103", 1},
        {"RPC", "tcp://127.0.0.1:7101", 0},
        {"RPC", "tcp://127.8.9.10:7101", 0},
        {"RPC", "tcp://[::1]:7101", 0},
        {"RPC", "tcp://localhost:7101", 0},
        {"RPC", "ipc:///tmp/progress.sock", 0},
        {"RPC", "inproc://x", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (warnings(cases[i].what, cases[i].url) != cases[i].warned)
            fail_msg("%s %s: expected %d warning(s)", cases[i].what, cases[i].url, cases[i].warned);
    /* With a secret, nothing to warn about. */
    assert_int_equal(sh_msgmac_setup(KEY, 30, &err), SH_OK);
    assert_int_equal(warnings("RPC", "tcp://0.0.0.0:7101"), 0);
    assert_int_equal(sh_msgmac_setup(NULL, 30, &err), SH_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings_are_checked),
        cmocka_unit_test(test_signed_message_opens),
        cmocka_unit_test(test_every_field_tampered_is_refused),
        cmocka_unit_test(test_window_edges),
        cmocka_unit_test(test_reply_carries_its_request_nonce),
        cmocka_unit_test(test_nonce_cache_refuses_replays_within_its_bound),
        cmocka_unit_test(test_nonce_cache_spreads_one_process_nonces),
        cmocka_unit_test(test_open_listener_warns),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
