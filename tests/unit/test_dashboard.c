/* test_dashboard.c - the dashboard's embedded files against the directory
 * they come from (services/gateway/dashboard/): the same names, the same
 * bytes, a type for each; and that a name outside the table finds nothing,
 * whatever it looks like. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_dashboard.h"

#ifndef DASHBOARD_SRC_DIR
#error "DASHBOARD_SRC_DIR (the dashboard's source directory) is not defined"
#endif

/* read_file returns the bytes of path (malloc'd; the caller frees) and
 * their number in *len. */
static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    unsigned char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void test_every_file_is_embedded_as_it_is(void **state)
{
    (void)state;
    DIR *d = opendir(DASHBOARD_SRC_DIR);
    assert_non_null(d);
    size_t on_disk = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        on_disk++;
        const gw_embed_file *f = gw_dashboard_find(e->d_name);
        if (!f)
            fail_msg("dashboard/%s is not embedded: list it in GW_DASHBOARD_FILES", e->d_name);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", DASHBOARD_SRC_DIR, e->d_name);
        size_t len;
        unsigned char *bytes = read_file(path, &len);
        assert_int_equal(f->len, len);
        assert_memory_equal(f->data, bytes, len);
        assert_int_equal(f->data[len], 0);
        free(bytes);
    }
    closedir(d);
    size_t embedded = 0;
    for (const gw_embed_file *f = gw_dashboard_files; f->name; f++, embedded++)
        if (!gw_dashboard_type(f->name))
            fail_msg("dashboard/%s has no Content-Type", f->name);
    assert_int_equal(embedded, on_disk);
    assert_non_null(gw_dashboard_find(GW_DASHBOARD_PAGE));
}

static void test_types_by_extension(void **state)
{
    (void)state;
    assert_string_equal(gw_dashboard_type("index.html"), "text/html; charset=utf-8");
    assert_string_equal(gw_dashboard_type("a.b.css"), "text/css; charset=utf-8");
    assert_string_equal(gw_dashboard_type("app.js"), "text/javascript; charset=utf-8");
    assert_string_equal(gw_dashboard_type("icon.svg"), "image/svg+xml");
    assert_null(gw_dashboard_type("app.js.map"));
    assert_null(gw_dashboard_type("README"));
    assert_null(gw_dashboard_type("x.JS"));
    assert_null(gw_dashboard_type(""));
}

static void test_only_the_table_is_found(void **state)
{
    (void)state;
    static const char *const outside[] = {
        "",
        ".",
        "..",
        "../router.c",
        "..%2frouter.c",
        "dashboard/app.js",
        "/etc/passwd",
        "APP.JS",
        "app.js ",
        "app.js/",
        "index.htm",
        "CMakeLists.txt",
        NULL,
    };
    for (size_t i = 0; outside[i]; i++)
        if (gw_dashboard_find(outside[i]))
            fail_msg("\"%s\" found a file", outside[i]);
    assert_non_null(gw_dashboard_find("app.js"));
}

static void test_policy_allows_nothing_inline_or_foreign(void **state)
{
    (void)state;
    assert_non_null(strstr(gw_dashboard_csp, "default-src 'none'"));
    assert_non_null(strstr(gw_dashboard_csp, "script-src 'self';"));
    assert_non_null(strstr(gw_dashboard_csp, "connect-src 'self';"));
    assert_non_null(strstr(gw_dashboard_csp, "frame-ancestors 'none'"));
    assert_null(strstr(gw_dashboard_csp, "unsafe"));
    assert_null(strstr(gw_dashboard_csp, "*"));
    assert_null(strstr(gw_dashboard_csp, "http"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_file_is_embedded_as_it_is),
        cmocka_unit_test(test_types_by_extension),
        cmocka_unit_test(test_only_the_table_is_found),
        cmocka_unit_test(test_policy_allows_nothing_inline_or_foreign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
