/* cmd.c - Redis commands: building their arguments and writing them in the
 * Redis protocol (RESP), with no connection involved so that both can be
 * tested alone. store.c sends what this writes. */
#include "cmd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A command's arguments sit one after another in data, their lengths in
 * lens: two allocations per command however many arguments it has. */
struct sh_cmd {
    int argc, cap;
    size_t *lens;
    char *data;
    size_t dlen, dcap;
    int oom;
    int retry_safe;    /* a read, or marked with sh_cmd_retry_safe */
    sh_script *script; /* set for EVALSHA commands */
};

/* Commands that only read: running one twice changes nothing, so the store
 * may send it again when its reply was lost. Any command not listed is
 * taken to write. */
static const char *const cmd_reads[] = {
    "GET",
    "MGET",
    "STRLEN",
    "GETRANGE",
    "EXISTS",
    "TYPE",
    "TTL",
    "PTTL",
    "HGET",
    "HMGET",
    "HGETALL",
    "HLEN",
    "HEXISTS",
    "HKEYS",
    "HVALS",
    "HSTRLEN",
    "HSCAN",
    "LRANGE",
    "LLEN",
    "LINDEX",
    "SMEMBERS",
    "SCARD",
    "SISMEMBER",
    "SMISMEMBER",
    "SSCAN",
    "ZRANGE",
    "ZREVRANGE",
    "ZRANGEBYSCORE",
    "ZREVRANGEBYSCORE",
    "ZRANGEBYLEX",
    "ZSCORE",
    "ZMSCORE",
    "ZCARD",
    "ZCOUNT",
    "ZRANK",
    "ZREVRANK",
    "ZSCAN",
    "XRANGE",
    "XREVRANGE",
    "XLEN",
    "SCAN",
    "DBSIZE",
    "PING",
    "TIME",
    "ROLE",
    NULL,
};

static int cmd_is_read(const char *name)
{
    for (size_t i = 0; cmd_reads[i]; i++)
        if (strcasecmp(cmd_reads[i], name) == 0)
            return 1;
    return 0;
}

/* ---- commands ---------------------------------------------------------- */

sh_cmd *sh_cmd_new(const char *name)
{
    sh_cmd *c = calloc(1, sizeof *c);
    if (c && name) {
        sh_cmd_str(c, name);
        c->retry_safe = cmd_is_read(name);
    }
    return c;
}

void sh_cmd_retry_safe(sh_cmd *c)
{
    if (c)
        c->retry_safe = 1;
}

sh_cmd *sh_cmd_new_eval(sh_script *script, int nkeys)
{
    sh_cmd *c = sh_cmd_new("EVALSHA");
    if (!c)
        return NULL;
    c->script = script;
    c->retry_safe = script->retry_safe;
    sh_cmd_str(c, "-"); /* the SHA1, filled in when the command is sent */
    sh_cmd_int(c, nkeys);
    return c;
}

sh_cmd *sh_cmd_new_eval_keys(sh_script *script, const char *const *keys)
{
    int n = 0;
    while (keys[n])
        n++;
    sh_cmd *c = sh_cmd_new_eval(script, n);
    for (int i = 0; i < n; i++)
        sh_cmd_str(c, keys[i]);
    return c;
}

int sh_cmd_arg(sh_cmd *c, const void *p, size_t len)
{
    if (!c)
        return SH_ENOMEM;
    if (c->oom)
        return SH_ENOMEM;
    if (c->argc == c->cap) {
        int cap = c->cap ? c->cap * 2 : 8;
        size_t *lens = realloc(c->lens, (size_t)cap * sizeof *lens);
        if (!lens)
            goto oom;
        c->lens = lens;
        c->cap = cap;
    }
    if (c->dcap - c->dlen < len) {
        size_t cap = c->dcap ? c->dcap : 128;
        while (cap - c->dlen < len)
            cap *= 2;
        char *data = realloc(c->data, cap);
        if (!data)
            goto oom;
        c->data = data;
        c->dcap = cap;
    }
    if (len)
        memcpy(c->data + c->dlen, p, len);
    c->dlen += len;
    c->lens[c->argc++] = len;
    return SH_OK;
oom:
    c->oom = 1;
    return SH_ENOMEM;
}

int sh_cmd_str(sh_cmd *c, const char *s)
{
    return sh_cmd_arg(c, s, strlen(s));
}

int sh_cmd_int(sh_cmd *c, long long v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%lld", v);
    return sh_cmd_arg(c, tmp, (size_t)n);
}

int sh_cmd_fmt(sh_cmd *c, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        if (c)
            c->oom = 1;
        return SH_ENOMEM;
    }
    return sh_cmd_arg(c, tmp, (size_t)n);
}

void sh_cmd_free(sh_cmd *c)
{
    if (!c)
        return;
    free(c->data);
    free(c->lens);
    free(c);
}

/* store_resp_len appends "<prefix><n>\r\n". */
static int cmd_resp_len(sh_buf *b, char prefix, size_t n)
{
    char tmp[24];
    size_t i = sizeof tmp;
    tmp[--i] = '\n';
    tmp[--i] = '\r';
    do {
        tmp[--i] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    tmp[--i] = prefix;
    return sh_buf_append(b, tmp + i, sizeof tmp - i);
}

static int cmd_resp_arg(sh_buf *b, const char *p, size_t len)
{
    if (cmd_resp_len(b, '$', len) || sh_buf_append(b, p, len))
        return SH_ENOMEM;
    return sh_buf_append(b, "\r\n", 2);
}

int sh__cmd_resp(sh_buf *b, const sh_cmd *c, const char *sha, bool body)
{
    int rc = cmd_resp_len(b, '*', (size_t)c->argc);
    size_t off = 0;
    for (int i = 0; !rc && i < c->argc; off += c->lens[i++]) {
        if (c->script && i == 0 && body)
            rc = cmd_resp_arg(b, "EVAL", 4);
        else if (c->script && i == 1)
            rc = body ? cmd_resp_arg(b, c->script->body, strlen(c->script->body))
                      : cmd_resp_arg(b, sha, 40);
        else
            rc = cmd_resp_arg(b, c->data + off, c->lens[i]);
    }
    return rc;
}

int sh__cmd_oom(const sh_cmd *c)
{
    return !c || c->oom;
}

sh_script *sh__cmd_script(const sh_cmd *c)
{
    return c ? c->script : NULL;
}

int sh__cmd_argc(const sh_cmd *c)
{
    return c ? c->argc : 0;
}

int sh__cmd_retry_safe(const sh_cmd *c)
{
    return c && c->retry_safe;
}
