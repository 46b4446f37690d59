/* watch_conn.c - one watched folder's session: connect, log in, select,
 * then IDLE (renewed every IMAP_IDLE_RENEW_SECONDS) or, on servers without
 * IDLE, a NOOP every IMAP_POLL_SECONDS; a failure closes it and schedules
 * the next attempt with exponential backoff and jitter. */
#include "watch_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oauth.h"
#include "shared/buf.h"
#include "shared/log.h"
#include "shared/secret.h"
#include "shared/util.h"
#include "sync.h"

#define WATCH_BACKOFF_FIRST_MS 1000
#define WATCH_BACKOFF_MAX_MS   60000
/* How long past IMAP_IDLE_RENEW_SECONDS an IDLE may run before the server
 * is taken to have stalled. */
#define WATCH_IDLE_SLACK_S 60
/* How long a watch session waits for another worker's token refresh. */
#define WATCH_AUTH_WAIT_MS 5000

void sync_watch_conn_close(sync_watch_conn *c)
{
    sync_imap_free(c->imap);
    c->imap = NULL;
    c->state = SYNC_WATCH_DOWN;
}

void sync_watch_conn_fail(sync_watch_conn *c, const char *msg)
{
    sync_watch_conn_close(c);
    snprintf(c->error, sizeof c->error, "%s: %s", c->folder, msg);
    int wait = c->backoff_ms ? c->backoff_ms : WATCH_BACKOFF_FIRST_MS;
    unsigned char r = 0;
    sh_random_bytes(&r, 1);
    /* +-25 %: watches that failed together do not come back together. */
    int jitter = (int)((long)wait * ((int)r - 128) / 512);
    c->due_ms = sh_mono_ms() + wait + jitter;
    c->backoff_ms = wait * 2 > WATCH_BACKOFF_MAX_MS ? WATCH_BACKOFF_MAX_MS : wait * 2;
}

/* watch_opts fills o from the lease; -1 when a field is missing. */
static int watch_opts(const sh_val *lease, const sync_env *env, sync_imap_opts *o)
{
    memset(o, 0, sizeof *o);
    o->host = sh_val_get_str(lease, "host", NULL);
    const sh_val *port = sh_val_get(lease, "port");
    const sh_val *verify = sh_val_get(lease, "tlsVerify");
    if (!o->host || sh_val_type_of(port) != SH_VAL_INT ||
        sync_security_of(sh_val_get_str(lease, "security", NULL), &o->security))
        return -1;
    o->port = (int)sh_val_int(port);
    o->tls_verify = sh_val_type_of(verify) != SH_VAL_BOOL || sh_val_bool(verify);
    o->ca_file = env->ca_file;
    o->connect_timeout_s = env->connect_timeout_s;
    o->command_timeout_s = env->command_timeout_s;
    o->command_deadline_s = env->command_deadline_s;
    o->hosts = env->hosts;
    o->allow_insecure = env->allow_insecure;
    /* One connection to the host is left to the sync threads. */
    o->max_per_host = env->max_per_host > 1 ? env->max_per_host - 1 : env->max_per_host ? -1 : 0;
    return 0;
}

/* watch_login opens the sealed password (or OAuth2 secrets) and logs in;
 * coord and worker refresh an OAuth2 token. */
static int watch_login(sync_imap *imap, const sh_val *lease, const char *acct, const sync_env *env,
                       sh_rpc_client *coord, const char *worker, sh_error *err)
{
    const char *user = sh_val_get_str(lease, "username", NULL);
    size_t blen = 0;
    const sh_val *sealed = sh_val_get(lease, "passwordSealed");
    const char *blob = sealed ? sh_val_str(sealed, &blen) : NULL;
    if (!user || !blob || blen == 0)
        return sh_error_set(err, SH_EINVAL, "the watch lease lacks the username or password");
    sh_buf pw;
    sh_buf_init_secret(&pw); /* wiped also when sh_open grows it */
    int rc = sh_open(env->keys, env->nkeys, blob, blen, acct, &pw, err);
    sync_auth *auth = NULL;
    if (!rc && sync_auth_is_oauth(lease))
        rc = sync_auth_new(env, coord, worker, acct, lease, pw.data, pw.len, &auth, err);
    /* The watcher thread waits on every session: it waits little for
     * another worker's refresh, and tries again after its backoff. */
    if (auth)
        sync_auth_set_wait(auth, WATCH_AUTH_WAIT_MS);
    if (!rc)
        rc = auth ? sync_auth_login(auth, imap, user, err)
                  : sync_imap_login(imap, user, pw.data ? pw.data : "", err);
    sync_auth_free(auth);
    sh_buf_fini(&pw);
    return rc;
}

/* watch_arm starts IDLE, or the NOOP checks without it. */
static int watch_arm(sync_watch_conn *c, const sync_env *env, bool *woken, sh_error *err)
{
    int64_t now = sh_mono_ms();
    if (!sync_imap_has_idle(c->imap)) {
        c->state = SYNC_WATCH_POLL;
        c->due_ms = now + (int64_t)env->poll_s * 1000;
        return SH_OK;
    }
    c->seen.woken = false;
    /* IDLE's reply (the DONE that ends it) is waited for on purpose until
     * the renewal: its deadline is that, not a command's. */
    sync_imap_set_deadlines(c->imap, 0, env->idle_renew_s + WATCH_IDLE_SLACK_S, 0);
    int rc = sync_imap_idle_start(c->imap, &c->seen, err);
    if (rc)
        return rc;
    /* A change announced before "+ idling" is a change like any other. */
    *woken = *woken || c->seen.woken;
    c->seen.woken = false;
    c->state = SYNC_WATCH_IDLE;
    c->due_ms = now + (int64_t)env->idle_renew_s * 1000;
    return SH_OK;
}

int sync_watch_conn_open(sync_watch_conn *c, const sh_val *lease, const char *acct,
                         const sync_env *env, sh_rpc_client *coord, const char *worker,
                         bool *resumed, sh_error *err)
{
    *resumed = false;
    sync_watch_conn_close(c);
    sync_imap_opts o;
    int rc;
    if (watch_opts(lease, env, &o)) {
        rc = sh_error_set(err, SH_EINVAL, "the watch lease lacks host, port or security");
    } else if (o.max_per_host < 0) {
        rc = sh_error_set(err, SH_ELIMIT,
                          "IMAP_MAX_CONNECTIONS_PER_HOST=1 leaves no connection for watching");
    } else {
        rc = sync_imap_open(&o, &c->imap, err);
    }
    if (!rc)
        rc = watch_login(c->imap, lease, acct, env, coord, worker, err);
    sync_folder_info info;
    if (!rc)
        rc = sync_imap_select(c->imap, c->folder, &info, err);
    bool woken = false;
    if (!rc) {
        c->seen.exists = info.exists;
        rc = watch_arm(c, env, &woken, err);
    }
    if (rc) {
        sync_watch_conn_fail(c, err->msg);
        return rc;
    }
    *resumed = c->was_up || woken;
    c->was_up = true;
    c->backoff_ms = 0;
    c->error[0] = '\0';
    return SH_OK;
}

/* watch_rearm ends IDLE and starts it again, reporting a change seen
 * meanwhile in *woken. */
static int watch_rearm(sync_watch_conn *c, const sync_env *env, bool *woken, sh_error *err)
{
    sync_imap_set_deadlines(c->imap, 0, env->command_deadline_s, 0);
    int rc = sync_imap_idle_done(c->imap, &c->seen, err);
    *woken = *woken || c->seen.woken;
    return rc ? rc : watch_arm(c, env, woken, err);
}

int sync_watch_conn_readable(sync_watch_conn *c, const sync_env *env, bool *woken, sh_error *err)
{
    *woken = false;
    if (c->state != SYNC_WATCH_IDLE)
        return SH_OK;
    c->seen.woken = false;
    int rc = SH_OK;
    /* The line poll reported, and every whole line already buffered. */
    do
        rc = sync_imap_idle_read(c->imap, &c->seen, err);
    while (!rc && sync_imap_line_ready(c->imap));
    if (!rc && c->seen.woken) {
        *woken = true;
        rc = watch_rearm(c, env, woken, err);
    }
    return rc;
}

int sync_watch_conn_tick(sync_watch_conn *c, const sync_env *env, int64_t now, bool *woken,
                         sh_error *err)
{
    *woken = false;
    if (c->state == SYNC_WATCH_DOWN || now < c->due_ms)
        return SH_OK;
    if (c->state == SYNC_WATCH_IDLE)
        return watch_rearm(c, env, woken, err);
    c->seen.woken = false;
    int rc = sync_imap_noop(c->imap, &c->seen, err);
    *woken = c->seen.woken;
    c->due_ms = now + (int64_t)env->poll_s * 1000;
    return rc;
}
