/* log.h - one line per event on stderr, in logfmt:
 *   ts=2026-01-01T00:00:00.000Z level=info service=progress event=started msg="..."
 * The message is escaped so every line parses. Thread-safe. */
#ifndef SHARED_LOG_H
#define SHARED_LOG_H

enum { SH_LOG_DEBUG = 0, SH_LOG_INFO = 1, SH_LOG_WARN = 2, SH_LOG_ERROR = 3 };

/* sh_log_init sets the service name (borrowed, must outlive logging) and the
 * minimum level. Before it is called, the service is "-" and level info. */
void sh_log_init(const char *service, int level);

/* sh_log_level_parse maps "debug"/"info"/"warn"/"error" to a level. */
int sh_log_level_parse(const char *name, int *level);

void sh_log(int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define sh_log_debug(ev, ...) sh_log(SH_LOG_DEBUG, ev, __VA_ARGS__)
#define sh_log_info(ev, ...)  sh_log(SH_LOG_INFO, ev, __VA_ARGS__)
#define sh_log_warn(ev, ...)  sh_log(SH_LOG_WARN, ev, __VA_ARGS__)
#define sh_log_error(ev, ...) sh_log(SH_LOG_ERROR, ev, __VA_ARGS__)

#endif
