/* watch_conn.h - one watched folder: its IMAP session, IDLE on it (or a
 * NOOP every IMAP_POLL_SECONDS where the server lacks IDLE), and when it is
 * down, when to connect again (backoff with jitter). Used by the watcher
 * thread only.
 *
 * Life cycle: zeroed with the folder name set (state DOWN, due now);
 * sync_watch_conn_open when due; sync_watch_conn_readable when its socket
 * is readable or a line is buffered (IDLE), sync_watch_conn_tick when due
 * (IDLE renewal, NOOP); sync_watch_conn_close is the one teardown, also of
 * a connection that failed. */
#ifndef SYNC_WATCH_CONN_H
#define SYNC_WATCH_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "env.h"
#include "imap.h"
#include "imap_idle.h"
#include "shared/rpc.h"
#include "shared/val.h"

#define SYNC_WATCH_FOLDER_MAX 200

typedef enum sync_watch_state {
    SYNC_WATCH_DOWN,
    SYNC_WATCH_IDLE,
    SYNC_WATCH_POLL,
} sync_watch_state;

typedef struct sync_watch_conn {
    char folder[SYNC_WATCH_FOLDER_MAX + 1];
    sync_imap *imap;
    sync_watch_state state;
    sync_idle_seen seen;
    int64_t due_ms;  /* DOWN: next connect; IDLE: next renewal; POLL: next NOOP */
    int backoff_ms;  /* the wait after the next failure */
    bool was_up;     /* it was up once: changes may have been missed while down */
    char error[256]; /* why it is down, "" when it never failed */
} sync_watch_conn;

/* sync_watch_conn_open connects as the lease (the coordinator's watch
 * lease: host, port, security, tlsVerify, username, passwordSealed) says,
 * logs in, selects the folder and starts IDLE (or polling). On failure the
 * connection is closed and due again after its backoff, with err (also in
 * c->error) saying why. *resumed is set when it came back after being up,
 * so that a sync catches what changed meanwhile. An OAuth2 account's lease
 * (auth, authVersion) signs in with its token, refreshed through coord as
 * worker when due (oauth.h). */
int sync_watch_conn_open(sync_watch_conn *c, const sh_val *lease, const char *acct,
                         const sync_env *env, sh_rpc_client *coord, const char *worker,
                         bool *resumed, sh_error *err);
/* sync_watch_conn_readable reads what the server sent while idling; on a
 * change it ends IDLE, sets *woken and idles again. */
int sync_watch_conn_readable(sync_watch_conn *c, const sync_env *env, bool *woken, sh_error *err);
/* sync_watch_conn_tick does what is due at now: a NOOP check (setting
 * *woken on a change) or restarting IDLE. */
int sync_watch_conn_tick(sync_watch_conn *c, const sync_env *env, int64_t now, bool *woken,
                         sh_error *err);
/* sync_watch_conn_fail closes the session after error msg and schedules the
 * next connect after the backoff (doubling up to a minute, +-25 %). */
void sync_watch_conn_fail(sync_watch_conn *c, const char *msg);
/* sync_watch_conn_close logs out and closes the session (state DOWN). */
void sync_watch_conn_close(sync_watch_conn *c);

#endif
