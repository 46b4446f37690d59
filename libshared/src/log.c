/* log.c - logfmt lines on stderr, one per event, written with one write(2)
 * so lines from different threads never interleave. */
#include "shared/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shared/util.h"

static const char *log_service = "-";
static int log_min = SH_LOG_INFO;

void sh_log_init(const char *service, int level)
{
    log_service = service ? service : "-";
    log_min = level;
}

int sh_log_level_parse(const char *name, int *level)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, names[i]) == 0) {
            *level = i;
            return 0;
        }
    }
    if (strcmp(name, "warning") == 0) {
        *level = SH_LOG_WARN;
        return 0;
    }
    return -1;
}

void sh_log(int level, const char *event, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (level < log_min)
        return;
    if (level < 0 || level > SH_LOG_ERROR)
        level = SH_LOG_ERROR;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    char line[2304];
    char ts[SH_ISO_LEN];
    sh_iso8601(sh_now_ms(), ts);
    int n = snprintf(line, sizeof line, "ts=%s level=%s service=%s event=%s msg=\"", ts,
                     names[level], log_service, event);
    size_t at = n > 0 ? (size_t)n : 0;
    if (at > sizeof line - 4)
        at = sizeof line - 4; /* a huge event or service name: cut, keep the line whole */
    for (const char *p = msg; *p && at < sizeof line - 4; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            line[at++] = '\\';
            line[at++] = (char)c;
        } else if (c == '\n') {
            line[at++] = '\\';
            line[at++] = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            line[at++] = '?';
        } else {
            line[at++] = (char)c;
        }
    }
    line[at++] = '"';
    line[at++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, at);
    (void)w;
}
