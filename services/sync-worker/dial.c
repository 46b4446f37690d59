/* dial.c - resolve, check and connect (dial.h). The socket is connected
 * here rather than by libetpan so that the address connected to is the
 * one the policy checked. */
#include "dial.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shared/util.h"

/* dial_one connects to one address within timeout_ms: the socket, or -1
 * with errno set. */
static int dial_one(const sh_hostaddr *a, int timeout_ms)
{
    int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    int r = connect(fd, (const struct sockaddr *)&a->sa, a->len);
    if (r < 0 && errno == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int64_t end = sh_mono_ms() + timeout_ms;
        do {
            int64_t left = end - sh_mono_ms();
            r = left > 0 ? poll(&p, 1, (int)left) : 0;
        } while (r < 0 && errno == EINTR);
        if (r == 0) {
            errno = ETIMEDOUT;
            r = -1;
        } else if (r > 0) {
            int soerr = 0;
            socklen_t len = sizeof soerr;
            r = getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 ? -1 : 0;
            if (r == 0 && soerr) {
                errno = soerr;
                r = -1;
            }
        }
    }
    if (r < 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Without a policy of the operator's, the built-in rules alone, under the
 * settings' names. */
static sh_hostpolicy *dial_builtin;
static pthread_once_t dial_once = PTHREAD_ONCE_INIT;

static void dial_builtin_init(void)
{
    sh_error e;
    sh_hostpolicy_new(NULL, NULL, SH_IMAP_ALLOW_HOSTS, SH_IMAP_DENY_HOSTS, &dial_builtin, &e);
}

int sync_dial(const sh_hostpolicy *policy, const char *host, int port, int timeout_s, int *fd,
              sh_error *err)
{
    *fd = -1;
    if (!policy) {
        pthread_once(&dial_once, dial_builtin_init);
        if (!(policy = dial_builtin))
            return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    sh_hostaddr addrs[SH_HOSTADDR_MAX];
    size_t n = 0;
    int rc = sh_hostpolicy_resolve(policy, host, port, addrs, &n, err);
    if (rc)
        return rc;
    int last = 0;
    for (size_t i = 0; i < n; i++) {
        *fd = dial_one(&addrs[i], timeout_s * 1000);
        if (*fd >= 0)
            return SH_OK;
        last = errno;
    }
    return sh_error_set(err, SH_EUNAVAIL, "cannot connect to %.100s:%d (%s)", host, port,
                        strerror(last));
}
