/* test_report.c - a sync run's progress reports (report.c) written to a
 * real progress service on a private Redis: the pacing of updates (the
 * record's version counts the writes), the last update carrying the
 * latest state, log entries, folder names cut without breaking UTF-8, no
 * writes without a client or an id, and a progress service that is down
 * failing nothing and warning once per run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calls.h"
#include "fixture.h"
#include "report.h"
#include "services.h"
#include "shared/util.h"

static tf_redis redis;
static pid_t svc;
static char rpc_url[64], logpath[300];
static sh_rpc_client *cli;

static int group_setup(void **state)
{
    (void)state;
    if (tf_redis_start(&redis, 0) != 0)
        return -1;
    snprintf(rpc_url, sizeof rpc_url, "tcp://127.0.0.1:%d", tf_free_port());
    snprintf(logpath, sizeof logpath, "%s/progress.log", redis.dir);
    sh_error err;
    if (sh_rpc_client_new(rpc_url, 5000, 0, &cli, &err) != SH_OK)
        return -1;
    const tf_service progress = {
        .name = "progress", .redis_url = redis.url, .rpc_url = rpc_url, .log_path = logpath};
    return tf_service_start(&progress, cli, &svc);
}

static int group_teardown(void **state)
{
    (void)state;
    sh_rpc_client_free(cli);
    int st = tf_services_stop(&svc, 1, logpath);
    tf_redis_stop(&redis);
    sh_rpc_fini();
    return st;
}

/* record returns the progress record id (caller frees), or NULL when the
 * service has none. */
static sh_val *record(const char *id)
{
    sh_val *a = sh_val_new_map(), *res = NULL;
    sh_val_set_cstr(a, "id", sh_val_new_cstr(id));
    int rc = tf_call(cli, "progress.get", a, 5000, &res, NULL);
    if (rc == SH_ENOTFOUND)
        return NULL;
    assert_int_equal(rc, SH_OK);
    return res;
}

static long long field_int(const sh_val *rec, const char *name)
{
    const sh_val *v = sh_val_get(rec, name);
    assert_non_null(v);
    return sh_val_int(v);
}

static void test_paced(void **state)
{
    (void)state;
    sync_report r = {.client = cli, .id = "run-paced"};
    char folder[16];
    long long t0 = sh_mono_ms();
    for (int i = 1; i <= 50; i++) {
        snprintf(folder, sizeof folder, "F%d", i);
        sync_report_update(&r, i, "fetching", folder, i, 50);
    }
    long long took = sh_mono_ms() - t0;
    sh_val *rec = record("run-paced");
    assert_non_null(rec);
    /* The first at once, then at most one per interval. */
    long long writes = field_int(rec, "version");
    assert_true(writes >= 1);
    assert_true(writes <= 1 + took / SYNC_REPORT_EVERY_MS + 1);
    assert_true(writes < 50);
    if (writes == 1) {
        assert_int_equal(field_int(rec, "currentStep"), 1);
        assert_string_equal(sh_val_get_str(rec, "folder", NULL), "F1");
    }
    sh_val_free(rec);

    /* The last update is always written, with the latest state. */
    sync_report_complete(&r, "done");
    rec = record("run-paced");
    assert_int_equal(field_int(rec, "version"), writes + 1);
    assert_int_equal(field_int(rec, "currentStep"), 50);
    assert_string_equal(sh_val_get_str(rec, "folder", NULL), "F50");
    assert_int_equal(field_int(rec, "messagesDone"), 50);
    assert_int_equal(field_int(rec, "messagesTotal"), 50);
    assert_string_equal(sh_val_get_str(rec, "currentAction", NULL), "done");
    assert_string_equal(sh_val_get_str(rec, "phase", NULL), "sync");
    assert_true(sh_val_bool(sh_val_get(rec, "complete")));
    sh_val_free(rec);
    assert_false(r.warned);
}

static void test_due_after_interval(void **state)
{
    (void)state;
    sync_report r = {.client = cli, .id = "run-interval"};
    sync_report_update(&r, 1, "listing", "INBOX", 0, 0);
    sync_report_update(&r, 2, "listing", "Sent", 0, 0);
    sh_val *rec = record("run-interval");
    assert_int_equal(field_int(rec, "version"), 1);
    assert_string_equal(sh_val_get_str(rec, "folder", NULL), "INBOX");
    assert_false(sh_val_bool(sh_val_get(rec, "complete")));
    sh_val_free(rec);
    tf_sleep_ms(SYNC_REPORT_EVERY_MS + 50);
    /* No folder: the field is nil. */
    sync_report_update(&r, 3, "between folders", NULL, 7, 9);
    rec = record("run-interval");
    assert_int_equal(field_int(rec, "version"), 2);
    assert_int_equal(field_int(rec, "currentStep"), 3);
    assert_int_equal(sh_val_type_of(sh_val_get(rec, "folder")), SH_VAL_NIL);
    assert_string_equal(sh_val_get_str(rec, "currentAction", NULL), "between folders");
    assert_int_equal(field_int(rec, "messagesDone"), 7);
    sh_val_free(rec);
}

static void test_error_log(void **state)
{
    (void)state;
    sync_report r = {.client = cli, .id = "run-log"};
    sync_report_error(&r, "IMAP UID STORE refused (NO CANNOT): no", "mark it again");
    sync_report_error(&r, "second", NULL);
    sh_val *a = sh_val_new_map(), *list = NULL;
    sh_val_set_cstr(a, "id", sh_val_new_cstr("run-log"));
    assert_int_equal(tf_call(cli, "log.list", a, 5000, &list, NULL), SH_OK);
    assert_int_equal(sh_val_len(list), 2);
    const sh_val *e = sh_val_at(list, 0);
    assert_string_equal(sh_val_get_str(e, "tool", NULL), "imap");
    assert_string_equal(sh_val_get_str(e, "error", NULL), "IMAP UID STORE refused (NO CANNOT): no");
    assert_string_equal(sh_val_get_str(e, "suggestedFix", NULL), "mark it again");
    e = sh_val_at(list, 1);
    assert_string_equal(sh_val_get_str(e, "error", NULL), "second");
    assert_string_equal(sh_val_get_str(e, "suggestedFix", NULL), "");
    sh_val_free(list);
    assert_false(r.warned);
}

/* valid_utf8 tells whether s is well-formed UTF-8 (no cut sequence). */
static bool valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2 : 3;
        p++;
        for (int i = 0; i < n; i++, p++)
            if ((*p & 0xc0) != 0x80)
                return false;
    }
    return true;
}

/* A folder name is kept whole up to 200 bytes (the longest an account may
 * name), and a longer one is cut at a character boundary. */
static void test_folder_cut(void **state)
{
    (void)state;
    char name[401] = "";
    for (int i = 0; i < 100; i++)
        strcat(name, "\xc3\xbc"); /* ü: 200 bytes */
    sync_report r = {.client = cli, .id = "run-cut"};
    sync_report_update(&r, 1, "fetching", name, 0, 0);
    sh_val *rec = record("run-cut");
    assert_string_equal(sh_val_get_str(rec, "folder", NULL), name);
    sh_val_free(rec);
    /* "x" and 120 times €: the 200th byte is the first of the 67th €. */
    strcpy(name, "x");
    for (int i = 0; i < 120; i++)
        strcat(name, "\xe2\x82\xac");
    sync_report_complete(&r, "done");
    sync_report_update(&r, 2, "fetching", name, 0, 0);
    assert_int_equal(strlen(r.folder), 1 + 66 * 3);
    assert_true(valid_utf8(r.folder));
    assert_memory_equal(r.folder, name, strlen(r.folder));
    /* Cut after a whole character, nothing more is dropped. */
    strcpy(name, "xy");
    for (int i = 0; i < 120; i++)
        strcat(name, "\xe2\x82\xac");
    sync_report_update(&r, 2, "fetching", name, 0, 0);
    assert_int_equal(strlen(r.folder), SYNC_REPORT_TEXT);
    assert_true(valid_utf8(r.folder));
    sync_report_complete(&r, "done");
    rec = record("run-cut");
    assert_string_equal(sh_val_get_str(rec, "folder", NULL), r.folder);
    sh_val_free(rec);
    assert_false(r.warned);
}

static void test_no_client_or_id(void **state)
{
    (void)state;
    sync_report none = {.client = NULL, .id = "run-none"};
    sync_report_update(&none, 4, "fetching", "INBOX", 1, 2);
    sync_report_complete(&none, "done");
    sync_report_error(&none, "lost", NULL);
    /* The state is kept, nothing is written. */
    assert_int_equal(none.step, 4);
    assert_string_equal(none.folder, "INBOX");
    assert_int_equal(none.sent_ms, 0);
    assert_null(record("run-none"));
    sync_report empty = {.client = cli, .id = ""};
    sync_report_update(&empty, 1, "fetching", "INBOX", 0, 0);
    sync_report_complete(&empty, "done");
    sync_report_error(&empty, "lost", NULL);
    assert_int_equal(empty.sent_ms, 0);
    sync_report noid = {.client = cli, .id = NULL};
    sync_report_update(&noid, 1, "fetching", "INBOX", 0, 0);
    sync_report_complete(&noid, "done");
    assert_int_equal(noid.sent_ms, 0);
    assert_false(empty.warned || noid.warned || none.warned);
}

static void test_service_down(void **state)
{
    (void)state;
    char url[64], errpath[320];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", tf_free_port());
    snprintf(errpath, sizeof errpath, "%s/report-stderr.log", redis.dir);
    sh_rpc_client *down = NULL;
    sh_error err;
    assert_int_equal(sh_rpc_client_new(url, 1000, 0, &down, &err), SH_OK);
    /* The warnings go to stderr: catch them in a file. */
    fflush(stderr);
    int saved = dup(STDERR_FILENO), fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, STDERR_FILENO);
    close(fd);
    sync_report r = {.client = down, .id = "run-down"};
    long long t0 = sh_mono_ms();
    sync_report_update(&r, 1, "fetching", "INBOX", 0, 10);
    sync_report_error(&r, "an error", NULL);
    sync_report_complete(&r, "done");
    long long took = sh_mono_ms() - t0;
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    sh_rpc_client_free(down);
    /* Each call gives up after its timeout; the run goes on. */
    assert_true(took < 3 * 2000 + 2000);
    assert_true(r.warned);
    assert_int_equal(tf_file_count(errpath, "progress_report"), 1);
    assert_int_equal(tf_file_count(errpath, "run-down"), 1);
    assert_null(record("run-down"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paced),           cmocka_unit_test(test_due_after_interval),
        cmocka_unit_test(test_error_log),       cmocka_unit_test(test_folder_cut),
        cmocka_unit_test(test_no_client_or_id), cmocka_unit_test(test_service_down),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
