/* imap_idle.c - IDLE and NOOP on a selected folder, read line by line: the
 * server's untagged responses say whether the folder changed; nothing of
 * them is kept (the sync that follows reads the folder afresh). */
#include "imap_idle.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap_int.h"
#include "imap_sock.h"

/* The most lines read before an expected answer: a server that talks on
 * and on without ever answering is dropped. */
#define IDLE_LINES_MAX 100000

bool sync_imap_has_idle(sync_imap *s)
{
    return sync__imap_has_cap(s, "IDLE");
}

int sync_imap_fd(sync_imap *s)
{
    mailstream_low *low = s->m->imap_stream ? mailstream_get_low(s->m->imap_stream) : NULL;
    return low ? mailstream_low_get_fd(low) : -1;
}

bool sync_imap_line_ready(sync_imap *s)
{
    mailstream *st = s && s->m ? s->m->imap_stream : NULL;
    if (!st)
        return false;
    if (st->read_buffer_len > 0 && memchr(st->read_buffer, '\n', st->read_buffer_len))
        return true;
    return s->cap && sync__imap_sock_pending(s->cap->inner);
}

/* idle_skip_literal reads the literal a line announces at its end ({n}),
 * and the rest of the response after it, so that the next line read is a
 * response of its own. */
static int idle_skip_literal(sync_imap *s, const char *line, sh_error *err)
{
    for (int i = 0; i < 64; i++) {
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (len < 3 || line[len - 1] != '}')
            return SH_OK;
        const char *open = line + len - 2;
        while (open > line && *open >= '0' && *open <= '9')
            open--;
        if (*open != '{')
            return SH_OK;
        unsigned long n = strtoul(open + 1, NULL, 10);
        if (n > SYNC__IMAP_REPLY_MAX)
            return sh_error_set(err, SH_EPROTO, "IMAP IDLE: a literal of %lu bytes; refused", n);
        char buf[4096];
        while (n > 0) {
            size_t chunk = n < sizeof buf ? n : sizeof buf;
            if (mailstream_read(s->m->imap_stream, buf, chunk) != (ssize_t)chunk)
                return sh_error_set(err, SH_EUNAVAIL, "IMAP IDLE: connection lost");
            n -= chunk;
        }
        if (!(line = mailimap_read_line(s->m)))
            return sh_error_set(err, SH_EUNAVAIL, "IMAP IDLE: connection lost");
    }
    return sh_error_set(err, SH_EPROTO, "IMAP IDLE: a response with too many literals");
}

/* idle_uid_count is how many UIDs the set at p names ("3,7:9" is 4). */
static uint32_t idle_uid_count(const char *p)
{
    uint64_t n = 0;
    while (*p >= '0' && *p <= '9') {
        char *end;
        unsigned long a = strtoul(p, &end, 10), b = a;
        if (*end == ':')
            b = strtoul(end + 1, &end, 10);
        n += (a > b ? a - b : b - a) + 1;
        if (*end != ',')
            break;
        p = end + 1;
    }
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

/* idle_untagged counts the untagged response line ("* ...") in seen; a BYE
 * is SH_EUNAVAIL. */
static int idle_untagged(sync_imap *s, const char *line, sync_idle_seen *seen, sh_error *err)
{
    const char *p = line + 2;
    if (strncasecmp(p, "BYE", 3) == 0)
        return sh_error_set(err, SH_EUNAVAIL, "IMAP server ended the session: %.160s", p);
    if (strncasecmp(p, "VANISHED", 8) == 0) {
        /* Removed messages lower the count, so that an EXISTS bringing it
         * back (mail added after) is still seen as the change it is. */
        seen->woken = true;
        p += 8;
        while (*p == ' ')
            p++;
        if (strncasecmp(p, "(EARLIER)", 9) == 0)
            p += 9;
        while (*p == ' ')
            p++;
        uint32_t gone = idle_uid_count(p);
        seen->exists = gone < seen->exists ? seen->exists - gone : 0;
    } else if (*p >= '0' && *p <= '9') {
        char *end;
        unsigned long n = strtoul(p, &end, 10);
        if (*end == ' ')
            end++;
        if (strncasecmp(end, "EXISTS", 6) == 0) {
            if (n != seen->exists)
                seen->woken = true;
            seen->exists = (uint32_t)n;
        } else if (strncasecmp(end, "EXPUNGE", 7) == 0) {
            seen->woken = true;
            if (seen->exists)
                seen->exists--;
        } else if (strncasecmp(end, "FETCH", 5) == 0) {
            seen->woken = true;
        }
    }
    return idle_skip_literal(s, line, err);
}

/* idle_tag is the tag of the last command sent. */
static void idle_tag(const sync_imap *s, char tag[16])
{
    snprintf(tag, 16, "%d ", s->m->imap_tag);
}

/* idle_send sends the session's next tag and cmd (without CRLF). */
static int idle_send(sync_imap *s, const char *cmd, sh_error *err)
{
    mailstream *st = s->m->imap_stream;
    if (!st || mailimap_send_current_tag(s->m) != MAILIMAP_NO_ERROR ||
        mailstream_write(st, cmd, strlen(cmd)) < 0 || mailstream_write(st, "\r\n", 2) < 0 ||
        mailstream_flush(st) == -1)
        return sh_error_set(err, SH_EUNAVAIL, "IMAP %s: connection lost", cmd);
    return SH_OK;
}

/* idle_until reads lines up to the "+" continuation (plus true) or the
 * tagged OK of the last command, counting the untagged ones in seen; any
 * other tagged answer is an error. */
static int idle_until(sync_imap *s, bool plus, const char *what, sync_idle_seen *seen,
                      sh_error *err)
{
    char tag[16];
    idle_tag(s, tag);
    for (int i = 0; i < IDLE_LINES_MAX; i++) {
        const char *line = mailimap_read_line(s->m);
        if (!line)
            return sh_error_set(err, SH_EUNAVAIL, "IMAP %s: connection lost or timed out", what);
        if (line[0] == '*' && line[1] == ' ') {
            int rc = idle_untagged(s, line, seen, err);
            if (rc)
                return rc;
            continue;
        }
        if (line[0] == '+') {
            if (plus)
                return SH_OK;
            continue;
        }
        if (strncmp(line, tag, strlen(tag)) == 0) {
            const char *ans = line + strlen(tag);
            if (strncasecmp(ans, "OK", 2) == 0 && !plus)
                return SH_OK;
            size_t n = strcspn(ans, "\r\n");
            return sh_error_set(err, SYNC_EREFUSED, "IMAP %s refused: %.*s", what,
                                (int)(n > 160 ? 160 : n), ans);
        }
        return sh_error_set(err, SH_EPROTO, "IMAP %s: unexpected line from the server", what);
    }
    return sh_error_set(err, SH_EPROTO, "IMAP %s: no answer after %d lines", what, IDLE_LINES_MAX);
}

int sync_imap_idle_start(sync_imap *s, sync_idle_seen *seen, sh_error *err)
{
    int rc = idle_send(s, "IDLE", err);
    return rc ? rc : idle_until(s, true, "IDLE", seen, err);
}

int sync_imap_idle_read(sync_imap *s, sync_idle_seen *seen, sh_error *err)
{
    const char *line = mailimap_read_line(s->m);
    if (!line)
        return sh_error_set(err, SH_EUNAVAIL, "IMAP IDLE: connection lost or timed out");
    if (line[0] == '*' && line[1] == ' ')
        return idle_untagged(s, line, seen, err);
    if (line[0] == '+')
        return SH_OK;
    /* A tagged answer while idling: the server ended IDLE by itself. */
    return sh_error_set(err, SH_EPROTO, "IMAP IDLE ended by the server: %.160s", line);
}

int sync_imap_idle_done(sync_imap *s, sync_idle_seen *seen, sh_error *err)
{
    mailstream *st = s->m->imap_stream;
    if (!st || mailstream_write(st, "DONE\r\n", 6) < 0 || mailstream_flush(st) == -1)
        return sh_error_set(err, SH_EUNAVAIL, "IMAP DONE: connection lost");
    return idle_until(s, false, "IDLE", seen, err);
}

int sync_imap_noop(sync_imap *s, sync_idle_seen *seen, sh_error *err)
{
    int rc = idle_send(s, "NOOP", err);
    return rc ? rc : idle_until(s, false, "NOOP", seen, err);
}
