/* test_oauth_http.c - oauth_http.c against a small HTTP server of the test
 * on loopback: the form goes out form-encoded and the answer comes back;
 * a redirect is not followed (its status is the answer); an answer past
 * SYNC_OAUTH_HTTP_MAX is refused; a server that never answers costs no
 * more than the timeout; an address the host policy refuses is never
 * connected to. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "oauth_http.h"
#include "shared/hostpolicy.h"
#include "shared/util.h"

/* The test's server is on loopback, which the policy must allow. */
static sh_hostpolicy *loopback;

typedef struct http_srv {
    int fd, port;
    const char *answer; /* whole response; NULL: never answer */
    size_t answer_len;
    int accepted;
    char request[8192];
    pthread_t thread;
} http_srv;

static void *srv_main(void *arg)
{
    http_srv *s = arg;
    for (;;) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            return NULL;
        s->accepted++;
        size_t got = 0;
        ssize_t n;
        while (got < sizeof s->request - 1 &&
               (n = read(c, s->request + got, sizeof s->request - 1 - got)) > 0) {
            got += (size_t)n;
            s->request[got] = '\0';
            char *end = strstr(s->request, "\r\n\r\n");
            char *cl = strstr(s->request, "Content-Length: ");
            if (end && cl && got >= (size_t)(end + 4 - s->request) + (size_t)atoi(cl + 16))
                break;
        }
        if (s->answer) {
            size_t off = 0;
            while (off < s->answer_len && (n = write(c, s->answer + off, s->answer_len - off)) > 0)
                off += (size_t)n;
            close(c);
        } else {
            sleep(4);
            close(c);
        }
    }
}

static void srv_start(http_srv *s, const char *answer, size_t len)
{
    memset(s, 0, sizeof *s);
    s->answer = answer;
    s->answer_len = len;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->fd, 8), 0);
    getsockname(s->fd, (struct sockaddr *)&a, &alen);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, srv_main, s), 0);
}

static void srv_stop(http_srv *s)
{
    shutdown(s->fd, SHUT_RDWR);
    close(s->fd);
    pthread_join(s->thread, NULL);
}

static int post(http_srv *s, int timeout_s, long *status, sh_buf *body, sh_error *err)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/token", s->port);
    const char *form = "grant_type=refresh_token&refresh_token=r%2Bt&client_id=c";
    return sync_oauth_http_post(loopback, url, form, strlen(form), timeout_s, status, body, err);
}

static void test_form_goes_out_and_answer_comes_back(void **state)
{
    static const char ans[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              "Content-Length: 20\r\nConnection: close\r\n\r\n"
                              "{\"access_token\":\"a\"}";
    http_srv s;
    srv_start(&s, ans, sizeof ans - 1);
    long status;
    sh_buf body;
    sh_buf_init_secret(&body);
    sh_error err;
    assert_int_equal(post(&s, 5, &status, &body, &err), SH_OK);
    assert_int_equal(status, 200);
    assert_int_equal(body.len, 20);
    assert_memory_equal(body.data, "{\"access_token\":\"a\"}", 20);
    assert_non_null(strstr(s.request, "POST /token HTTP/1.1\r\n"));
    assert_non_null(strstr(s.request, "Content-Type: application/x-www-form-urlencoded\r\n"));
    assert_non_null(strstr(s.request, "\r\n\r\ngrant_type=refresh_token&refresh_token=r%2Bt"));
    sh_buf_fini(&body);
    srv_stop(&s);
}

static void test_redirect_not_followed(void **state)
{
    static char ans[256];
    http_srv s;
    srv_start(&s, ans, 0);
    snprintf(ans, sizeof ans,
             "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d/elsewhere\r\n"
             "Content-Length: 0\r\nConnection: close\r\n\r\n",
             s.port);
    s.answer_len = strlen(ans);
    long status;
    sh_buf body;
    sh_buf_init_secret(&body);
    sh_error err;
    assert_int_equal(post(&s, 5, &status, &body, &err), SH_OK);
    assert_int_equal(status, 302);
    usleep(200 * 1000);
    assert_int_equal(s.accepted, 1);
    sh_buf_fini(&body);
    srv_stop(&s);
}

static void test_large_answer_refused(void **state)
{
    size_t n = SYNC_OAUTH_HTTP_MAX + 4096;
    char head[128];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", n);
    char *ans = malloc((size_t)hl + n);
    memcpy(ans, head, (size_t)hl);
    memset(ans + hl, 'x', n);
    http_srv s;
    srv_start(&s, ans, (size_t)hl + n);
    long status;
    sh_buf body;
    sh_buf_init_secret(&body);
    sh_error err;
    assert_int_equal(post(&s, 5, &status, &body, &err), SH_EUNAVAIL);
    assert_non_null(strstr(err.msg, "too large"));
    sh_buf_fini(&body);
    srv_stop(&s);
    free(ans);
}

static void test_silent_server_times_out(void **state)
{
    http_srv s;
    srv_start(&s, NULL, 0);
    long status;
    sh_buf body;
    sh_buf_init_secret(&body);
    sh_error err;
    int64_t t0 = sh_mono_ms();
    assert_int_equal(post(&s, 2, &status, &body, &err), SH_EUNAVAIL);
    int64_t took = sh_mono_ms() - t0;
    assert_true(took >= 1500 && took < 3500);
    assert_non_null(strstr(err.msg, "unreachable"));
    sh_buf_fini(&body);
    srv_stop(&s);
}

/* Without loopback in the allow list, the server is never reached. */
static void test_refused_address_never_connected(void **state)
{
    (void)state;
    static const char ans[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
    http_srv s;
    srv_start(&s, ans, sizeof ans - 1);
    sh_hostpolicy *none = NULL;
    sh_error err;
    assert_int_equal(
        sh_hostpolicy_new(NULL, NULL, SH_IMAP_ALLOW_HOSTS, SH_IMAP_DENY_HOSTS, &none, &err), SH_OK);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/token", s.port);
    long status = -1;
    sh_buf body;
    sh_buf_init_secret(&body);
    assert_int_equal(sync_oauth_http_post(none, url, "a=b", 3, 5, &status, &body, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "127.0.0.1"));
    assert_non_null(strstr(err.msg, "IMAP_ALLOW_HOSTS"));
    assert_int_equal(status, 0);
    sh_buf_fini(&body);
    sh_hostpolicy_free(none);
    srv_stop(&s);
    assert_int_equal(s.accepted, 0);
}

int main(void)
{
    sh_error err;
    if (sync_oauth_http_init(&err) || sh_hostpolicy_new("127.0.0.0/8", NULL, SH_IMAP_ALLOW_HOSTS,
                                                        SH_IMAP_DENY_HOSTS, &loopback, &err))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form_goes_out_and_answer_comes_back),
        cmocka_unit_test(test_redirect_not_followed),
        cmocka_unit_test(test_large_answer_refused),
        cmocka_unit_test(test_silent_server_times_out),
        cmocka_unit_test(test_refused_address_never_connected),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sh_hostpolicy_free(loopback);
    sync_oauth_http_fini();
    return rc;
}
