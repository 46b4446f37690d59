/* events.c - pub/sub of events over nng, batched on the publishing side.
 * The one file of libshared that includes nng's pub/sub protocols. */
#include "shared/events.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nng_dial.h"
#include "shared/buf.h"
#include "shared/log.h"
#include "shared/msg.h"
#include "shared/msgmac.h"
#include "shared/util.h"

/* How long the publisher lets events gather once the first one is queued:
 * under load many events share a send, idle a lone event waits this long. */
#define PUB_LINGER_US       200
#define EVENTS_MAX_PREFIXES 16
/* Nonces a subscriber remembers: messages carry batches, so far fewer
 * arrive than calls. */
#define EVENTS_SEEN 65536

struct sh_pub {
    nng_socket sock;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    sh_buf queued; /* msgpack topic, payload, topic, payload, ... */
    size_t nqueued;
    size_t dropped;
    bool stop;
    sh_msgmac_conf mac;
};

struct sh_sub {
    nng_socket sock;
    sh_msg_limits lim;
    char *prefixes[EVENTS_MAX_PREFIXES];
    size_t nprefixes;
    sh_val *batch; /* events of the last message not yet handed out */
    size_t next;
    sh_msgmac_conf mac;
    sh_msgmac_seen *seen; /* nonces of the messages taken within the window */
};

/* ---- publishing ------------------------------------------------------------ */

/* pub_flush sends the events in b (n of them) as one message, signed when
 * the publisher has a key (msgmac.h). */
static void pub_flush(sh_pub *p, const sh_buf *b, size_t n)
{
    sh_buf head;
    sh_buf_init(&head);
    nng_msg *m = NULL;
    unsigned char mhead[SH_MSGMAC_HEAD_BYTES], tag[SH_MSGMAC_TAG_BYTES];
    int rv =
        sh_buf_puts(&head, "*\n") || sh_msg_pack_array_header(n * 2, &head) || nng_msg_alloc(&m, 0);
    if (!rv && p->mac.on) {
        sh_msgmac_head(SH_MSGMAC_EVENT, sh_now_ms(), NULL, NULL, mhead);
        rv = nng_msg_append(m, mhead, sizeof mhead);
    }
    if (!rv)
        rv = nng_msg_append(m, head.data, head.len) || nng_msg_append(m, b->data, b->len);
    if (!rv && p->mac.on) {
        sh_msgmac_tag(&p->mac, nng_msg_body(m), nng_msg_len(m), tag);
        rv = nng_msg_append(m, tag, sizeof tag);
    }
    sh_buf_fini(&head);
    if (rv) {
        if (m)
            nng_msg_free(m);
        return;
    }
    if (nng_sendmsg(p->sock, m, NNG_FLAG_NONBLOCK) != 0)
        nng_msg_free(m);
}

static void *pub_main(void *arg)
{
    sh_pub *p = arg;
    sh_buf out;
    sh_buf_init(&out);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (p->nqueued == 0 && !p->stop)
            pthread_cond_wait(&p->cond, &p->lock);
        if (p->nqueued == 0 && p->stop)
            break;
        if (!p->stop) {
            pthread_mutex_unlock(&p->lock);
            struct timespec ts = {0, PUB_LINGER_US * 1000L};
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&p->lock);
        }
        /* Take the queue and send it without holding the lock. */
        sh_buf taken = p->queued;
        size_t n = p->nqueued;
        p->queued = out;
        sh_buf_reset(&p->queued);
        p->nqueued = 0;
        if (p->dropped) {
            sh_log_warn("events_dropped", "%zu events dropped: the publisher's queue was full",
                        p->dropped);
            p->dropped = 0;
        }
        pthread_mutex_unlock(&p->lock);
        pub_flush(p, &taken, n);
        out = taken;
        if (out.cap > SH_PUB_QUEUE_MAX)
            sh_buf_fini(&out);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    sh_buf_fini(&out);
    return NULL;
}

int sh_pub_new(const char *url, sh_pub **out, sh_error *err)
{
    *out = NULL;
    sh_pub *p = calloc(1, sizeof *p);
    if (!p)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    sh_buf_init(&p->queued);
    sh_msgmac_current(&p->mac);
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
    sh_msgmac_warn_open("events", url);
    if (pthread_create(&p->thread, NULL, pub_main, p) != 0) {
        nng_close(p->sock);
        free(p);
        return sh_error_set(err, SH_EINTERNAL, "cannot start the publisher thread");
    }
    *out = p;
    return SH_OK;
}

int sh_pub_send(sh_pub *p, const char *topic, const sh_val *payload)
{
    sh_buf b;
    sh_buf_init(&b);
    int rc = sh_msg_pack_str(topic, strlen(topic), &b);
    if (!rc)
        rc = sh_msg_pack(payload, &b);
    if (rc) {
        sh_buf_fini(&b);
        return rc;
    }
    pthread_mutex_lock(&p->lock);
    if (p->queued.len + b.len > SH_PUB_QUEUE_MAX) {
        p->dropped++;
        rc = SH_ELIMIT;
    } else if ((rc = sh_buf_append(&p->queued, b.data, b.len)) == SH_OK) {
        if (p->nqueued++ == 0)
            pthread_cond_signal(&p->cond);
    }
    pthread_mutex_unlock(&p->lock);
    sh_buf_fini(&b);
    return rc;
}

void sh_pub_free(sh_pub *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    nng_close(p->sock);
    sh_buf_fini(&p->queued);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p);
}

/* ---- subscribing ----------------------------------------------------------- */

int sh_sub_new(const char *urls, size_t max_msg, sh_sub **out, sh_error *err)
{
    *out = NULL;
    sh_sub *s = calloc(1, sizeof *s);
    if (!s)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    sh_msg_limits_default(&s->lim);
    if (max_msg)
        s->lim.max_bytes = max_msg;
    sh_msgmac_current(&s->mac);
    if (s->mac.on && sh_msgmac_seen_new(EVENTS_SEEN, &s->seen) != SH_OK) {
        free(s);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    int rv = nng_sub0_open(&s->sock);
    if (rv) {
        sh_msgmac_seen_free(s->seen);
        free(s);
        return sh_error_set(err, SH_EINTERNAL, "cannot open SUB socket: %s", nng_strerror(rv));
    }
    nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, s->lim.max_bytes + 256 + SH_MSGMAC_OVERHEAD);
    nng_socket_set_int(s->sock, NNG_OPT_RECVBUF, 1024);
    if ((rv = sh__nng_dial_all(s->sock, urls, "events", err))) {
        sh_sub_free(s);
        return rv;
    }
    *out = s;
    return SH_OK;
}

int sh_sub_subscribe(sh_sub *s, const char *prefix)
{
    if (s->nprefixes == EVENTS_MAX_PREFIXES)
        return SH_ELIMIT;
    char *copy = strdup(prefix);
    if (!copy)
        return SH_ENOMEM;
    /* Batches mix topics: nng delivers everything, and the prefixes are
     * matched here, event by event. */
    if (s->nprefixes == 0 && nng_socket_set(s->sock, NNG_OPT_SUB_SUBSCRIBE, "", 0) != 0) {
        free(copy);
        return SH_EINVAL;
    }
    s->prefixes[s->nprefixes++] = copy;
    return SH_OK;
}

static bool sub_wanted(const sh_sub *s, const char *topic, size_t len)
{
    for (size_t i = 0; i < s->nprefixes; i++) {
        size_t plen = strlen(s->prefixes[i]);
        /* The prefix may end with the "\n" that follows the topic. */
        if (plen <= len + 1 && memcmp(s->prefixes[i], topic, plen < len ? plen : len) == 0 &&
            (plen <= len || s->prefixes[i][len] == '\n'))
            return true;
    }
    return false;
}

/* sub_next hands out the next wanted event of the current batch. */
static int sub_next(sh_sub *s, char **topic, sh_val **payload)
{
    while (s->batch && s->next + 1 < sh_val_len(s->batch)) {
        const sh_val *t = sh_val_at(s->batch, s->next);
        size_t vi = s->next + 1;
        s->next += 2;
        size_t len;
        const char *name = sh_val_str(t, &len);
        if (sh_val_type_of(t) != SH_VAL_STR || !sub_wanted(s, name, len))
            continue;
        *topic = strdup(name);
        if (!*topic)
            return SH_ENOMEM;
        *payload = sh_val_take_at(s->batch, vi);
        return SH_OK;
    }
    sh_val_free(s->batch);
    s->batch = NULL;
    return SH_ETIMEDOUT;
}

/* sub_open checks the MAC of a message (when the subscriber has a key)
 * and narrows body and len to the events inside; a refused message is logged
 * (rate-limited) and dropped. */
static int sub_open(sh_sub *s, const char **body, size_t *len)
{
    sh_error err;
    sh_error_clear(&err);
    int rc = SH_OK;
    if (s->mac.on) {
        const void *inner;
        rc = sh_msgmac_open(&s->mac, SH_MSGMAC_EVENT, s->seen, sh_now_ms(), *body, *len, NULL, NULL,
                            &inner, len, &err);
        if (rc == SH_OK)
            *body = inner;
    } else if (sh_msgmac_is_signed(*body, *len)) {
        rc = sh_error_set(&err, SH_EAUTH,
                          "the events carry a MAC but this process has no RPC_SECRET");
    }
    if (rc)
        sh_msgmac_log_refusal("events", &err);
    return rc;
}

/* sub_take turns one received message into the current batch. */
static int sub_take(sh_sub *s, nng_msg *m)
{
    const char *body = nng_msg_body(m);
    size_t len = nng_msg_len(m);
    if (sub_open(s, &body, &len) != SH_OK)
        return SH_EAUTH;
    const char *nl = memchr(body, '\n', len);
    if (!nl)
        return SH_EPROTO;
    size_t tlen = (size_t)(nl - body);
    sh_val *v = NULL;
    if (sh_msg_unpack(nl + 1, len - tlen - 1, &s->lim, &v, NULL) != SH_OK)
        return SH_EPROTO;
    if (tlen == 1 && body[0] == '*') {
        if (sh_val_type_of(v) != SH_VAL_ARRAY || sh_val_len(v) % 2) {
            sh_val_free(v);
            return SH_EPROTO;
        }
        s->batch = v;
    } else {
        /* A lone event: make it a batch of one. */
        sh_val *a = sh_val_new_array();
        if (!a || sh_val_push(a, sh_val_new_str(body, tlen)) || sh_val_push(a, v)) {
            sh_val_free(a);
            return SH_ENOMEM;
        }
        s->batch = a;
    }
    s->next = 0;
    return SH_OK;
}

int sh_sub_recv(sh_sub *s, int timeout_ms, char **topic, sh_val **payload)
{
    *topic = NULL;
    *payload = NULL;
    int64_t deadline = sh_mono_ms() + timeout_ms;
    for (;;) {
        int rc = sub_next(s, topic, payload);
        if (rc != SH_ETIMEDOUT)
            return rc;
        int64_t left = deadline - sh_mono_ms();
        if (left < 0)
            return SH_ETIMEDOUT;
        nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, (nng_duration)left);
        nng_msg *m;
        int rv = nng_recvmsg(s->sock, &m, 0);
        if (rv == NNG_ETIMEDOUT)
            return SH_ETIMEDOUT;
        if (rv)
            return rv == NNG_ECLOSED ? SH_ECLOSED : SH_EUNAVAIL;
        rc = sub_take(s, m);
        nng_msg_free(m);
        if (rc == SH_EAUTH)
            continue; /* dropped, and logged */
        if (rc)
            return rc;
    }
}

void sh_sub_free(sh_sub *s)
{
    if (!s)
        return;
    nng_close(s->sock);
    for (size_t i = 0; i < s->nprefixes; i++)
        free(s->prefixes[i]);
    sh_val_free(s->batch);
    sh_msgmac_seen_free(s->seen);
    free(s);
}
