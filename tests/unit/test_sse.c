/* test_sse.c - the lower layers of the event streams, through their
 * internal header: a stream's buffer, references and sending rules, the
 * registry of streams by id with its watch of sockets, and the timer's
 * decision to read a record again. No connection is resumed here: a stream
 * is only ever given to MHD by sse.c, which the e2e tests run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gw_metrics.h"
#include "gw_sse_int.h"

/* drain reads everything st has into a NUL-terminated static buffer, in
 * reads of at most step bytes. */
static const char *drain(gw__sse_stream *st, size_t step)
{
    static char all[1 << 16];
    size_t n = 0;
    while (st->out.len - st->off > 0) {
        assert_true(n + step < sizeof all);
        ssize_t got = gw__sse_stream_read(st, all + n, step);
        assert_true(got > 0 && (size_t)got <= step);
        n += (size_t)got;
    }
    all[n] = '\0';
    return all;
}

static void push(gw__sse_stream *st, const char *text)
{
    gw__sse_wake w;
    gw__sse_wake_init(&w);
    gw__sse_stream_push(st, text, strlen(text), &w);
    assert_int_equal(w.n, 0); /* never suspended here: nothing to resume */
}

static void offer(gw__sse_stream *st, int64_t version, const char *created, bool snapshot)
{
    char text[64];
    snprintf(text, sizeof text, "v%lld;", (long long)version);
    gw__sse_wake w;
    gw__sse_wake_init(&w);
    gw__sse_stream_offer(st, version, created, text, strlen(text), snapshot, &w);
    assert_int_equal(w.n, 0);
}

static void test_buffer_reads_in_order_across_compaction(void **state)
{
    (void)state;
    gw__sse_stream *st = gw__sse_stream_new(NULL, "rec-1", 0);
    assert_non_null(st);
    assert_string_equal(st->id, "rec-1");
    assert_int_equal(st->ep_fd, -1);
    push(st, "abcdef");
    char buf[8];
    assert_int_equal(gw__sse_stream_read(st, buf, 4), 4);
    assert_memory_equal(buf, "abcd", 4);
    /* More than half of the buffer is read: the next push moves the rest
     * to the front, and nothing is lost or reordered. */
    push(st, "gh");
    assert_int_equal(st->off, 0);
    assert_string_equal(drain(st, 3), "efgh");
    /* All read: the buffer starts again from its beginning. */
    assert_int_equal(st->out.len, 0);
    assert_int_equal(st->off, 0);
    for (int i = 0; i < 1000; i++)
        push(st, "0123456789");
    const char *all = drain(st, 7);
    assert_int_equal(strlen(all), 10000);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(all[i], '0' + i % 10);
    gw__sse_stream_unref(st);
}

static void test_buffer_end_and_overflow(void **state)
{
    (void)state;
    gw__sse_stream *st = gw__sse_stream_new(NULL, "x", 0);
    gw__sse_wake w;
    gw__sse_wake_init(&w);
    gw__sse_stream_finish(st, "bye", 3, &w);
    gw__sse_stream_finish(st, "again", 5, &w); /* the end is sent once */
    push(st, "late");                          /* nothing after the end */
    assert_string_equal(drain(st, 64), "bye");
    char buf[8];
    assert_int_equal(gw__sse_stream_read(st, buf, sizeof buf), MHD_CONTENT_READER_END_OF_STREAM);
    gw__sse_stream_unref(st);

    /* A stream of events with ids whose client is its cap behind is
     * closed: what it had is still read, then the response ends with an
     * error (the client resumes with its Last-Event-ID). */
    st = gw__sse_stream_new(NULL, "slow", 0);
    st->types = 1;
    assert_int_equal(st->cap, SSE_MAX_BUFFER);
    st->cap = 64 * 1024;
    size_t chunk = 16 * 1024;
    char *big = malloc(chunk);
    assert_non_null(big);
    memset(big, 'z', chunk);
    for (size_t i = 0; i < st->cap / chunk; i++)
        assert_false(gw__sse_stream_push_locked(st, big, chunk));
    assert_false(st->failed);
    assert_false(gw__sse_stream_push_locked(st, "!", 1));
    assert_true(st->failed);
    assert_int_equal(st->out.len - st->off, st->cap);
    assert_false(gw__sse_stream_push_locked(st, big, 1));
    assert_int_equal(st->out.len - st->off, st->cap);
    char *out = malloc(chunk);
    size_t total = 0;
    ssize_t got;
    while ((got = gw__sse_stream_read(st, out, chunk)) > 0)
        total += (size_t)got;
    assert_int_equal(total, 64 * 1024);
    assert_int_equal(got, MHD_CONTENT_READER_END_WITH_ERROR);
    gw__sse_stream_unref(st);

    /* One event bigger than the cap still goes into an empty buffer; a
     * mail stream replaying its log holds up to SSE_MAX_BUFFER. */
    st = gw__sse_stream_new(NULL, "big", 0);
    st->types = 1;
    st->cap = 8 * 1024;
    assert_false(gw__sse_stream_push_locked(st, big, chunk));
    assert_false(st->failed);
    assert_false(gw__sse_stream_push_locked(st, "!", 1));
    assert_true(st->failed);
    gw__sse_stream_unref(st);
    st = gw__sse_stream_new(NULL, "acct", 0);
    st->types = GW__SSE_MAIL_STREAM;
    st->cap = 16 * 1024;
    st->mail_replaying = true;
    for (int i = 0; i < 8; i++)
        assert_false(gw__sse_stream_push_locked(st, big, chunk));
    assert_false(st->failed);
    st->mail_replaying = false;
    assert_false(gw__sse_stream_push_locked(st, "!", 1));
    assert_true(st->failed);
    gw__sse_stream_unref(st);
    free(big);
    free(out);
}

/* record_text makes the event of version v padded to about len bytes. */
static char *record_text(int64_t v, size_t len)
{
    char *t = malloc(len + 64);
    assert_non_null(t);
    int n = snprintf(t, 64, "event: progress\nid: %lld\ndata: {\"p\":\"", (long long)v);
    memset(t + n, 'p', len);
    memcpy(t + n + len, "\"}\n\n", 5);
    t[n + len + 5] = '\0';
    return t;
}

static void test_record_stream_behind_keeps_the_latest(void **state)
{
    (void)state;
    gw__sse_wake w;
    gw__sse_wake_init(&w);
    gw__sse_stream *st = gw__sse_stream_new(NULL, "rec", 0);
    st->cap = 16 * 1024;
    /* Versions 1..40 of a 1 KiB record; the client read half of the first
     * and nothing more. */
    char *t = record_text(1, 1000);
    gw__sse_stream_offer(st, 1, NULL, t, strlen(t), true, &w);
    size_t first = strlen(t);
    free(t);
    char buf[600];
    assert_int_equal(gw__sse_stream_read(st, buf, 500), 500);
    for (int64_t v = 2; v <= 40; v++) {
        t = record_text(v, 1000);
        gw__sse_stream_offer(st, v, NULL, t, strlen(t), false, &w);
        free(t);
        assert_false(st->failed);
        assert_true(st->out.len - st->off <= st->cap + 1100);
    }
    gw__sse_wake_run(&w);
    /* A heartbeat to a stream this far behind is not sent. */
    size_t before = st->out.len;
    for (int i = 0; i < 100; i++)
        gw__sse_stream_push_locked(st, ": heartbeat\n\n", 13);
    assert_true(st->out.len - st->off <= st->cap);
    assert_true(st->out.len >= before);
    /* The rest of the first event, whole events after it, the last one 40. */
    const char *all = drain(st, 4096);
    assert_true(strlen(all) >= first - 500);
    assert_memory_equal(all + (first - 500 - 4), "\"}\n\n", 4);
    assert_non_null(strstr(all, "id: 40\n"));
    assert_null(strstr(all, "id: 2\n"));
    const char *last = strstr(all, "id: 40\n");
    assert_non_null(strstr(last, "\"}\n\n"));
    assert_int_equal(st->last, 40);

    /* Other text that does not fit drops the backlog too; the record is
     * then sent again at its next read. */
    for (int64_t v = 41; v <= 50; v++) {
        t = record_text(v, 1000);
        gw__sse_stream_offer(st, v, NULL, t, strlen(t), false, &w);
        free(t);
    }
    char *log = record_text(0, 12 * 1024);
    memcpy(log, "event: log\n", 11);
    gw__sse_stream_push(st, log, strlen(log), &w);
    free(log);
    assert_int_equal(st->last, 0);
    t = record_text(50, 1000);
    gw__sse_stream_offer(st, 50, NULL, t, strlen(t), false, &w);
    free(t);
    gw__sse_wake_run(&w);
    all = drain(st, 4096);
    assert_non_null(strstr(all, "event: log\n"));
    assert_non_null(strstr(all, "id: 50\n"));
    assert_null(strstr(all, "id: 49\n"));
    gw__sse_stream_unref(st);
}

static void test_push_resumes_a_suspended_stream_once(void **state)
{
    (void)state;
    gw__sse_stream *st = gw__sse_stream_new(NULL, "x", 0);
    assert_false(gw__sse_stream_push_locked(st, "a", 1));
    st->suspended = true; /* as the reader leaves it when it finds nothing */
    assert_true(gw__sse_stream_push_locked(st, "b", 1));
    assert_false(st->suspended);
    assert_false(gw__sse_stream_push_locked(st, "c", 1)); /* the first producer resumes */

    /* A hang-up fails the stream and resumes it so that the reader ends it. */
    st->suspended = true;
    gw__sse_wake w;
    gw__sse_wake_init(&w);
    gw__sse_stream_fail(st, &w);
    assert_true(st->failed);
    assert_int_equal(w.n, 1);
    assert_ptr_equal(w.v[0], st);
    assert_int_equal(atomic_load(&st->refs), 2); /* the wake-up holds one */
    gw__sse_stream_unref(w.v[0]);
    /* A closed stream is left alone. */
    gw__sse_stream_close(st);
    gw__sse_wake_init(&w);
    st->suspended = true;
    gw__sse_stream_fail(st, &w);
    assert_int_equal(w.n, 0);
    gw__sse_stream_unref(st);
}

static void test_wake_list_grows_and_holds_references(void **state)
{
    (void)state;
    enum { N = 40 };
    gw__sse_stream *st[N];
    gw__sse_wake w;
    gw__sse_wake_init(&w);
    for (int i = 0; i < N; i++) {
        st[i] = gw__sse_stream_new(NULL, "x", 0);
        gw__sse_wake_add(&w, st[i]);
    }
    assert_int_equal(w.n, N);
    assert_true(w.v != w.inl); /* past the inline slots */
    for (int i = 0; i < N; i++) {
        assert_ptr_equal(w.v[i], st[i]);
        assert_int_equal(atomic_load(&st[i]->refs), 2);
    }
    /* What gw__sse_wake_run does after each resume. */
    for (int i = 0; i < N; i++) {
        gw__sse_stream_unref(w.v[i]);
        assert_int_equal(atomic_load(&st[i]->refs), 1);
        gw__sse_stream_unref(st[i]);
    }
    free(w.v);
}

static void test_offer_sends_strictly_newer_versions(void **state)
{
    (void)state;
    gw__sse_stream *st = gw__sse_stream_new(NULL, "x", 0);
    offer(st, 3, "2026-01-01T00:00:00.000Z", true);
    offer(st, 2, "2026-01-01T00:00:00.000Z", false);
    offer(st, 3, "2026-01-01T00:00:00.000Z", false);
    offer(st, 5, "2026-01-01T00:00:00.000Z", false);
    offer(st, 4, "2026-01-01T00:00:00.000Z", false);
    offer(st, 6, NULL, false);
    assert_string_equal(drain(st, 64), "v3;v5;v6;");
    assert_int_equal(st->last, 6);
    gw__sse_stream_unref(st);
}

static void test_offer_snapshot_and_last_event_id(void **state)
{
    (void)state;
    /* The client has version 7: a snapshot of 7 is not sent again... */
    gw__sse_stream *st = gw__sse_stream_new(NULL, "x", 7);
    offer(st, 7, "2026-01-01T00:00:00.000Z", true);
    assert_false(st->sent_record);
    offer(st, 8, "2026-01-01T00:00:00.000Z", false);
    assert_string_equal(drain(st, 64), "v8;");
    gw__sse_stream_unref(st);
    /* ...but any other is, even an older one (the record was recreated). */
    st = gw__sse_stream_new(NULL, "x", 7);
    offer(st, 2, "2026-01-02T00:00:00.000Z", true);
    assert_string_equal(drain(st, 64), "v2;");
    /* Once a record went out, a late snapshot obeys the version rule. */
    offer(st, 1, "2026-01-02T00:00:00.000Z", true);
    assert_string_equal(drain(st, 64), "");
    gw__sse_stream_unref(st);
}

static void test_offer_recreated_record_restarts_versions(void **state)
{
    (void)state;
    gw__sse_stream *st = gw__sse_stream_new(NULL, "x", 0);
    offer(st, 9, "2026-01-01T00:00:00.000Z", false);
    /* A newer createdAt: a new record under the id, from version 1. */
    offer(st, 1, "2026-01-02T00:00:00.000Z", false);
    offer(st, 2, "2026-01-02T00:00:00.000Z", false);
    /* An older createdAt: the record replaced, read late. */
    offer(st, 10, "2026-01-01T00:00:00.000Z", false);
    assert_string_equal(drain(st, 64), "v9;v1;v2;");
    gw__sse_stream_unref(st);
}

static void test_deleted_record_not_sent_after_delete(void **state)
{
    (void)state;
    const char *old = "2026-01-01T00:00:00.000Z", *fresh = "2026-01-03T00:00:00.000Z";
    gw__sse_stream *st = gw__sse_stream_new(NULL, "x", 0);
    offer(st, 4, old, false);
    gw__sse_wake w;
    gw__sse_wake_init(&w);
    gw__sse_stream_deleted(st, "del;", 4, &w);
    assert_int_equal(st->last, 0);
    assert_string_equal(st->tomb, old);
    /* A read of the deleted record that crossed the delete is dropped. */
    offer(st, 5, old, false);
    offer(st, 1, fresh, false);
    assert_string_equal(drain(st, 64), "v4;del;v1;");
    gw__sse_stream_unref(st);
}

static void test_note_only_before_a_record(void **state)
{
    (void)state;
    gw__sse_stream *st = gw__sse_stream_new(NULL, "x", 0);
    gw__sse_wake w;
    gw__sse_wake_init(&w);
    gw__sse_stream_note(st, ": waiting\n", 10, &w);
    offer(st, 1, NULL, true);
    gw__sse_stream_note(st, ": unavailable\n", 14, &w);
    assert_string_equal(drain(st, 64), ": waiting\nv1;");
    gw__sse_stream_finish(st, "end", 3, &w);
    offer(st, 2, NULL, false);
    assert_string_equal(drain(st, 64), "end");
    gw__sse_stream_unref(st);
}

static void test_registry_topics_add_remove(void **state)
{
    (void)state;
    gw__sse_registry reg;
    assert_int_equal(gw__sse_registry_init(&reg, NULL), SH_OK);
    int64_t clients = gw_metrics_sse_clients();
    gw__sse_stream *a1 = gw__sse_stream_new(NULL, "a", 0);
    gw__sse_stream *a2 = gw__sse_stream_new(NULL, "a", 0);
    gw__sse_stream *b = gw__sse_stream_new(NULL, "b", 0);
    assert_true(gw__sse_registry_add(&reg, a1, -1));
    assert_true(gw__sse_registry_add(&reg, a2, -1));
    assert_true(gw__sse_registry_add(&reg, b, -1));
    assert_int_equal(reg.nstreams, 3);
    assert_int_equal(gw_metrics_sse_clients(), clients + 3);
    assert_int_equal(a1->ep_fd, -1); /* no socket given, none watched */
    gw__sse_topic *ta = gw__sse_topic_find(&reg, "a");
    assert_non_null(ta);
    assert_string_equal(ta->id, "a");
    assert_ptr_equal(a1->topic, ta);
    assert_ptr_equal(a2->topic, ta);
    int n = 0;
    for (gw__sse_stream *st = ta->streams; st; st = st->next)
        n++;
    assert_int_equal(n, 2);
    assert_null(gw__sse_topic_find(&reg, "c"));

    gw__sse_registry_remove(a2);
    assert_false(a2->registered);
    assert_ptr_equal(gw__sse_topic_find(&reg, "a"), ta);
    assert_ptr_equal(ta->streams, a1);
    assert_null(a1->next);
    assert_null(a1->prev);
    gw__sse_registry_remove(a1);
    assert_null(gw__sse_topic_find(&reg, "a")); /* its last stream gone */
    assert_non_null(gw__sse_topic_find(&reg, "b"));
    gw__sse_registry_remove(a1); /* twice is harmless */
    assert_int_equal(reg.nstreams, 1);
    assert_int_equal(gw_metrics_sse_clients(), clients + 1);

    /* The end: every stream gets the text and ends; no stream is added. */
    gw__sse_registry_end(&reg, "bye", 3);
    assert_true(b->finishing);
    assert_string_equal(drain(b, 64), "bye");
    assert_false(gw__sse_registry_add(&reg, a1, -1));
    assert_false(a1->registered);
    gw__sse_registry_remove(a1); /* not registered: nothing to undo */
    gw__sse_registry_remove(b);
    assert_int_equal(reg.nstreams, 0);
    assert_int_equal(gw_metrics_sse_clients(), clients);
    gw__sse_stream_unref(a1);
    gw__sse_stream_unref(a2);
    gw__sse_stream_unref(b);
    gw__sse_registry_fini(&reg);
}

static void test_registry_many_ids_share_buckets(void **state)
{
    (void)state;
    enum { N = 3 * SSE_BUCKETS };
    gw__sse_registry reg;
    assert_int_equal(gw__sse_registry_init(&reg, NULL), SH_OK);
    gw__sse_stream **st = calloc(N, sizeof *st);
    assert_non_null(st);
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "id%d", i);
        st[i] = gw__sse_stream_new(NULL, id, 0);
        assert_true(gw__sse_registry_add(&reg, st[i], -1));
    }
    /* Remove every other one: the rest stay found, in whatever chain. */
    for (int i = 0; i < N; i += 2)
        gw__sse_registry_remove(st[i]);
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "id%d", i);
        gw__sse_topic *t = gw__sse_topic_find(&reg, id);
        if (i % 2)
            assert_true(t && t->streams == st[i]);
        else
            assert_null(t);
    }
    for (int i = 1; i < N; i += 2)
        gw__sse_registry_remove(st[i]);
    for (int i = 0; i < N; i++)
        gw__sse_stream_unref(st[i]);
    free(st);
    /* Topics left behind are freed with the registry (ASan would tell). */
    gw__sse_stream *left = gw__sse_stream_new(NULL, "left", 0);
    assert_true(gw__sse_registry_add(&reg, left, -1));
    gw__sse_registry_fini(&reg);
    gw__sse_stream_unref(left);
}

static void test_registry_watch_holds_a_reference(void **state)
{
    (void)state;
    gw__sse_registry reg;
    assert_int_equal(gw__sse_registry_init(&reg, NULL), SH_OK);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    gw__sse_stream *st = gw__sse_stream_new(NULL, "w", 0);
    assert_true(gw__sse_registry_add(&reg, st, sv[0]));
    assert_true(st->ep_fd >= 0 && st->ep_fd != sv[0]);
    assert_int_equal(atomic_load(&st->refs), 2);

    /* The client hangs up: the registry's epoll names the stream. */
    struct epoll_event ev;
    assert_int_equal(epoll_wait(reg.ep, &ev, 1, 0), 0);
    close(sv[1]);
    assert_int_equal(epoll_wait(reg.ep, &ev, 1, 1000), 1);
    assert_ptr_equal(ev.data.ptr, st);
    assert_true(ev.events & (EPOLLRDHUP | EPOLLHUP));

    /* Removal stops the watch, but its reference is dropped only by the
     * drain, after the next wait. */
    gw__sse_registry_remove(st);
    assert_int_equal(st->ep_fd, -1);
    assert_ptr_equal(reg.retired, st);
    assert_int_equal(atomic_load(&st->refs), 2);
    assert_int_equal(epoll_wait(reg.ep, &ev, 1, 0), 0);
    gw__sse_retired_drain(&reg);
    assert_null(reg.retired);
    assert_int_equal(atomic_load(&st->refs), 1);
    gw__sse_stream_unref(st);
    close(sv[0]);
    gw__sse_registry_fini(&reg);
}

static void test_timer_rereads_when_quiet_or_on_heartbeat(void **state)
{
    (void)state;
    gw__sse_topic t;
    memset(&t, 0, sizeof t);
    t.last_event_ms = 10000;
    assert_true(gw__sse_timer_due(&t, 10000, true));
    assert_false(gw__sse_timer_due(&t, 10000 + SSE_QUIET_MS * 10, false)); /* no event since */
    t.dirty = true;
    assert_false(gw__sse_timer_due(&t, 10000, false));
    assert_false(gw__sse_timer_due(&t, 10000 + SSE_QUIET_MS - 1, false));
    assert_true(gw__sse_timer_due(&t, 10000 + SSE_QUIET_MS, false));
    assert_true(gw__sse_timer_due(&t, 10000 + SSE_QUIET_MS - 1, true));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buffer_reads_in_order_across_compaction),
        cmocka_unit_test(test_buffer_end_and_overflow),
        cmocka_unit_test(test_record_stream_behind_keeps_the_latest),
        cmocka_unit_test(test_push_resumes_a_suspended_stream_once),
        cmocka_unit_test(test_wake_list_grows_and_holds_references),
        cmocka_unit_test(test_offer_sends_strictly_newer_versions),
        cmocka_unit_test(test_offer_snapshot_and_last_event_id),
        cmocka_unit_test(test_offer_recreated_record_restarts_versions),
        cmocka_unit_test(test_deleted_record_not_sent_after_delete),
        cmocka_unit_test(test_note_only_before_a_record),
        cmocka_unit_test(test_registry_topics_add_remove),
        cmocka_unit_test(test_registry_many_ids_share_buckets),
        cmocka_unit_test(test_registry_watch_holds_a_reference),
        cmocka_unit_test(test_timer_rereads_when_quiet_or_on_heartbeat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
