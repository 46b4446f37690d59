/* imap.c - the IMAP session of a sync thread, on libetpan (the only file
 * that includes it). libetpan's codes are translated here, with the
 * server's own words kept in the error message; libetpan accepts any TLS
 * certificate, so the chain is checked by tls_verify.c after the handshake. */
#include "imap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libetpan/libetpan.h>

#include "imap_wire.h"
#include "shared/buf.h"
#include "shared/log.h"
#include "shared/secret.h"
#include "shared/util.h"
#include "tls_verify.h"

/* The reading side of a session is wrapped by a stream of our own that
 * counts the bytes of the server's reply to the last command sent: libetpan
 * reads a literal of whatever size the server announces, so a hostile or
 * broken server could otherwise make it read (and hold) gigabytes. */
typedef struct imap_cap {
    mailstream_low *inner;
    size_t used;  /* bytes read since the last write */
    bool tripped; /* a reply went over IMAP_REPLY_MAX */
} imap_cap;

struct sync_imap {
    mailimap *m;
    const char *host;
    imap_cap *cap; /* owned by the stream */
    bool logged_in;
    bool condstore;
    bool qresync; /* ENABLE QRESYNC succeeded */
};

/* The largest field kept from an envelope; longer ones are cut. */
#define IMAP_FIELD_MAX 4096
/* The largest reply to one command (a batch of SYNC_FETCH_BATCH envelopes
 * is a few megabytes at most). */
#define IMAP_REPLY_MAX ((size_t)64 * 1024 * 1024)

static ssize_t imap_cap_read(mailstream_low *s, void *buf, size_t count)
{
    imap_cap *c = s->data;
    if (c->used >= IMAP_REPLY_MAX) {
        c->tripped = true;
        return -1;
    }
    if (count > IMAP_REPLY_MAX - c->used)
        count = IMAP_REPLY_MAX - c->used;
    ssize_t r = mailstream_low_read(c->inner, buf, count);
    if (r > 0)
        c->used += (size_t)r;
    return r;
}

static ssize_t imap_cap_write(mailstream_low *s, const void *buf, size_t count)
{
    imap_cap *c = s->data;
    c->used = 0;
    return mailstream_low_write(c->inner, buf, count);
}

static int imap_cap_close(mailstream_low *s)
{
    imap_cap *c = s->data;
    return mailstream_low_close(c->inner);
}

static int imap_cap_get_fd(mailstream_low *s)
{
    imap_cap *c = s->data;
    return mailstream_low_get_fd(c->inner);
}

static void imap_cap_free(mailstream_low *s)
{
    imap_cap *c = s->data;
    mailstream_low_free(c->inner);
    free(c);
    free(s);
}

static void imap_cap_cancel(mailstream_low *s)
{
    imap_cap *c = s->data;
    mailstream_low_cancel(c->inner);
}

static struct mailstream_cancel *imap_cap_get_cancel(mailstream_low *s)
{
    imap_cap *c = s->data;
    return mailstream_low_get_cancel(c->inner);
}

static carray *imap_cap_chain(mailstream_low *s)
{
    imap_cap *c = s->data;
    return mailstream_low_get_certificate_chain(c->inner);
}

static mailstream_low_driver imap_cap_driver = {
    .mailstream_read = imap_cap_read,
    .mailstream_write = imap_cap_write,
    .mailstream_close = imap_cap_close,
    .mailstream_get_fd = imap_cap_get_fd,
    .mailstream_free = imap_cap_free,
    .mailstream_cancel = imap_cap_cancel,
    .mailstream_get_cancel = imap_cap_get_cancel,
    .mailstream_get_certificate_chain = imap_cap_chain,
};

/* imap_cap_install puts the counting stream in front of the session's. */
static int imap_cap_install(sync_imap *s)
{
    mailstream *st = s->m->imap_stream;
    imap_cap *c = calloc(1, sizeof *c);
    mailstream_low *low = c ? mailstream_low_new(c, &imap_cap_driver) : NULL;
    if (!low) {
        free(c);
        return SH_ENOMEM;
    }
    c->inner = mailstream_get_low(st);
    mailstream_set_low(st, low);
    s->cap = c;
    return SH_OK;
}

/* imap_utf8 appends s (len bytes) to out as valid UTF-8: control bytes
 * become spaces and invalid sequences '?'. */
static int imap_utf8(sh_buf *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    if (len > IMAP_FIELD_MAX)
        len = IMAP_FIELD_MAX;
    while (i < len) {
        /* A run of printable ASCII goes in one piece. */
        size_t run = i;
        while (run < len && p[run] >= 0x20 && p[run] < 0x7f)
            run++;
        if (run > i && sh_buf_append(out, p + i, run - i))
            return SH_ENOMEM;
        i = run;
        if (i == len)
            break;
        unsigned char c = p[i];
        size_t need = c < 0x80             ? 0
                      : (c & 0xE0) == 0xC0 ? 1
                      : (c & 0xF0) == 0xE0 ? 2
                      : (c & 0xF8) == 0xF0 ? 3
                                           : 9;
        if (need == 0) {
            /* a control character */
            if (sh_buf_append(out, " ", 1))
                return SH_ENOMEM;
            i++;
            continue;
        }
        bool ok = need <= 3 && i + need < len;
        for (size_t k = 1; ok && k <= need; k++)
            if ((p[i + k] & 0xC0) != 0x80)
                ok = false;
        if (ok && need == 1 && c < 0xC2)
            ok = false;
        if (ok && need == 3 && c > 0xF4)
            ok = false;
        if (!ok) {
            if (sh_buf_append(out, "?", 1))
                return SH_ENOMEM;
            i++;
            continue;
        }
        if (sh_buf_append(out, p + i, need + 1))
            return SH_ENOMEM;
        i += need + 1;
    }
    return SH_OK;
}

/* imap_text appends a header text (possibly with MIME encoded words),
 * decoded to UTF-8. */
static int imap_text(sh_buf *out, const char *s)
{
    if (!s)
        return SH_OK;
    size_t len = strlen(s), idx = 0;
    char *dec = NULL;
    /* Only a text with an encoded word ("=?charset?enc?text?=") needs
     * decoding, which opens a character set converter each time. */
    if (len <= IMAP_FIELD_MAX && strstr(s, "=?") &&
        mailmime_encoded_phrase_parse("utf-8", s, len, &idx, "utf-8", &dec) == MAILIMF_NO_ERROR &&
        dec) {
        int rc = imap_utf8(out, dec, strlen(dec));
        free(dec);
        return rc;
    }
    free(dec);
    return imap_utf8(out, s, len);
}

/* imap_addresses appends "Name <box@host>, ..." for an address list. */
static int imap_addresses(sh_buf *out, clist *list)
{
    if (!list)
        return SH_OK;
    bool first = true;
    for (clistiter *it = clist_begin(list); it; it = clist_next(it)) {
        struct mailimap_address *a = clist_content(it);
        if (!a || !a->ad_mailbox_name || !a->ad_host_name)
            continue; /* group syntax markers */
        int rc = first ? SH_OK : sh_buf_puts(out, ", ");
        first = false;
        if (!rc && a->ad_personal_name && a->ad_personal_name[0]) {
            rc = imap_text(out, a->ad_personal_name);
            rc = rc ? rc : sh_buf_puts(out, " <");
        }
        if (!rc)
            rc = imap_utf8(out, a->ad_mailbox_name, strlen(a->ad_mailbox_name));
        if (!rc)
            rc = sh_buf_puts(out, "@");
        if (!rc)
            rc = imap_utf8(out, a->ad_host_name, strlen(a->ad_host_name));
        if (!rc && a->ad_personal_name && a->ad_personal_name[0])
            rc = sh_buf_puts(out, ">");
        if (rc)
            return rc;
        if (out->len > IMAP_FIELD_MAX)
            break;
    }
    return SH_OK;
}

static int imap_error(sync_imap *s, int r, const char *what, sh_error *err)
{
    const char *said = s && s->m && s->m->imap_response ? s->m->imap_response : "";
    if (s && s->cap && s->cap->tripped)
        return sh_error_set(err, SH_EPROTO,
                            "IMAP %s: the server's reply is larger than %zu MiB; refused", what,
                            IMAP_REPLY_MAX >> 20);
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

/* imap_check_cert verifies the TLS peer of the session. */
static int imap_check_cert(sync_imap *s, const sync_imap_opts *o, sh_error *err)
{
    carray *chain = mailstream_get_certificate_chain(s->m->imap_stream);
    size_t n = chain ? carray_count(chain) : 0;
    sync_der *ders = calloc(n ? n : 1, sizeof *ders);
    int rc;
    if (!ders) {
        rc = sh_error_set(err, SH_ENOMEM, "out of memory");
    } else {
        for (size_t i = 0; i < n; i++) {
            MMAPString *str = carray_get(chain, (unsigned)i);
            ders[i].data = (const unsigned char *)str->str;
            ders[i].len = str->len;
        }
        rc = sync_tls_verify(ders, n, o->host, o->ca_file, err);
    }
    free(ders);
    for (size_t i = 0; i < n; i++)
        mmap_string_free(carray_get(chain, (unsigned)i));
    if (chain)
        carray_free(chain);
    return rc;
}

int sync_imap_open(const sync_imap_opts *o, sync_imap **out, sh_error *err)
{
    *out = NULL;
    if (o->port < 1 || o->port > 65535)
        return sh_error_set(err, SH_EINVAL, "invalid IMAP port %d", o->port);
    sync_imap *s = calloc(1, sizeof *s);
    if (!s || !(s->m = mailimap_new(0, NULL))) {
        free(s);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    s->host = o->host;
    mailimap_set_timeout(s->m, o->connect_timeout_s);
    int r, rc = SH_OK;
    if (o->security == SYNC_SEC_TLS)
        r = mailimap_ssl_connect(s->m, o->host, (uint16_t)o->port);
    else
        r = mailimap_socket_connect(s->m, o->host, (uint16_t)o->port);
    if (r != MAILIMAP_NO_ERROR_AUTHENTICATED && r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED) {
        rc = sh_error_set(err, SH_EUNAVAIL, "cannot connect to %s:%d%s (code %d)", o->host, o->port,
                          o->security == SYNC_SEC_TLS ? " with TLS" : "", r);
        goto fail;
    }
    if (o->security == SYNC_SEC_STARTTLS) {
        r = mailimap_socket_starttls(s->m);
        if (r != MAILIMAP_NO_ERROR) {
            rc = sh_error_set(err, SH_EUNAVAIL, "STARTTLS with %s:%d failed (code %d)", o->host,
                              o->port, r);
            goto fail;
        }
    }
    if (o->security != SYNC_SEC_NONE && o->tls_verify) {
        rc = imap_check_cert(s, o, err);
        if (rc)
            goto fail;
    }
    mailimap_set_timeout(s->m, o->command_timeout_s);
    if (s->m->imap_stream)
        mailstream_low_set_timeout(mailstream_get_low(s->m->imap_stream), o->command_timeout_s);
    if (!s->m->imap_stream || imap_cap_install(s)) {
        rc = sh_error_set(err, SH_ENOMEM, "out of memory");
        goto fail;
    }
    *out = s;
    return SH_OK;
fail:
    sync_imap_free(s);
    return rc;
}

void sync_imap_free(sync_imap *s)
{
    if (!s)
        return;
    if (s->m) {
        if (s->logged_in && s->m->imap_stream)
            mailimap_logout(s->m);
        mailimap_free(s->m);
    }
    free(s);
}

/* The type of libetpan's ENABLED data: MAILIMAP_ENABLE_TYPE_ENABLE, the
 * first of an enum private to its enable.c. */
#define IMAP_ENABLE_TYPE_ENABLE 0

/* An IMAP command's tagged answer. */
typedef enum imap_state {
    IMAP_OK,
    IMAP_NO,
    IMAP_BAD,
} imap_state;

typedef struct imap_answer {
    imap_state state;
    char code[32]; /* the response code's atom ("UNAVAILABLE"), "" when none */
} imap_answer;

/* imap_answer_of reads the tagged state and response code of a reply.
 * libetpan moves an unknown code's atom from the reply to the session's
 * response info, where the tagged line's, stored last, is found. */
static void imap_answer_of(const sync_imap *s, const struct mailimap_response *resp, imap_answer *a)
{
    const struct mailimap_response_tagged *t =
        resp && resp->rsp_resp_done ? resp->rsp_resp_done->rsp_data.rsp_tagged : NULL;
    const struct mailimap_resp_cond_state *cs = t ? t->rsp_cond_state : NULL;
    a->state = !cs                                           ? IMAP_BAD
               : cs->rsp_type == MAILIMAP_RESP_COND_STATE_OK ? IMAP_OK
               : cs->rsp_type == MAILIMAP_RESP_COND_STATE_NO ? IMAP_NO
                                                             : IMAP_BAD;
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
static int imap_exec(sync_imap *s, const sync_wire *w, const char *what, imap_answer *a,
                     sh_error *err)
{
    a->state = IMAP_BAD;
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
        return imap_error(s, r, what, err);
    imap_answer_of(s, resp, a);
    mailimap_response_free(resp);
    return SH_OK;
}

/* imap_said is the text of the server's last tagged answer. */
static const char *imap_said(const sync_imap *s)
{
    return s->m->imap_response && s->m->imap_response[0] ? s->m->imap_response : "no reason given";
}

/* imap_refused turns a NO or BAD answer into an error naming the command
 * and the server's words: SH_EPROTO. */
static int imap_refused(const sync_imap *s, const imap_answer *a, const char *what, sh_error *err)
{
    return sh_error_set(err, SH_EPROTO, "IMAP %s refused (%s%s%s): %.160s", what,
                        a->state == IMAP_BAD ? "BAD" : "NO", a->code[0] ? " " : "", a->code,
                        imap_said(s));
}

/* imap_simple runs a command whose only result is its answer: SH_OK for
 * OK, an error naming the command otherwise. */
static int imap_simple(sync_imap *s, const sync_wire *w, const char *what, sh_error *err)
{
    imap_answer a;
    int rc = imap_exec(s, w, what, &a, err);
    if (rc)
        return rc;
    return a.state == IMAP_OK ? SH_OK : imap_refused(s, &a, what, err);
}

static bool imap_has_cap(sync_imap *s, const char *name)
{
    return mailimap_has_extension(s->m, (char *)name) != 0;
}

static void imap_wire_init(sync_imap *s, sync_wire *w)
{
    sync_wire_init(w, s->logged_in && imap_has_cap(s, "LITERAL+"));
}

/* imap_enable_qresync sends ENABLE QRESYNC (RFC 7162), which VANISHED needs.
 * A server that answers NO is synced without it. */
static int imap_enable_qresync(sync_imap *s, sh_error *err)
{
    sync_wire w;
    imap_wire_init(s, &w);
    sync_wire_raw(&w, "ENABLE QRESYNC");
    imap_answer a;
    int rc = imap_exec(s, &w, "ENABLE", &a, err);
    sync_wire_fini(&w);
    if (rc)
        return rc;
    const struct mailimap_response_info *ri = s->m->imap_response_info;
    for (clistiter *it = ri && ri->rsp_extension_list ? clist_begin(ri->rsp_extension_list) : NULL;
         it && a.state == IMAP_OK; it = clist_next(it)) {
        const struct mailimap_extension_data *ed = clist_content(it);
        if (!ed || ed->ext_extension->ext_id != MAILIMAP_EXTENSION_ENABLE ||
            ed->ext_type != IMAP_ENABLE_TYPE_ENABLE || !ed->ext_data)
            continue;
        const struct mailimap_capability_data *got = ed->ext_data;
        for (clistiter *c = got->cap_list ? clist_begin(got->cap_list) : NULL; c;
             c = clist_next(c)) {
            const struct mailimap_capability *cap = clist_content(c);
            if (cap && cap->cap_type == MAILIMAP_CAPABILITY_NAME && cap->cap_data.cap_name &&
                strcasecmp(cap->cap_data.cap_name, "QRESYNC") == 0)
                s->qresync = true;
        }
    }
    return SH_OK;
}

int sync_imap_login(sync_imap *s, const char *user, const char *password, sh_error *err)
{
    /* The capabilities before login are forgotten: most servers list the
     * new ones in LOGIN's reply ([CAPABILITY ...], which libetpan keeps),
     * the others are asked. */
    struct mailimap_connection_info *ci = s->m->imap_connection_info;
    if (ci && ci->imap_capability) {
        mailimap_capability_data_free(ci->imap_capability);
        ci->imap_capability = NULL;
    }
    sync_wire w;
    sync_wire_init(&w, false);
    sync_wire_raw(&w, "LOGIN ");
    sync_wire_astring(&w, user, strlen(user));
    sync_wire_raw(&w, " ");
    sync_wire_astring(&w, password, strlen(password));
    imap_answer a;
    /* The logger, when one is set, is told the password is private. */
    mailstream_set_privacy(s->m->imap_stream, 0);
    int rc = imap_exec(s, &w, "LOGIN", &a, err);
    mailstream_set_privacy(s->m->imap_stream, 1);
    sh_wipe(w.buf.data, w.buf.len);
    sync_wire_fini(&w);
    if (rc)
        return rc;
    if (a.state != IMAP_OK)
        return sh_error_set(err, SYNC_EAUTH, "IMAP login refused: %.200s", imap_said(s));
    s->m->imap_state = MAILIMAP_STATE_AUTHENTICATED;
    s->logged_in = true;
    ci = s->m->imap_connection_info;
    if (!ci || !ci->imap_capability) {
        struct mailimap_capability_data *caps = NULL;
        int r = mailimap_capability(s->m, &caps);
        if (caps)
            mailimap_capability_data_free(caps);
        if (r != MAILIMAP_NO_ERROR)
            return imap_error(s, r, "CAPABILITY", err);
    }
    s->condstore = mailimap_has_condstore(s->m) != 0;
    if (s->condstore && mailimap_has_qresync(s->m))
        return imap_enable_qresync(s, err);
    return SH_OK;
}

bool sync_imap_has_condstore(const sync_imap *s)
{
    return s->condstore;
}

bool sync_imap_has_qresync(const sync_imap *s)
{
    return s->qresync;
}

/* imap_special reports whether a LIST entry carries \Sent or \Drafts. */
static bool imap_special(const struct mailimap_mailbox_list *mb)
{
    if (!mb->mb_flag || !mb->mb_flag->mbf_oflags)
        return false;
    for (clistiter *it = clist_begin(mb->mb_flag->mbf_oflags); it; it = clist_next(it)) {
        const struct mailimap_mbx_list_oflag *of = clist_content(it);
        const char *f =
            of && of->of_type == MAILIMAP_MBX_LIST_OFLAG_FLAG_EXT ? of->of_flag_ext : NULL;
        if (f && f[0] == '\\')
            f++;
        if (f && (strcasecmp(f, "Sent") == 0 || strcasecmp(f, "Drafts") == 0))
            return true;
    }
    return false;
}

int sync_imap_special_use(sync_imap *s, char ***names, size_t *n, sh_error *err)
{
    *names = NULL;
    *n = 0;
    if (!imap_has_cap(s, "SPECIAL-USE"))
        return SH_OK;
    sync_wire w;
    imap_wire_init(s, &w);
    sync_wire_raw(&w, "LIST \"\" *");
    int rc = imap_simple(s, &w, "LIST", err);
    sync_wire_fini(&w);
    if (rc)
        return rc;
    struct mailimap_response_info *ri = s->m->imap_response_info;
    clist *list = ri ? ri->rsp_mailbox_list : NULL;
    if (ri)
        ri->rsp_mailbox_list = NULL;
    size_t count = list ? (size_t)clist_count(list) : 0, k = 0;
    char **v = calloc(count ? count : 1, sizeof *v);
    rc = v ? SH_OK : sh_error_set(err, SH_ENOMEM, "out of memory");
    sh_buf name;
    sh_buf_init(&name);
    for (clistiter *it = list && v ? clist_begin(list) : NULL; it && !rc; it = clist_next(it)) {
        const struct mailimap_mailbox_list *mb = clist_content(it);
        if (!mb || !mb->mb_name || !imap_special(mb))
            continue;
        /* Names come in modified UTF-7; the rest of the worker, Redis and
         * the API use UTF-8. A name that does not decode is left out. */
        sh_buf_reset(&name);
        int d = sync_mutf7_decode(&name, mb->mb_name, strlen(mb->mb_name));
        if (d == SH_ENOMEM) {
            rc = sh_error_set(err, SH_ENOMEM, "out of memory");
        } else if (d) {
            sh_log_warn("folder_name_invalid",
                        "host=%s folder=%.100s: not modified UTF-7; not synced", s->host,
                        mb->mb_name);
        } else if (!(v[k++] = strdup(name.data ? name.data : ""))) {
            rc = sh_error_set(err, SH_ENOMEM, "out of memory");
        }
    }
    sh_buf_fini(&name);
    if (list)
        mailimap_list_result_free(list);
    if (rc) {
        for (size_t i = 0; v && i < k; i++)
            free(v[i]);
        free(v);
        return rc;
    }
    *names = v;
    *n = k;
    return SH_OK;
}

/* imap_highestmodseq is the HIGHESTMODSEQ of the last SELECT's reply (0
 * with NOMODSEQ or none). */
static uint64_t imap_highestmodseq(const sync_imap *s)
{
    uint64_t modseq = 0;
    const struct mailimap_response_info *ri = s->m->imap_response_info;
    for (clistiter *it = ri && ri->rsp_extension_list ? clist_begin(ri->rsp_extension_list) : NULL;
         it; it = clist_next(it)) {
        const struct mailimap_extension_data *ed = clist_content(it);
        if (!ed || ed->ext_extension->ext_id != MAILIMAP_EXTENSION_CONDSTORE ||
            ed->ext_type != MAILIMAP_CONDSTORE_TYPE_RESP_TEXT_CODE || !ed->ext_data)
            continue;
        const struct mailimap_condstore_resptextcode *c = ed->ext_data;
        if (c->cs_type == MAILIMAP_CONDSTORE_RESPTEXTCODE_HIGHESTMODSEQ)
            modseq = c->cs_data.cs_modseq_value;
        else if (c->cs_type == MAILIMAP_CONDSTORE_RESPTEXTCODE_NOMODSEQ)
            modseq = 0;
    }
    return modseq;
}

int sync_imap_select(sync_imap *s, const char *folder, sync_folder_info *info, sh_error *err)
{
    memset(info, 0, sizeof *info);
    sync_wire w;
    imap_wire_init(s, &w);
    sync_wire_raw(&w, "SELECT ");
    sync_wire_mailbox(&w, folder);
    if (s->condstore)
        sync_wire_raw(&w, " (CONDSTORE)");
    if (s->m->imap_selection_info)
        mailimap_selection_info_free(s->m->imap_selection_info);
    s->m->imap_selection_info = mailimap_selection_info_new();
    s->m->imap_state = MAILIMAP_STATE_AUTHENTICATED;
    imap_answer a;
    int rc = s->m->imap_selection_info ? imap_exec(s, &w, "SELECT", &a, err)
                                       : sh_error_set(err, SH_ENOMEM, "out of memory");
    sync_wire_fini(&w);
    if (rc)
        return rc;
    if (a.state != IMAP_OK)
        return sh_error_set(err, SH_EPROTO, "IMAP SELECT %.100s refused: %.120s", folder,
                            imap_said(s));
    s->m->imap_state = MAILIMAP_STATE_SELECTED;
    struct mailimap_selection_info *sel = s->m->imap_selection_info;
    if (!sel || sel->sel_uidvalidity == 0)
        return sh_error_set(err, SH_EPROTO, "IMAP SELECT %.100s: no UIDVALIDITY in the reply",
                            folder);
    info->uidvalidity = sel->sel_uidvalidity;
    info->uidnext = sel->sel_uidnext;
    info->exists = sel->sel_exists;
    info->highestmodseq = s->condstore ? imap_highestmodseq(s) : 0;
    return SH_OK;
}

static int imap_uid_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int sync_imap_search(sync_imap *s, uint32_t from, uint32_t **uids, size_t *n, sh_error *err)
{
    *uids = NULL;
    *n = 0;
    sync_wire w;
    imap_wire_init(s, &w);
    if (from <= 1) {
        sync_wire_raw(&w, "UID SEARCH ALL");
    } else {
        sync_wire_raw(&w, "UID SEARCH UID ");
        sync_wire_num(&w, from);
        sync_wire_raw(&w, ":*");
    }
    int rc = imap_simple(s, &w, "UID SEARCH", err);
    sync_wire_fini(&w);
    struct mailimap_response_info *ri = s->m->imap_response_info;
    clist *res = ri ? ri->rsp_search_result : NULL;
    if (ri)
        ri->rsp_search_result = NULL;
    if (rc) {
        if (res)
            mailimap_search_result_free(res);
        return rc;
    }
    size_t count = res ? (size_t)clist_count(res) : 0;
    uint32_t *v = malloc((count ? count : 1) * sizeof *v);
    if (!v) {
        if (res)
            mailimap_search_result_free(res);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    size_t k = 0;
    for (clistiter *it = res ? clist_begin(res) : NULL; it; it = clist_next(it)) {
        uint32_t *u = clist_content(it);
        /* "from:*" names the last message even when its UID is below from. */
        if (u && *u && *u >= from)
            v[k++] = *u;
    }
    if (res)
        mailimap_search_result_free(res);
    qsort(v, k, sizeof *v, imap_uid_cmp);
    size_t o = 0;
    for (size_t i = 0; i < k; i++)
        if (o == 0 || v[o - 1] != v[i])
            v[o++] = v[i];
    *uids = v;
    *n = o;
    return SH_OK;
}

static void imap_iso(const struct mailimap_date_time *d, char out[SH_ISO_LEN])
{
    struct tm tm = {0};
    tm.tm_year = d->dt_year - 1900;
    tm.tm_mon = d->dt_month - 1;
    tm.tm_mday = d->dt_day;
    tm.tm_hour = d->dt_hour;
    tm.tm_min = d->dt_min;
    tm.tm_sec = d->dt_sec;
    int zone = d->dt_zone, sign = zone < 0 ? -1 : 1;
    zone *= sign;
    long offset = sign * ((zone / 100) * 60 + zone % 100) * 60L;
    time_t t = timegm(&tm) - offset;
    sh_iso8601((int64_t)t * 1000, out);
}

static int imap_flags(sh_buf *out, struct mailimap_msg_att_dynamic *dyn)
{
    if (!dyn || !dyn->att_list)
        return SH_OK;
    for (clistiter *it = clist_begin(dyn->att_list); it; it = clist_next(it)) {
        struct mailimap_flag_fetch *ff = clist_content(it);
        const char *name = NULL;
        if (!ff)
            continue;
        if (ff->fl_type == MAILIMAP_FLAG_FETCH_RECENT) {
            name = "\\Recent";
        } else if (ff->fl_flag) {
            switch (ff->fl_flag->fl_type) {
            case MAILIMAP_FLAG_ANSWERED:
                name = "\\Answered";
                break;
            case MAILIMAP_FLAG_FLAGGED:
                name = "\\Flagged";
                break;
            case MAILIMAP_FLAG_DELETED:
                name = "\\Deleted";
                break;
            case MAILIMAP_FLAG_SEEN:
                name = "\\Seen";
                break;
            case MAILIMAP_FLAG_DRAFT:
                name = "\\Draft";
                break;
            case MAILIMAP_FLAG_KEYWORD:
                name = ff->fl_flag->fl_data.fl_keyword;
                break;
            case MAILIMAP_FLAG_EXTENSION:
                name = ff->fl_flag->fl_data.fl_extension;
                break;
            default:
                break;
            }
        }
        /* \Recent is session state, not a stored flag. */
        if (!name || strcmp(name, "\\Recent") == 0)
            continue;
        if ((out->len && sh_buf_puts(out, " ")) || imap_utf8(out, name, strlen(name)))
            return SH_ENOMEM;
        if (out->len > IMAP_FIELD_MAX)
            break;
    }
    return SH_OK;
}

/* The text fields of one message being decoded. */
typedef struct imap_fields {
    sh_buf flags, subject, from, to, cc, date, message_id;
} imap_fields;

static void imap_fields_reset(imap_fields *f, bool fini)
{
    sh_buf *all[] = {&f->flags, &f->subject, &f->from, &f->to, &f->cc, &f->date, &f->message_id};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (fini)
            sh_buf_fini(all[i]);
        else
            sh_buf_reset(all[i]);
    }
}

static const char *imap_str(const sh_buf *b)
{
    return b->data ? b->data : "";
}

/* imap_decode turns one msg_att into a sync_msg and hands it to cb. */
static int imap_decode(struct mailimap_msg_att *att, bool full, imap_fields *f, sync_msg_fn cb,
                       void *arg, sh_error *err)
{
    sync_msg m;
    memset(&m, 0, sizeof m);
    char iso[SH_ISO_LEN] = "";
    bool has_flags = false, has_env = false, has_size = false, has_date = false;
    imap_fields_reset(f, false);
    int rc = SH_OK;
    for (clistiter *it = att->att_list ? clist_begin(att->att_list) : NULL; it && !rc;
         it = clist_next(it)) {
        struct mailimap_msg_att_item *item = clist_content(it);
        if (!item)
            continue;
        if (item->att_type == MAILIMAP_MSG_ATT_ITEM_DYNAMIC) {
            has_flags = true;
            rc = imap_flags(&f->flags, item->att_data.att_dyn);
            continue;
        }
        if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC || !item->att_data.att_static)
            continue;
        struct mailimap_msg_att_static *st = item->att_data.att_static;
        switch (st->att_type) {
        case MAILIMAP_MSG_ATT_UID:
            m.uid = st->att_data.att_uid;
            break;
        case MAILIMAP_MSG_ATT_RFC822_SIZE:
            m.size = st->att_data.att_rfc822_size;
            has_size = true;
            break;
        case MAILIMAP_MSG_ATT_INTERNALDATE:
            if (st->att_data.att_internal_date) {
                imap_iso(st->att_data.att_internal_date, iso);
                has_date = true;
            }
            break;
        case MAILIMAP_MSG_ATT_ENVELOPE: {
            struct mailimap_envelope *e = st->att_data.att_env;
            if (!e)
                break;
            has_env = true;
            rc = imap_text(&f->subject, e->env_subject);
            if (!rc && e->env_from)
                rc = imap_addresses(&f->from, e->env_from->frm_list);
            if (!rc && e->env_to)
                rc = imap_addresses(&f->to, e->env_to->to_list);
            if (!rc && e->env_cc)
                rc = imap_addresses(&f->cc, e->env_cc->cc_list);
            if (!rc && e->env_date)
                rc = imap_utf8(&f->date, e->env_date, strlen(e->env_date));
            if (!rc && e->env_message_id)
                rc = imap_utf8(&f->message_id, e->env_message_id, strlen(e->env_message_id));
            break;
        }
        default:
            break;
        }
    }
    if (rc)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    if (m.uid == 0 || !has_flags || (full && (!has_env || !has_size || !has_date)))
        return sh_error_set(err, SH_EPROTO,
                            "IMAP FETCH: the server's reply for message %u lacks %s",
                            att->att_number,
                            m.uid == 0   ? "its UID"
                            : !has_flags ? "FLAGS"
                                         : "a requested field");
    m.flags = imap_str(&f->flags);
    m.internal_date = iso;
    m.subject = imap_str(&f->subject);
    m.from = imap_str(&f->from);
    m.to = imap_str(&f->to);
    m.cc = imap_str(&f->cc);
    m.date = imap_str(&f->date);
    m.message_id = imap_str(&f->message_id);
    rc = cb(arg, &m);
    if (rc && err && err->code == SH_OK)
        sh_error_set(err, rc, "storing message %u failed", m.uid);
    return rc;
}

/* imap_fetch_results runs cb on each message of a fetch's results and
 * frees them. */
static int imap_fetch_results(clist *res, bool full, sync_msg_fn cb, void *arg, sh_error *err)
{
    int rc = SH_OK;
    imap_fields f;
    memset(&f, 0, sizeof f);
    for (clistiter *it = res ? clist_begin(res) : NULL; it && !rc; it = clist_next(it)) {
        struct mailimap_msg_att *att = clist_content(it);
        if (att)
            rc = imap_decode(att, full, &f, cb, arg, err);
    }
    imap_fields_reset(&f, true);
    if (res)
        mailimap_fetch_list_free(res);
    return rc;
}

/* imap_fetch_cmd composes UID FETCH of the n uids (1:* when NULL), with the
 * attributes a full or a flags-only fetch asks for, and the modifier
 * (a parenthesised list, or NULL). */
static void imap_fetch_cmd(sync_wire *w, const uint32_t *uids, size_t n, bool full,
                           const char *modifier)
{
    sync_wire_raw(w, "UID FETCH ");
    if (uids)
        sync_wire_set(w, uids, n);
    else
        sync_wire_raw(w, "1:*");
    sync_wire_raw(w, full ? " (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)" : " (UID FLAGS)");
    if (modifier) {
        sync_wire_raw(w, " ");
        sync_wire_raw(w, modifier);
    }
}

/* imap_fetch_run sends a UID FETCH and takes its results from the session. */
static int imap_fetch_run(sync_imap *s, const sync_wire *w, const char *what, clist **res,
                          sh_error *err)
{
    int rc = imap_simple(s, w, what, err);
    struct mailimap_response_info *ri = s->m->imap_response_info;
    *res = ri ? ri->rsp_fetch_list : NULL;
    if (ri)
        ri->rsp_fetch_list = NULL;
    if (rc && *res) {
        mailimap_fetch_list_free(*res);
        *res = NULL;
    }
    return rc;
}

int sync_imap_fetch(sync_imap *s, const uint32_t *uids, size_t n, bool full, uint64_t changedsince,
                    sync_msg_fn cb, void *arg, sh_error *err)
{
    if (uids && n == 0)
        return SH_OK;
    char mod[48];
    snprintf(mod, sizeof mod, "(CHANGEDSINCE %llu)", (unsigned long long)changedsince);
    sync_wire w;
    imap_wire_init(s, &w);
    imap_fetch_cmd(&w, uids, n, full, changedsince ? mod : NULL);
    clist *res = NULL;
    int rc = imap_fetch_run(s, &w, "UID FETCH", &res, err);
    sync_wire_fini(&w);
    return rc ? rc : imap_fetch_results(res, full, cb, arg, err);
}

/* imap_ranges_add appends the UIDs of set, cut to 1..hi, to *out. */
static int imap_ranges_add(const struct mailimap_set *set, uint32_t hi, sync_uid_range **out,
                           size_t *n, size_t *cap)
{
    for (clistiter *it = set && set->set_list ? clist_begin(set->set_list) : NULL; it;
         it = clist_next(it)) {
        const struct mailimap_set_item *item = clist_content(it);
        if (!item)
            continue;
        /* 0 stands for "*": the largest UID. */
        uint32_t lo = item->set_first ? item->set_first : hi;
        uint32_t up = item->set_last ? item->set_last : hi;
        if (lo > up) {
            uint32_t t = lo;
            lo = up;
            up = t;
        }
        if (lo > hi)
            continue;
        if (up > hi)
            up = hi;
        if (*n == *cap) {
            size_t c = *cap ? *cap * 2 : 16;
            sync_uid_range *v = realloc(*out, c * sizeof *v);
            if (!v)
                return SH_ENOMEM;
            *out = v;
            *cap = c;
        }
        (*out)[(*n)++] = (sync_uid_range){lo, up};
    }
    return SH_OK;
}

int sync_imap_changes(sync_imap *s, uint32_t hi, uint64_t modseq, sync_msg_fn cb, void *arg,
                      sync_uid_range **gone, size_t *ngone, sh_error *err)
{
    *gone = NULL;
    *ngone = 0;
    if (!s->qresync || hi == 0 || modseq == 0)
        return sh_error_set(err, SH_EINVAL, "IMAP UID FETCH VANISHED needs QRESYNC and a state");
    char mod[64];
    snprintf(mod, sizeof mod, "(CHANGEDSINCE %llu VANISHED)", (unsigned long long)modseq);
    sync_wire w;
    imap_wire_init(s, &w);
    sync_wire_raw(&w, "UID FETCH 1:");
    sync_wire_num(&w, hi);
    sync_wire_raw(&w, " (UID FLAGS) ");
    sync_wire_raw(&w, mod);
    clist *res = NULL;
    int rc = imap_fetch_run(s, &w, "UID FETCH (CHANGEDSINCE VANISHED)", &res, err);
    sync_wire_fini(&w);
    if (rc)
        return rc;
    /* Every VANISHED response is in the reply's extension data (the server
     * may split them, or report expunges as they happen). */
    size_t cap = 0;
    const struct mailimap_response_info *ri = s->m->imap_response_info;
    for (clistiter *it = ri && ri->rsp_extension_list ? clist_begin(ri->rsp_extension_list) : NULL;
         it && !rc; it = clist_next(it)) {
        const struct mailimap_extension_data *ed = clist_content(it);
        if (!ed || ed->ext_extension != &mailimap_extension_qresync ||
            ed->ext_type != MAILIMAP_QRESYNC_TYPE_VANISHED || !ed->ext_data)
            continue;
        const struct mailimap_qresync_vanished *v = ed->ext_data;
        rc = imap_ranges_add(v->qr_known_uids, hi, gone, ngone, &cap);
    }
    if (rc) {
        if (res)
            mailimap_fetch_list_free(res);
        rc = sh_error_set(err, SH_ENOMEM, "out of memory");
    } else {
        rc = imap_fetch_results(res, false, cb, arg, err);
    }
    if (rc) {
        free(*gone);
        *gone = NULL;
        *ngone = 0;
    }
    return rc;
}

/* imap_modified reports whether the last tagged reply carried a MODIFIED
 * response code (RFC 7162): the UNCHANGEDSINCE test failed. */
static bool imap_modified(const sync_imap *s)
{
    const struct mailimap_response_info *ri = s->m->imap_response_info;
    for (clistiter *it = ri && ri->rsp_extension_list ? clist_begin(ri->rsp_extension_list) : NULL;
         it; it = clist_next(it)) {
        const struct mailimap_extension_data *ed = clist_content(it);
        if (!ed || ed->ext_extension != &mailimap_extension_condstore ||
            ed->ext_type != MAILIMAP_CONDSTORE_TYPE_RESP_TEXT_CODE || !ed->ext_data)
            continue;
        const struct mailimap_condstore_resptextcode *c = ed->ext_data;
        if (c->cs_type == MAILIMAP_CONDSTORE_RESPTEXTCODE_MODIFIED)
            return true;
    }
    return false;
}

/* imap_temporary tells whether a NO to a STORE may go away by itself
 * (RFC 5530 codes for a busy or unavailable server, or no code at all). */
static bool imap_temporary(const imap_answer *a)
{
    static const char *const codes[] = {"", "UNAVAILABLE", "INUSE", "LIMIT", "SERVERBUG", NULL};
    if (a->state != IMAP_NO)
        return false;
    for (size_t i = 0; codes[i]; i++)
        if (strcasecmp(a->code, codes[i]) == 0)
            return true;
    return false;
}

int sync_imap_store_seen(sync_imap *s, uint32_t uid, bool seen, uint64_t unchangedsince,
                         bool *modified, sh_error *err)
{
    *modified = false;
    sync_wire w;
    imap_wire_init(s, &w);
    sync_wire_raw(&w, "UID STORE ");
    sync_wire_num(&w, uid);
    if (unchangedsince && s->condstore) {
        sync_wire_raw(&w, " (UNCHANGEDSINCE ");
        sync_wire_num(&w, unchangedsince);
        sync_wire_raw(&w, ")");
    }
    sync_wire_raw(&w, seen ? " +FLAGS.SILENT (\\Seen)" : " -FLAGS.SILENT (\\Seen)");
#ifdef SYNC_TEST_HOOKS
    /* Test builds only: a command made malformed on purpose, to prove
     * that the strict test server catches what a lenient one lets by. */
    const char *fault = getenv("SYNC_TEST_WIRE_FAULT");
    if (fault && strcmp(fault, "trailing-space") == 0)
        sync_wire_raw(&w, " ");
#endif
    imap_answer a;
    int rc = imap_exec(s, &w, "UID STORE", &a, err);
    sync_wire_fini(&w);
    if (rc)
        return rc;
    if (a.state == IMAP_OK) {
        *modified = imap_modified(s);
        return SH_OK;
    }
    imap_refused(s, &a, "UID STORE", err);
    int code = imap_temporary(&a) ? SYNC_ETRYLATER : SYNC_EREFUSED;
    if (err)
        err->code = code;
    return code;
}
