/* test_log.c - logfmt lines of log.c, read back from stderr through a pipe:
 * the line format, levels and their names, escaping of hostile messages,
 * truncation of long ones, and whole lines from concurrent threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shared/buf.h"
#include "shared/log.h"

/* ---- capturing stderr ------------------------------------------------------ */

typedef struct capture {
    int saved; /* the real stderr */
    int rd;
    pthread_t reader;
    sh_buf got;
} capture;

static void *capture_main(void *arg)
{
    capture *c = arg;
    char chunk[4096];
    ssize_t n;
    while ((n = read(c->rd, chunk, sizeof chunk)) > 0)
        sh_buf_append(&c->got, chunk, (size_t)n);
    return NULL;
}

/* capture_start sends stderr into a pipe drained by a thread (so writers
 * never block on a full pipe). */
static void capture_start(capture *c)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    sh_buf_init(&c->got);
    c->rd = fds[0];
    fflush(stderr);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    assert_int_equal(dup2(fds[1], STDERR_FILENO), STDERR_FILENO);
    close(fds[1]);
    assert_int_equal(pthread_create(&c->reader, NULL, capture_main, c), 0);
}

/* capture_stop restores stderr and returns what was written (a NUL-terminated
 * string the caller frees); *len may be NULL. */
static char *capture_stop(capture *c, size_t *len)
{
    dup2(c->saved, STDERR_FILENO); /* closes the pipe's last write end */
    close(c->saved);
    pthread_join(c->reader, NULL);
    close(c->rd);
    return sh_buf_steal(&c->got, len);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* msg_of returns the value of the msg field of line (between its quotes, as
 * written) in a static buffer. */
static const char *msg_of(const char *line)
{
    static char out[4096];
    const char *p = strstr(line, " msg=\"");
    assert_non_null(p);
    p += 6;
    const char *end = strrchr(p, '"');
    assert_non_null(end);
    assert_string_equal(end, "\"\n");
    size_t n = (size_t)(end - p);
    assert_true(n < sizeof out);
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

/* ---- format and levels ------------------------------------------------------- */

/* Runs first: the defaults before sh_log_init. */
static void test_defaults_before_init(void **state)
{
    (void)state;
    capture c;
    capture_start(&c);
    sh_log_debug("hidden", "debug is below the default level");
    sh_log_info("shown", "x=%d", 1);
    char *out = capture_stop(&c, NULL);
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, " level=info service=- event=shown msg=\"x=1\"\n"));
    free(out);
}

static void test_line_format(void **state)
{
    (void)state;
    sh_log_init("progress", SH_LOG_DEBUG);
    time_t before = time(NULL);
    capture c;
    capture_start(&c);
    sh_log_warn("redis_down", "retry in %d ms (%s)", 250, "ECONNREFUSED");
    char *out = capture_stop(&c, NULL);
    time_t after = time(NULL);

    /* ts=YYYY-MM-DDTHH:MM:SS.mmmZ, then the fields in order. */
    assert_memory_equal(out, "ts=", 3);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int millis = -1, used = 0;
    assert_int_equal(sscanf(out + 3, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &tm.tm_year, &tm.tm_mon,
                            &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &millis, &used),
                     7);
    assert_int_equal(used, 24);
    assert_true(millis >= 0 && millis <= 999);
    const char *rest = out + 3 + used;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t ts = timegm(&tm);
    assert_true(ts >= before - 1 && ts <= after + 1);
    assert_string_equal(rest, " level=warn service=progress event=redis_down "
                              "msg=\"retry in 250 ms (ECONNREFUSED)\"\n");
    free(out);
}

static void test_levels_filter_and_are_named(void **state)
{
    (void)state;
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int min = SH_LOG_DEBUG; min <= SH_LOG_ERROR; min++) {
        sh_log_init("svc", min);
        capture c;
        capture_start(&c);
        for (int lvl = SH_LOG_DEBUG; lvl <= SH_LOG_ERROR; lvl++)
            sh_log(lvl, "ev", "at %d", lvl);
        char *out = capture_stop(&c, NULL);
        assert_int_equal(count_lines(out), (size_t)(SH_LOG_ERROR - min + 1));
        for (int lvl = SH_LOG_DEBUG; lvl <= SH_LOG_ERROR; lvl++) {
            char want[64];
            snprintf(want, sizeof want, " level=%s service=svc event=ev msg=\"at %d\"\n",
                     names[lvl], lvl);
            if (lvl >= min)
                assert_non_null(strstr(out, want));
            else
                assert_null(strstr(out, want));
        }
        free(out);
    }
}

static void test_level_out_of_range_logs_as_error(void **state)
{
    (void)state;
    sh_log_init("svc", SH_LOG_DEBUG);
    capture c;
    capture_start(&c);
    sh_log(99, "odd", "level 99");
    char *out = capture_stop(&c, NULL);
    assert_non_null(strstr(out, " level=error service=svc event=odd msg=\"level 99\"\n"));
    free(out);
}

static void test_level_parse(void **state)
{
    (void)state;
    struct {
        const char *name;
        int level;
    } ok[] = {{"debug", SH_LOG_DEBUG},
              {"info", SH_LOG_INFO},
              {"warn", SH_LOG_WARN},
              {"warning", SH_LOG_WARN},
              {"error", SH_LOG_ERROR}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int lvl = -7;
        assert_int_equal(sh_log_level_parse(ok[i].name, &lvl), 0);
        assert_int_equal(lvl, ok[i].level);
    }
    const char *bad[] = {"", "INFO", "Debug", "inf", "errors", "info ", " warn", "3", "trace"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int lvl = -7;
        assert_int_not_equal(sh_log_level_parse(bad[i], &lvl), 0);
        assert_int_equal(lvl, -7); /* untouched */
    }
}

/* ---- hostile and long messages --------------------------------------------- */

static void test_quotes_backslashes_and_newlines_are_escaped(void **state)
{
    (void)state;
    sh_log_init("gw", SH_LOG_INFO);
    capture c;
    capture_start(&c);
    sh_log_info("req", "path=%s", "/a\"b\\c\nts=1999 level=debug msg=\"forged\"");
    char *out = capture_stop(&c, NULL);
    /* One line: the newline cannot start a forged one. */
    assert_int_equal(count_lines(out), 1);
    assert_string_equal(msg_of(out), "path=/a\\\"b\\\\c\\nts=1999 level=debug msg=\\\"forged\\\"");
    free(out);
}

static void test_control_characters_are_replaced(void **state)
{
    (void)state;
    sh_log_init("gw", SH_LOG_INFO);
    capture c;
    capture_start(&c);
    sh_log_info("ctl", "a\tb\rc\x1b[31md\x7f"
                       "e\x01 caf\xc3\xa9");
    char *out = capture_stop(&c, NULL);
    assert_int_equal(count_lines(out), 1);
    /* Terminal escapes and carriage returns cannot rewrite what is shown;
     * bytes of UTF-8 text pass unchanged. */
    assert_string_equal(msg_of(out), "a?b?c?[31md?e? caf\xc3\xa9");
    free(out);
}

static void test_long_message_is_cut_to_a_whole_line(void **state)
{
    (void)state;
    sh_log_init("svc", SH_LOG_INFO);
    char *big = malloc(5001);
    memset(big, 'a', 5000);
    big[5000] = '\0';
    capture c;
    capture_start(&c);
    sh_log_info("big", "%s", big);
    char *out = capture_stop(&c, NULL);
    assert_int_equal(count_lines(out), 1);
    const char *m = msg_of(out);
    /* The message is kept up to 1023 bytes, then the line closes. */
    assert_int_equal(strlen(m), 1023);
    assert_memory_equal(m, big, 1023);
    free(out);
    free(big);
}

/* expect_well_formed checks the msg of line is a whole sequence of
 * escapes: no backslash left without what it escapes. */
static void expect_well_formed(const char *msg)
{
    for (const char *p = msg; *p; p++) {
        if (*p == '\\') {
            p++;
            assert_true(*p == '\\' || *p == '"' || *p == 'n');
        } else {
            assert_true(*p != '"' && *p != '\n');
        }
    }
}

static void test_escapes_at_the_limit_stay_whole(void **state)
{
    (void)state;
    /* A long service name leaves less room: the escaped message (each byte
     * doubled) reaches the end of the line buffer. */
    static char service[900];
    memset(service, 's', sizeof service - 1);
    service[sizeof service - 1] = '\0';
    sh_log_init(service, SH_LOG_INFO);
    for (int shift = 0; shift < 4; shift++) {
        char msg[1100];
        memset(msg, 'x', (size_t)shift);
        for (size_t i = (size_t)shift; i < sizeof msg - 1; i++)
            msg[i] = (i - (size_t)shift) % 2 ? '"' : '\\';
        msg[sizeof msg - 1] = '\0';
        capture c;
        capture_start(&c);
        sh_log_info("edge", "%s", msg);
        size_t len = 0;
        char *out = capture_stop(&c, &len);
        assert_int_equal(count_lines(out), 1);
        assert_true(len <= 2304);
        const char *m = msg_of(out);
        expect_well_formed(m);
        assert_true(strlen(m) > 1000); /* cut, but not much earlier than the limit */
        free(out);
    }
    sh_log_init("svc", SH_LOG_INFO);
}

static void test_long_event_name_stays_in_the_line(void **state)
{
    (void)state;
    /* An event or service longer than the whole line buffer: the line is
     * cut, never written past its end. */
    char *ev = malloc(4001);
    memset(ev, 'e', 4000);
    ev[4000] = '\0';
    sh_log_init("svc", SH_LOG_INFO);
    capture c;
    capture_start(&c);
    sh_log_info(ev, "message");
    size_t len = 0;
    char *out = capture_stop(&c, &len);
    assert_int_equal(count_lines(out), 1);
    assert_true(len > 1000 && len <= 2304);
    assert_memory_equal(out + len - 2, "\"\n", 2);
    assert_non_null(strstr(out, " event=eeee"));
    free(out);
    free(ev);
}

/* ---- threads --------------------------------------------------------------- */

enum { LOG_THREADS = 4, LOG_LINES = 300 };

static void *log_main(void *arg)
{
    int t = (int)(intptr_t)arg;
    char pad[400];
    memset(pad, 'a' + t, sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 0; i < LOG_LINES; i++)
        sh_log_info("burst", "t=%d i=%d %s", t, i, pad);
    return NULL;
}

static void test_concurrent_lines_never_interleave(void **state)
{
    (void)state;
    sh_log_init("svc", SH_LOG_INFO);
    capture c;
    capture_start(&c);
    pthread_t th[LOG_THREADS];
    for (int t = 0; t < LOG_THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, log_main, (void *)(intptr_t)t), 0);
    for (int t = 0; t < LOG_THREADS; t++)
        pthread_join(th[t], NULL);
    char *out = capture_stop(&c, NULL);
    assert_int_equal(count_lines(out), LOG_THREADS * LOG_LINES);
    int next[LOG_THREADS] = {0};
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int t = -1, i = -1, used = 0;
        const char *m = strstr(line, " msg=\"t=");
        assert_non_null(m);
        assert_int_equal(sscanf(m, " msg=\"t=%d i=%d %n", &t, &i, &used), 2);
        assert_true(t >= 0 && t < LOG_THREADS);
        /* Each thread's lines whole and in its order. */
        assert_int_equal(i, next[t]++);
        const char *p = m + used;
        for (int k = 0; k < 399; k++)
            assert_int_equal(p[k], 'a' + t);
        assert_string_equal(p + 399, "\"");
    }
    for (int t = 0; t < LOG_THREADS; t++)
        assert_int_equal(next[t], LOG_LINES);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_before_init),
        cmocka_unit_test(test_line_format),
        cmocka_unit_test(test_levels_filter_and_are_named),
        cmocka_unit_test(test_level_out_of_range_logs_as_error),
        cmocka_unit_test(test_level_parse),
        cmocka_unit_test(test_quotes_backslashes_and_newlines_are_escaped),
        cmocka_unit_test(test_control_characters_are_replaced),
        cmocka_unit_test(test_long_message_is_cut_to_a_whole_line),
        cmocka_unit_test(test_escapes_at_the_limit_stay_whole),
        cmocka_unit_test(test_long_event_name_stays_in_the_line),
        cmocka_unit_test(test_concurrent_lines_never_interleave),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
