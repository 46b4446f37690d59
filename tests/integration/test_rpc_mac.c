/* test_rpc_mac.c - a coordinator process with RPC_SECRET on a private Redis:
 * calls without a MAC, with a bad MAC, with a stale timestamp or replayed
 * byte for byte are refused with an error naming why, logged, and change
 * nothing in Redis; events with a bad MAC or none, or replayed, are dropped
 * by a subscriber while signed ones pass. Without RPC_SECRET a service that
 * listens beyond loopback says so at start-up, and anyone can call it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/req.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls.h"
#include "fixture.h"
#include "services.h"
#include "shared/events.h"
#include "shared/keys.h"
#include "shared/msg.h"
#include "shared/msgmac.h"
#include "shared/store.h"
#include "shared/util.h"
#include "signing.h"

#define KEY       "8f3a0c5e7b9d1f2a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a"
#define OTHER_KEY "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static tf_redis redis;
static pid_t coord;
static char rpc_url[64], events_url[64], logpath[400];
static sh_store *store;
static sh_rpc_client *good;

/* use_key makes the clients and subscribers made from now on sign with
 * secret (NULL: sign nothing). */
static void use_key(const char *secret)
{
    sh_error err;
    assert_int_equal(sh_msgmac_setup(secret, SH_MSGMAC_WINDOW_DEFAULT, &err), SH_OK);
}

static long long redis_int(const char *cmd, const char *arg)
{
    sh_cmd *c = sh_cmd_new(cmd);
    if (arg)
        sh_cmd_str(c, arg);
    sh_reply *r = NULL;
    sh_error err;
    assert_int_equal(sh_store_call(store, c, &r, &err), SH_OK);
    long long v = sh_reply_integer(r);
    sh_reply_free(r);
    return v;
}

static long long account_ids(void)
{
    return redis_int("ZCARD", "account:ids");
}

static long long db_keys(void)
{
    return redis_int("DBSIZE", NULL);
}

static sh_val *account_args(const char *who)
{
    sh_val *a = sh_val_new_map();
    char email[64];
    snprintf(email, sizeof email, "%s@example.com", who);
    tf_put_str(a, "emailAddress", email);
    tf_put_str(a, "imapHost", "imap.example.com");
    tf_put_int(a, "imapPort", 993);
    tf_put_str(a, "security", "tls");
    tf_put_str(a, "username", who);
    tf_put_str(a, "password", "secret-pw");
    return a;
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    if (tf_redis_start(&redis, 0) != 0)
        return -1;
    snprintf(rpc_url, sizeof rpc_url, "tcp://127.0.0.1:%d", tf_free_port());
    snprintf(events_url, sizeof events_url, "tcp://127.0.0.1:%d", tf_free_port());
    snprintf(logpath, sizeof logpath, "%s/coordinator.log", redis.dir);
    const char *env[] = {"ENCRYPTION_KEY=" KEY, "SCHED_AUTO_TICK=false", NULL};
    tf_service svc = {.name = "coordinator",
                      .redis_url = redis.url,
                      .rpc_url = rpc_url,
                      .events_url = events_url,
                      .env = env,
                      .log_path = logpath};
    sh_error err;
    sh_redis_url ru;
    if (sh_redis_url_parse(redis.url, &ru, &err) || sh_store_new(&ru, NULL, &store, &err) ||
        sh_rpc_client_new(rpc_url, 5000, 0, &good, &err))
        return -1;
    return tf_service_start(&svc, good, &coord);
}

static int group_teardown(void **state)
{
    (void)state;
    sh_rpc_client_free(good);
    int rc = tf_services_stop(&coord, 1, logpath);
    sh_store_free(store);
    tf_redis_stop(&redis);
    sh_rpc_fini();
    return rc;
}

/* raw_send sends data on a new REQ socket to url and returns the reply's
 * outcome: "ok", or "<code>: <message>", or "" when none came. */
static void raw_send(const char *url, const void *data, size_t len, char *out, size_t cap)
{
    nng_socket s;
    assert_int_equal(nng_req0_open(&s), 0);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 3000);
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 3000);
    assert_int_equal(nng_dial(s, url, NULL, 0), 0);
    out[0] = '\0';
    void *buf;
    size_t blen;
    if (nng_send(s, (void *)data, len, 0) == 0 && nng_recv(s, &buf, &blen, NNG_FLAG_ALLOC) == 0) {
        const void *body = buf;
        size_t rlen = blen;
        tf_unsign(&body, &rlen);
        sh_reply_env env;
        sh_error err;
        if (sh_reply_decode(body, rlen, NULL, &env, &err) != SH_OK) {
            snprintf(out, cap, "undecodable: %s", err.msg);
        } else {
            if (env.ok)
                snprintf(out, cap, "ok");
            else
                snprintf(out, cap, "%s: %s", sh_err_name(env.code), env.message);
            sh_reply_env_fini(&env);
        }
        nng_free(buf, blen);
    }
    nng_close(s);
}

/* call_bytes appends the envelope of account.create for who to out. */
static void call_bytes(const char *who, sh_buf *out)
{
    sh_val *a = account_args(who);
    assert_int_equal(sh_call_encode("account.create", 7, a, out), SH_OK);
    sh_val_free(a);
}

static void assert_contains(const char *s, const char *part)
{
    if (!strstr(s, part))
        fail_msg("\"%s\" does not contain \"%s\"", s, part);
}

/* ---- calls ------------------------------------------------------------------ */

static void test_signed_calls_are_served(void **state)
{
    (void)state;
    long long before = account_ids();
    sh_error err;
    assert_int_equal(tf_call(good, "account.create", account_args("good"), 5000, NULL, &err),
                     SH_OK);
    assert_int_equal(account_ids(), before + 1);
}

static void test_call_without_mac_is_refused(void **state)
{
    (void)state;
    long long ids = account_ids(), keys = db_keys();
    sh_buf b;
    sh_buf_init(&b);
    call_bytes("nomac", &b);
    char out[512];
    raw_send(rpc_url, b.data, b.len, out, sizeof out);
    assert_contains(out, "unauthenticated: missing MAC");
    sh_buf_fini(&b);

    /* A client of a process without RPC_SECRET hears why. */
    use_key(NULL);
    sh_rpc_client *open = tf_client(rpc_url);
    use_key(TF_RPC_SECRET);
    sh_error err;
    assert_int_equal(tf_call(open, "account.create", account_args("nomac"), 5000, NULL, &err),
                     SH_EAUTH);
    assert_contains(err.msg, "missing MAC");
    sh_rpc_client_free(open);
    assert_int_equal(account_ids(), ids);
    assert_int_equal(db_keys(), keys);
}

static void test_call_with_bad_mac_is_refused(void **state)
{
    (void)state;
    long long ids = account_ids(), keys = db_keys();
    sh_buf b, signed_b;
    sh_buf_init(&b);
    sh_buf_init(&signed_b);
    call_bytes("badmac", &b);
    tf_sign(SH_MSGMAC_CALL, b.data, b.len, 0, NULL, &signed_b);
    /* One byte of the payload altered: "badmac" becomes "badmad". */
    char *p = NULL;
    for (size_t i = 0; !p && i + 7 <= signed_b.len; i++)
        if (memcmp(signed_b.data + i, "badmac@", 7) == 0)
            p = signed_b.data + i;
    assert_non_null(p);
    p[5] = 'd';
    char out[512];
    raw_send(rpc_url, signed_b.data, signed_b.len, out, sizeof out);
    assert_contains(out, "unauthenticated: bad MAC");
    sh_buf_fini(&b);
    sh_buf_fini(&signed_b);

    /* Signed with another secret, through a real client. */
    use_key(OTHER_KEY);
    sh_rpc_client *other = tf_client(rpc_url);
    use_key(TF_RPC_SECRET);
    sh_error err;
    assert_int_equal(tf_call(other, "account.create", account_args("badmac"), 5000, NULL, &err),
                     SH_EAUTH);
    assert_contains(err.msg, "bad MAC");
    sh_rpc_client_free(other);
    assert_int_equal(account_ids(), ids);
    assert_int_equal(db_keys(), keys);
}

static void test_stale_call_is_refused(void **state)
{
    (void)state;
    long long ids = account_ids(), keys = db_keys();
    sh_buf b;
    sh_buf_init(&b);
    call_bytes("stale", &b);
    int64_t skews[] = {-(SH_MSGMAC_WINDOW_DEFAULT * 1000 + 2000),
                       SH_MSGMAC_WINDOW_DEFAULT * 1000 + 2000};
    for (size_t i = 0; i < 2; i++) {
        sh_buf s;
        sh_buf_init(&s);
        tf_sign(SH_MSGMAC_CALL, b.data, b.len, sh_now_ms() + skews[i], NULL, &s);
        char out[512];
        raw_send(rpc_url, s.data, s.len, out, sizeof out);
        assert_contains(out, "unauthenticated: stale timestamp");
        assert_contains(out, i == 0 ? "behind" : "ahead of");
        sh_buf_fini(&s);
    }
    sh_buf_fini(&b);
    assert_int_equal(account_ids(), ids);
    assert_int_equal(db_keys(), keys);
}

static void test_replayed_call_is_refused(void **state)
{
    (void)state;
    long long ids = account_ids();
    sh_buf b, s;
    sh_buf_init(&b);
    sh_buf_init(&s);
    call_bytes("replayed", &b);
    tf_sign(SH_MSGMAC_CALL, b.data, b.len, 0, NULL, &s);
    char out[512];
    raw_send(rpc_url, s.data, s.len, out, sizeof out);
    assert_string_equal(out, "ok");
    assert_int_equal(account_ids(), ids + 1);
    long long keys = db_keys();
    /* The captured bytes again, after the reply, from another socket. */
    raw_send(rpc_url, s.data, s.len, out, sizeof out);
    assert_contains(out, "unauthenticated: replayed nonce");
    assert_int_equal(account_ids(), ids + 1);
    assert_int_equal(db_keys(), keys);
    sh_buf_fini(&b);
    sh_buf_fini(&s);
}

static void test_refusals_are_logged(void **state)
{
    (void)state;
    const char *why[] = {"missing MAC", "bad MAC", "stale timestamp", "replayed nonce"};
    for (size_t i = 0; i < sizeof why / sizeof why[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "refused: %s", why[i]);
        if (tf_file_count(logpath, what) < 1)
            fail_msg("%s does not log \"%s\"", logpath, what);
    }
    assert_true(tf_file_count(logpath, "event=mac_refused") >= 4);
    /* The service itself runs signed: no warning about being open. */
    assert_int_equal(tf_file_count(logpath, "rpc_unauthenticated"), 0);
}

/* ---- events ----------------------------------------------------------------- */

static void rogue_send(nng_socket pub, const sh_buf *m)
{
    assert_int_equal(nng_send(pub, m->data, m->len, 0), 0);
}

/* event_bytes appends a lone event "<topic>\n<msgpack payload>" to out. */
static void event_bytes(const char *topic, sh_buf *out)
{
    sh_val *v = sh_val_new_map();
    tf_put_str(v, "id", topic);
    assert_int_equal(sh_buf_puts(out, topic), SH_OK);
    assert_int_equal(sh_buf_puts(out, "\n"), SH_OK);
    assert_int_equal(sh_msg_pack(v, out), SH_OK);
    sh_val_free(v);
}

static void test_events_with_bad_mac_are_dropped(void **state)
{
    (void)state;
    /* A publisher of its own beside the coordinator's, on the subscriber's
     * list: what it sends unsigned or badly signed never comes out. */
    char rogue_url[64];
    snprintf(rogue_url, sizeof rogue_url, "tcp://127.0.0.1:%d", tf_free_port());
    nng_socket pub;
    assert_int_equal(nng_pub0_open(&pub), 0);
    assert_int_equal(nng_listen(pub, rogue_url, NULL, 0), 0);
    char urls[160];
    snprintf(urls, sizeof urls, "%s,%s", events_url, rogue_url);
    sh_sub *sub = NULL;
    sh_error err;
    assert_int_equal(sh_sub_new(urls, 0, &sub, &err), SH_OK);
    assert_int_equal(sh_sub_subscribe(sub, SH_TOPIC_ACCOUNT), SH_OK);
    tf_sleep_ms(300); /* both connections up */

    sh_buf plain, bad, other, good_ev;
    sh_buf_init(&plain);
    sh_buf_init(&bad);
    sh_buf_init(&other);
    sh_buf_init(&good_ev);
    event_bytes("account:unsigned", &plain);
    rogue_send(pub, &plain);
    sh_buf ev;
    sh_buf_init(&ev);
    event_bytes("account:tampered", &ev);
    tf_sign(SH_MSGMAC_EVENT, ev.data, ev.len, 0, NULL, &bad);
    bad.data[SH_MSGMAC_HEAD_BYTES + 8] ^= 1; /* a byte of the topic */
    rogue_send(pub, &bad);
    sh_buf_reset(&ev);
    event_bytes("account:otherkey", &ev);
    use_key(OTHER_KEY);
    tf_sign(SH_MSGMAC_EVENT, ev.data, ev.len, 0, NULL, &other);
    use_key(TF_RPC_SECRET);
    rogue_send(pub, &other);
    sh_buf_reset(&ev);
    event_bytes("account:signed", &ev);
    tf_sign(SH_MSGMAC_EVENT, ev.data, ev.len, 0, NULL, &good_ev);
    rogue_send(pub, &good_ev);
    rogue_send(pub, &good_ev); /* the same bytes again: a replay, dropped */
    /* And the coordinator's own event, signed by the service. */
    sh_val *res = NULL;
    assert_int_equal(tf_call(good, "account.create", account_args("evented"), 5000, &res, &err),
                     SH_OK);
    char want_real[128];
    snprintf(want_real, sizeof want_real, "account:%s", sh_val_get_str(res, "id", NULL));
    sh_val_free(res);

    int got_signed = 0, got_real = 0;
    int64_t deadline = sh_mono_ms() + 5000, quiet = INT64_MAX;
    /* Until both came, then half a second more for a duplicate. */
    while (sh_mono_ms() < deadline && sh_mono_ms() < quiet) {
        if (got_signed && got_real && quiet == INT64_MAX)
            quiet = sh_mono_ms() + 500;
        char *topic = NULL;
        sh_val *payload = NULL;
        int rc = sh_sub_recv(sub, 200, &topic, &payload);
        if (rc == SH_OK) {
            if (strcmp(topic, "account:signed") == 0)
                got_signed++;
            else if (strcmp(topic, want_real) == 0)
                got_real++;
            else if (strcmp(topic, "account:unsigned") == 0 ||
                     strcmp(topic, "account:tampered") == 0 ||
                     strcmp(topic, "account:otherkey") == 0)
                fail_msg("an unauthenticated event came through: %s", topic);
        }
        free(topic);
        sh_val_free(payload);
    }
    assert_int_equal(got_signed, 1);
    assert_true(got_real >= 1);
    sh_sub_free(sub);
    nng_close(pub);
    sh_buf_fini(&ev);
    sh_buf_fini(&plain);
    sh_buf_fini(&bad);
    sh_buf_fini(&other);
    sh_buf_fini(&good_ev);
}

/* ---- without a secret ------------------------------------------------------- */

static void test_open_service_warns_and_serves_anyone(void **state)
{
    (void)state;
    char any_url[64], ev_url[64], open_log[400];
    int port = tf_free_port();
    snprintf(any_url, sizeof any_url, "tcp://0.0.0.0:%d", port);
    snprintf(ev_url, sizeof ev_url, "tcp://127.0.0.1:%d", tf_free_port());
    snprintf(open_log, sizeof open_log, "%s/coordinator-open.log", redis.dir);
    const char *env[] = {"ENCRYPTION_KEY=" KEY, "SCHED_AUTO_TICK=false", "RPC_SECRET=", NULL};
    tf_service svc = {.name = "coordinator",
                      .redis_url = redis.url,
                      .rpc_url = any_url,
                      .events_url = ev_url,
                      .env = env,
                      .log_path = open_log};
    char local[64];
    snprintf(local, sizeof local, "tcp://127.0.0.1:%d", port);
    use_key(NULL);
    sh_rpc_client *anyone = tf_client(local);
    use_key(TF_RPC_SECRET);
    pid_t pid = -1;
    assert_int_equal(tf_service_start(&svc, anyone, &pid), 0);

    char line[200];
    snprintf(line, sizeof line, "RPC listens on %s beyond loopback without RPC_SECRET", any_url);
    assert_int_equal(tf_file_count(open_log, line), 1);
    assert_int_equal(tf_file_count(open_log, "event=rpc_unauthenticated"), 1); /* not events */
    /* Open, as the warning says: an unsigned caller creates an account. */
    long long ids = account_ids();
    sh_error err;
    assert_int_equal(tf_call(anyone, "account.create", account_args("anyone"), 5000, NULL, &err),
                     SH_OK);
    assert_int_equal(account_ids(), ids + 1);
    /* And a signed caller is told the service does not check. */
    sh_rpc_client *signer = tf_client(local);
    assert_int_equal(tf_call(signer, "ping", NULL, 5000, NULL, &err), SH_EAUTH);
    assert_contains(err.msg, "no RPC_SECRET");
    sh_rpc_client_free(signer);
    sh_rpc_client_free(anyone);
    assert_int_equal(tf_services_stop(&pid, 1, open_log), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signed_calls_are_served),
        cmocka_unit_test(test_call_without_mac_is_refused),
        cmocka_unit_test(test_call_with_bad_mac_is_refused),
        cmocka_unit_test(test_stale_call_is_refused),
        cmocka_unit_test(test_replayed_call_is_refused),
        cmocka_unit_test(test_refusals_are_logged),
        cmocka_unit_test(test_events_with_bad_mac_are_dropped),
        cmocka_unit_test(test_open_service_warns_and_serves_anyone),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
