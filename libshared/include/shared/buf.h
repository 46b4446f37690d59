/* buf.h - a growable byte buffer, embedded by value (sh_buf_init/sh_buf_fini). */
#ifndef SHARED_BUF_H
#define SHARED_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct sh_buf {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
    bool secret; /* sh_buf_init_secret: wiped when moved or freed */
} sh_buf;

void sh_buf_init(sh_buf *b);
/* sh_buf_init_secret starts a buffer that may hold a secret (a request body
 * with a password, an encoded call): growing it copies the data and wipes
 * the old block rather than leave it to realloc, and sh_buf_fini and
 * sh_buf_reset wipe what it held. */
void sh_buf_init_secret(sh_buf *b);
void sh_buf_fini(sh_buf *b);
void sh_buf_reset(sh_buf *b);
/* Each append returns SH_OK or SH_ENOMEM. */
int sh_buf_reserve(sh_buf *b, size_t extra);
int sh_buf_append(sh_buf *b, const void *data, size_t len);
int sh_buf_puts(sh_buf *b, const char *s);
int sh_buf_printf(sh_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sh_buf_vprintf(sh_buf *b, const char *fmt, va_list ap);
/* sh_buf_steal hands the data to the caller (free() it) and resets b. */
char *sh_buf_steal(sh_buf *b, size_t *len);

#endif
