/* test_config.c - settings from the environment: defaults, aliases, bounds,
 * types and the messages that name the setting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/config.h"

static long long n_ttl;
static const char *s_url, *s_token;
static bool b_flag;

static const sh_setting table[] = {
    {"T_TTL", NULL, SH_SET_INT, "3600", 1, 86400, &n_ttl, false, NULL},
    {"T_URL", "T_URL_ALIAS", SH_SET_STR, "redis://x", 0, 64, &s_url, false, NULL},
    {"T_TOKEN", NULL, SH_SET_SECRET, NULL, 8, 128, &s_token, false, NULL},
    {"T_FLAG", NULL, SH_SET_BOOL, "false", 0, 0, &b_flag, false, NULL},
    {NULL, NULL, 0, NULL, 0, 0, NULL, false, NULL},
};

static int reset(void **state)
{
    unsetenv("T_TTL");
    unsetenv("T_URL");
    unsetenv("T_URL_ALIAS");
    unsetenv("T_TOKEN");
    unsetenv("T_FLAG");
    n_ttl = 0;
    s_url = s_token = NULL;
    b_flag = true;
    return 0;
}

static void test_defaults(void **state)
{
    sh_error err;
    assert_int_equal(sh_config_load(table, &err), SH_OK);
    assert_int_equal(n_ttl, 3600);
    assert_string_equal(s_url, "redis://x");
    assert_null(s_token);
    assert_false(b_flag);
}

static void test_values_and_alias(void **state)
{
    setenv("T_TTL", "60", 1);
    setenv("T_URL_ALIAS", "redis://alias", 1);
    setenv("T_TOKEN", "0123456789", 1);
    setenv("T_FLAG", "yes", 1);
    sh_error err;
    assert_int_equal(sh_config_load(table, &err), SH_OK);
    assert_int_equal(n_ttl, 60);
    assert_string_equal(s_url, "redis://alias");
    assert_string_equal(s_token, "0123456789");
    assert_true(b_flag);
    /* The primary name wins over its alias. */
    setenv("T_URL", "redis://main", 1);
    assert_int_equal(sh_config_load(table, &err), SH_OK);
    assert_string_equal(s_url, "redis://main");
    /* Secrets never show in the description. */
    char *d = sh_config_describe(table);
    assert_null(strstr(d, "0123456789"));
    assert_non_null(strstr(d, "T_TOKEN=<secret>"));
    free(d);
}

static void expect_error(const char *name, const char *value, const char *words)
{
    setenv(name, value, 1);
    sh_error err;
    assert_int_equal(sh_config_load(table, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, name));
    if (!strstr(err.msg, words))
        fail_msg("\"%s\" lacks \"%s\"", err.msg, words);
    unsetenv(name);
}

static void test_errors_name_the_setting(void **state)
{
    expect_error("T_TTL", "abc", "integer");
    expect_error("T_TTL", "12x", "integer");
    expect_error("T_TTL", "0", "between 1 and 86400");
    expect_error("T_TTL", "99999999", "between");
    expect_error("T_TTL", "99999999999999999999999", "integer");
    expect_error("T_TOKEN", "short", "too short");
    expect_error("T_FLAG", "maybe", "true or false");
    char longv[100];
    memset(longv, 'u', sizeof longv - 1);
    longv[99] = '\0';
    expect_error("T_URL", longv, "too long");
}

/* test_example_values_refused: every secret that deploy/.env.example sets
 * (a name with TOKEN, SECRET, KEY or PASSWORD in it) is refused as it
 * stands there, whatever the setting's length rules. */
static void test_example_values_refused(void **state)
{
    FILE *f = fopen(SH_SOURCE_DIR "/deploy/.env.example", "r");
    assert_non_null(f);
    char line[512];
    int secrets = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        char *eq = strchr(line, '=');
        if (line[0] == '#' || !eq || !eq[1])
            continue;
        *eq = '\0';
        const char *name = line, *value = eq + 1;
        if (!strstr(name, "TOKEN") && !strstr(name, "SECRET") && !strstr(name, "KEY") &&
            !strstr(name, "PASSWORD"))
            continue;
        secrets++;
        if (!sh_config_placeholder(value))
            fail_msg("%s=%s in deploy/.env.example would be accepted", name, value);
        expect_error("T_TOKEN", value, "example value");
    }
    fclose(f);
    assert_true(secrets >= 2); /* API_TOKEN and ENCRYPTION_KEY at least */
    assert_false(sh_config_placeholder("0123456789abcdef0123"));
    assert_true(sh_config_placeholder("CHANGE-ME-please"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, reset),
        cmocka_unit_test_setup(test_values_and_alias, reset),
        cmocka_unit_test_setup(test_errors_name_the_setting, reset),
        cmocka_unit_test_setup(test_example_values_refused, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
