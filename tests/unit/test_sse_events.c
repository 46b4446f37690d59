/* test_sse_events.c - the fan-out of typed events (sse_events.c) to the
 * typed streams of a registry: each stream receives the types its filter
 * takes, in the order of their ids, with its data's id, type and createdAt
 * first; a greeting goes to one stream alone; the registry's end reaches
 * typed streams too. No connection is resumed here (see test_sse.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_json.h"
#include "gw_sse_int.h"

static char *drain(gw__sse_stream *st)
{
    static char all[1 << 16];
    size_t n = 0;
    while (st->out.len - st->off > 0) {
        ssize_t got = gw__sse_stream_read(st, all + n, sizeof all - 1 - n);
        assert_true(got > 0);
        n += (size_t)got;
    }
    all[n] = '\0';
    return all;
}

static gw__sse_stream *typed(gw__sse_registry *reg, uint64_t types)
{
    gw__sse_stream *st = gw__sse_stream_new(NULL, "events", 0);
    assert_non_null(st);
    st->types = types;
    assert_true(gw__sse_registry_add(reg, st, -1));
    return st;
}

static void gone(gw__sse_stream *st)
{
    gw__sse_registry_remove(st);
    gw__sse_stream_close(st);
    gw__sse_stream_unref(st);
}

/* next_event parses the next event of text at *p: its id, its type and
 * its data, checked to be one JSON object whose id and type are the
 * event's. Returns false at the end. */
static bool next_event(const char **p, long long *id, char *type, size_t tlen)
{
    const char *s = *p;
    if (!*s)
        return false;
    char data[2048];
    int used = 0;
    assert_int_equal(
        sscanf(s, "id: %lld\nevent: %63s\ndata: %2047[^\n]\n\n%n", id, type, data, &used), 3);
    assert_true(used > 0 && strlen(type) < tlen);
    sh_val *v = NULL;
    char msg[128];
    assert_int_equal(gw_json_parse(data, strlen(data), &v, msg, sizeof msg), 0);
    assert_int_equal(sh_val_int(sh_val_get(v, "id")), *id);
    assert_string_equal(sh_val_get_str(v, "type", NULL), type);
    assert_non_null(sh_val_get_str(v, "createdAt", NULL));
    sh_val_free(v);
    *p = s + used;
    return true;
}

static void test_each_stream_gets_its_types_in_id_order(void **state)
{
    (void)state;
    gw__sse_registry reg;
    assert_int_equal(gw__sse_registry_init(&reg, NULL), SH_OK);
    gw__sse_stream *claims = typed(&reg, gw__sse_types_of_families(GW_SSE_FAMILY_CLAIM));
    gw__sse_stream *all = typed(&reg, gw__sse_types_of_families(GW_SSE_FAMILY_ALL));
    gw__sse_stream *health = typed(&reg, UINT64_C(1) << GW__SSE_HEALTH);
    static const char f[] = ",\"sq\":\"item-1\"";
    gw__sse_events_emit(&reg, GW__SSE_CLAIM_CLAIMED, f, sizeof f - 1, NULL, false);
    gw__sse_events_emit(&reg, GW__SSE_HEALTH, "", 0, NULL, false);
    pthread_mutex_lock(&reg.mu);
    gw__sse_events_emit(&reg, GW__SSE_CLAIM_RELEASED, f, sizeof f - 1, NULL, true);
    pthread_mutex_unlock(&reg.mu);
    gw__sse_events_emit(&reg, GW__SSE_METRICS, "", 0, NULL, false);

    const char *want_all[] = {"claim.claimed", "health", "claim.released", "metrics"};
    const char *want_claims[] = {"claim.claimed", "claim.released"};
    struct {
        gw__sse_stream *st;
        const char **want;
        size_t n;
    } cases[] = {{all, want_all, 4}, {claims, want_claims, 2}, {health, want_all + 1, 1}};
    for (size_t c = 0; c < 3; c++) {
        const char *p = drain(cases[c].st);
        long long id, last = 0;
        char type[64];
        size_t n = 0;
        while (next_event(&p, &id, type, sizeof type)) {
            assert_true(n < cases[c].n);
            assert_string_equal(type, cases[c].want[n]);
            assert_true(id > last);
            last = id;
            n++;
        }
        assert_int_equal(n, cases[c].n);
    }
    /* An event no stream takes uses no id. */
    gone(all);
    gw__sse_events_emit(&reg, GW__SSE_ACCOUNT_DELETED, "", 0, NULL, false);
    assert_int_equal(reg.next_id, 4);
    assert_string_equal(drain(claims), "");
    gone(claims);
    gone(health);
    gw__sse_registry_fini(&reg);
}

static void test_greeting_goes_to_one_stream(void **state)
{
    (void)state;
    gw__sse_registry reg;
    assert_int_equal(gw__sse_registry_init(&reg, NULL), SH_OK);
    uint64_t every = gw__sse_types_of_families(GW_SSE_FAMILY_ALL);
    gw__sse_stream *a = typed(&reg, every);
    gw__sse_stream *b = typed(&reg, every);
    gw__sse_stream *c = typed(&reg, UINT64_C(1) << GW__SSE_METRICS);
    static const char f[] = ",\"ids\":[],\"count\":0";
    gw__sse_events_emit(&reg, GW__SSE_STREAMS, f, sizeof f - 1, b, false);
    gw__sse_events_emit(&reg, GW__SSE_STREAMS, "", 0, c, false); /* c does not take it */
    assert_string_equal(drain(a), "");
    assert_string_equal(drain(c), "");
    const char *p = drain(b);
    long long id;
    char type[64];
    assert_true(next_event(&p, &id, type, sizeof type));
    assert_string_equal(type, "streams");
    assert_int_equal(id, 1);
    assert_false(next_event(&p, &id, type, sizeof type));
    /* The end reaches typed streams, and nothing follows it. */
    static const char bye[] = "event: shutdown\ndata: {}\n\n";
    gw__sse_registry_end(&reg, bye, sizeof bye - 1);
    gw__sse_events_emit(&reg, GW__SSE_METRICS, "", 0, NULL, false);
    assert_string_equal(drain(a), bye);
    assert_string_equal(drain(c), bye);
    assert_int_equal(gw__sse_stream_read(a, (char[8]){0}, 8), -1 /* end of stream */);
    gone(a);
    gone(b);
    gone(c);
    gw__sse_registry_fini(&reg);
}

static void test_typed_streams_are_not_topics(void **state)
{
    (void)state;
    gw__sse_registry reg;
    assert_int_equal(gw__sse_registry_init(&reg, NULL), SH_OK);
    uint64_t gen = reg.topics_gen;
    gw__sse_stream *t = typed(&reg, UINT64_C(1) << GW__SSE_HEALTH);
    assert_int_equal(reg.topics_gen, gen);
    assert_null(gw__sse_topic_find(&reg, "events"));
    gw__sse_stream *p = gw__sse_stream_new(NULL, "rec-1", 0);
    assert_true(gw__sse_registry_add(&reg, p, -1));
    assert_true(reg.topics_gen > gen);
    gen = reg.topics_gen;
    assert_int_equal(reg.nstreams, 2);
    gone(t);
    assert_int_equal(reg.topics_gen, gen);
    assert_null(reg.typed);
    gone(p);
    assert_true(reg.topics_gen > gen);
    assert_int_equal(reg.nstreams, 0);
    gw__sse_registry_fini(&reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_stream_gets_its_types_in_id_order),
        cmocka_unit_test(test_greeting_goes_to_one_stream),
        cmocka_unit_test(test_typed_streams_are_not_topics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
