/* imap_exec.c - running one IMAP command of the module: the command's
 * bytes (composed by imap_wire.c) go out with the session's tag, waiting at
 * each synchronizing literal for the server's go-ahead; the reply is read
 * by libetpan's parser and its tagged answer (OK, NO or BAD, with its
 * response code) handed back; libetpan's codes become ours, with the
 * server's words kept. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "imap_int.h"

int sync__imap_error(sync_imap *s, int r, const char *what, sh_error *err)
{
    const char *said = s && s->m && s->m->imap_response ? s->m->imap_response : "";
    if (s && s->cap && s->cap->run_over)
        return sh_error_set(err, SH_ETIMEDOUT,
                            "sync run deadline of %d s (SYNC_RUN_DEADLINE_SECONDS) reached during "
                            "IMAP %s; the next run goes on from there",
                            s->run_deadline_s, what);
    if (s && s->cap && s->cap->stalled)
        return sh_error_set(err, SH_ETIMEDOUT,
                            "IMAP server stalled: no complete reply to %s within %d s", what,
                            s->cap->command_s);
    if (s && s->cap && s->cap->tripped)
        return s->cap->limit < SYNC__IMAP_REPLY_MAX
                   ? sh_error_set(err, SH_EPROTO,
                                  "IMAP %s: the server's reply before login is larger than %zu "
                                  "KiB; refused",
                                  what, s->cap->limit >> 10)
                   : sh_error_set(err, SH_EPROTO,
                                  "IMAP %s: the server's reply is larger than %zu MiB; refused",
                                  what, SYNC__IMAP_REPLY_MAX >> 20);
    switch (r) {
    case MAILIMAP_ERROR_STREAM:
    case MAILIMAP_ERROR_CONNECTION_REFUSED:
        return sh_error_set(err, SH_EUNAVAIL, "IMAP %s: connection lost or timed out", what);
    case MAILIMAP_ERROR_PARSE:
        return sh_error_set(err, SH_EPROTO, "IMAP %s: malformed server reply", what);
    case MAILIMAP_ERROR_MEMORY:
        return sh_error_set(err, SH_ENOMEM, "IMAP %s: out of memory", what);
    case MAILIMAP_ERROR_LOGIN:
        return sh_error_set(err, SYNC_EAUTH, "IMAP login refused: %.200s", said);
    default:
        return sh_error_set(err, SH_EPROTO, "IMAP %s failed (code %d): %.200s", what, r, said);
    }
}

/* imap_answer_of reads the tagged state and response code of a reply.
 * libetpan moves an unknown code's atom from the reply to the session's
 * response info, where the tagged line's, stored last, is found. */
static void imap_answer_of(const sync_imap *s, const struct mailimap_response *resp,
                           sync__imap_answer *a)
{
    const struct mailimap_response_tagged *t =
        resp && resp->rsp_resp_done ? resp->rsp_resp_done->rsp_data.rsp_tagged : NULL;
    const struct mailimap_resp_cond_state *cs = t ? t->rsp_cond_state : NULL;
    a->state = !cs                                           ? SYNC__IMAP_BAD
               : cs->rsp_type == MAILIMAP_RESP_COND_STATE_OK ? SYNC__IMAP_OK
               : cs->rsp_type == MAILIMAP_RESP_COND_STATE_NO ? SYNC__IMAP_NO
                                                             : SYNC__IMAP_BAD;
    a->code[0] = '\0';
    const struct mailimap_resp_text_code *rc = cs && cs->rsp_text ? cs->rsp_text->rsp_code : NULL;
    const struct mailimap_response_info *ri = s->m->imap_response_info;
    const char *atom = !rc || rc->rc_type != MAILIMAP_RESP_TEXT_CODE_OTHER ? NULL
                       : rc->rc_data.rc_atom.atom_name ? rc->rc_data.rc_atom.atom_name
                       : ri                            ? ri->rsp_atom
                                                       : NULL;
    if (atom)
        snprintf(a->code, sizeof a->code, "%s", atom);
    else if (rc && rc->rc_type == MAILIMAP_RESP_TEXT_CODE_READ_ONLY)
        snprintf(a->code, sizeof a->code, "READ-ONLY");
}

/* imap_go_ahead waits, after a synchronizing literal's count, for the
 * server's "+"; untagged data meanwhile is skipped. Returns
 * MAILIMAP_NO_ERROR on "+", MAILIMAP_ERROR_CUSTOM_COMMAND when the server
 * answered the command instead (its reply is then in the read buffer). */
static int imap_go_ahead(sync_imap *s)
{
    for (int i = 0; i < 1000; i++) {
        const char *line = mailimap_read_line(s->m);
        if (!line)
            return MAILIMAP_ERROR_STREAM;
        if (line[0] == '+')
            return MAILIMAP_NO_ERROR;
        if (line[0] != '*')
            return MAILIMAP_ERROR_CUSTOM_COMMAND;
    }
    return MAILIMAP_ERROR_PARSE;
}

/* imap_exec sends the tag, the command of w and CRLF (waiting for the
 * server at each synchronizing literal), reads the whole reply with
 * libetpan's parser, which files its data in the session (selection info,
 * search and fetch results, extension data), and fills a with the tagged
 * answer. A BAD answer is an answer, not an error; SH_OK then. Errors are
 * those of the connection and of the parser, with err set. */
int sync__imap_exec(sync_imap *s, const sync_wire *w, const char *what, sync__imap_answer *a,
                    sh_error *err)
{
    a->state = SYNC__IMAP_BAD;
    a->code[0] = '\0';
    if (w->err)
        return sh_error_set(err, w->err == SH_ENOMEM ? SH_ENOMEM : SH_EINVAL, "IMAP %s: %s", what,
                            w->why);
    mailstream *st = s->m->imap_stream;
    int r = mailimap_send_current_tag(s->m);
    size_t off = 0;
    bool answered = false;
    for (size_t k = 0; r == MAILIMAP_NO_ERROR && k <= w->nlits; k++) {
        size_t end = k < w->nlits ? w->lits[k] : w->buf.len;
        if (end > off && mailstream_write(st, w->buf.data + off, end - off) < 0)
            r = MAILIMAP_ERROR_STREAM;
        off = end;
        if (r != MAILIMAP_NO_ERROR || k == w->nlits)
            break;
        if (mailstream_flush(st) == -1) {
            r = MAILIMAP_ERROR_STREAM;
            break;
        }
        r = imap_go_ahead(s);
        if (r == MAILIMAP_ERROR_CUSTOM_COMMAND) {
            /* Refused before the literal: the tagged reply is read. */
            answered = true;
            r = MAILIMAP_NO_ERROR;
            break;
        }
    }
    if (r == MAILIMAP_NO_ERROR && !answered) {
        if (mailstream_write(st, "\r\n", 2) < 0 || mailstream_flush(st) == -1)
            r = MAILIMAP_ERROR_STREAM;
        else if (!mailimap_read_line(s->m))
            r = MAILIMAP_ERROR_STREAM;
    }
    struct mailimap_response *resp = NULL;
    if (r == MAILIMAP_NO_ERROR)
        r = mailimap_parse_response(s->m, &resp);
    if (r == MAILIMAP_ERROR_PROTOCOL) {
        /* libetpan's name for a BAD answer (or a wrong tag). */
        return SH_OK;
    }
    if (r != MAILIMAP_NO_ERROR)
        return sync__imap_error(s, r, what, err);
    imap_answer_of(s, resp, a);
    mailimap_response_free(resp);
    return SH_OK;
}

int sync__imap_send(sync_imap *s, const sync_wire *w, const char *what, sh_error *err)
{
    if (w->err)
        return sh_error_set(err, w->err == SH_ENOMEM ? SH_ENOMEM : SH_EINVAL, "IMAP %s: %s", what,
                            w->why);
    if (w->nlits)
        return sh_error_set(err, SH_EINVAL, "IMAP %s: a literal cannot be sent ahead", what);
    if (s->ndue == SYNC__IMAP_DUE_MAX)
        return sh_error_set(err, SH_EINVAL, "IMAP %s: too many commands sent ahead", what);
    mailstream *st = s->m->imap_stream;
    int r = mailimap_send_current_tag(s->m);
    if (r == MAILIMAP_NO_ERROR &&
        (mailstream_write(st, w->buf.data, w->buf.len) < 0 || mailstream_write(st, "\r\n", 2) < 0 ||
         mailstream_flush(st) == -1))
        r = MAILIMAP_ERROR_STREAM;
    if (r != MAILIMAP_NO_ERROR)
        return sync__imap_error(s, r, what, err);
    sync__imap_due *d = &s->due[s->ndue++];
    memset(d, 0, sizeof *d);
    d->tag = s->m->imap_tag;
    return SH_OK;
}

/* imap_tagged_line reads the tag and state of the tagged line that ended
 * the response libetpan parsed last: the last line of its buffer. */
static bool imap_tagged_line(const sync_imap *s, int *tag, sync__imap_state *state)
{
    const MMAPString *b = s->m->imap_stream_buffer;
    if (!b || !b->str || b->len < 2)
        return false;
    size_t end = b->len;
    while (end > 0 && (b->str[end - 1] == '\n' || b->str[end - 1] == '\r'))
        end--;
    size_t at = end;
    while (at > 0 && b->str[at - 1] != '\n')
        at--;
    long t = 0;
    size_t i = at;
    for (; i < end && b->str[i] >= '0' && b->str[i] <= '9' && t < 1000000000; i++)
        t = t * 10 + (b->str[i] - '0');
    if (i == at || i >= end || b->str[i] != ' ')
        return false;
    const char *word = b->str + i + 1;
    size_t left = end - i - 1;
    if (left >= 2 && strncasecmp(word, "OK", 2) == 0)
        *state = SYNC__IMAP_OK;
    else if (left >= 2 && strncasecmp(word, "NO", 2) == 0)
        *state = SYNC__IMAP_NO;
    else if (left >= 3 && strncasecmp(word, "BAD", 3) == 0)
        *state = SYNC__IMAP_BAD;
    else
        return false;
    *tag = (int)t;
    return true;
}

int sync__imap_recv_one(sync_imap *s, const char *what, sh_error *err)
{
    if (s->ndue == 0)
        return sh_error_set(err, SH_EINVAL, "IMAP %s: no reply is due", what);
    /* libetpan checks a reply's tag against the last one it sent: it is
     * told the oldest due, which ends the reply when the server answers
     * in order. A server that runs pipelined commands at once (Dovecot
     * does) may end a younger one first: its tag is then read from the
     * tagged line. */
    int last = s->m->imap_tag;
    s->m->imap_tag = s->due[0].tag;
    int r = mailimap_read_line(s->m) ? MAILIMAP_NO_ERROR : MAILIMAP_ERROR_STREAM;
    struct mailimap_response *resp = NULL;
    if (r == MAILIMAP_NO_ERROR)
        r = mailimap_parse_response(s->m, &resp);
    s->m->imap_tag = last;
    sync__imap_answer a = {.state = SYNC__IMAP_BAD};
    int tag = s->due[0].tag;
    if (r == MAILIMAP_NO_ERROR) {
        imap_answer_of(s, resp, &a);
        mailimap_response_free(resp);
    } else if (r == MAILIMAP_ERROR_PROTOCOL) {
        if (!imap_tagged_line(s, &tag, &a.state))
            return sh_error_set(err, SH_EPROTO, "IMAP %s: malformed server reply", what);
    } else {
        return sync__imap_error(s, r, what, err);
    }
    for (size_t i = 0; i < s->ndue; i++) {
        if (s->due[i].tag == tag && !s->due[i].answered) {
            s->due[i].answered = true;
            s->due[i].answer = a;
            return SH_OK;
        }
    }
    return sh_error_set(err, SH_EPROTO, "IMAP %s: a reply to a command not sent (tag %d)", what,
                        tag);
}

void sync__imap_due_pop(sync_imap *s, sync__imap_answer *a)
{
    *a = s->due[0].answer;
    memmove(s->due, s->due + 1, (s->ndue - 1) * sizeof *s->due);
    s->ndue--;
}

/* imap_said is the text of the server's last tagged answer. */
const char *sync__imap_said(const sync_imap *s)
{
    return s->m->imap_response && s->m->imap_response[0] ? s->m->imap_response : "no reason given";
}

/* imap_refused turns a NO or BAD answer into an error naming the command
 * and the server's words: SH_EPROTO. */
int sync__imap_refused(const sync_imap *s, const sync__imap_answer *a, const char *what,
                       sh_error *err)
{
    return sh_error_set(err, SH_EPROTO, "IMAP %s refused (%s%s%s): %.160s", what,
                        a->state == SYNC__IMAP_BAD ? "BAD" : "NO", a->code[0] ? " " : "", a->code,
                        sync__imap_said(s));
}

/* imap_simple runs a command whose only result is its answer: SH_OK for
 * OK, an error naming the command otherwise. */
int sync__imap_simple(sync_imap *s, const sync_wire *w, const char *what, sh_error *err)
{
    sync__imap_answer a;
    int rc = sync__imap_exec(s, w, what, &a, err);
    if (rc)
        return rc;
    return a.state == SYNC__IMAP_OK ? SH_OK : sync__imap_refused(s, &a, what, err);
}

bool sync__imap_has_cap(sync_imap *s, const char *name)
{
    return mailimap_has_extension(s->m, (char *)name) != 0;
}

void sync__imap_wire_init(sync_imap *s, sync_wire *w)
{
    sync_wire_init(w, s->logged_in && sync__imap_has_cap(s, "LITERAL+"));
}
