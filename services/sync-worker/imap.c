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

#include "shared/buf.h"
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

/* imap_enable_qresync sends ENABLE QRESYNC (RFC 7162), which VANISHED needs.
 * A server that answers NO is synced without it. */
static int imap_enable_qresync(sync_imap *s, sh_error *err)
{
    clist *list = clist_new();
    char *name = strdup("QRESYNC");
    struct mailimap_capability *cap =
        name ? mailimap_capability_new(MAILIMAP_CAPABILITY_NAME, NULL, name) : NULL;
    if (!cap)
        free(name);
    if (!list || !cap || clist_append(list, cap) < 0) {
        if (cap)
            mailimap_capability_free(cap);
        if (list)
            clist_free(list);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    struct mailimap_capability_data *want = mailimap_capability_data_new(list);
    if (!want) {
        mailimap_capability_free(cap);
        clist_free(list);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    struct mailimap_capability_data *got = NULL;
    int r = mailimap_enable(s->m, want, &got);
    mailimap_capability_data_free(want);
    for (clistiter *it = got && got->cap_list ? clist_begin(got->cap_list) : NULL; it;
         it = clist_next(it)) {
        const struct mailimap_capability *c = clist_content(it);
        if (c && c->cap_type == MAILIMAP_CAPABILITY_NAME && c->cap_data.cap_name &&
            strcasecmp(c->cap_data.cap_name, "QRESYNC") == 0)
            s->qresync = true;
    }
    if (got)
        mailimap_capability_data_free(got);
    if (r == MAILIMAP_ERROR_STREAM || r == MAILIMAP_ERROR_PARSE || r == MAILIMAP_ERROR_MEMORY)
        return imap_error(s, r, "ENABLE", err);
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
    int r = mailimap_login(s->m, user, password);
    if (r != MAILIMAP_NO_ERROR)
        return imap_error(s, r == MAILIMAP_ERROR_STREAM ? r : MAILIMAP_ERROR_LOGIN, "LOGIN", err);
    s->logged_in = true;
    ci = s->m->imap_connection_info;
    if (!ci || !ci->imap_capability) {
        struct mailimap_capability_data *caps = NULL;
        r = mailimap_capability(s->m, &caps);
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
    if (!mailimap_has_extension(s->m, "SPECIAL-USE"))
        return SH_OK;
    clist *list = NULL;
    int r = mailimap_list(s->m, "", "*", &list);
    if (r != MAILIMAP_NO_ERROR)
        return imap_error(s, r, "LIST", err);
    size_t count = list ? (size_t)clist_count(list) : 0, k = 0;
    char **v = calloc(count ? count : 1, sizeof *v);
    int rc = v ? SH_OK : sh_error_set(err, SH_ENOMEM, "out of memory");
    for (clistiter *it = list && v ? clist_begin(list) : NULL; it && !rc; it = clist_next(it)) {
        const struct mailimap_mailbox_list *mb = clist_content(it);
        if (!mb || !mb->mb_name || !imap_special(mb))
            continue;
        if (!(v[k++] = strdup(mb->mb_name)))
            rc = sh_error_set(err, SH_ENOMEM, "out of memory");
    }
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

int sync_imap_select(sync_imap *s, const char *folder, sync_folder_info *info, sh_error *err)
{
    memset(info, 0, sizeof *info);
    uint64_t modseq = 0;
    int r = s->condstore ? mailimap_select_condstore(s->m, folder, &modseq)
                         : mailimap_select(s->m, folder);
    if (r != MAILIMAP_NO_ERROR) {
        imap_error(s, r, "SELECT", err);
        if (err && !s->cap->tripped)
            snprintf(err->msg, sizeof err->msg, "IMAP SELECT %.100s failed: %.120s", folder,
                     s->m->imap_response ? s->m->imap_response : "no reply");
        return err ? err->code : SH_EPROTO;
    }
    struct mailimap_selection_info *sel = s->m->imap_selection_info;
    if (!sel || sel->sel_uidvalidity == 0)
        return sh_error_set(err, SH_EPROTO, "IMAP SELECT %.100s: no UIDVALIDITY in the reply",
                            folder);
    info->uidvalidity = sel->sel_uidvalidity;
    info->uidnext = sel->sel_uidnext;
    info->exists = sel->sel_exists;
    info->highestmodseq = modseq;
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
    struct mailimap_search_key *key = NULL;
    if (from <= 1) {
        key = mailimap_search_key_new_all();
    } else {
        struct mailimap_set *set = mailimap_set_new_interval(from, 0);
        key = set ? mailimap_search_key_new_uid(set) : NULL;
        if (set && !key)
            mailimap_set_free(set);
    }
    clist *res = NULL;
    if (!key)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    int r = mailimap_uid_search(s->m, NULL, key, &res);
    mailimap_search_key_free(key);
    if (r != MAILIMAP_NO_ERROR)
        return imap_error(s, r, "UID SEARCH", err);
    size_t count = res ? (size_t)clist_count(res) : 0;
    uint32_t *v = malloc((count ? count : 1) * sizeof *v);
    if (!v) {
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
    mailimap_search_result_free(res);
    qsort(v, k, sizeof *v, imap_uid_cmp);
    size_t w = 0;
    for (size_t i = 0; i < k; i++)
        if (w == 0 || v[w - 1] != v[i])
            v[w++] = v[i];
    *uids = v;
    *n = w;
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

/* imap_set builds a UID set of runs of consecutive UIDs (uids sorted or
 * not: runs are only merged when adjacent in the array). */
static struct mailimap_set *imap_set(const uint32_t *uids, size_t n)
{
    if (!uids)
        return mailimap_set_new_interval(1, 0);
    struct mailimap_set *set = mailimap_set_new_empty();
    size_t i = 0;
    while (set && i < n) {
        size_t j = i;
        while (j + 1 < n && uids[j + 1] == uids[j] + 1)
            j++;
        if (mailimap_set_add_interval(set, uids[i], uids[j]) != MAILIMAP_NO_ERROR) {
            mailimap_set_free(set);
            return NULL;
        }
        i = j + 1;
    }
    return set;
}

/* imap_fetch_type asks for UID FLAGS, and with full RFC822.SIZE INTERNALDATE
 * ENVELOPE too; NULL when out of memory. */
static struct mailimap_fetch_type *imap_fetch_type(bool full)
{
    struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
    struct mailimap_fetch_att *atts[5] = {mailimap_fetch_att_new_uid(),
                                          mailimap_fetch_att_new_flags(), NULL, NULL, NULL};
    size_t count = 2;
    if (full) {
        atts[2] = mailimap_fetch_att_new_rfc822_size();
        atts[3] = mailimap_fetch_att_new_internaldate();
        atts[4] = mailimap_fetch_att_new_envelope();
        count = 5;
    }
    size_t i = 0;
    for (; ft && i < count; i++)
        if (!atts[i] || mailimap_fetch_type_new_fetch_att_list_add(ft, atts[i]) != 0)
            break;
    if (ft && i == count)
        return ft;
    for (; i < count; i++)
        if (atts[i])
            mailimap_fetch_att_free(atts[i]);
    if (ft)
        mailimap_fetch_type_free(ft);
    return NULL;
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

int sync_imap_fetch(sync_imap *s, const uint32_t *uids, size_t n, bool full, uint64_t changedsince,
                    sync_msg_fn cb, void *arg, sh_error *err)
{
    if (uids && n == 0)
        return SH_OK;
    struct mailimap_set *set = imap_set(uids, n);
    struct mailimap_fetch_type *ft = imap_fetch_type(full);
    int rc = SH_OK;
    if (!set || !ft) {
        rc = sh_error_set(err, SH_ENOMEM, "out of memory");
        goto done;
    }
    clist *res = NULL;
    int r = changedsince ? mailimap_uid_fetch_changedsince(s->m, set, ft, changedsince, &res)
                         : mailimap_uid_fetch(s->m, set, ft, &res);
    if (r != MAILIMAP_NO_ERROR)
        rc = imap_error(s, r, "UID FETCH", err);
    else
        rc = imap_fetch_results(res, full, cb, arg, err);
done:
    if (ft)
        mailimap_fetch_type_free(ft);
    if (set)
        mailimap_set_free(set);
    return rc;
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
    struct mailimap_set *set = mailimap_set_new_interval(1, hi);
    struct mailimap_fetch_type *ft = imap_fetch_type(false);
    int rc = SH_OK;
    if (!set || !ft) {
        rc = sh_error_set(err, SH_ENOMEM, "out of memory");
        goto done;
    }
    clist *res = NULL;
    struct mailimap_qresync_vanished *first = NULL;
    int r = mailimap_uid_fetch_qresync(s->m, set, ft, modseq, &res, &first);
    if (r != MAILIMAP_NO_ERROR) {
        rc = imap_error(s, r, "UID FETCH (CHANGEDSINCE VANISHED)", err);
        goto done;
    }
    /* libetpan hands back the first VANISHED response only; any others
     * (the server may split them, or report expunges as they happen) are
     * still in the response's extension data. */
    size_t cap = 0;
    if (first) {
        rc = imap_ranges_add(first->qr_known_uids, hi, gone, ngone, &cap);
        mailimap_qresync_vanished_free(first);
    }
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
        goto done;
    }
    rc = imap_fetch_results(res, false, cb, arg, err);
done:
    if (rc) {
        free(*gone);
        *gone = NULL;
        *ngone = 0;
    }
    if (ft)
        mailimap_fetch_type_free(ft);
    if (set)
        mailimap_set_free(set);
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

int sync_imap_store_seen(sync_imap *s, uint32_t uid, bool seen, uint64_t unchangedsince,
                         bool *modified, sh_error *err)
{
    /* Written by hand: libetpan's mailimap_uid_store_unchangedsince sends
     * a malformed command. */
    char cmd[160];
    *modified = false;
    if (unchangedsince && s->condstore)
        snprintf(cmd, sizeof cmd, "UID STORE %u (UNCHANGEDSINCE %llu) %cFLAGS.SILENT (\\Seen)",
                 (unsigned)uid, (unsigned long long)unchangedsince, seen ? '+' : '-');
    else
        snprintf(cmd, sizeof cmd, "UID STORE %u %cFLAGS.SILENT (\\Seen)", (unsigned)uid,
                 seen ? '+' : '-');
    int r = mailimap_custom_command(s->m, cmd);
    if (r != MAILIMAP_NO_ERROR)
        return imap_error(s, r, "UID STORE", err);
    *modified = imap_modified(s);
    return SH_OK;
}
