/* buf.c - growable byte buffer. A secret one is wiped with explicit_bzero
 * (what sodium_memzero, sh_wipe, does on glibc): secret.c appends to buffers,
 * so calling back into it would make a loop. */
#include "shared/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/err.h"

void sh_buf_init(sh_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->secret = false;
}

void sh_buf_init_secret(sh_buf *b)
{
    sh_buf_init(b);
    b->secret = true;
}

void sh_buf_fini(sh_buf *b)
{
    bool secret = b->secret;
    if (secret && b->data)
        explicit_bzero(b->data, b->cap);
    free(b->data);
    sh_buf_init(b);
    b->secret = secret;
}

void sh_buf_reset(sh_buf *b)
{
    if (b->secret && b->data)
        explicit_bzero(b->data, b->len);
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int sh_buf_reserve(sh_buf *b, size_t extra)
{
    if (extra >= SIZE_MAX / 2 - b->len)
        return SH_ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return SH_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p;
    if (b->secret) {
        if (!(p = malloc(cap)))
            return SH_ENOMEM;
        if (b->data) {
            memcpy(p, b->data, b->len + 1);
            explicit_bzero(b->data, b->cap);
            free(b->data);
        }
    } else if (!(p = realloc(b->data, cap))) {
        return SH_ENOMEM;
    }
    p[b->len] = '\0'; /* a first allocation is a string too */
    b->data = p;
    b->cap = cap;
    return SH_OK;
}

int sh_buf_append(sh_buf *b, const void *data, size_t len)
{
    if (sh_buf_reserve(b, len) != SH_OK)
        return SH_ENOMEM;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return SH_OK;
}

int sh_buf_puts(sh_buf *b, const char *s)
{
    return sh_buf_append(b, s, strlen(s));
}

int sh_buf_vprintf(sh_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || sh_buf_reserve(b, (size_t)n) != SH_OK)
        return SH_ENOMEM;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return SH_OK;
}

int sh_buf_printf(sh_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = sh_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

char *sh_buf_steal(sh_buf *b, size_t *len)
{
    if (!b->data && sh_buf_reserve(b, 0) != SH_OK)
        return NULL;
    char *p = b->data;
    if (len)
        *len = b->len;
    bool secret = b->secret;
    sh_buf_init(b);
    b->secret = secret;
    return p;
}
