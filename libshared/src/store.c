/* store.c - the Redis connection: pipelines, scripts, reconnects (commands
 * and their encoding are cmd.c's). The one file of the project that
 * includes hiredis. */
#include "shared/store.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "shared/buf.h"
#include "shared/log.h"
#include "shared/util.h"

#define STORE_BACKOFF_MIN_MS 50
#define STORE_BACKOFF_MAX_MS 1000
#define STORE_WHERE_MAX      128 /* "host:port" in messages */

struct sh_store {
    sh_redis_url url;
    sh_store_opts opts;
    redisContext *c; /* NULL while disconnected */
    int64_t next_attempt_ms;
    int backoff_ms;
    int was_down; /* to log the recovery once */
    char last_err[300];
    sh_buf resp;      /* the commands of a pipeline in the Redis protocol */
    size_t pending;   /* replies of sh_store_send not read yet */
    int pending_safe; /* every one of those commands is retry-safe */
    int cur;          /* the host of url.hosts tried first: the last master */
};

/* The largest pipeline buffer kept for the next call. */
#define STORE_RESP_KEEP (64 * 1024)

/* Script SHA1s are learned once per process and shared by every store. */
static pthread_mutex_t store_script_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- connection -------------------------------------------------------- */

int sh_store_new(const sh_redis_url *url, const sh_store_opts *opts, sh_store **out, sh_error *err)
{
    *out = NULL;
#if !(HIREDIS_MAJOR >= 1)
    if (url->tls)
        return sh_error_set(err, SH_EINVAL,
                            "REDIS_URL uses rediss:// (TLS) but this build links hiredis %d.%d, "
                            "which has no TLS support; use redis:// on a trusted network or "
                            "build against hiredis 1.x with hiredis_ssl",
                            HIREDIS_MAJOR, HIREDIS_MINOR);
#else
    if (url->tls)
        return sh_error_set(err, SH_EINVAL,
                            "REDIS_URL uses rediss:// (TLS), which this build does not enable");
#endif
    sh_store *s = calloc(1, sizeof *s);
    if (!s)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    s->url = *url;
    if (!s->url.unix_socket && s->url.nhosts < 1) {
        /* A URL filled in by hand: its one host. */
        memcpy(s->url.hosts[0].host, s->url.host, sizeof s->url.host);
        s->url.hosts[0].port = s->url.port;
        s->url.nhosts = 1;
    }
    sh_buf_init(&s->resp);
    s->opts.connect_timeout_ms =
        opts && opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 1000;
    s->opts.command_timeout_ms =
        opts && opts->command_timeout_ms > 0 ? opts->command_timeout_ms : 2000;
    *out = s;
    return SH_OK;
}

/* store_drop closes the link; why may point into it, so it is copied first. */
static void store_drop(sh_store *s, const char *why)
{
    if (why != s->last_err)
        snprintf(s->last_err, sizeof s->last_err, "%s", why);
    if (s->c) {
        redisFree(s->c);
        s->c = NULL;
    }
    s->pending = 0;
}

void sh_store_free(sh_store *s)
{
    if (!s)
        return;
    store_drop(s, "closed");
    sh_buf_fini(&s->resp);
    free(s);
}

bool sh_store_connected(const sh_store *s)
{
    return s && s->c && !s->c->err;
}

static struct timeval store_tv(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

/* store_handshake authenticates and selects the database on a new link. */
static int store_handshake(sh_store *s)
{
    redisReply *r = NULL;
    if (s->url.password[0]) {
        if (s->url.user[0])
            r = redisCommand(s->c, "AUTH %s %s", s->url.user, s->url.password);
        else
            r = redisCommand(s->c, "AUTH %s", s->url.password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(s->last_err, sizeof s->last_err, "AUTH failed: %s", r ? r->str : s->c->errstr);
            freeReplyObject(r);
            return -1;
        }
        freeReplyObject(r);
    }
    if (s->url.db) {
        r = redisCommand(s->c, "SELECT %d", s->url.db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(s->last_err, sizeof s->last_err, "SELECT %d failed: %s", s->url.db,
                     r ? r->str : s->c->errstr);
            freeReplyObject(r);
            return -1;
        }
        freeReplyObject(r);
    }
    return 0;
}

/* store_where names host i of the URL (or the socket) for messages. */
static void store_where(const sh_store *s, int i, char *buf, size_t len)
{
    if (s->url.unix_socket)
        snprintf(buf, len, "%.100s", s->url.path);
    else if (strchr(s->url.hosts[i].host, ':'))
        snprintf(buf, len, "[%.100s]:%d", s->url.hosts[i].host, s->url.hosts[i].port);
    else
        snprintf(buf, len, "%.100s:%d", s->url.hosts[i].host, s->url.hosts[i].port);
}

/* store_open makes a link to host i and authenticates it; 0, or -1 with
 * last_err set and no link. */
static int store_open(sh_store *s, int i)
{
    char where[STORE_WHERE_MAX];
    store_where(s, i, where, sizeof where);
    struct timeval tv = store_tv(s->opts.connect_timeout_ms);
    s->c = s->url.unix_socket
               ? redisConnectUnixWithTimeout(s->url.path, tv)
               : redisConnectWithTimeout(s->url.hosts[i].host, s->url.hosts[i].port, tv);
    if (!s->c || s->c->err) {
        char why[300];
        snprintf(why, sizeof why, "connect to %.100s: %.120s", where,
                 s->c ? s->c->errstr : "out of memory");
        store_drop(s, why);
        return -1;
    }
    redisSetTimeout(s->c, store_tv(s->opts.command_timeout_ms));
    if (!s->url.unix_socket)
        redisEnableKeepAlive(s->c);
    if (store_handshake(s) != 0) {
        redisFree(s->c);
        s->c = NULL;
        return -1;
    }
    return 0;
}

/* store_is_master asks the server of a new link for its ROLE: 1 master,
 * 0 not (a replica, or no answer: last_err says which). */
static int store_is_master(sh_store *s, int i)
{
    char where[STORE_WHERE_MAX];
    store_where(s, i, where, sizeof where);
    redisReply *r = redisCommand(s->c, "ROLE");
    int master = 0;
    if (!r)
        snprintf(s->last_err, sizeof s->last_err, "ROLE at %s: %.100s", where, s->c->errstr);
    else if (r->type == REDIS_REPLY_ERROR)
        snprintf(s->last_err, sizeof s->last_err, "ROLE at %s refused: %.100s", where, r->str);
    else if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
             r->element[0]->type == REDIS_REPLY_STRING)
        master = strcmp(r->element[0]->str, "master") == 0;
    if (r && !master && r->type == REDIS_REPLY_ARRAY)
        snprintf(s->last_err, sizeof s->last_err, "Redis at %s is a replica", where);
    freeReplyObject(r);
    return master;
}

/* store_connect makes sure there is a live link, honouring the backoff
 * unless force is set. With several hosts it tries each once, from the
 * last master on, and keeps the first whose ROLE is master. */
static int store_connect(sh_store *s, int force, sh_error *err)
{
    if (s->c && !s->c->err)
        return SH_OK;
    if (s->c)
        store_drop(s, s->c->errstr);
    int64_t now = sh_mono_ms();
    if (!force && now < s->next_attempt_ms)
        return sh_error_set(err, SH_EUNAVAIL, "Redis unavailable: %s (next attempt in %lld ms)",
                            s->last_err, (long long)(s->next_attempt_ms - now));
    int n = s->url.unix_socket ? 1 : s->url.nhosts;
    for (int k = 0; k < n; k++) {
        int i = (s->cur + k) % n;
        if (store_open(s, i) != 0 || (n > 1 && !store_is_master(s, i))) {
            if (s->c) {
                redisFree(s->c);
                s->c = NULL;
            }
            if (n > 1 && k + 1 < n && !s->was_down) {
                char next[STORE_WHERE_MAX];
                store_where(s, (i + 1) % n, next, sizeof next);
                sh_log_warn("redis_try_next", "%s; trying %s", s->last_err, next);
            }
            continue;
        }
        if (n > 1 && (i != s->cur || s->was_down)) {
            char where[STORE_WHERE_MAX];
            store_where(s, i, where, sizeof where);
            sh_log_info("redis_master", "using the Redis master at %s", where);
        }
        s->cur = i;
        s->backoff_ms = 0;
        s->next_attempt_ms = 0;
        if (s->was_down) {
            sh_log_info("redis_reconnected", "connection to Redis restored");
            s->was_down = 0;
        }
        return SH_OK;
    }
    if (n > 1) {
        char why[sizeof s->last_err];
        snprintf(why, sizeof why, "no master among the %d hosts (last: %.200s)", n, s->last_err);
        memcpy(s->last_err, why, sizeof why);
    }
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : STORE_BACKOFF_MIN_MS;
    if (s->backoff_ms > STORE_BACKOFF_MAX_MS)
        s->backoff_ms = STORE_BACKOFF_MAX_MS;
    s->next_attempt_ms = sh_mono_ms() + s->backoff_ms;
    if (!s->was_down)
        sh_log_warn("redis_down", "Redis unavailable: %s", s->last_err);
    s->was_down = 1;
    return sh_error_set(err, SH_EUNAVAIL, "Redis unavailable: %s", s->last_err);
}

/* store_idle_closed tells whether the server closed a link that awaits no
 * reply (a restart, a failover, an idle timeout): such a link has nothing
 * to read, so readable means EOF, an error, or bytes nobody asked for. It
 * is found before a command is written, so that command needs no resend. */
static int store_idle_closed(sh_store *s)
{
    if (!s->c || s->c->err || s->pending)
        return 0;
    struct pollfd p = {.fd = s->c->fd, .events = POLLIN};
    int n = poll(&p, 1, 0);
    return n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL));
}

/* store_check_idle drops an idle link the server closed, for store_connect
 * to make a new one at once. */
static void store_check_idle(sh_store *s)
{
    if (!store_idle_closed(s))
        return;
    char where[STORE_WHERE_MAX];
    store_where(s, s->cur, where, sizeof where);
    sh_log_info("redis_link_closed", "the idle link to Redis at %s was closed; reconnecting",
                where);
    store_drop(s, "the server closed the link");
    /* Not a failure of the server: reconnect now, not after a backoff. */
    s->next_attempt_ms = 0;
}

/* store_redirect tells whether an error reply says that this server did not
 * run the command and cannot now (a demoted primary, a replica without its
 * master, a server still loading its data): another link, maybe to another
 * host, is needed. */
static int store_redirect(const redisReply *r)
{
    static const char *const words[] = {"READONLY", "MASTERDOWN", "LOADING", NULL};
    if (!r || r->type != REDIS_REPLY_ERROR)
        return 0;
    for (int i = 0; words[i]; i++)
        if (strncmp(r->str, words[i], strlen(words[i])) == 0)
            return 1;
    return 0;
}

/* store_lost is the error of a reply lost after its command was written:
 * SH_EUNAVAIL when every command was retry-safe, else SH_EUNKNOWN. */
static int store_lost(sh_store *s, int safe, sh_error *err)
{
    if (safe)
        return sh_error_set(err, SH_EUNAVAIL, "Redis unavailable: %s", s->last_err);
    return sh_error_set(err, SH_EUNKNOWN,
                        "Redis: the reply of a write was lost (%s); outcome unknown, safe to retry "
                        "with the same request id",
                        s->last_err);
}

/* store_script_sha returns the SHA1 of script, loading it on this link the
 * first time any store needs it. */
static int store_script_sha(sh_store *s, sh_script *script, char sha[41], sh_error *err)
{
    if (__atomic_load_n(&script->loaded, __ATOMIC_ACQUIRE)) {
        memcpy(sha, script->sha, 41);
        return SH_OK;
    }
    redisReply *r = redisCommand(s->c, "SCRIPT LOAD %s", script->body);
    if (!r) {
        store_drop(s, s->c->errstr);
        return sh_error_set(err, SH_EUNAVAIL, "Redis unavailable: %s", s->last_err);
    }
    if (r->type != REDIS_REPLY_STRING || r->len != 40) {
        int rc = sh_error_set(err, SH_EINTERNAL, "SCRIPT LOAD of %s failed: %s", script->name,
                              r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        return rc;
    }
    pthread_mutex_lock(&store_script_lock);
    memcpy(script->sha, r->str, 40);
    script->sha[40] = '\0';
    __atomic_store_n(&script->loaded, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&store_script_lock);
    memcpy(sha, r->str, 40);
    sha[40] = '\0';
    freeReplyObject(r);
    return SH_OK;
}

static int store_is_noscript(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

/* store_append puts the n commands in hiredis' output buffer in one piece
 * (shas and use_body as store_resp wants them, or NULL without scripts). */
static int store_append(sh_store *s, sh_cmd *const *cmds, size_t n, const char *shas,
                        const unsigned char *use_body, sh_error *err)
{
    sh_buf *b = &s->resp;
    sh_buf_reset(b);
    int rc = SH_OK;
    for (size_t i = 0; i < n && !rc; i++)
        rc = sh__cmd_resp(b, cmds[i], shas ? shas + 41 * i : NULL, use_body && use_body[i]);
    if (rc == SH_OK && redisAppendFormattedCommand(s->c, b->data, b->len) != REDIS_OK)
        rc = SH_ENOMEM;
    /* A large pipeline's buffer is not kept between calls. */
    if (b->cap > STORE_RESP_KEEP)
        sh_buf_fini(b);
    return rc ? sh_error_set(err, SH_ENOMEM, "out of memory building Redis commands") : SH_OK;
}

/* store_send_read writes every command at once and reads every reply: one
 * round trip. use_body sends EVAL with the script body instead of EVALSHA
 * for the commands it marks. */
static int store_send_read(sh_store *s, sh_cmd *const *cmds, size_t n, const char *shas,
                           const unsigned char *use_body, redisReply **outs, sh_error *err)
{
    int rc = store_append(s, cmds, n, shas, use_body, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        void *r = NULL;
        if (redisGetReply(s->c, &r) != REDIS_OK || !r) {
            for (size_t j = 0; j < i; j++) {
                freeReplyObject(outs[j]);
                outs[j] = NULL;
            }
            store_drop(s, s->c ? s->c->errstr : "connection lost");
            return sh_error_set(err, SH_EUNAVAIL, "Redis unavailable: %s", s->last_err);
        }
        outs[i] = r;
    }
    return SH_OK;
}

int sh_store_pipeline(sh_store *s, sh_cmd *const *cmds, size_t n, sh_reply **outs, sh_error *err)
{
    redisReply **r = (redisReply **)outs;
    for (size_t i = 0; i < n; i++) {
        r[i] = NULL;
        if (!cmds[i] || sh__cmd_oom(cmds[i]))
            return sh_error_set(err, SH_ENOMEM, "out of memory building a Redis command");
    }
    if (n == 0)
        return SH_OK;
    if (s->pending)
        return sh_error_set(err, SH_EINTERNAL, "Redis: %zu replies of an earlier send not read",
                            s->pending);
    char *shas = calloc(n, 41);
    unsigned char *redo = calloc(n, 1);
    int rc = SH_ENOMEM;
    if (!shas || !redo) {
        sh_error_set(err, SH_ENOMEM, "out of memory");
        goto done;
    }
    int safe = 1;
    for (size_t i = 0; i < n; i++)
        safe = safe && sh__cmd_retry_safe(cmds[i]);
    store_check_idle(s);
    /* Attempt 2 follows a reply lost after sending (only when every command
     * is retry-safe) or a redirect reply (the commands did not run). */
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = store_connect(s, attempt > 0, err);
        if (rc)
            goto done;
        for (size_t i = 0; i < n && rc == SH_OK; i++)
            if (sh__cmd_script(cmds[i]))
                rc = store_script_sha(s, sh__cmd_script(cmds[i]), shas + 41 * i, err);
        if (rc == SH_EUNAVAIL && attempt == 0)
            continue; /* SCRIPT LOAD failed: nothing of ours was sent yet */
        if (rc)
            goto done;
        rc = store_send_read(s, cmds, n, shas, NULL, r, err);
        if (rc == SH_EUNAVAIL) {
            if (safe && attempt == 0)
                continue;
            rc = store_lost(s, safe, err);
            goto done;
        }
        if (rc)
            goto done;
        size_t k = 0;
        while (k < n && !store_redirect(r[k]))
            k++;
        if (k == n)
            break;
        char why[sizeof s->last_err];
        char where[STORE_WHERE_MAX];
        store_where(s, s->cur, where, sizeof where);
        snprintf(why, sizeof why, "Redis at %s answered %.100s", where, r[k]->str);
        sh_log_warn("redis_redirect", "%s; dropping the link", why);
        store_drop(s, why);
        if (attempt > 0)
            break; /* the error replies are the answer; the next call reconnects */
        for (size_t j = 0; j < n; j++) {
            freeReplyObject(r[j]);
            r[j] = NULL;
        }
    }
    if (rc)
        goto done;
    /* Scripts flushed from the server (SCRIPT FLUSH, a restart, a failover)
     * come back as NOSCRIPT: send those again as EVAL, which reloads them. */
    size_t nredo = 0;
    for (size_t i = 0; i < n; i++)
        if (sh__cmd_script(cmds[i]) && store_is_noscript(r[i]))
            redo[i] = 1, nredo++;
    if (nredo) {
        sh_cmd **again = calloc(nredo, sizeof *again);
        redisReply **rr = calloc(nredo, sizeof *rr);
        char *shas2 = calloc(nredo, 41);
        unsigned char *all = calloc(nredo, 1);
        if (!again || !rr || !shas2 || !all) {
            rc = sh_error_set(err, SH_ENOMEM, "out of memory");
        } else {
            size_t k = 0;
            for (size_t i = 0; i < n; i++)
                if (redo[i])
                    again[k++] = cmds[i];
            memset(all, 1, nredo);
            rc = store_send_read(s, again, nredo, shas2, all, rr, err);
            if (rc == SH_EUNAVAIL)
                rc = store_lost(s, safe, err);
            if (rc == SH_OK) {
                k = 0;
                for (size_t i = 0; i < n; i++) {
                    if (redo[i]) {
                        freeReplyObject(r[i]);
                        r[i] = rr[k++];
                    }
                }
            }
        }
        free(again);
        free(rr);
        free(shas2);
        free(all);
        if (rc) {
            for (size_t i = 0; i < n; i++) {
                freeReplyObject(r[i]);
                r[i] = NULL;
            }
        }
    }
done:
    free(shas);
    free(redo);
    return rc;
}

int sh_store_send(sh_store *s, sh_cmd *const *cmds, size_t n, sh_error *err)
{
    if (s->pending)
        return sh_error_set(err, SH_EINTERNAL, "Redis: %zu replies of an earlier send not read",
                            s->pending);
    int safe = 1;
    for (size_t i = 0; i < n; i++) {
        if (!cmds[i] || sh__cmd_oom(cmds[i]) || sh__cmd_script(cmds[i]))
            return sh_error_set(err, cmds[i] && sh__cmd_script(cmds[i]) ? SH_EINVAL : SH_ENOMEM,
                                "a command that cannot be sent ahead of its reply");
        safe = safe && sh__cmd_retry_safe(cmds[i]);
    }
    if (n == 0)
        return SH_OK;
    store_check_idle(s);
    int rc = SH_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = store_connect(s, attempt > 0, err);
        if (rc)
            return rc;
        if ((rc = store_append(s, cmds, n, NULL, NULL, err)))
            return rc;
        int done = 0;
        while (!done && rc == SH_OK) {
            if (redisBufferWrite(s->c, &done) != REDIS_OK) {
                store_drop(s, s->c->errstr[0] ? s->c->errstr : "connection lost");
                rc = SH_EUNAVAIL;
            }
        }
        if (rc != SH_EUNAVAIL)
            break;
        /* Part of the bytes may have gone out: only reads are sent again. */
        if (!safe || attempt > 0)
            return store_lost(s, safe, err);
    }
    if (rc == SH_OK) {
        s->pending = n;
        s->pending_safe = safe;
    }
    return rc;
}

int sh_store_recv(sh_store *s, sh_reply **outs, size_t n, sh_error *err)
{
    redisReply **r = (redisReply **)outs;
    for (size_t i = 0; i < n; i++)
        r[i] = NULL;
    if (n != s->pending)
        return sh_error_set(err, SH_EINTERNAL, "Redis: %zu replies awaited, %zu asked for",
                            s->pending, n);
    s->pending = 0;
    int redirect = 0;
    for (size_t i = 0; i < n; i++) {
        void *one = NULL;
        if (!s->c || redisGetReply(s->c, &one) != REDIS_OK || !one) {
            for (size_t j = 0; j < i; j++) {
                freeReplyObject(r[j]);
                r[j] = NULL;
            }
            store_drop(s, s->c && s->c->errstr[0] ? s->c->errstr : "connection lost");
            return store_lost(s, s->pending_safe, err);
        }
        r[i] = one;
        redirect = redirect || store_redirect(one);
    }
    /* The error replies are the caller's answer; the next call reconnects. */
    if (redirect)
        store_drop(s, "Redis answered READONLY, MASTERDOWN or LOADING");
    return SH_OK;
}

int sh_store_run(sh_store *s, sh_cmd *cmd, sh_reply **out, sh_error *err)
{
    return sh_store_pipeline(s, &cmd, 1, out, err);
}

int sh_store_reply_check(const sh_reply *r, sh_error *err)
{
    if (sh_reply_kind(r) != SH_REPLY_ERROR)
        return SH_OK;
    size_t len;
    const char *e = sh_reply_string(r, &len);
    static const char *const down[] = {"OOM", "LOADING", "READONLY", "BUSY", "MASTERDOWN", NULL};
    if (len >= 6 && memcmp(e, "LIMIT ", 6) == 0)
        return sh_error_set(err, SH_ELIMIT, "%.*s", (int)(len - 6), e + 6);
    if (len >= 9 && memcmp(e, "CONFLICT ", 9) == 0)
        return sh_error_set(err, SH_ECONFLICT, "%.*s", (int)(len - 9), e + 9);
    int rc = SH_EINTERNAL;
    for (int i = 0; down[i] && rc == SH_EINTERNAL; i++)
        if (len >= strlen(down[i]) && memcmp(e, down[i], strlen(down[i])) == 0)
            rc = SH_EUNAVAIL;
    if (rc == SH_EINTERNAL)
        sh_log_error("redis_error", "%.*s", (int)len, e);
    return sh_error_set(err, rc, "Redis %s: %.*s",
                        rc == SH_EUNAVAIL ? "cannot serve the request" : "refused the request",
                        (int)len, e);
}

int sh_store_call(sh_store *s, sh_cmd *cmd, sh_reply **out, sh_error *err)
{
    *out = NULL;
    sh_reply *r = NULL;
    int rc = sh_store_run(s, cmd, &r, err);
    sh_cmd_free(cmd);
    if (rc)
        return rc;
    if ((rc = sh_store_reply_check(r, err)) == SH_OK) {
        *out = r;
        return SH_OK;
    }
    sh_reply_free(r);
    return rc;
}

int sh_store_ping(sh_store *s, sh_error *err)
{
    sh_cmd *c = sh_cmd_new("PING");
    sh_reply *r = NULL;
    int rc = sh_store_run(s, c, &r, err);
    sh_cmd_free(c);
    if (rc == SH_OK && sh_reply_kind(r) == SH_REPLY_ERROR) {
        size_t len;
        const char *e = sh_reply_string(r, &len);
        rc = sh_error_set(err, SH_EUNAVAIL, "Redis answered PING with: %.*s", (int)len, e);
    }
    sh_reply_free(r);
    return rc;
}

/* ---- replies ----------------------------------------------------------- */

sh_reply_type sh_reply_kind(const sh_reply *r)
{
    const redisReply *x = (const redisReply *)r;
    if (!x)
        return SH_REPLY_NIL;
    switch (x->type) {
    case REDIS_REPLY_STRING:
        return SH_REPLY_STRING;
    case REDIS_REPLY_ARRAY:
        return SH_REPLY_ARRAY;
    case REDIS_REPLY_INTEGER:
        return SH_REPLY_INTEGER;
    case REDIS_REPLY_STATUS:
        return SH_REPLY_STATUS;
    case REDIS_REPLY_ERROR:
        return SH_REPLY_ERROR;
    default:
        return SH_REPLY_NIL;
    }
}

long long sh_reply_integer(const sh_reply *r)
{
    const redisReply *x = (const redisReply *)r;
    return x && x->type == REDIS_REPLY_INTEGER ? x->integer : 0;
}

const char *sh_reply_string(const sh_reply *r, size_t *len)
{
    const redisReply *x = (const redisReply *)r;
    if (!x || !(x->type == REDIS_REPLY_STRING || x->type == REDIS_REPLY_STATUS ||
                x->type == REDIS_REPLY_ERROR)) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = x->len;
    return x->str;
}

long long sh_reply_ll(const sh_reply *r, bool *present)
{
    size_t len;
    const char *s = sh_reply_string(r, &len);
    char tmp[32];
    bool ok = s && len > 0 && len < sizeof tmp;
    if (present)
        *present = ok;
    if (!ok)
        return 0;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    return strtoll(tmp, NULL, 10);
}

size_t sh_reply_count(const sh_reply *r)
{
    const redisReply *x = (const redisReply *)r;
    return x && x->type == REDIS_REPLY_ARRAY ? x->elements : 0;
}

const sh_reply *sh_reply_elem(const sh_reply *r, size_t i)
{
    const redisReply *x = (const redisReply *)r;
    if (!x || x->type != REDIS_REPLY_ARRAY || i >= x->elements)
        return NULL;
    return (const sh_reply *)x->element[i];
}

void sh_reply_free(sh_reply *r)
{
    if (r)
        freeReplyObject(r);
}
