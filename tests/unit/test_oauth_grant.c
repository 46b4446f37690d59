/* test_oauth_grant.c - oauth_grant.c: the refresh_token grant's form
 * (percent-encoded, optional fields left out) and the reading of the token
 * endpoint's answers: a token, a rotated refresh token, a refusal with
 * the provider's words (SYNC_EAUTH), and transient failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <string.h>

#include "imap.h"
#include "oauth_grant.h"

static void test_form(void **state)
{
    sh_oauth_secret s = {.refresh_token = "1//r+t=/x",
                         .client_id = "id.apps",
                         .client_secret = "s&c",
                         .scope = "https://outlook.office.com/IMAP.AccessAsUser.All "
                                  "offline_access"};
    sh_buf b;
    sh_buf_init_secret(&b);
    assert_int_equal(sync_oauth_grant_form(&s, &b), SH_OK);
    assert_string_equal(b.data, "grant_type=refresh_token&refresh_token=1%2F%2Fr%2Bt%3D%2Fx"
                                "&client_id=id.apps&client_secret=s%26c&scope=https%3A%2F%2F"
                                "outlook.office.com%2FIMAP.AccessAsUser.All%20offline_access");
    assert_int_equal(b.len, strlen(b.data));
    sh_buf_reset(&b);
    sh_oauth_secret pub = {.refresh_token = "r", .client_id = "c"};
    assert_int_equal(sync_oauth_grant_form(&pub, &b), SH_OK);
    assert_string_equal(b.data, "grant_type=refresh_token&refresh_token=r&client_id=c");
    sh_buf_fini(&b);
}

static void test_answers(void **state)
{
    sync_oauth_grant g;
    sh_error err;
    const char *ok = "{\"access_token\":\"ya29.x\",\"expires_in\":3599,\"token_type\":\"Bearer\"}";
    assert_int_equal(sync_oauth_grant_read(200, ok, strlen(ok), &g, &err), SH_OK);
    assert_string_equal(g.access_token, "ya29.x");
    assert_null(g.refresh_token);
    assert_int_equal(g.expires_in_s, 3599);
    sync_oauth_grant_fini(&g);
    assert_null(g.access_token);

    const char *rot = "{\"access_token\":\"a\",\"refresh_token\":\"r2\",\"expires_in\":\"60\"}";
    assert_int_equal(sync_oauth_grant_read(200, rot, strlen(rot), &g, &err), SH_OK);
    assert_string_equal(g.refresh_token, "r2");
    assert_int_equal(g.expires_in_s, 60);
    sync_oauth_grant_fini(&g);

    const char *bad = "{\"error\":\"invalid_grant\",\"error_description\":\"Token has been "
                      "expired or revoked.\"}";
    assert_int_equal(sync_oauth_grant_read(400, bad, strlen(bad), &g, &err), SYNC_EAUTH);
    assert_string_equal(err.msg, "invalid_grant: Token has been expired or revoked.");
    assert_null(g.access_token);
    const char *cl = "{\"error\":\"invalid_client\"}";
    assert_int_equal(sync_oauth_grant_read(401, cl, strlen(cl), &g, &err), SYNC_EAUTH);
    assert_string_equal(err.msg, "invalid_client");

    assert_int_equal(sync_oauth_grant_read(503, "busy", 4, &g, &err), SH_EUNAVAIL);
    assert_non_null(strstr(err.msg, "HTTP 503"));
    const char *slow = "{\"error\":\"slow_down\"}";
    assert_int_equal(sync_oauth_grant_read(429, slow, strlen(slow), &g, &err), SH_EUNAVAIL);
    assert_int_equal(sync_oauth_grant_read(200, "{}", 2, &g, &err), SH_EUNAVAIL);
    assert_int_equal(sync_oauth_grant_read(200, "[1]", 3, &g, &err), SH_EUNAVAIL);
    assert_int_equal(sync_oauth_grant_read(400, "<html>", 6, &g, &err), SH_EUNAVAIL);
    assert_null(g.access_token);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form),
        cmocka_unit_test(test_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
