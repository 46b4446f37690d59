/* gw_ws_int.h - what the WebSocket files share, and nothing outside them but
 * their unit test includes (prefix gw__ws_). The files, each using only
 * those below it:
 *
 *   ws.c            the upgrade response, the I/O thread, the life cycle
 *   ws_conn.c       one connection: wslay over its socket, events to frames
 *   ws_handshake.c  the opening handshake's checks and Sec-WebSocket-Accept
 *
 * One thread (ws.c) does the I/O of every WebSocket with epoll: the sockets
 * are non-blocking, wslay frames them, and an eventfd wakes the thread when
 * a tap has events; a WebSocket costs no thread and no MHD connection slot
 * beyond the one it was upgraded from, which stays counted until it closes. */
#ifndef GW_WS_INT_H
#define GW_WS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_sse.h"
#include "shared/buf.h"

/* ---- ws_handshake.c ------------------------------------------------------ */

#define GW__WS_ACCEPT_LEN 28 /* base64 of a SHA-1 */

/* gw__ws_handshake_check checks the headers of an opening handshake (NULL:
 * not sent): 0 when they are fine, else the status to answer (400, or 426
 * for a version other than 13) with why set to the reason. */
int gw__ws_handshake_check(const char *upgrade, const char *connection, const char *version,
                           const char *key, const char **why);
/* gw__ws_header_has reports whether the comma-separated header value names
 * token (case-insensitive). */
bool gw__ws_header_has(const char *value, const char *token);
/* gw__ws_accept_key puts the Sec-WebSocket-Accept of key in out; -1 when
 * the digest fails. */
int gw__ws_accept_key(const char *key, char out[GW__WS_ACCEPT_LEN + 1]);

/* ---- ws_conn.c ----------------------------------------------------------- */

#define GW__WS_MAX_MESSAGE 4096   /* a client's message or frame: bigger is closed 1009 */
#define GW__WS_MAX_QUEUED  262144 /* bytes of frames queued to one client before taking more */
#define GW__WS_CLOSE_MS    5000   /* a close not answered in this long: the socket is closed */

typedef struct gw__ws_conn gw__ws_conn;

/* gw__ws_event_of finds the JSON of the SSE event block (up to its blank
 * line) in *data and its id line's value in *id (NULL: none): 1 an event
 * to send, 2 the gateway's shutdown, 3 a mail stream's reset, 0 nothing (a
 * comment, a retry line). */
int gw__ws_event_of(const char *block, size_t len, const char **data, size_t *dlen, const char **id,
                    size_t *idlen);

/* gw__ws_conn_new makes a WebSocket on sock (non-blocking) that has already
 * received extra (n bytes), reading tap (taken), pinged every ping_ms and
 * closed when a pong does not come within pong_ms; NULL out of memory. */
gw__ws_conn *gw__ws_conn_new(int sock, const char *extra, size_t n, gw_sse_tap *tap,
                             int64_t ping_ms, int64_t pong_ms, void *user);
/* gw__ws_conn_free frees c and its tap, not its socket. */
void gw__ws_conn_free(gw__ws_conn *c);
void *gw__ws_conn_user(gw__ws_conn *c);
int gw__ws_conn_fd(gw__ws_conn *c);
/* gw__ws_conn_io reads what the socket has, moves the tap's events into
 * frames and writes what the socket takes; false when c is done (closed
 * both ways or failed) and must be freed. */
bool gw__ws_conn_io(gw__ws_conn *c, int64_t now_ms);
/* gw__ws_conn_wants_write: frames are waiting for the socket. */
bool gw__ws_conn_wants_write(gw__ws_conn *c);
/* gw__ws_conn_tick sends the ping that is due, or closes c whose last ping
 * went unanswered or whose close went unanswered. */
void gw__ws_conn_tick(gw__ws_conn *c, int64_t now_ms);
/* gw__ws_conn_close queues a close with code (unless one is already). */
void gw__ws_conn_close(gw__ws_conn *c, uint16_t code, const char *reason, int64_t now_ms);

#endif
