/* imap_sock.c - the socket under an IMAP session, plain or TLS, as a
 * libetpan stream driver that waits with poll() and holds nothing but the
 * socket (see imap_sock.h for why). Every read and write has a deadline:
 * the stream's timeout (mailstream_low_set_timeout, or libetpan's global
 * one) counted from the start of the call, not from each byte, so a peer
 * that trickles cannot stretch one call. */
#include "imap_sock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "shared/util.h"

typedef struct imap_sock {
    int fd;                /* -1 once closed */
    SSL *ssl;              /* NULL for a plain socket */
    atomic_bool cancelled; /* set by mailstream_low_cancel */
} imap_sock;

static SSL_CTX *sock_ctx;
static pthread_once_t sock_ctx_once = PTHREAD_ONCE_INIT;

/* sock_ctx_make builds the one client context every TLS session shares.
 * It verifies nothing: tls_verify.c checks the chain after the handshake,
 * with the account's CA file and the host name. */
static void sock_ctx_make(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* Idle sessions (IDLE watches) keep no read or write buffers. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    /* A server that closes without close_notify reads as the end. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
    sock_ctx = ctx;
}

/* sock_deadline is the end of a call starting now on s. */
static int64_t sock_deadline(const mailstream_low *s)
{
    int64_t ms = s->timeout ? (int64_t)s->timeout * 1000
                            : (int64_t)mailstream_network_delay.tv_sec * 1000 +
                                  mailstream_network_delay.tv_usec / 1000;
    return sh_mono_ms() + (ms > 0 ? ms : 1000);
}

/* sock_wait waits until fd is ready for events (or has hung up, which the
 * next read or write reports), or end passes: 0 when ready, -1 when the
 * time ran out, the wait failed or the socket was cancelled. */
static int sock_wait(imap_sock *k, short events, int64_t end)
{
    for (;;) {
        if (atomic_load(&k->cancelled))
            return -1;
        int64_t left = end - sh_mono_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = k->fd, .events = events};
        int r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

/* sock_ssl_wait waits for what an SSL call that returned r asks for:
 * 0 to call again, 1 at the clean end of the stream, -1 on an error. */
static int sock_ssl_wait(imap_sock *k, int r, int64_t end)
{
    int e = SSL_get_error(k->ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return sock_wait(k, POLLIN, end);
    case SSL_ERROR_WANT_WRITE:
        return sock_wait(k, POLLOUT, end);
    case SSL_ERROR_ZERO_RETURN:
        return 1;
    case SSL_ERROR_SYSCALL:
        if (errno == EINTR)
            return 0;
        return -1;
    default:
        return -1;
    }
}

static ssize_t sock_read(mailstream_low *s, void *buf, size_t count)
{
    imap_sock *k = s->data;
    int64_t end = sock_deadline(s);
    if (count > INT_MAX)
        count = INT_MAX;
    for (;;) {
        if (k->fd < 0 || atomic_load(&k->cancelled))
            return -1;
        if (k->ssl) {
            ERR_clear_error();
            errno = 0;
            int r = SSL_read(k->ssl, buf, (int)count);
            if (r > 0)
                return r;
            int w = sock_ssl_wait(k, r, end);
            if (w)
                return w > 0 ? 0 : -1;
            continue;
        }
        ssize_t r = recv(k->fd, buf, count, 0);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        if ((errno != EAGAIN && errno != EWOULDBLOCK) || sock_wait(k, POLLIN, end))
            return -1;
    }
}

static ssize_t sock_write(mailstream_low *s, const void *buf, size_t count)
{
    imap_sock *k = s->data;
    int64_t end = sock_deadline(s);
    const char *p = buf;
    size_t done = 0;
    while (done < count) {
        if (k->fd < 0 || atomic_load(&k->cancelled))
            return -1;
        size_t left = count - done;
        if (k->ssl) {
            ERR_clear_error();
            errno = 0;
            int r = SSL_write(k->ssl, p + done, left > INT_MAX ? INT_MAX : (int)left);
            if (r > 0) {
                done += (size_t)r;
                continue;
            }
            if (sock_ssl_wait(k, r, end))
                return -1;
            continue;
        }
        ssize_t r = send(k->fd, p + done, left, MSG_NOSIGNAL);
        if (r > 0) {
            done += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) || sock_wait(k, POLLOUT, end))
            return -1;
    }
    return (ssize_t)count;
}

static int sock_close(mailstream_low *s)
{
    imap_sock *k = s->data;
    if (k->ssl) {
        SSL_free(k->ssl);
        k->ssl = NULL;
    }
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    return 0;
}

static int sock_get_fd(mailstream_low *s)
{
    imap_sock *k = s->data;
    return k->fd;
}

static void sock_free(mailstream_low *s)
{
    imap_sock *k = s->data;
    if (k)
        SSL_free(k->ssl);
    free(k);
    free(s);
}

/* sock_cancel may run on another thread: shutting the socket down wakes
 * a poll() waiting on it, and the flag fails every later call. */
static void sock_cancel(mailstream_low *s)
{
    imap_sock *k = s->data;
    atomic_store(&k->cancelled, true);
    if (k->fd >= 0)
        shutdown(k->fd, SHUT_RDWR);
}

/* sock_chain is the peer's chain as libetpan hands it out: a carray of
 * MMAPString holding DER, the server's certificate first. */
static carray *sock_chain(mailstream_low *s)
{
    imap_sock *k = s->data;
    STACK_OF(X509) *peer = k->ssl ? SSL_get_peer_cert_chain(k->ssl) : NULL;
    if (!peer)
        return NULL;
    carray *out = carray_new(4);
    for (int i = 0; out && i < sk_X509_num(peer); i++) {
        X509 *x = sk_X509_value(peer, i);
        int len = i2d_X509(x, NULL);
        MMAPString *str = len > 0 ? mmap_string_sized_new((size_t)len) : NULL;
        if (!str)
            continue;
        unsigned char *p = (unsigned char *)str->str;
        i2d_X509(x, &p);
        str->len = (size_t)len;
        if (carray_add(out, str, NULL) < 0)
            mmap_string_free(str);
    }
    return out;
}

static mailstream_low_driver sock_driver = {
    .mailstream_read = sock_read,
    .mailstream_write = sock_write,
    .mailstream_close = sock_close,
    .mailstream_get_fd = sock_get_fd,
    .mailstream_free = sock_free,
    .mailstream_cancel = sock_cancel,
    .mailstream_get_certificate_chain = sock_chain,
};

bool sync__imap_sock_pending(mailstream_low *low)
{
    if (!low || low->driver != &sock_driver)
        return false;
    imap_sock *k = low->data;
    return k->ssl && SSL_pending(k->ssl) > 0;
}

/* sock_nonblock puts fd in non-blocking mode: 0, or -1 when it fails. */
static int sock_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -1 : 0;
}

/* sock_new wraps fd (made non-blocking) with ssl (may be NULL). */
static mailstream_low *sock_new(int fd, SSL *ssl)
{
    if (sock_nonblock(fd))
        return NULL;
    imap_sock *k = calloc(1, sizeof *k);
    mailstream_low *low = k ? mailstream_low_new(k, &sock_driver) : NULL;
    if (!low) {
        free(k);
        return NULL;
    }
    k->fd = fd;
    k->ssl = ssl;
    atomic_init(&k->cancelled, false);
    return low;
}

mailstream_low *sync__imap_sock_open(int fd)
{
    return sock_new(fd, NULL);
}

mailstream_low *sync__imap_sock_tls_open(int fd, const char *host, int timeout_s)
{
    pthread_once(&sock_ctx_once, sock_ctx_make);
    int fl = fcntl(fd, F_GETFL);
    SSL *ssl =
        sock_ctx && fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0 ? SSL_new(sock_ctx) : NULL;
    if (!ssl || SSL_set_fd(ssl, fd) != 1 ||
        (!sh_is_ip_literal(host) && SSL_set_tlsext_host_name(ssl, host) != 1))
        goto fail;
    /* The handshake waits on the socket as a read does. */
    imap_sock k = {.fd = fd, .ssl = ssl};
    atomic_init(&k.cancelled, false);
    int64_t end = sh_mono_ms() + (int64_t)(timeout_s > 0 ? timeout_s : 10) * 1000;
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_connect(ssl);
        if (r == 1)
            break;
        if (sock_ssl_wait(&k, r, end))
            goto fail;
    }
    mailstream_low *low = sock_new(fd, ssl);
    if (!low)
        goto fail;
    return low;
fail:
    ERR_clear_error();
    SSL_free(ssl);
    return NULL;
}
