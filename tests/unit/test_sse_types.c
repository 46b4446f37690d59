/* test_sse_types.c - the typed events of GET /api/events (sse_types.c):
 * their names and families, which coordinator event makes which type, the
 * fields each carries (never a fencing token or a secret), and the ?types=
 * filter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <string.h>

#include "gw_json.h"
#include "gw_sse_int.h"

static uint64_t bit(int t)
{
    return UINT64_C(1) << t;
}

static void test_names_and_families(void **state)
{
    (void)state;
    for (int t = 0; t < GW__SSE_TYPE_COUNT; t++) {
        const char *name = gw__sse_type_name(t);
        assert_non_null(name);
        assert_int_equal(gw_sse_family_of(name), gw__sse_type_family(t));
        for (int u = 0; u < t; u++)
            assert_string_not_equal(name, gw__sse_type_name(u));
    }
    assert_null(gw__sse_type_name(GW__SSE_TYPE_COUNT));
    assert_null(gw__sse_type_name(-1));
    assert_int_equal(gw_sse_family_of("claim.expired"), GW_SSE_FAMILY_CLAIM);
    assert_int_equal(gw_sse_family_of("reservation.reserved"), GW_SSE_FAMILY_RESERVATION);
    assert_int_equal(gw_sse_family_of("account.status"), GW_SSE_FAMILY_ACCOUNT);
    assert_int_equal(gw_sse_family_of("health"), GW_SSE_FAMILY_HEALTH);
    assert_int_equal(gw_sse_family_of("metrics"), GW_SSE_FAMILY_METRICS);
    assert_int_equal(gw_sse_family_of("streams"), GW_SSE_FAMILY_STREAMS);
    assert_int_equal(gw_sse_family_of("claim"), 0);
    assert_int_equal(gw_sse_family_of("mail.new"), GW_SSE_FAMILY_MAIL);
    assert_int_equal(gw_sse_family_of("auth.error"), GW_SSE_FAMILY_MAIL);
    assert_int_equal(gw_sse_family_of("mail"), 0);
    /* A queue scope's families hold the claim and reservation types only. */
    uint64_t queue = gw__sse_types_of_families(GW_SSE_FAMILY_CLAIM | GW_SSE_FAMILY_RESERVATION);
    for (int t = 0; t < GW__SSE_TYPE_COUNT; t++) {
        const char *name = gw__sse_type_name(t);
        bool want = strncmp(name, "claim.", 6) == 0 || strncmp(name, "reservation.", 12) == 0;
        assert_int_equal((queue & bit(t)) != 0, want);
    }
    assert_int_equal(gw__sse_types_of_families(GW_SSE_FAMILY_ALL),
                     (UINT64_C(1) << GW__SSE_TYPE_COUNT) - 1);
}

static void test_coordinator_events_map_to_types(void **state)
{
    (void)state;
    static const struct {
        const char *topic, *kind;
        int type;
    } rows[] = {
        {"sq:sq:item-1", "claimed", GW__SSE_CLAIM_CLAIMED},
        {"sq:other:item-1", "renewed", GW__SSE_CLAIM_RENEWED},
        {"sq:sq:x", "released", GW__SSE_CLAIM_RELEASED},
        {"sq:sq:x", "status", GW__SSE_CLAIM_STATUS},
        {"sq:sq:x", "expired", GW__SSE_CLAIM_EXPIRED},
        /* the same kind on another topic is another type */
        {"refund:refund:x", "renewed", GW__SSE_RESERVATION_RENEWED},
        {"refund:refund:x", "reserved", GW__SSE_RESERVATION_RESERVED},
        {"refund:log2:x", "expired", GW__SSE_RESERVATION_EXPIRED},
        {"refund:refund:x", "released", GW__SSE_RESERVATION_RELEASED},
        {"account:a1", "created", GW__SSE_ACCOUNT_CREATED},
        {"account:a1", "updated", GW__SSE_ACCOUNT_UPDATED},
        {"account:a1", "deleted", GW__SSE_ACCOUNT_DELETED},
        {"account:a1", "status", GW__SSE_ACCOUNT_STATUS},
        {"mailevent:a1", "mail.new", GW__SSE_MAIL_NEW},
        {"mailevent:a1", "mail.flags", GW__SSE_MAIL_FLAGS},
        {"mailevent:a1", "mail.removed", GW__SSE_MAIL_REMOVED},
        {"mailevent:a1", "folder.counts", GW__SSE_FOLDER_COUNTS},
        {"mailevent:a1", "sync.status", GW__SSE_SYNC_STATUS},
        {"mailevent:a1", "auth.error", GW__SSE_AUTH_ERROR},
        {"mail:a1", "mail.new", -1},
        {"mailevent:a1", "added", -1},
        /* kinds no typed event is made of, and other topics */
        {"refund:refund:x", "status", -1},
        {"account:a1", "claimed", -1},
        {"sync:queued", "queued", -1},
        {"progress:p1", "update", -1},
        {"sq:sq:x", NULL, -1},
        {NULL, "claimed", -1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        assert_int_equal(gw__sse_type_of(rows[i].topic, rows[i].kind), rows[i].type);
}

static void test_types_filter(void **state)
{
    (void)state;
    uint64_t m;
    char bad[80];
    uint64_t all = gw__sse_types_of_families(GW_SSE_FAMILY_ALL);
    assert_int_equal(gw__sse_types_parse(NULL, &m, bad, sizeof bad), SH_OK);
    assert_int_equal(m, all);
    assert_int_equal(gw__sse_types_parse("", &m, bad, sizeof bad), SH_OK);
    assert_int_equal(m, all);
    assert_int_equal(gw__sse_types_parse("*", &m, bad, sizeof bad), SH_OK);
    assert_int_equal(m, all);
    assert_int_equal(gw__sse_types_parse("claim.*", &m, bad, sizeof bad), SH_OK);
    assert_int_equal(m, gw__sse_types_of_families(GW_SSE_FAMILY_CLAIM));
    assert_int_equal(
        gw__sse_types_parse("health,account.status, reservation.*", &m, bad, sizeof bad), SH_OK);
    assert_int_equal(m, bit(GW__SSE_HEALTH) | bit(GW__SSE_ACCOUNT_STATUS) |
                            gw__sse_types_of_families(GW_SSE_FAMILY_RESERVATION));
    assert_int_equal(gw__sse_types_parse("claim.claimed,claim.claimed", &m, bad, sizeof bad),
                     SH_OK);
    assert_int_equal(m, bit(GW__SSE_CLAIM_CLAIMED));
    /* Unknown names are refused, naming the first. */
    const char *refused[][2] = {
        {"claim.nope", "claim.nope"},
        {"health,bogus,x", "bogus"},
        {"claims.*", "claims.*"},
        {"claim", "claim"},
        {"health,", ""},
        {",health", ""},
        {"mail.bogus", "mail.bogus"},
        {"HEALTH", "HEALTH"},
        {"claim.claimed*x", "claim.claimed*x"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        m = 1;
        assert_int_equal(gw__sse_types_parse(refused[i][0], &m, bad, sizeof bad), SH_EINVAL);
        assert_string_equal(bad, refused[i][1]);
    }
}

static sh_val *claim_payload(const char *kind)
{
    sh_val *m = sh_val_new_map();
    sh_val_set_cstr(m, "sq", sh_val_new_cstr("item-1"));
    sh_val_set_cstr(m, "namespace", sh_val_new_cstr("sq"));
    sh_val_set_cstr(m, "botId", sh_val_new_cstr("BOT1"));
    sh_val_set_cstr(m, "token", sh_val_new_int(1763000000000001));
    sh_val_set_cstr(m, "status", sh_val_new_cstr("CLAIMING"));
    sh_val_set_cstr(m, "kind", sh_val_new_cstr(kind));
    return m;
}

/* fields returns the JSON object made of the fields of an event. */
static const char *fields(int type, const sh_val *payload)
{
    static char out[4096];
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sh_buf_puts(&b, "{\"x\":0"), SH_OK);
    assert_int_equal(gw__sse_type_fields(type, payload, &b), SH_OK);
    assert_int_equal(sh_buf_puts(&b, "}"), SH_OK);
    assert_true(b.len < sizeof out);
    memcpy(out, b.data, b.len + 1);
    sh_buf_fini(&b);
    /* Whatever the fields, the data is one valid JSON object. */
    sh_val *v = NULL;
    char msg[128];
    assert_int_equal(gw_json_parse(out, strlen(out), &v, msg, sizeof msg), 0);
    sh_val_free(v);
    return out;
}

static void test_claim_fields_keep_the_token_back(void **state)
{
    (void)state;
    sh_val *p = claim_payload("claimed");
    assert_string_equal(fields(GW__SSE_CLAIM_CLAIMED, p),
                        "{\"x\":0,\"sq\":\"item-1\",\"namespace\":\"sq\",\"botId\":\"BOT1\","
                        "\"status\":\"CLAIMING\"}");
    sh_val_free(p);
    sh_val *nil = sh_val_new_nil();
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(gw__sse_type_fields(GW__SSE_CLAIM_CLAIMED, nil, &b), SH_EINVAL);
    assert_int_equal(gw__sse_type_fields(GW__SSE_HEALTH, nil, &b), SH_EINVAL);
    sh_buf_fini(&b);
    sh_val_free(nil);
}

static sh_val *account_view(void)
{
    sh_val *m = sh_val_new_map();
    sh_val_set_cstr(m, "id", sh_val_new_cstr("a1"));
    sh_val_set_cstr(m, "emailAddress", sh_val_new_cstr("me@example.com"));
    sh_val_set_cstr(m, "imapPort", sh_val_new_int(993));
    sh_val_set_cstr(m, "syncStatus", sh_val_new_cstr("queued"));
    sh_val_set_cstr(m, "errorMessage", sh_val_new_nil());
    sh_val_set_cstr(m, "passwordSealed", sh_val_new_bin("\x01secret", 7));
    sh_val_set_cstr(m, "progressId", sh_val_new_cstr("sync-a1-1"));
    sh_val_set_cstr(m, "kind", sh_val_new_cstr("created"));
    return m;
}

static void test_account_fields(void **state)
{
    (void)state;
    sh_val *v = account_view();
    /* created and updated: the public view under "account", never a secret */
    assert_string_equal(fields(GW__SSE_ACCOUNT_CREATED, v),
                        "{\"x\":0,\"accountId\":\"a1\",\"account\":{\"id\":\"a1\","
                        "\"emailAddress\":\"me@example.com\",\"imapPort\":993,"
                        "\"syncStatus\":\"queued\",\"errorMessage\":null}}");
    assert_string_equal(fields(GW__SSE_ACCOUNT_STATUS, v),
                        "{\"x\":0,\"accountId\":\"a1\",\"syncStatus\":\"queued\","
                        "\"errorMessage\":null}");
    assert_string_equal(fields(GW__SSE_ACCOUNT_DELETED, v), "{\"x\":0,\"accountId\":\"a1\"}");
    sh_val_free(v);
    sh_val *noid = sh_val_new_map();
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(gw__sse_type_fields(GW__SSE_ACCOUNT_DELETED, noid, &b), SH_EINVAL);
    sh_buf_fini(&b);
    sh_val_free(noid);
}

/* A mail event: the sync-worker's, its log id as eventId, without the id,
 * type and createdAt the typed stream gives it. */
static void test_mail_fields(void **state)
{
    (void)state;
    sh_val *v = sh_val_new_map();
    sh_val_set_cstr(v, "type", sh_val_new_cstr("mail.removed"));
    sh_val_set_cstr(v, "accountId", sh_val_new_cstr("a1"));
    sh_val_set_cstr(v, "createdAt", sh_val_new_cstr("2026-01-01T00:00:00.000Z"));
    sh_val_set_cstr(v, "uid", sh_val_new_int(7));
    sh_val_set_cstr(v, "folder", sh_val_new_cstr("INBOX"));
    sh_val_set_cstr(v, "id", sh_val_new_cstr("17-3"));
    sh_val_set_cstr(v, "kind", sh_val_new_cstr("mail.removed"));
    assert_string_equal(fields(GW__SSE_MAIL_REMOVED, v),
                        "{\"x\":0,\"eventId\":\"17-3\",\"accountId\":\"a1\",\"uid\":7,"
                        "\"folder\":\"INBOX\"}");
    sh_buf b;
    sh_buf_init(&b);
    sh_val_free(sh_val_take(v, "id"));
    assert_int_equal(gw__sse_type_fields(GW__SSE_MAIL_REMOVED, v, &b), SH_EINVAL);
    sh_buf_fini(&b);
    sh_val_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_families),
        cmocka_unit_test(test_coordinator_events_map_to_types),
        cmocka_unit_test(test_types_filter),
        cmocka_unit_test(test_claim_fields_keep_the_token_back),
        cmocka_unit_test(test_account_fields),
        cmocka_unit_test(test_mail_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
