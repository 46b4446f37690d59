/* test_oauth.c - shared/oauth.h: the provider table, the token URL rule,
 * ISO 8601 times, and the secret map's round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <string.h>

#include "shared/oauth.h"

static void test_providers(void **state)
{
    const sh_oauth_provider *g = sh_oauth_provider_find("google");
    assert_non_null(g);
    assert_string_equal(g->scope, "https://mail.google.com/");
    assert_string_equal(g->token_url, "https://oauth2.googleapis.com/token");
    const sh_oauth_provider *m = sh_oauth_provider_find("microsoft");
    assert_non_null(m);
    assert_string_equal(m->scope,
                        "https://outlook.office.com/IMAP.AccessAsUser.All offline_access");
    assert_true(strncmp(m->mechs, "XOAUTH2", 7) == 0);
    const sh_oauth_provider *c = sh_oauth_provider_find("custom");
    assert_non_null(c);
    assert_null(c->token_url);
    assert_null(sh_oauth_provider_find("yahoo"));
    assert_null(sh_oauth_provider_find(NULL));
}

static void test_token_urls(void **state)
{
    assert_true(sh_oauth_url_ok("https://oauth2.googleapis.com/token"));
    assert_true(sh_oauth_url_ok("http://127.0.0.1:8080/token"));
    assert_true(sh_oauth_url_ok("http://127.5.6.7/token"));
    assert_true(sh_oauth_url_ok("http://localhost:99/t"));
    assert_true(sh_oauth_url_ok("http://[::1]:99/t"));
    assert_false(sh_oauth_url_ok("http://example.com/token"));
    assert_false(sh_oauth_url_ok("http://127.0.0.1.example.com/token"));
    assert_false(sh_oauth_url_ok("http://user@127.0.0.1/token"));
    assert_false(sh_oauth_url_ok("http://10.0.0.1/token"));
    assert_false(sh_oauth_url_ok("ftp://127.0.0.1/token"));
    assert_false(sh_oauth_url_ok("https://"));
    assert_false(sh_oauth_url_ok("https://a b/"));
    assert_false(sh_oauth_url_ok(NULL));
    assert_false(sh_oauth_url_ok("https://user:pw@login.example.com/token"));
    /* The host the policy checks. */
    char h[64];
    assert_true(sh_oauth_url_host("https://login.example.com:8443/t?x=1", h, sizeof h));
    assert_string_equal(h, "login.example.com");
    assert_true(sh_oauth_url_host("http://[::1]:99/t", h, sizeof h));
    assert_string_equal(h, "[::1]");
    assert_true(sh_oauth_url_host("HTTPS://10.1.2.3", h, sizeof h));
    assert_string_equal(h, "10.1.2.3");
    assert_false(sh_oauth_url_host("https:///t", h, sizeof h));
    assert_false(sh_oauth_url_host("file:///etc/passwd", h, sizeof h));
    assert_false(sh_oauth_url_host("https://a@b/", h, sizeof h));
    assert_false(sh_oauth_url_host("https://a-rather-long-host.example.com/", h, 8));
}

static void test_times(void **state)
{
    int64_t ms = 0;
    assert_true(sh_oauth_parse_time("1970-01-01T00:00:01Z", 20, &ms));
    assert_int_equal(ms, 1000);
    assert_true(sh_oauth_parse_time("2030-03-17T17:46:40.250Z", 24, &ms));
    assert_int_equal(ms, 1900000000250LL);
    assert_true(sh_oauth_parse_time("2030-03-17T17:46:40+00:00", 25, &ms));
    assert_int_equal(ms, 1900000000000LL);
    assert_false(sh_oauth_parse_time("2030-03-17 17:46:40Z", 20, &ms));
    assert_false(sh_oauth_parse_time("2030-03-17T17:46:40+02:00", 25, &ms));
    assert_false(sh_oauth_parse_time("2030-13-17T17:46:40Z", 20, &ms));
    assert_false(sh_oauth_parse_time("tomorrow", 8, &ms));
}

static void test_secret_round_trip(void **state)
{
    sh_oauth_secret s = {.provider = "custom",
                         .client_id = "id",
                         .client_secret = "cs",
                         .refresh_token = "rt",
                         .token_url = "https://t/",
                         .scope = NULL,
                         .access_token = "at",
                         .expires_ms = 42};
    sh_buf b;
    sh_buf_init_secret(&b);
    assert_int_equal(sh_oauth_secret_pack(&s, &b), SH_OK);
    sh_val *m = NULL;
    sh_oauth_secret back;
    sh_error err;
    assert_int_equal(sh_oauth_secret_read(b.data, b.len, &m, &back, &err), SH_OK);
    assert_string_equal(back.client_id, "id");
    assert_string_equal(back.client_secret, "cs");
    assert_string_equal(back.refresh_token, "rt");
    assert_string_equal(back.access_token, "at");
    assert_null(back.scope);
    assert_int_equal(back.expires_ms, 42);
    assert_true(sh_oauth_secret_managed(&back));
    sh_val_free(m);
    sh_buf_fini(&b);
    /* A password is no secret map. */
    assert_int_equal(sh_oauth_secret_read("hunter2", 7, &m, &back, &err), SH_EINVAL);
    assert_null(m);
    sh_oauth_secret app = {.access_token = "at"};
    assert_false(sh_oauth_secret_managed(&app));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_providers),
        cmocka_unit_test(test_token_urls),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_secret_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
