/* imap.c - the IMAP session of a sync thread and its commands: connect with
 * TLS checked (libetpan accepts any certificate, so the chain is checked by
 * tls_verify.c after the handshake), login, ENABLE, LIST, SELECT, SEARCH,
 * FETCH and STORE, each composed by imap_wire.c and run by imap_exec.c. */
#include "imap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "dial.h"
#include "hostcap.h"
#include "imap_int.h"
#include "imap_sock.h"
#include "imap_wire.h"
#include "shared/buf.h"
#include "shared/log.h"
#include "shared/secret.h"
#include "shared/util.h"
#include "tls_verify.h"

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

/* imap_insecure refuses what sends a password in clear or to anyone. */
static int imap_insecure(const sync_imap_opts *o, sh_error *err)
{
    if (o->allow_insecure)
        return SH_OK;
    if (o->security == SYNC_SEC_NONE)
        return sh_error_set(err, SH_EINVAL,
                            "security \"none\" sends the password in clear; refused unless "
                            "IMAP_ALLOW_INSECURE=true");
    if (!o->tls_verify)
        return sh_error_set(err, SH_EINVAL,
                            "tlsVerify false accepts any server's certificate; refused unless "
                            "IMAP_ALLOW_INSECURE=true");
    return SH_OK;
}

/* imap_stream_open wraps the connected socket fd in our stream driver
 * (imap_sock.c), with the TLS handshake (and SNI) for implicit TLS, and
 * the counting stream in front. fd is the stream's (or closed) afterwards. */
static int imap_stream_open(sync_imap *s, const sync_imap_opts *o, int fd, mailstream **out,
                            sh_error *err)
{
    *out = NULL;
    mailstream_low *low = o->security == SYNC_SEC_TLS
                              ? sync__imap_sock_tls_open(fd, o->host, s->limits.command_s)
                              : sync__imap_sock_open(fd);
    if (!low) {
        close(fd);
        return sh_error_set(err, SH_EUNAVAIL, "cannot connect to %s:%d%s", o->host, o->port,
                            o->security == SYNC_SEC_TLS ? " with TLS (handshake failed)" : "");
    }
    mailstream *st = mailstream_new(low, 8192);
    if (!st) {
        mailstream_low_close(low);
        mailstream_low_free(low);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    if (sync__imap_cap_install(s, st)) {
        mailstream_close(st);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *out = st;
    return SH_OK;
}

/* imap_greeting_error names what went wrong while the server had not
 * let us in yet (the greeting, STARTTLS). */
static int imap_greeting_error(const sync_imap *s, const sync_imap_opts *o, const char *what, int r,
                               sh_error *err)
{
    if (s->cap && s->cap->run_over)
        return sh_error_set(err, SH_ETIMEDOUT,
                            "sync run deadline of %d s (SYNC_RUN_DEADLINE_SECONDS) reached "
                            "waiting for %s of %s:%d",
                            o->run_deadline_s, what, o->host, o->port);
    if (s->cap && s->cap->stalled)
        return sh_error_set(err, SH_ETIMEDOUT,
                            "IMAP server stalled: no complete %s from %s:%d within %d s", what,
                            o->host, o->port, s->limits.command_s);
    if (s->cap && s->cap->tripped)
        return sh_error_set(err, SH_EPROTO,
                            "IMAP server %s:%d: its %s is larger than %zu KiB; refused", o->host,
                            o->port, what, SYNC__IMAP_GREETING_MAX >> 10);
    return sh_error_set(err, SH_EUNAVAIL, "cannot connect to %s:%d: no %s (code %d)", o->host,
                        o->port, what, r);
}

/* imap_starttls sends STARTTLS and, once the server agrees, puts the TLS
 * driver over the same socket in place of the plain one (as libetpan's
 * mailimap_socket_starttls does with its own drivers), with the counting
 * stream in front again. */
static int imap_starttls(sync_imap *s, const sync_imap_opts *o, sh_error *err)
{
    int r = mailimap_starttls(s->m);
    if (r != MAILIMAP_NO_ERROR)
        return s->cap && (s->cap->stalled || s->cap->tripped || s->cap->run_over)
                   ? imap_greeting_error(s, o, "answer to STARTTLS", r, err)
                   : sh_error_set(err, SH_EUNAVAIL, "STARTTLS with %s:%d failed (code %d)", o->host,
                                  o->port, r);
    mailstream *st = s->m->imap_stream;
    mailstream_low *old = mailstream_get_low(st);
    int fd = mailstream_low_get_fd(old);
    mailstream_low *low =
        fd >= 0 ? sync__imap_sock_tls_open(fd, o->host, s->limits.command_s) : NULL;
    if (!low)
        return sh_error_set(err, SH_EUNAVAIL, "STARTTLS with %s:%d failed (handshake failed)",
                            o->host, o->port);
    /* Freeing the old drivers leaves the socket open: it is the new one's. */
    mailstream_set_low(st, low);
    s->cap = NULL;
    mailstream_low_free(old);
    if (sync__imap_cap_install(s, st))
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    return SH_OK;
}

int sync_imap_open(const sync_imap_opts *o, sync_imap **out, sh_error *err)
{
    *out = NULL;
    if (o->port < 1 || o->port > 65535)
        return sh_error_set(err, SH_EINVAL, "invalid IMAP port %d", o->port);
    int rc = imap_insecure(o, err);
    if (rc)
        return rc;
    sync_imap *s = calloc(1, sizeof *s);
    if (!s || !(s->m = mailimap_new(0, NULL))) {
        free(s);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    s->host = o->host;
    int connect_s = o->connect_timeout_s > 0 ? o->connect_timeout_s : 10;
    /* Until the server has let us in, replies are held to the greeting's
     * cap and the connect timeout. */
    s->limits = (sync__imap_cap){
        .limit = SYNC__IMAP_GREETING_MAX,
        .idle_s = connect_s,
        .command_s = connect_s,
        .run_end_ms = o->run_deadline_ms,
    };
    rc = sync_hostcap_take(o->host, o->max_per_host, err);
    if (rc)
        goto fail;
    if (!(s->counted_host = strdup(o->host))) {
        sync_hostcap_give(o->host);
        rc = sh_error_set(err, SH_ENOMEM, "out of memory");
        goto fail;
    }
    mailimap_set_timeout(s->m, connect_s);
    int fd;
    rc = sync_dial(o->hosts, o->host, o->port, connect_s, &fd, err);
    mailstream *st = NULL;
    if (!rc)
        rc = imap_stream_open(s, o, fd, &st, err);
    if (rc)
        goto fail;
    int r = mailimap_connect(s->m, st);
    if (!s->m->imap_stream)
        mailstream_close(st);
    if (r != MAILIMAP_NO_ERROR_AUTHENTICATED && r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED) {
        rc = imap_greeting_error(s, o, "greeting", r, err);
        goto fail;
    }
    if (o->security == SYNC_SEC_STARTTLS) {
        rc = imap_starttls(s, o, err);
        if (rc)
            goto fail;
    }
    if (o->security != SYNC_SEC_NONE && o->tls_verify) {
        rc = imap_check_cert(s, o, err);
        if (rc)
            goto fail;
    }
    s->limits.idle_s = o->command_timeout_s > 0 ? o->command_timeout_s : 30;
    mailimap_set_timeout(s->m, s->limits.idle_s);
    s->limits.command_s =
        o->command_deadline_s > 0 ? o->command_deadline_s : SYNC_IMAP_COMMAND_DEADLINE_DEFAULT;
    s->run_deadline_s = o->run_deadline_s;
    s->cap->idle_s = s->limits.idle_s;
    s->cap->command_s = s->limits.command_s;
    *out = s;
    return SH_OK;
fail:
    sync_imap_free(s);
    return rc;
}

void sync_imap_set_deadlines(sync_imap *s, int idle_s, int command_s, int64_t run_deadline_ms)
{
    if (idle_s > 0)
        s->limits.idle_s = idle_s;
    if (command_s > 0)
        s->limits.command_s = command_s;
    s->limits.run_end_ms = run_deadline_ms;
    s->cap->idle_s = s->limits.idle_s;
    s->cap->command_s = s->limits.command_s;
    s->cap->run_end_ms = run_deadline_ms;
    mailimap_set_timeout(s->m, s->limits.idle_s);
}

void sync_imap_free(sync_imap *s)
{
    if (!s)
        return;
    if (s->m) {
        /* A server that stalled or overflowed gets no LOGOUT (it would
         * wait out another deadline). */
        bool dead = s->cap && (s->cap->stalled || s->cap->run_over || s->cap->tripped);
        if (s->logged_in && s->m->imap_stream && !dead && !s->ndue)
            mailimap_logout(s->m);
        /* mailimap_free would send LOGOUT itself, whatever the state. */
        if (s->m->imap_stream) {
            mailstream_close(s->m->imap_stream);
            s->m->imap_stream = NULL;
        }
        mailimap_free(s->m);
    }
    if (s->counted_host)
        sync_hostcap_give(s->counted_host);
    free(s->counted_host);
    free(s);
}

/* imap_enable_qresync sends ENABLE QRESYNC (RFC 7162), which VANISHED needs.
 * A server that answers NO is synced without it. */
static int imap_enable_qresync(sync_imap *s, sh_error *err)
{
    sync_wire w;
    sync__imap_wire_init(s, &w);
    sync_wire_raw(&w, "ENABLE QRESYNC");
    sync__imap_answer a;
    int rc = sync__imap_exec(s, &w, "ENABLE", &a, err);
    sync_wire_fini(&w);
    if (rc)
        return rc;
    const struct mailimap_response_info *ri = s->m->imap_response_info;
    for (clistiter *it = ri && ri->rsp_extension_list ? clist_begin(ri->rsp_extension_list) : NULL;
         it && a.state == SYNC__IMAP_OK; it = clist_next(it)) {
        const struct mailimap_extension_data *ed = clist_content(it);
        if (!ed || ed->ext_extension->ext_id != MAILIMAP_EXTENSION_ENABLE ||
            ed->ext_type != SYNC__IMAP_ENABLE_TYPE_ENABLE || !ed->ext_data)
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
    sync__imap_answer a;
    /* The logger, when one is set, is told the password is private. */
    mailstream_set_privacy(s->m->imap_stream, 0);
    int rc = sync__imap_exec(s, &w, "LOGIN", &a, err);
    mailstream_set_privacy(s->m->imap_stream, 1);
    sh_wipe(w.buf.data, w.buf.len);
    sync_wire_fini(&w);
    if (rc)
        return rc;
    if (a.state != SYNC__IMAP_OK)
        return sh_error_set(err, SYNC_EAUTH, "IMAP login refused: %.200s", sync__imap_said(s));
    return sync__imap_logged_in(s, err);
}

int sync__imap_caps_known(sync_imap *s, sh_error *err)
{
    struct mailimap_connection_info *ci = s->m->imap_connection_info;
    if (ci && ci->imap_capability)
        return SH_OK;
    struct mailimap_capability_data *caps = NULL;
    int r = mailimap_capability(s->m, &caps);
    if (caps)
        mailimap_capability_data_free(caps);
    return r == MAILIMAP_NO_ERROR ? SH_OK : sync__imap_error(s, r, "CAPABILITY", err);
}

int sync__imap_logged_in(sync_imap *s, sh_error *err)
{
    s->m->imap_state = MAILIMAP_STATE_AUTHENTICATED;
    s->logged_in = true;
    /* Let in: replies may now be as large as a batch of messages. */
    s->limits.limit = SYNC__IMAP_REPLY_MAX;
    s->cap->limit = SYNC__IMAP_REPLY_MAX;
    int rc = sync__imap_caps_known(s, err);
    if (rc)
        return rc;
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
    if (!sync__imap_has_cap(s, "SPECIAL-USE"))
        return SH_OK;
    sync_wire w;
    sync__imap_wire_init(s, &w);
    sync_wire_raw(&w, "LIST \"\" *");
    int rc = sync__imap_simple(s, &w, "LIST", err);
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
    sync__imap_wire_init(s, &w);
    sync_wire_raw(&w, "SELECT ");
    sync_wire_mailbox(&w, folder);
    if (s->condstore)
        sync_wire_raw(&w, " (CONDSTORE)");
    if (s->m->imap_selection_info)
        mailimap_selection_info_free(s->m->imap_selection_info);
    s->m->imap_selection_info = mailimap_selection_info_new();
    s->m->imap_state = MAILIMAP_STATE_AUTHENTICATED;
    sync__imap_answer a;
    int rc = s->m->imap_selection_info ? sync__imap_exec(s, &w, "SELECT", &a, err)
                                       : sh_error_set(err, SH_ENOMEM, "out of memory");
    sync_wire_fini(&w);
    if (rc)
        return rc;
    if (a.state != SYNC__IMAP_OK)
        return sh_error_set(err, SH_EPROTO, "IMAP SELECT %.100s refused: %.120s", folder,
                            sync__imap_said(s));
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

/* imap_search_run runs the UID SEARCH of w and returns the UIDs found in
 * lo..hi, ascending and without duplicates, in *uids (caller frees). */
static int imap_search_run(sync_imap *s, sync_wire *w, uint32_t lo, uint32_t hi, uint32_t **uids,
                           size_t *n, sh_error *err)
{
    *uids = NULL;
    *n = 0;
    int rc = sync__imap_simple(s, w, "UID SEARCH", err);
    sync_wire_fini(w);
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
        /* "lo:*" names the last message even when its UID is below lo. */
        if (u && *u && *u >= lo && *u <= hi)
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

/* imap_uid_range appends lo:hi, hi UINT32_MAX written as "*". */
static void imap_uid_range(sync_wire *w, uint32_t lo, uint32_t hi)
{
    sync_wire_num(w, lo ? lo : 1);
    sync_wire_raw(w, ":");
    if (hi == UINT32_MAX)
        sync_wire_raw(w, "*");
    else
        sync_wire_num(w, hi);
}

int sync_imap_search(sync_imap *s, uint32_t from, uint32_t **uids, size_t *n, sh_error *err)
{
    sync_wire w;
    sync__imap_wire_init(s, &w);
    if (from <= 1) {
        sync_wire_raw(&w, "UID SEARCH ALL");
    } else {
        sync_wire_raw(&w, "UID SEARCH UID ");
        imap_uid_range(&w, from, UINT32_MAX);
    }
    return imap_search_run(s, &w, from, UINT32_MAX, uids, n, err);
}

int sync_imap_search_range(sync_imap *s, uint32_t lo, uint32_t hi, uint32_t **uids, size_t *n,
                           sh_error *err)
{
    sync_wire w;
    sync__imap_wire_init(s, &w);
    sync_wire_raw(&w, "UID SEARCH UID ");
    imap_uid_range(&w, lo, hi);
    return imap_search_run(s, &w, lo ? lo : 1, hi, uids, n, err);
}

uint32_t sync_imap_exists(const sync_imap *s)
{
    const struct mailimap_selection_info *sel = s->m ? s->m->imap_selection_info : NULL;
    return sel ? sel->sel_exists : 0;
}

int sync_imap_uid_at(sync_imap *s, uint32_t seq, uint32_t *uid, sh_error *err)
{
    *uid = 0;
    if (seq == 0)
        return SH_OK;
    sync_wire w;
    sync__imap_wire_init(s, &w);
    sync_wire_raw(&w, "UID SEARCH ");
    sync_wire_num(&w, seq);
    uint32_t *v = NULL;
    size_t n = 0;
    int rc = imap_search_run(s, &w, 1, UINT32_MAX, &v, &n, err);
    if (!rc && n)
        *uid = v[n - 1];
    free(v);
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
    int rc = sync__imap_simple(s, w, what, err);
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
    sync__imap_wire_init(s, &w);
    imap_fetch_cmd(&w, uids, n, full, changedsince ? mod : NULL);
    clist *res = NULL;
    int rc = imap_fetch_run(s, &w, "UID FETCH", &res, err);
    sync_wire_fini(&w);
    return rc ? rc : sync__imap_fetch_results(res, full, cb, arg, err);
}

int sync_imap_fetch_range(sync_imap *s, uint32_t lo, uint32_t hi, bool full, uint64_t changedsince,
                          sync_msg_fn cb, void *arg, sh_error *err)
{
    if (hi < lo)
        return SH_OK;
    char mod[48];
    snprintf(mod, sizeof mod, " (CHANGEDSINCE %llu)", (unsigned long long)changedsince);
    sync_wire w;
    sync__imap_wire_init(s, &w);
    sync_wire_raw(&w, "UID FETCH ");
    imap_uid_range(&w, lo, hi);
    sync_wire_raw(&w, full ? " (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)" : " (UID FLAGS)");
    if (changedsince)
        sync_wire_raw(&w, mod);
    clist *res = NULL;
    int rc = imap_fetch_run(s, &w, "UID FETCH", &res, err);
    sync_wire_fini(&w);
    return rc ? rc : sync__imap_fetch_results(res, full, cb, arg, err);
}

int sync_imap_fetch_send(sync_imap *s, const uint32_t *uids, size_t n, bool full, sh_error *err)
{
    if (!uids || n == 0)
        return sh_error_set(err, SH_EINVAL, "IMAP UID FETCH sent ahead without UIDs");
    sync_wire w;
    sync__imap_wire_init(s, &w);
    imap_fetch_cmd(&w, uids, n, full, NULL);
    int rc = sync__imap_send(s, &w, "UID FETCH", err);
    sync_wire_fini(&w);
    return rc;
}

int sync_imap_fetch_recv(sync_imap *s, bool full, sync_msg_fn cb, void *arg, sh_error *err)
{
    int rc = SH_OK;
    /* The messages of every reply read are handed over, whichever fetch
     * they belong to: a server running both fetches at once mixes them. */
    while (!rc && s->ndue && !s->due[0].answered) {
        rc = sync__imap_recv_one(s, "UID FETCH", err);
        struct mailimap_response_info *ri = s->m->imap_response_info;
        clist *res = ri ? ri->rsp_fetch_list : NULL;
        if (ri)
            ri->rsp_fetch_list = NULL;
        if (rc && res)
            mailimap_fetch_list_free(res);
        else if (!rc)
            rc = sync__imap_fetch_results(res, full, cb, arg, err);
    }
    if (rc)
        return rc;
    if (!s->ndue)
        return sh_error_set(err, SH_EINVAL, "IMAP UID FETCH: no reply is due");
    sync__imap_answer a;
    sync__imap_due_pop(s, &a);
    return a.state == SYNC__IMAP_OK ? SH_OK : sync__imap_refused(s, &a, "UID FETCH", err);
}

size_t sync_imap_due(const sync_imap *s)
{
    return s ? s->ndue : 0;
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
    sync__imap_wire_init(s, &w);
    sync_wire_raw(&w, "UID FETCH 1:");
    sync_wire_num(&w, hi);
    sync_wire_raw(&w, " (UID FLAGS) ");
    sync_wire_raw(&w, mod);
    clist *res = NULL;
    int rc = imap_fetch_run(s, &w, "UID FETCH (CHANGEDSINCE VANISHED)", &res, err);
    sync_wire_fini(&w);
    if (rc)
        return rc;
    const struct mailimap_response_info *ri = s->m->imap_response_info;
    rc = sync__imap_vanished(ri ? ri->rsp_extension_list : NULL, hi, gone, ngone);
    if (rc) {
        if (res)
            mailimap_fetch_list_free(res);
        rc = sh_error_set(err, SH_ENOMEM, "out of memory");
    } else {
        rc = sync__imap_fetch_results(res, false, cb, arg, err);
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
static bool imap_temporary(const sync__imap_answer *a)
{
    static const char *const codes[] = {"", "UNAVAILABLE", "INUSE", "LIMIT", "SERVERBUG", NULL};
    if (a->state != SYNC__IMAP_NO)
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
    sync__imap_wire_init(s, &w);
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
    sync__imap_answer a;
    int rc = sync__imap_exec(s, &w, "UID STORE", &a, err);
    sync_wire_fini(&w);
    if (rc)
        return rc;
    if (a.state == SYNC__IMAP_OK) {
        *modified = imap_modified(s);
        return SH_OK;
    }
    sync__imap_refused(s, &a, "UID STORE", err);
    int code = imap_temporary(&a) ? SYNC_ETRYLATER : SYNC_EREFUSED;
    if (err)
        err->code = code;
    return code;
}
