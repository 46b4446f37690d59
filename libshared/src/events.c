/* events.c - pub/sub of events over nng. The one file of libshared that
 * includes nng's pub/sub protocols. */
#include "shared/events.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <stdlib.h>
#include <string.h>

#include "shared/buf.h"
#include "shared/msg.h"

struct sh_pub {
    nng_socket sock;
};

struct sh_sub {
    nng_socket sock;
    sh_msg_limits lim;
};

int sh_pub_new(const char *url, sh_pub **out, sh_error *err)
{
    *out = NULL;
    sh_pub *p = calloc(1, sizeof *p);
    if (!p)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    int rv = nng_pub0_open(&p->sock);
    if (rv) {
        free(p);
        return sh_error_set(err, SH_EINTERNAL, "cannot open PUB socket: %s", nng_strerror(rv));
    }
    /* Room for bursts: a subscriber falling further behind loses events. */
    nng_socket_set_int(p->sock, NNG_OPT_SENDBUF, 1024);
    if ((rv = nng_listen(p->sock, url, NULL, 0))) {
        nng_close(p->sock);
        free(p);
        return sh_error_set(err, SH_EINVAL, "cannot listen on %s: %s", url, nng_strerror(rv));
    }
    *out = p;
    return SH_OK;
}

int sh_pub_send(sh_pub *p, const char *topic, const sh_val *payload)
{
    sh_buf b;
    sh_buf_init(&b);
    int rc = sh_buf_puts(&b, topic);
    if (!rc)
        rc = sh_buf_append(&b, "\n", 1);
    if (!rc)
        rc = sh_msg_pack(payload, &b);
    if (rc) {
        sh_buf_fini(&b);
        return rc;
    }
    nng_msg *m;
    if (nng_msg_alloc(&m, 0) || nng_msg_append(m, b.data, b.len)) {
        sh_buf_fini(&b);
        return SH_ENOMEM;
    }
    sh_buf_fini(&b);
    int rv = nng_sendmsg(p->sock, m, NNG_FLAG_NONBLOCK);
    if (rv) {
        nng_msg_free(m);
        return rv == NNG_ECLOSED ? SH_ECLOSED : SH_EUNAVAIL;
    }
    return SH_OK;
}

void sh_pub_free(sh_pub *p)
{
    if (!p)
        return;
    nng_close(p->sock);
    free(p);
}

int sh_sub_new(const char *urls, size_t max_msg, sh_sub **out, sh_error *err)
{
    *out = NULL;
    sh_sub *s = calloc(1, sizeof *s);
    if (!s)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    sh_msg_limits_default(&s->lim);
    if (max_msg)
        s->lim.max_bytes = max_msg;
    int rv = nng_sub0_open(&s->sock);
    if (rv) {
        free(s);
        return sh_error_set(err, SH_EINTERNAL, "cannot open SUB socket: %s", nng_strerror(rv));
    }
    nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, s->lim.max_bytes + 256);
    nng_socket_set_int(s->sock, NNG_OPT_RECVBUF, 1024);
    nng_socket_set_ms(s->sock, NNG_OPT_RECONNMINT, 20);
    nng_socket_set_ms(s->sock, NNG_OPT_RECONNMAXT, 500);
    char *list = strdup(urls ? urls : "");
    int dialed = 0;
    char *save = NULL;
    for (char *u = list ? strtok_r(list, ",", &save) : NULL; u; u = strtok_r(NULL, ",", &save)) {
        while (*u == ' ')
            u++;
        if (!*u)
            continue;
        if ((rv = nng_dial(s->sock, u, NULL, NNG_FLAG_NONBLOCK))) {
            sh_error_set(err, SH_EINVAL, "cannot dial %s: %s", u, nng_strerror(rv));
            free(list);
            sh_sub_free(s);
            return SH_EINVAL;
        }
        dialed++;
    }
    free(list);
    if (!dialed) {
        sh_sub_free(s);
        return sh_error_set(err, SH_EINVAL, "no events URL to dial");
    }
    *out = s;
    return SH_OK;
}

int sh_sub_subscribe(sh_sub *s, const char *prefix)
{
    int rv = nng_socket_set(s->sock, NNG_OPT_SUB_SUBSCRIBE, prefix, strlen(prefix));
    return rv ? SH_EINVAL : SH_OK;
}

int sh_sub_recv(sh_sub *s, int timeout_ms, char **topic, sh_val **payload)
{
    *topic = NULL;
    *payload = NULL;
    nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, timeout_ms);
    nng_msg *m;
    int rv = nng_recvmsg(s->sock, &m, 0);
    if (rv == NNG_ETIMEDOUT)
        return SH_ETIMEDOUT;
    if (rv)
        return rv == NNG_ECLOSED ? SH_ECLOSED : SH_EUNAVAIL;
    const char *body = nng_msg_body(m);
    size_t len = nng_msg_len(m);
    const char *nl = memchr(body, '\n', len);
    if (!nl) {
        nng_msg_free(m);
        return SH_EPROTO;
    }
    size_t tlen = (size_t)(nl - body);
    sh_val *v = NULL;
    if (sh_msg_unpack(nl + 1, len - tlen - 1, &s->lim, &v, NULL) != SH_OK) {
        nng_msg_free(m);
        return SH_EPROTO;
    }
    char *t = malloc(tlen + 1);
    if (!t) {
        sh_val_free(v);
        nng_msg_free(m);
        return SH_ENOMEM;
    }
    memcpy(t, body, tlen);
    t[tlen] = '\0';
    nng_msg_free(m);
    *topic = t;
    *payload = v;
    return SH_OK;
}

void sh_sub_free(sh_sub *s)
{
    if (!s)
        return;
    nng_close(s->sock);
    free(s);
}
