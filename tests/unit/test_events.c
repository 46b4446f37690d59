/* test_events.c - pub/sub of events.c over real nng ipc sockets in a private
 * directory: topics and payloads, prefix filtering, batches, messages from a
 * hostile publisher, size limits, publishers that come and go, and a
 * subscriber's stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "ipc_dir.h"
#include "shared/events.h"
#include "shared/msg.h"
#include "shared/rpc.h"
#include "shared/util.h"

static int group_setup(void **state)
{
    (void)state;
    return tf_ipc_dir_make("test_events");
}

static int group_teardown(void **state)
{
    (void)state;
    sh_rpc_fini();
    return tf_ipc_dir_remove();
}

static sh_val *payload_of(int64_t version, const char *status)
{
    sh_val *m = sh_val_new_map();
    sh_val_set_cstr(m, "version", sh_val_new_int(version));
    sh_val_set_cstr(m, "status", sh_val_new_cstr(status));
    return m;
}

/* ---- waiting until a subscriber is connected --------------------------------- */

/* A sender of one "sync:<n>" event, through sh_pub or a raw socket. */
typedef void (*sync_send_fn)(void *ctx, const char *topic);

static void sync_via_pub(void *ctx, const char *topic)
{
    sh_val *nil = sh_val_new_nil();
    sh_pub_send(ctx, topic, nil);
    sh_val_free(nil);
}

/* wait_connected sends sync events until s (subscribed to "sync:") gets
 * one, then reads until the last one sent, so nothing of the sync is left
 * for the test. Connecting is asynchronous: PUB sends nothing to a
 * subscriber it has not seen yet. */
static void wait_connected(sh_sub *s, sync_send_fn send, void *ctx)
{
    static int round;
    char want[32] = "";
    for (int i = 0; i < 200; i++) {
        snprintf(want, sizeof want, "sync:%d", ++round);
        send(ctx, want);
        char *topic = NULL;
        sh_val *payload = NULL;
        int rc = sh_sub_recv(s, 25, &topic, &payload);
        int got = rc == SH_OK && strncmp(topic, "sync:", 5) == 0;
        int last = got && strcmp(topic, want) == 0;
        free(topic);
        sh_val_free(payload);
        if (last)
            return;
        if (!got)
            continue;
        /* Connected: drain up to the last sync sent. */
        for (;;) {
            rc = sh_sub_recv(s, 2000, &topic, &payload);
            assert_int_equal(rc, SH_OK);
            int done = strcmp(topic, want) == 0;
            free(topic);
            sh_val_free(payload);
            if (done)
                return;
        }
    }
    fail_msg("subscriber never connected");
}

static sh_sub *sub_on(const char *urls, size_t max_msg)
{
    sh_sub *s = NULL;
    sh_error err;
    assert_int_equal(sh_sub_new(urls, max_msg, &s, &err), SH_OK);
    assert_int_equal(sh_sub_subscribe(s, "sync:"), SH_OK);
    return s;
}

static sh_pub *pub_on(const char *url)
{
    sh_pub *p = NULL;
    sh_error err;
    if (sh_pub_new(url, &p, &err) != SH_OK)
        fail_msg("sh_pub_new %s: %s", url, err.msg);
    return p;
}

/* pair_on makes a publisher on ipc name and a subscriber to it and to
 * prefix, connected. */
static sh_sub *pair_on(const char *name, const char *prefix, size_t max_msg, sh_pub **pub)
{
    char url[128];
    *pub = pub_on(tf_ipc_url(url, sizeof url, name));
    sh_sub *s = sub_on(url, max_msg);
    assert_int_equal(sh_sub_subscribe(s, prefix), SH_OK);
    wait_connected(s, sync_via_pub, *pub);
    return s;
}

/* expect_event receives one event and checks its topic (and payload when
 * want is not NULL). */
static void expect_event(sh_sub *s, const char *topic, const sh_val *want)
{
    char *t = NULL;
    sh_val *v = NULL;
    int rc = sh_sub_recv(s, 2000, &t, &v);
    if (rc != SH_OK)
        fail_msg("waiting for %s: %s", topic, sh_strerror(rc));
    assert_string_equal(t, topic);
    if (want)
        assert_true(sh_val_equal(v, want));
    free(t);
    sh_val_free(v);
}

/* drain_syncs reads what is left of other subscribers' syncs. */
static void drain_syncs(sh_sub *s)
{
    char *t = NULL;
    sh_val *v = NULL;
    while (sh_sub_recv(s, 100, &t, &v) == SH_OK) {
        assert_memory_equal(t, "sync:", 5);
        free(t);
        sh_val_free(v);
    }
}

static void expect_nothing(sh_sub *s, int ms)
{
    char *t = NULL;
    sh_val *v = NULL;
    int rc = sh_sub_recv(s, ms, &t, &v);
    if (rc == SH_OK)
        fail_msg("unexpected event %s", t);
    assert_int_equal(rc, SH_ETIMEDOUT);
    assert_null(t);
    assert_null(v);
}

/* ---- through sh_pub ----------------------------------------------------------- */

static void test_topic_and_payload_arrive(void **state)
{
    (void)state;
    sh_pub *p;
    sh_sub *s = pair_on("basic", "progress:", 0, &p);

    sh_val *v = payload_of(3, "running");
    sh_val *bin = sh_val_new_map();
    sh_val_set_cstr(bin, "raw", sh_val_new_bin("\0\x01\xff", 3));
    assert_int_equal(sh_pub_send(p, "progress:abc", v), SH_OK);
    assert_int_equal(sh_pub_send(p, "progress:", bin), SH_OK); /* an empty id */
    expect_event(s, "progress:abc", v);
    expect_event(s, "progress:", bin);
    expect_nothing(s, 100);
    sh_val_free(v);
    sh_val_free(bin);
    sh_sub_free(s);
    sh_pub_free(p);
}

static void test_prefixes_filter_by_topic(void **state)
{
    (void)state;
    sh_pub *p;
    sh_sub *s = pair_on("filter", "progress:", 0, &p);
    /* One record only: the delimiter keeps "abc" from matching "abcd". */
    assert_int_equal(sh_sub_subscribe(s, "job:abc\n"), SH_OK);

    const char *sent[] = {"progress:1", "job:abc",  "job:abcd", "job:ab",
                          "account:9",  "progress", "mail:x",   "progress:2",
                          "jo",         "job:",     "job:abc:", "Progress:3"};
    sh_val *nil = sh_val_new_nil();
    for (size_t i = 0; i < sizeof sent / sizeof sent[0]; i++)
        assert_int_equal(sh_pub_send(p, sent[i], nil), SH_OK);
    sh_val_free(nil);
    expect_event(s, "progress:1", NULL);
    expect_event(s, "job:abc", NULL);
    expect_event(s, "progress:2", NULL);
    expect_nothing(s, 150);
    sh_sub_free(s);
    sh_pub_free(p);
}

static void test_a_burst_arrives_whole_and_in_order(void **state)
{
    (void)state;
    enum { N = 2000 };
    sh_pub *p;
    sh_sub *s = pair_on("burst", "job:", 0, &p);
    for (int i = 0; i < N; i++) {
        char topic[32];
        snprintf(topic, sizeof topic, "job:%d", i % 7);
        sh_val *v = payload_of(i, "queued");
        assert_int_equal(sh_pub_send(p, topic, v), SH_OK);
        sh_val_free(v);
    }
    for (int i = 0; i < N; i++) {
        char *t = NULL;
        sh_val *v = NULL;
        assert_int_equal(sh_sub_recv(s, 2000, &t, &v), SH_OK);
        char want[32];
        snprintf(want, sizeof want, "job:%d", i % 7);
        assert_string_equal(t, want);
        assert_int_equal(sh_val_int(sh_val_get(v, "version")), i);
        free(t);
        sh_val_free(v);
    }
    expect_nothing(s, 50);
    sh_sub_free(s);
    sh_pub_free(p);
}

static void test_every_subscriber_gets_its_events(void **state)
{
    (void)state;
    char url[128];
    sh_pub *p = pub_on(tf_ipc_url(url, sizeof url, "fanout"));
    sh_sub *a = sub_on(url, 0), *b = sub_on(url, 0);
    assert_int_equal(sh_sub_subscribe(a, "progress:"), SH_OK);
    assert_int_equal(sh_sub_subscribe(b, "account:"), SH_OK);
    assert_int_equal(sh_sub_subscribe(b, "progress:x\n"), SH_OK);
    wait_connected(a, sync_via_pub, p);
    wait_connected(b, sync_via_pub, p);
    drain_syncs(a); /* a took b's sync events too */
    sh_val *v = payload_of(1, "done");
    assert_int_equal(sh_pub_send(p, "progress:x", v), SH_OK);
    assert_int_equal(sh_pub_send(p, "account:7", v), SH_OK);
    assert_int_equal(sh_pub_send(p, "progress:y", v), SH_OK);
    sh_val_free(v);
    expect_event(b, "progress:x", NULL);
    expect_event(b, "account:7", NULL);
    expect_nothing(b, 100);
    expect_event(a, "progress:x", NULL);
    expect_event(a, "progress:y", NULL);
    expect_nothing(a, 50);
    sh_sub_free(a);
    sh_sub_free(b);
    sh_pub_free(p);
}

static void test_free_sends_what_is_queued(void **state)
{
    (void)state;
    sh_pub *p;
    sh_sub *s = pair_on("flush", "progress:", 0, &p);
    sh_val *v = payload_of(9, "last");
    assert_int_equal(sh_pub_send(p, "progress:bye", v), SH_OK);
    sh_pub_free(p); /* at once: the event is still queued */
    expect_event(s, "progress:bye", v);
    sh_val_free(v);
    sh_sub_free(s);
}

static void test_payload_over_the_queue_is_refused(void **state)
{
    (void)state;
    sh_pub *p;
    sh_sub *s = pair_on("queuemax", "mail:", 0, &p);
    size_t n = SH_PUB_QUEUE_MAX + 1;
    char *big = malloc(n);
    memset(big, 'b', n);
    sh_val *v = sh_val_new_bin(big, n);
    free(big);
    assert_int_equal(sh_pub_send(p, "mail:big", v), SH_ELIMIT);
    sh_val_free(v);
    v = payload_of(1, "small");
    assert_int_equal(sh_pub_send(p, "mail:small", v), SH_OK);
    expect_event(s, "mail:small", v); /* the refused one left no trace */
    sh_val_free(v);
    sh_sub_free(s);
    sh_pub_free(p);
}

static void test_event_over_the_subscriber_limit_is_not_delivered(void **state)
{
    (void)state;
    sh_pub *p;
    sh_sub *s = pair_on("submax", "mail:", 2048, &p);
    char big[8192];
    memset(big, 'z', sizeof big);
    sh_val *v = sh_val_new_bin(big, sizeof big);
    assert_int_equal(sh_pub_send(p, "mail:big", v), SH_OK);
    sh_val_free(v);
    /* Dropped (by nng, or refused as too large); never handed out. */
    char *t = NULL;
    sh_val *got = NULL;
    int rc = sh_sub_recv(s, 300, &t, &got);
    assert_true(rc == SH_ETIMEDOUT || rc == SH_EPROTO);
    assert_null(t);
    /* The subscriber still works (nng may have redialed). */
    wait_connected(s, sync_via_pub, p);
    v = payload_of(2, "fits");
    assert_int_equal(sh_pub_send(p, "mail:ok", v), SH_OK);
    expect_event(s, "mail:ok", v);
    sh_val_free(v);
    sh_sub_free(s);
    sh_pub_free(p);
}

/* ---- a raw publisher: what a broken or hostile peer may send ----------------- */

typedef struct raw_pub {
    nng_socket sock;
} raw_pub;

static void raw_send(raw_pub *r, const void *data, size_t len)
{
    assert_int_equal(nng_send(r->sock, (void *)data, len, 0), 0);
}

/* raw_lone sends "<topic>\n" then the msgpack of v. */
static void raw_lone(raw_pub *r, const char *topic, const sh_val *v)
{
    sh_buf b;
    sh_buf_init(&b);
    sh_buf_printf(&b, "%s\n", topic);
    assert_int_equal(sh_msg_pack(v, &b), SH_OK);
    raw_send(r, b.data, b.len);
    sh_buf_fini(&b);
}

static void sync_via_raw(void *ctx, const char *topic)
{
    sh_val *nil = sh_val_new_nil();
    raw_lone(ctx, topic, nil);
    sh_val_free(nil);
}

/* raw_pair_on is pair_on with a raw PUB socket. */
static sh_sub *raw_pair_on(const char *name, const char *prefix, raw_pub *r)
{
    char url[128];
    assert_int_equal(nng_pub0_open(&r->sock), 0);
    assert_int_equal(nng_listen(r->sock, tf_ipc_url(url, sizeof url, name), NULL, 0), 0);
    sh_sub *s = sub_on(url, 0);
    assert_int_equal(sh_sub_subscribe(s, prefix), SH_OK);
    wait_connected(s, sync_via_raw, r);
    return s;
}

static void expect_malformed(sh_sub *s)
{
    char *t = NULL;
    sh_val *v = NULL;
    int rc = sh_sub_recv(s, 2000, &t, &v);
    assert_int_equal(rc, SH_EPROTO);
    assert_null(t);
    assert_null(v);
}

static void test_malformed_messages_are_refused_one_by_one(void **state)
{
    (void)state;
    raw_pub r;
    sh_sub *s = raw_pair_on("raw", "progress:", &r);

    sh_val *good = payload_of(5, "ok");
    sh_buf b;
    sh_buf_init(&b);

    /* Each bad message fails alone; the good one after it arrives. */
    raw_send(&r, "progress:1 without a newline", 28);
    expect_malformed(s);
    raw_send(&r, "progress:1\n\xc1", 12); /* 0xc1 is never msgpack */
    expect_malformed(s);
    raw_send(&r, "progress:1\n\x92\x01", 13); /* an array cut short */
    expect_malformed(s);
    raw_send(&r, "progress:1\n\xc0\xc0", 13); /* trailing bytes */
    expect_malformed(s);
    raw_send(&r, "*\n\x05", 3); /* a batch that is not an array */
    expect_malformed(s);
    sh_buf_puts(&b, "*\n");
    sh_msg_pack_array_header(3, &b); /* odd: a topic without its payload */
    sh_msg_pack_str("progress:1", 10, &b);
    sh_msg_pack(good, &b);
    sh_msg_pack_str("progress:2", 10, &b);
    raw_send(&r, b.data, b.len);
    expect_malformed(s);
    raw_send(&r, "\n", 1); /* no topic, no payload */
    expect_malformed(s);
    raw_lone(&r, "progress:after", good);
    expect_event(s, "progress:after", good);

    /* A batch whose topics are not all strings: the others still come. */
    sh_buf_reset(&b);
    sh_buf_puts(&b, "*\n");
    sh_msg_pack_array_header(6, &b);
    sh_buf_append(&b, "\x07", 1); /* topic 7 */
    sh_msg_pack(good, &b);
    sh_msg_pack_str("progress:in", 11, &b);
    sh_msg_pack(good, &b);
    sh_msg_pack_str("job:other", 9, &b); /* not subscribed */
    sh_msg_pack(good, &b);
    raw_send(&r, b.data, b.len);
    expect_event(s, "progress:in", good);
    expect_nothing(s, 100);

    /* An empty batch holds no event. */
    raw_send(&r, "*\n\x90", 3);
    expect_nothing(s, 100);

    sh_buf_fini(&b);
    sh_val_free(good);
    sh_sub_free(s);
    nng_close(r.sock);
}

static void test_lone_events_and_batches_mix(void **state)
{
    (void)state;
    raw_pub r;
    sh_sub *s = raw_pair_on("rawmix", "job:", &r);
    sh_val *v1 = payload_of(1, "a"), *v2 = payload_of(2, "b"), *v3 = payload_of(3, "c");
    raw_lone(&r, "job:1", v1);
    sh_buf b;
    sh_buf_init(&b);
    sh_buf_puts(&b, "*\n");
    sh_msg_pack_array_header(4, &b);
    sh_msg_pack_str("job:2", 5, &b);
    sh_msg_pack(v2, &b);
    sh_msg_pack_str("job:3", 5, &b);
    sh_msg_pack(v3, &b);
    raw_send(&r, b.data, b.len);
    sh_buf_fini(&b);
    expect_event(s, "job:1", v1);
    expect_event(s, "job:2", v2);
    expect_event(s, "job:3", v3);
    sh_val_free(v1);
    sh_val_free(v2);
    sh_val_free(v3);
    sh_sub_free(s);
    nng_close(r.sock);
}

/* ---- set-up errors and limits --------------------------------------------------- */

static void test_bad_urls_are_named(void **state)
{
    (void)state;
    sh_sub *s = (sh_sub *)1;
    sh_error err;
    assert_int_equal(sh_sub_new("", 0, &s, &err), SH_EINVAL);
    assert_null(s);
    assert_non_null(strstr(err.msg, "events"));
    assert_int_equal(sh_sub_new("nope://x", 0, &s, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "nope://x"));

    sh_pub *p = (sh_pub *)1;
    assert_int_equal(sh_pub_new("nope://x", &p, &err), SH_EINVAL);
    assert_null(p);
    assert_non_null(strstr(err.msg, "nope://x"));
    /* A second publisher on a live address. */
    char url[128];
    sh_pub *first = pub_on(tf_ipc_url(url, sizeof url, "taken"));
    assert_int_equal(sh_pub_new(url, &p, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, url));
    sh_pub_free(first);
    sh_pub_free(NULL);
    sh_sub_free(NULL);
}

static void test_prefix_table_is_bounded(void **state)
{
    (void)state;
    char url[128];
    sh_sub *s = NULL;
    sh_error err;
    assert_int_equal(sh_sub_new(tf_ipc_url(url, sizeof url, "nobody"), 0, &s, &err), SH_OK);
    int added = 0;
    while (added < 100 && sh_sub_subscribe(s, "progress:") == SH_OK)
        added++;
    assert_int_equal(added, 16);
    assert_int_equal(sh_sub_subscribe(s, "job:"), SH_ELIMIT);
    sh_sub_free(s);
}

static void test_recv_waits_for_its_timeout(void **state)
{
    (void)state;
    char url[128];
    sh_sub *s = sub_on(tf_ipc_url(url, sizeof url, "quiet"), 0);
    int64_t t0 = sh_mono_ms();
    expect_nothing(s, 150);
    int64_t dt = sh_mono_ms() - t0;
    assert_true(dt >= 140 && dt < 2000);
    t0 = sh_mono_ms();
    expect_nothing(s, 0); /* a poll */
    assert_true(sh_mono_ms() - t0 < 100);
    sh_sub_free(s);
}

/* ---- publishers that come and go ------------------------------------------------ */

static void test_publisher_started_later_and_restarted(void **state)
{
    (void)state;
    char url[128];
    tf_ipc_url(url, sizeof url, "later");
    sh_sub *s = sub_on(url, 0); /* nothing listens yet */
    assert_int_equal(sh_sub_subscribe(s, "progress:"), SH_OK);
    expect_nothing(s, 50);
    sh_pub *p = pub_on(url);
    wait_connected(s, sync_via_pub, p);
    sh_val *v = payload_of(1, "first");
    assert_int_equal(sh_pub_send(p, "progress:a", v), SH_OK);
    expect_event(s, "progress:a", v);
    sh_val_free(v);
    sh_pub_free(p);

    /* The subscriber redials the new publisher on its own. */
    p = pub_on(url);
    wait_connected(s, sync_via_pub, p);
    v = payload_of(2, "second");
    assert_int_equal(sh_pub_send(p, "progress:a", v), SH_OK);
    expect_event(s, "progress:a", v);
    sh_val_free(v);
    sh_pub_free(p);
    sh_sub_free(s);
}

static void test_subscriber_of_two_publishers(void **state)
{
    (void)state;
    char u1[128], u2[128], both[300];
    sh_pub *p1 = pub_on(tf_ipc_url(u1, sizeof u1, "two-a"));
    sh_pub *p2 = pub_on(tf_ipc_url(u2, sizeof u2, "two-b"));
    snprintf(both, sizeof both, "%s, %s", u1, u2);
    sh_sub *s = sub_on(both, 0);
    assert_int_equal(sh_sub_subscribe(s, "account:"), SH_OK);
    wait_connected(s, sync_via_pub, p1);
    wait_connected(s, sync_via_pub, p2);
    sh_val *v = payload_of(1, "x");
    assert_int_equal(sh_pub_send(p1, "account:1", v), SH_OK);
    expect_event(s, "account:1", v);
    assert_int_equal(sh_pub_send(p2, "account:2", v), SH_OK);
    expect_event(s, "account:2", v);
    sh_val_free(v);
    sh_sub_free(s);
    sh_pub_free(p1);
    sh_pub_free(p2);
}

/* ---- a subscriber's stop -------------------------------------------------------- */

typedef struct reader {
    sh_sub *sub;
    atomic_int stop;
    atomic_int received;
} reader;

/* The loop of a service's subscriber thread: a short timeout, so that a
 * stop flag is seen soon. */
static void *reader_main(void *arg)
{
    reader *r = arg;
    while (!atomic_load(&r->stop)) {
        char *t = NULL;
        sh_val *v = NULL;
        if (sh_sub_recv(r->sub, 100, &t, &v) == SH_OK)
            atomic_fetch_add(&r->received, 1);
        free(t);
        sh_val_free(v);
    }
    return NULL;
}

static void test_stop_while_waiting(void **state)
{
    (void)state;
    sh_pub *p;
    reader r = {.sub = pair_on("stop", "progress:", 0, &p)};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reader_main, &r), 0);
    sh_val *v = payload_of(1, "x");
    assert_int_equal(sh_pub_send(p, "progress:1", v), SH_OK);
    sh_val_free(v);
    for (int i = 0; i < 200 && atomic_load(&r.received) == 0; i++)
        tf_sleep_ms(10);
    assert_int_equal(atomic_load(&r.received), 1);
    int64_t t0 = sh_mono_ms();
    atomic_store(&r.stop, 1);
    pthread_join(t, NULL);
    assert_true(sh_mono_ms() - t0 < 1000);
    sh_sub_free(r.sub);
    sh_pub_free(p);
}

static void test_free_with_a_batch_half_read(void **state)
{
    (void)state;
    sh_pub *p;
    sh_sub *s = pair_on("half", "job:", 0, &p);
    sh_val *v = payload_of(1, "x");
    for (int i = 0; i < 50; i++)
        assert_int_equal(sh_pub_send(p, "job:1", v), SH_OK);
    expect_event(s, "job:1", v);
    sh_val_free(v);
    /* The rest of the batch (and what else came) is freed with s. */
    sh_sub_free(s);
    sh_pub_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topic_and_payload_arrive),
        cmocka_unit_test(test_prefixes_filter_by_topic),
        cmocka_unit_test(test_a_burst_arrives_whole_and_in_order),
        cmocka_unit_test(test_every_subscriber_gets_its_events),
        cmocka_unit_test(test_free_sends_what_is_queued),
        cmocka_unit_test(test_payload_over_the_queue_is_refused),
        cmocka_unit_test(test_event_over_the_subscriber_limit_is_not_delivered),
        cmocka_unit_test(test_malformed_messages_are_refused_one_by_one),
        cmocka_unit_test(test_lone_events_and_batches_mix),
        cmocka_unit_test(test_bad_urls_are_named),
        cmocka_unit_test(test_prefix_table_is_bounded),
        cmocka_unit_test(test_recv_waits_for_its_timeout),
        cmocka_unit_test(test_publisher_started_later_and_restarted),
        cmocka_unit_test(test_subscriber_of_two_publishers),
        cmocka_unit_test(test_stop_while_waiting),
        cmocka_unit_test(test_free_with_a_batch_half_read),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
