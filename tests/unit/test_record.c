/* test_record.c - what progress updates, log entries and jobs may hold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

static sh_val *one(const char *k, sh_val *v)
{
    sh_val *m = sh_val_new_map();
    sh_val_set_cstr(m, k, v);
    return m;
}

static void expect(sh_val *fields, int rc, const char *words)
{
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(prog_check_progress_fields("s1", fields, &err), rc);
    if (words && !strstr(err.msg, words))
        fail_msg("\"%s\" lacks \"%s\"", err.msg, words);
    sh_val_free(fields);
}

static void test_seed_fields(void **state)
{
    sh_val *ok = sh_val_new_map();
    sh_val_set_cstr(ok, "currentStep", sh_val_new_int(3));
    sh_val *steps = sh_val_new_array();
    sh_val_push(steps, sh_val_new_int(1));
    sh_val_set_cstr(ok, "completedSteps", steps);
    sh_val_set_cstr(ok, "currentAction", sh_val_new_cstr("installing"));
    sh_val_set_cstr(ok, "toolStatus", sh_val_new_map());
    sh_val_set_cstr(ok, "errors", sh_val_new_array());
    sh_val_set_cstr(ok, "phase", sh_val_new_cstr("phase1"));
    sh_val_set_cstr(ok, "complete", sh_val_new_bool(false));
    sh_val_set_cstr(ok, "sessionId", sh_val_new_cstr("s1"));
    sh_val_set_cstr(ok, "anythingElse", sh_val_new_float(1.5));
    expect(ok, SH_OK, NULL);
    expect(sh_val_new_map(), SH_OK, NULL);

    expect(one("currentStep", sh_val_new_cstr("3")), SH_EINVAL, "currentStep");
    expect(one("complete", sh_val_new_int(1)), SH_EINVAL, "boolean");
    sh_val *bad = sh_val_new_array();
    sh_val_push(bad, sh_val_new_cstr("a"));
    expect(one("completedSteps", bad), SH_EINVAL, "array of integers");
    expect(one("toolStatus", sh_val_new_array()), SH_EINVAL, "object");
    expect(one("version", sh_val_new_int(1)), SH_EINVAL, "set by the server");
    expect(one("createdAt", sh_val_new_cstr("x")), SH_EINVAL, "set by the server");
    expect(one("sessionId", sh_val_new_cstr("other")), SH_EINVAL, "sessionId");
    expect(one("", sh_val_new_int(1)), SH_EINVAL, "field names");
    expect(sh_val_new_array(), SH_EINVAL, "object");
}

static void test_limits(void **state)
{
    sh_val *many = sh_val_new_map();
    char k[16];
    for (int i = 0; i < PROG_MAX_FIELDS + 1; i++) {
        snprintf(k, sizeof k, "f%d", i);
        sh_val_set_cstr(many, k, sh_val_new_int(i));
    }
    expect(many, SH_ELIMIT, "fields");
    size_t n = PROG_MAX_UPDATE + 1;
    char *big = calloc(1, n);
    memset(big, 'x', n);
    expect(one("blob", sh_val_new_str(big, n)), SH_ETOOBIG, "exceeds");
    free(big);
}

static void test_log_entries(void **state)
{
    sh_val *e = sh_val_new_map(), *out = NULL;
    sh_error err;
    sh_val_set_cstr(e, "tool", sh_val_new_cstr("node"));
    sh_val_set_cstr(e, "error", sh_val_new_cstr("EACCES"));
    sh_val_set_cstr(e, "suggestedFix", sh_val_new_cstr("sudo"));
    sh_val_set_cstr(e, "step", sh_val_new_int(2));
    assert_int_equal(prog_make_log_entry(e, "2026-01-01T00:00:00.000Z", &out, &err), SH_OK);
    assert_string_equal(sh_val_get_str(out, "timestamp", NULL), "2026-01-01T00:00:00.000Z");
    assert_int_equal(sh_val_len(out), 5);
    sh_val_free(out);
    sh_val_set_cstr(e, "step", sh_val_new_cstr("two"));
    assert_int_equal(prog_make_log_entry(e, "t", &out, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "step"));
    sh_val_free(e);
    e = one("tool", sh_val_new_cstr("x"));
    assert_int_equal(prog_make_log_entry(e, "t", &out, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "\"error\" is required"));
    sh_val_free(e);
}

static void test_jobs(void **state)
{
    sh_error err;
    sh_val *f = one("status", sh_val_new_cstr("running"));
    assert_int_equal(prog_check_job_fields(f, true, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "conversationId"));
    assert_int_equal(prog_check_job_fields(f, false, &err), SH_OK);
    sh_val_free(f);
    f = one("conversationId", sh_val_new_cstr("bad id"));
    assert_int_equal(prog_check_job_fields(f, true, &err), SH_EINVAL);
    sh_val_free(f);
    f = one("conversationId", sh_val_new_cstr("c1"));
    assert_int_equal(prog_check_job_fields(f, true, &err), SH_OK);
    assert_int_equal(prog_check_job_fields(f, false, &err), SH_EINVAL);
    sh_val_free(f);
    f = one("jobId", sh_val_new_cstr("x"));
    assert_int_equal(prog_check_job_fields(f, false, &err), SH_EINVAL);
    sh_val_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_fields),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_log_entries),
        cmocka_unit_test(test_jobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
