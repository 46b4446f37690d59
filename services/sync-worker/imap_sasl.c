/* imap_sasl.c - OAuth2 sign-in of an IMAP session: XOAUTH2 through
 * libetpan's mailimap_oauth2_authenticate, OAUTHBEARER (RFC 7628, which
 * libetpan lacks) on its lower-level send and parse calls, the mechanism
 * chosen from the server's AUTH= capabilities. A refused token is
 * answered by the server with a base64 JSON challenge before its NO: it
 * is decoded into the error, so the account shows why. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "imap_int.h"
#include "shared/b64.h"
#include "shared/secret.h"

#define SASL_CHALLENGE_MAX 300

void sync__imap_sasl_challenge(const char *buf, size_t len, char *out, size_t outlen)
{
    out[0] = '\0';
    const char *p = buf;
    const char *end = buf + len;
    while (p && p < end && !(p[0] == '+' && p + 1 < end && p[1] == ' ')) {
        p = memchr(p, '\n', (size_t)(end - p));
        p = p ? p + 1 : NULL;
    }
    if (!p || p >= end)
        return;
    p += 2;
    size_t n = strcspn(p, "\r\n");
    if (n > (size_t)(end - p))
        n = (size_t)(end - p);
    sh_buf dec;
    sh_buf_init(&dec);
    if (sh_b64_decode(p, n, &dec) == SH_OK) {
        size_t k = 0;
        for (size_t i = 0; i < dec.len && k + 1 < outlen; i++) {
            char c = dec.data[i];
            out[k++] = (unsigned char)c < 0x20 || c == 0x7f ? ' ' : c;
        }
        out[k] = '\0';
    }
    sh_buf_fini(&dec);
}

/* sasl_user_escape appends user as an RFC 5801 saslname ("," and "=" as
 * "=2C" and "=3D"). */
static int sasl_user_escape(const char *user, sh_buf *out)
{
    int rc = SH_OK;
    for (const char *p = user; *p && !rc; p++)
        rc = *p == ','   ? sh_buf_puts(out, "=2C")
             : *p == '=' ? sh_buf_puts(out, "=3D")
                         : sh_buf_append(out, p, 1);
    return rc;
}

/* sasl_send writes the parts (NULL-terminated) to the stream and flushes. */
static int sasl_send(mailstream *st, const char *const *parts)
{
    for (size_t i = 0; parts[i]; i++)
        if (mailstream_write(st, parts[i], strlen(parts[i])) < 0)
            return MAILIMAP_ERROR_STREAM;
    return mailstream_flush(st) == -1 ? MAILIMAP_ERROR_STREAM : MAILIMAP_NO_ERROR;
}

/* sasl_oauthbearer runs AUTHENTICATE OAUTHBEARER with the initial response
 * when the server takes SASL-IR (RFC 4959), else after its "+"; a "+"
 * challenge after the response is a refusal, acknowledged with %x01 as
 * RFC 7628 3.2.3 asks. Returns libetpan's code: MAILIMAP_ERROR_LOGIN when
 * refused. */
static int sasl_oauthbearer(sync_imap *s, const char *user, const char *token, bool ir)
{
    sh_buf msg, b64;
    sh_buf_init_secret(&msg);
    sh_buf_init_secret(&b64);
    int rc = sh_buf_puts(&msg, "n,a=");
    rc |= sasl_user_escape(user, &msg);
    rc |= sh_buf_puts(&msg, ",\001auth=Bearer ");
    rc |= sh_buf_puts(&msg, token);
    rc |= sh_buf_puts(&msg, "\001\001");
    rc |= sh_b64_encode(msg.data, msg.len, &b64);
    rc |= sh_buf_append(&b64, "", 1);
    sh_buf_fini(&msg);
    if (rc) {
        sh_buf_fini(&b64);
        return MAILIMAP_ERROR_MEMORY;
    }
    mailstream *st = s->m->imap_stream;
    mailstream_set_privacy(st, 0);
    int r = mailimap_send_current_tag(s->m);
    if (r == MAILIMAP_NO_ERROR) {
        const char *const with_ir[] = {"AUTHENTICATE OAUTHBEARER ", b64.data, "\r\n", NULL};
        const char *const without[] = {"AUTHENTICATE OAUTHBEARER\r\n", NULL};
        r = sasl_send(st, ir ? with_ir : without);
    }
    const char *line = NULL;
    if (r == MAILIMAP_NO_ERROR && !(line = mailimap_read_line(s->m)))
        r = MAILIMAP_ERROR_STREAM;
    if (r == MAILIMAP_NO_ERROR && !ir && line[0] == '+') {
        const char *const resp[] = {b64.data, "\r\n", NULL};
        r = sasl_send(st, resp);
        if (r == MAILIMAP_NO_ERROR && !(line = mailimap_read_line(s->m)))
            r = MAILIMAP_ERROR_STREAM;
    }
    mailstream_set_privacy(st, 1);
    sh_buf_fini(&b64);
    if (r == MAILIMAP_NO_ERROR && line[0] == '+') {
        const char *const ack[] = {"AQ==\r\n", NULL};
        r = sasl_send(st, ack);
    }
    struct mailimap_response *resp = NULL;
    if (r == MAILIMAP_NO_ERROR)
        r = mailimap_parse_response(s->m, &resp);
    if (r != MAILIMAP_NO_ERROR)
        return r;
    int type = resp->rsp_resp_done->rsp_data.rsp_tagged->rsp_cond_state->rsp_type;
    mailimap_response_free(resp);
    if (type != MAILIMAP_RESP_COND_STATE_OK)
        return MAILIMAP_ERROR_LOGIN;
    s->m->imap_state = MAILIMAP_STATE_AUTHENTICATED;
    return MAILIMAP_NO_ERROR;
}

/* sasl_pick is the first mechanism of prefs (space separated) that the
 * server offers, copied to mech; false when it offers none of them. */
static bool sasl_pick(sync_imap *s, const char *prefs, char *mech, size_t len)
{
    for (const char *p = prefs; *p;) {
        size_t n = strcspn(p, " ");
        if (n > 0 && n < len) {
            memcpy(mech, p, n);
            mech[n] = '\0';
            if (mailimap_has_authentication(s->m, mech))
                return true;
        }
        p += n;
        p += strspn(p, " ");
    }
    return false;
}

int sync_imap_login_oauth(sync_imap *s, const char *user, const char *token, const char *prefs,
                          char mech[16], sh_error *err)
{
    mech[0] = '\0';
    int rc = sync__imap_caps_known(s, err);
    if (rc)
        return rc;
    if (!sasl_pick(s, prefs, mech, 16))
        return sh_error_set(err, SYNC_EAUTH,
                            "the IMAP server offers neither AUTH=XOAUTH2 nor AUTH=OAUTHBEARER: it "
                            "takes no OAuth2 sign-in");
    bool ir = sync__imap_has_cap(s, "SASL-IR");
    /* As for LOGIN: the capabilities of the authenticated state are read
     * afresh. */
    struct mailimap_connection_info *ci = s->m->imap_connection_info;
    if (ci && ci->imap_capability) {
        mailimap_capability_data_free(ci->imap_capability);
        ci->imap_capability = NULL;
    }
    int r = strcmp(mech, "XOAUTH2") == 0 ? mailimap_oauth2_authenticate(s->m, user, token)
                                         : sasl_oauthbearer(s, user, token, ir);
    if (r == MAILIMAP_ERROR_LOGIN) {
        char said[SASL_CHALLENGE_MAX];
        const MMAPString *b = s->m->imap_stream_buffer;
        sync__imap_sasl_challenge(b ? b->str : "", b ? b->len : 0, said, sizeof said);
        return sh_error_set(err, SYNC_EAUTH, "IMAP %s sign-in refused: %.200s%s%s", mech,
                            sync__imap_said(s), said[0] ? "; the server said: " : "", said);
    }
    if (r != MAILIMAP_NO_ERROR)
        return sync__imap_error(s, r, "AUTHENTICATE", err);
    return sync__imap_logged_in(s, err);
}
