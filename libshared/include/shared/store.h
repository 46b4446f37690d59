/* store.h - the Redis connection of one thread: URL parsing, commands,
 * pipelines, Lua scripts by EVALSHA with a NOSCRIPT fallback, reconnects
 * with backoff, and failover across the hosts a URL lists.
 *
 * A store is used by one thread at a time (give each worker its own). It
 * connects lazily: sh_store_new succeeds while Redis is down, and every call
 * made while it is down fails fast with SH_EUNAVAIL; the next call after the
 * backoff delay (50 ms doubling to 1 s) tries to reconnect.
 *
 * Nothing lost, nothing doubled: before a command is written on a link that
 * sat idle, the link is polled without waiting; one the server has closed
 * (a restart, a failover) is re-made first, so nothing is resent. Once a
 * command's bytes were written and its reply is lost (the command timeout,
 * a reset), it is sent once more on a new link only when running it twice
 * is harmless: a read (by name, see cmd.c), a script declared with
 * SH_SCRIPT_RETRY_SAFE, or a command marked with sh_cmd_retry_safe. Any
 * other fails with SH_EUNKNOWN: it may or may not have run, and the caller
 * (in the end the client, with its request id) decides.
 *
 * A READONLY, MASTERDOWN or LOADING reply means the command did not run
 * and this server cannot take it: the link is dropped, a new one made (to
 * the master, when the URL lists several hosts) and the commands sent once
 * more. With several hosts the store connects to the one whose ROLE is
 * master, moving on to the next host on a replica answer, a lost link or
 * one of those replies.
 *
 * Replies: sh_reply is a read-only tree owned by the caller of the call that
 * returned it; free it with sh_reply_free (NULL is fine). */
#ifndef SHARED_STORE_H
#define SHARED_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/err.h"

#define SH_URL_FIELD_MAX 256
#define SH_URL_HOSTS_MAX 8 /* host:port pairs of one URL */

typedef struct sh_redis_host {
    char host[SH_URL_FIELD_MAX]; /* brackets of IPv6 removed */
    int port;                    /* default 6379 */
} sh_redis_host;

typedef struct sh_redis_url {
    bool unix_socket;
    bool tls;                    /* rediss:// */
    char host[SH_URL_FIELD_MAX]; /* TCP host: the first of hosts */
    int port;                    /* its port */
    int nhosts;                  /* TCP: 1..SH_URL_HOSTS_MAX; 0 for a socket */
    sh_redis_host hosts[SH_URL_HOSTS_MAX];
    char path[SH_URL_FIELD_MAX];     /* unix socket path */
    char user[SH_URL_FIELD_MAX];     /* ACL user, "" for none */
    char password[SH_URL_FIELD_MAX]; /* "" for none */
    int db;                          /* SELECT, default 0 */
} sh_redis_url;

/* sh_redis_url_parse accepts
 *   redis://[[user]:password@]host[:port][,host[:port]...][/db]
 *   rediss://...            (TLS; needs hiredis 1.x at connect time)
 *   unix:///path/to.sock[?db=N&password=P&user=U]
 *   redis+unix:// and redis-socket:// as aliases of unix://
 * with percent-escapes in user and password. Several comma-separated
 * hosts (at most SH_URL_HOSTS_MAX) are a primary and its replicas: the
 * store uses whichever is master. err names the problem. */
int sh_redis_url_parse(const char *url, sh_redis_url *out, sh_error *err);

/* sh_redis_url_display writes the URL with the password masked. */
void sh_redis_url_display(const sh_redis_url *u, char *buf, size_t len);

typedef struct sh_store_opts {
    int connect_timeout_ms; /* default 1000 */
    int command_timeout_ms; /* default 2000 */
} sh_store_opts;

typedef struct sh_store sh_store;
typedef struct sh_reply sh_reply;
typedef struct sh_cmd sh_cmd;

/* A Lua script. Declare scripts as static objects: SH_SCRIPT("name", body).
 * Its SHA1 is learned from Redis (SCRIPT LOAD) on first use and shared by
 * every store. SH_SCRIPT_RETRY_SAFE declares a script that running twice
 * with the same arguments leaves as running it once (it only reads, or it
 * records a request id among its arguments and answers a repeat from that
 * record): the store may send it again when its reply is lost. */
typedef struct sh_script {
    const char *name;
    const char *body;
    char sha[41];
    int loaded;     /* accessed atomically */
    int retry_safe; /* declared with SH_SCRIPT_RETRY_SAFE */
} sh_script;
#define SH_SCRIPT(name_, body_)                                                                    \
    {                                                                                              \
        (name_), (body_), {0}, 0, 0                                                                \
    }
#define SH_SCRIPT_RETRY_SAFE(name_, body_)                                                         \
    {                                                                                              \
        (name_), (body_), {0}, 0, 1                                                                \
    }

/* sh_store_new allocates a store for url (copied). It fails only on bad
 * arguments, a TLS URL with a hiredis lacking TLS, or no memory; an
 * unreachable Redis is not an error here. */
int sh_store_new(const sh_redis_url *url, const sh_store_opts *opts, sh_store **out, sh_error *err);
void sh_store_free(sh_store *s);

/* sh_store_connected reports whether the last attempt left a live link. */
bool sh_store_connected(const sh_store *s);

/* Command builder: arguments are copied; every adder returns SH_OK or
 * SH_ENOMEM (which sticks: the call using the command then fails). */
sh_cmd *sh_cmd_new(const char *name);
/* sh_cmd_new_eval starts "EVALSHA <sha> <nkeys>"; add keys then args. */
sh_cmd *sh_cmd_new_eval(sh_script *script, int nkeys);
/* sh_cmd_new_eval_keys is sh_cmd_new_eval with its keys added: keys is a
 * list of key names ending in NULL. */
sh_cmd *sh_cmd_new_eval_keys(sh_script *script, const char *const *keys);
int sh_cmd_arg(sh_cmd *c, const void *p, size_t len);
int sh_cmd_str(sh_cmd *c, const char *s);
int sh_cmd_int(sh_cmd *c, long long v);
int sh_cmd_fmt(sh_cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* sh_cmd_retry_safe declares that c may run twice with the effect of once
 * (reads are known by name, scripts by their declaration). */
void sh_cmd_retry_safe(sh_cmd *c);
void sh_cmd_free(sh_cmd *c);

/* sh_store_run sends one command and waits for its reply. A Redis error
 * reply is returned as a reply of type SH_REPLY_ERROR with SH_OK, so the
 * caller decides what it means. Transport failures return SH_EUNAVAIL, or
 * SH_EUNKNOWN for commands not retry-safe whose bytes were written before
 * the reply was lost (see the top of this file). */
int sh_store_run(sh_store *s, sh_cmd *cmd, sh_reply **out, sh_error *err);

/* sh_store_call is sh_store_run for services: it frees cmd, and turns an
 * error reply into an error code with Redis's words in err. Error replies
 * of our scripts that start with "LIMIT " are SH_ELIMIT, "CONFLICT "
 * SH_ECONFLICT; OOM, LOADING,
 * READONLY, BUSY and MASTERDOWN are SH_EUNAVAIL (Redis cannot serve now);
 * any other is SH_EINTERNAL (and logged). */
int sh_store_call(sh_store *s, sh_cmd *cmd, sh_reply **out, sh_error *err);

/* sh_store_reply_check maps an error reply as sh_store_call does (its
 * code, Redis's words in err) and returns SH_OK for any other reply. */
int sh_store_reply_check(const sh_reply *r, sh_error *err);

/* sh_store_pipeline sends n commands in one write and reads n replies (one
 * round trip). outs[i] receives reply i (caller frees each). */
int sh_store_pipeline(sh_store *s, sh_cmd *const *cmds, size_t n, sh_reply **outs, sh_error *err);

/* sh_store_send writes n commands (no scripts) without waiting for their
 * replies, and sh_store_recv reads the n replies later: the round trip
 * overlaps whatever the caller does in between, which must not be another
 * call on this store (that fails with SH_EINTERNAL). An idle link found
 * closed is re-made before sending; one lost while sending or before the
 * replies are read fails with SH_EUNAVAIL when every command is a read,
 * SH_EUNKNOWN otherwise (their effect then unknown). */
int sh_store_send(sh_store *s, sh_cmd *const *cmds, size_t n, sh_error *err);
int sh_store_recv(sh_store *s, sh_reply **outs, size_t n, sh_error *err);

/* sh_store_ping returns SH_OK when Redis answers PING. */
int sh_store_ping(sh_store *s, sh_error *err);

typedef enum sh_reply_type {
    SH_REPLY_STRING,
    SH_REPLY_ARRAY,
    SH_REPLY_INTEGER,
    SH_REPLY_NIL,
    SH_REPLY_STATUS,
    SH_REPLY_ERROR,
} sh_reply_type;

sh_reply_type sh_reply_kind(const sh_reply *r);
long long sh_reply_integer(const sh_reply *r);
/* String, status or error text (not NUL-safe for binary: use len). */
const char *sh_reply_string(const sh_reply *r, size_t *len);
/* sh_reply_ll reads a string reply holding a decimal number (strtoll: its
 * leading digits, 0 for none), as Redis hands back hash fields, list items
 * and the elements of our scripts' replies. A reply that is NULL or no
 * string, or whose text is empty or longer than a number, gives 0 with
 * *present false; present may be NULL. */
long long sh_reply_ll(const sh_reply *r, bool *present);
size_t sh_reply_count(const sh_reply *r);
const sh_reply *sh_reply_elem(const sh_reply *r, size_t i);
void sh_reply_free(sh_reply *r);

#endif
