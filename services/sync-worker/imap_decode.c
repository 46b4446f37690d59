/* imap_decode.c - what the IMAP module makes of the server's replies: text
 * cleaned to valid UTF-8 (MIME encoded words decoded, control bytes and
 * invalid sequences replaced, fields cut at SYNC__IMAP_FIELD_MAX), address
 * lists, dates and flags, and each fetched message as a sync_msg. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imap_int.h"
#include "shared/text.h"
#include "shared/util.h"

/* sync__imap_clean appends s (len bytes) to out as valid UTF-8 (text.h:
 * control characters become spaces and invalid sequences U+FFFD), cut on
 * a character boundary at SYNC__IMAP_FIELD_MAX bytes. */
int sync__imap_clean(sh_buf *out, const char *s, size_t len)
{
    return sh_utf8_clean(out, s, len, SYNC__IMAP_FIELD_MAX);
}

/* sync__imap_header appends a header text (possibly with MIME encoded words),
 * decoded to UTF-8. */
int sync__imap_header(sh_buf *out, const char *s)
{
    if (!s)
        return SH_OK;
    size_t len = strlen(s), idx = 0;
    char *dec = NULL;
    /* Only a text with an encoded word ("=?charset?enc?text?=") needs
     * decoding, which opens a character set converter each time. */
    if (len <= SYNC__IMAP_FIELD_MAX && strstr(s, "=?") &&
        mailmime_encoded_phrase_parse("utf-8", s, len, &idx, "utf-8", &dec) == MAILIMF_NO_ERROR &&
        dec) {
        int rc = sync__imap_clean(out, dec, strlen(dec));
        free(dec);
        return rc;
    }
    free(dec);
    return sync__imap_clean(out, s, len);
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
            rc = sync__imap_header(out, a->ad_personal_name);
            rc = rc ? rc : sh_buf_puts(out, " <");
        }
        if (!rc)
            rc = sync__imap_clean(out, a->ad_mailbox_name, strlen(a->ad_mailbox_name));
        if (!rc)
            rc = sh_buf_puts(out, "@");
        if (!rc)
            rc = sync__imap_clean(out, a->ad_host_name, strlen(a->ad_host_name));
        if (!rc && a->ad_personal_name && a->ad_personal_name[0])
            rc = sh_buf_puts(out, ">");
        if (rc)
            return rc;
        if (out->len > SYNC__IMAP_FIELD_MAX)
            break;
    }
    return SH_OK;
}

/* imap_iso writes an INTERNALDATE as ISO 8601 UTC; a date outside what the
 * grammar allows (a hostile server's) is written as "" instead. */
static void imap_iso(const struct mailimap_date_time *d, char out[SH_ISO_LEN])
{
    int zone_abs = d->dt_zone < 0 ? -d->dt_zone : d->dt_zone;
    if (d->dt_year < 1900 || d->dt_year > 9999 || d->dt_month < 1 || d->dt_month > 12 ||
        d->dt_day < 1 || d->dt_day > 31 || d->dt_hour < 0 || d->dt_hour > 23 || d->dt_min < 0 ||
        d->dt_min > 59 || d->dt_sec < 0 || d->dt_sec > 60 || zone_abs > 2359 ||
        zone_abs % 100 > 59) {
        out[0] = '\0';
        return;
    }
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
        if ((out->len && sh_buf_puts(out, " ")) || sync__imap_clean(out, name, strlen(name)))
            return SH_ENOMEM;
        if (out->len > SYNC__IMAP_FIELD_MAX)
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
            rc = sync__imap_header(&f->subject, e->env_subject);
            if (!rc && e->env_from)
                rc = imap_addresses(&f->from, e->env_from->frm_list);
            if (!rc && e->env_to)
                rc = imap_addresses(&f->to, e->env_to->to_list);
            if (!rc && e->env_cc)
                rc = imap_addresses(&f->cc, e->env_cc->cc_list);
            if (!rc && e->env_date)
                rc = sync__imap_clean(&f->date, e->env_date, strlen(e->env_date));
            if (!rc && e->env_message_id)
                rc = sync__imap_clean(&f->message_id, e->env_message_id, strlen(e->env_message_id));
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

/* sync__imap_fetch_results runs cb on each message of a fetch's results and
 * frees them. */
int sync__imap_fetch_results(clist *res, bool full, sync_msg_fn cb, void *arg, sh_error *err)
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

int sync__imap_vanished(clist *extensions, uint32_t hi, sync_uid_range **gone, size_t *ngone)
{
    /* Every VANISHED response is in the reply's extension data (the server
     * may split them, or report expunges as they happen). */
    size_t cap = 0;
    int rc = SH_OK;
    for (clistiter *it = extensions ? clist_begin(extensions) : NULL; it && !rc;
         it = clist_next(it)) {
        const struct mailimap_extension_data *ed = clist_content(it);
        if (!ed || ed->ext_extension != &mailimap_extension_qresync ||
            ed->ext_type != MAILIMAP_QRESYNC_TYPE_VANISHED || !ed->ext_data)
            continue;
        const struct mailimap_qresync_vanished *v = ed->ext_data;
        rc = imap_ranges_add(v->qr_known_uids, hi, gone, ngone, &cap);
    }
    return rc;
}
