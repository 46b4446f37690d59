/* bench_sse.c - load generator for the gateway's event streams: it holds
 * many `GET /api/progress/:id/stream` connections over a set of records on
 * one epoll loop, posts updates to those records at a steady rate over a
 * few keep-alive connections, and times each event from the reply of the
 * POST that made it to its arrival on every stream. One parseable line:
 *
 *   sse streams=2000 records=200 updates=10000 rate=999.9 events=99990 expected=100000
 *       p50_ms=... p99_ms=... missed_final=0 rss_per_stream_kib=... errors=0 ...
 *
 * Usage: bench_sse -a HOST:PORT -t TOKEN -g GATEWAY_PID [-s STREAMS] [-r RECORDS]
 *                  [-u UPDATES_PER_S] [-d SECONDS] [-c POST_CONNECTIONS] [-w GRACE_S]
 *                  [-p ID_PREFIX]
 * Phases: create every record (one POST each); read the gateway's VmRSS;
 * open the streams (each must show its record's snapshot); after 2 s idle,
 * read VmRSS again (the difference over the streams is the RSS per idle
 * stream); post updates for -d seconds, record k going to record k % RECORDS
 * at start + k / rate; then wait up to -w seconds for every stream to show
 * its record's final version (those that do not "missed the final state").
 * An event that arrives before its POST's reply was read counts as 0 ms
 * ("early"). Versions a stream never saw (the gateway may skip versions and
 * send the newest state) count in expected - events. */
#define _GNU_SOURCE /* memmem, strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SSE_MAX_EVENTS        512
#define SSE_OPEN_AT_ONCE      100
#define SSE_CONNECT_TIMEOUT_S 60.0
#define SSE_IDLE_S            2.0

enum { SSE_STREAM, SSE_POSTER };
enum { SSE_CONNECTING, SSE_HEADERS, SSE_BODY, SSE_CLOSED };

typedef struct sse_conn {
    int fd;
    int kind;
    int state;
    int rec;
    char *in; /* bytes read and not yet parsed */
    size_t len, cap;
    /* stream: chunked transfer decoding and the SSE fields of the event
     * being read */
    bool chunked;
    int chunk_state; /* 0: size line, 1: data, 2: CRLF after the data */
    size_t chunk_left;
    char *ev; /* decoded event-stream bytes not yet parsed */
    size_t evlen, evcap;
    bool ev_progress;
    long ev_id;
    bool snapshot;
    long last_version;
    /* poster */
    bool busy;
    double sent_at;
    long update; /* -1: a create */
} sse_conn;

typedef struct sse_bench {
    const char *host;
    int port;
    const char *token;
    const char *prefix;
    int pid;
    int streams, records, posters;
    double rate, seconds, grace;
    int ep;
    sse_conn *conns; /* streams first, then posters */
    /* per record */
    long *base;        /* version after its create */
    long *final;       /* highest version a POST reply gave */
    double **reply_at; /* reply time of version base + 1 + i */
    long per_rec;      /* slots of reply_at per record */
    /* counters */
    long creates_done, next_create;
    long updates_total, next_update, updates_done;
    int opened, snapshots, closed;
    long events, early, dups, gaps, errors;
    double *lat; /* ms */
    size_t nlat, caplat;
    double *post_lat;
    size_t npost, cappost;
    bool measuring;
    double t_updates;
    char first_error[256];
} sse_bench;

static double sse_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sse_error(sse_bench *b, const char *what)
{
    if (!b->errors)
        snprintf(b->first_error, sizeof b->first_error, "%s", what);
    b->errors++;
}

static void *sse_grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(p, c * elem);
    if (!q) {
        fprintf(stderr, "bench_sse: out of memory\n");
        exit(1);
    }
    *cap = c;
    return q;
}

static void sse_push(double **v, size_t *n, size_t *cap, double x)
{
    *v = sse_grow(*v, cap, *n + 1, sizeof **v);
    (*v)[(*n)++] = x;
}

static long sse_rss_kib(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static int sse_connect(sse_bench *b, sse_conn *c)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)b->port)};
    if (inet_pton(AF_INET, b->host, &sa.sin_addr) != 1)
        return -1;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS)
        return -1;
    c->state = SSE_CONNECTING;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
    return epoll_ctl(b->ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void sse_close(sse_bench *b, sse_conn *c, const char *why)
{
    if (c->state == SSE_CLOSED)
        return;
    if (why)
        sse_error(b, why);
    epoll_ctl(b->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->state = SSE_CLOSED;
    b->closed++;
}

static int sse_send(int fd, const char *s, size_t n)
{
    /* A request is far smaller than a fresh socket's buffer. */
    ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
    return w == (ssize_t)n ? 0 : -1;
}

/* sse_post sends the next create or due update on an idle poster. */
static void sse_post(sse_bench *b, sse_conn *c, double now)
{
    long k = -1;
    int rec;
    if (b->next_create < b->records) {
        rec = (int)b->next_create++;
    } else if (b->measuring && b->next_update < b->updates_total &&
               now >= b->t_updates + (double)b->next_update / b->rate) {
        k = b->next_update++;
        rec = (int)(k % b->records);
    } else {
        return;
    }
    char body[160], req[768];
    int bn = snprintf(body, sizeof body,
                      "{\"currentStep\":%ld,\"currentAction\":\"bench update\",\"phase\":\"sse\"}",
                      k < 0 ? 0 : k);
    int rn = snprintf(req, sizeof req,
                      "POST /api/progress/%s%d HTTP/1.1\r\nHost: %s:%d\r\n"
                      "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %d\r\n\r\n%s",
                      b->prefix, rec, b->host, b->port, b->token, bn, body);
    c->rec = rec;
    c->update = k;
    c->busy = true;
    c->sent_at = now;
    if (sse_send(c->fd, req, (size_t)rn) != 0)
        sse_close(b, c, "poster send failed");
}

static void sse_poster_reply(sse_bench *b, sse_conn *c, double now)
{
    for (;;) {
        char *end = c->len ? memmem(c->in, c->len, "\r\n\r\n", 4) : NULL;
        if (!end)
            return;
        size_t hlen = (size_t)(end - c->in) + 4;
        char *cl = memmem(c->in, hlen, "Content-Length:", 15);
        if (!cl)
            cl = memmem(c->in, hlen, "content-length:", 15);
        if (!cl) {
            sse_close(b, c, "poster reply without Content-Length");
            return;
        }
        size_t blen = (size_t)strtoul(cl + 15, NULL, 10);
        if (c->len < hlen + blen)
            return;
        bool ok = c->len > 12 && memcmp(c->in, "HTTP/1.1 200", 12) == 0;
        long v = -1;
        char *vp = memmem(c->in + hlen, blen, "\"version\":", 10);
        if (vp)
            v = strtol(vp + 10, NULL, 10);
        if (!ok || v < 1) {
            char what[128];
            snprintf(what, sizeof what, "POST reply: %.40s", c->in);
            sse_error(b, what);
        } else if (c->update < 0) {
            b->base[c->rec] = v;
            b->final[c->rec] = v;
            b->creates_done++;
        } else {
            long i = v - b->base[c->rec] - 1;
            if (i >= 0 && i < b->per_rec && b->reply_at[c->rec][i] == 0)
                b->reply_at[c->rec][i] = now;
            if (v > b->final[c->rec])
                b->final[c->rec] = v;
            sse_push(&b->post_lat, &b->npost, &b->cappost, (now - c->sent_at) * 1000.0);
        }
        if (c->update >= 0)
            b->updates_done++;
        c->busy = false;
        memmove(c->in, c->in + hlen + blen, c->len - hlen - blen);
        c->len -= hlen + blen;
    }
}

static void sse_event(sse_bench *b, sse_conn *c, long v, double now)
{
    if (!c->snapshot) {
        c->snapshot = true;
        b->snapshots++;
    }
    if (v <= c->last_version) {
        b->dups++;
        return;
    }
    if (b->measuring && c->last_version > 0 && v > c->last_version + 1)
        b->gaps += v - c->last_version - 1;
    c->last_version = v;
    if (!b->measuring)
        return;
    long i = v - b->base[c->rec] - 1;
    if (i < 0 || i >= b->per_rec)
        return;
    double at = b->reply_at[c->rec][i];
    b->events++;
    if (at == 0) {
        b->early++;
        sse_push(&b->lat, &b->nlat, &b->caplat, 0.0);
    } else {
        sse_push(&b->lat, &b->nlat, &b->caplat, (now - at) * 1000.0);
    }
}

/* sse_lines parses the decoded event stream: fields up to a blank line. */
static void sse_lines(sse_bench *b, sse_conn *c, double now)
{
    size_t off = 0;
    for (;;) {
        char *nl = memchr(c->ev + off, '\n', c->evlen - off);
        if (!nl)
            break;
        char *line = c->ev + off;
        size_t n = (size_t)(nl - line);
        if (n && line[n - 1] == '\r')
            n--;
        if (n == 0) {
            if (c->ev_progress && c->ev_id > 0)
                sse_event(b, c, c->ev_id, now);
            c->ev_progress = false;
            c->ev_id = 0;
        } else if (n >= 6 && memcmp(line, "event:", 6) == 0) {
            const char *t = line + 6;
            while (*t == ' ')
                t++;
            c->ev_progress = (size_t)(line + n - t) == 8 && memcmp(t, "progress", 8) == 0;
            if ((size_t)(line + n - t) == 8 && memcmp(t, "shutdown", 8) == 0)
                sse_error(b, "stream got event: shutdown");
        } else if (n >= 3 && memcmp(line, "id:", 3) == 0) {
            c->ev_id = strtol(line + 3, NULL, 10);
        }
        off = (size_t)(nl - c->ev) + 1;
    }
    memmove(c->ev, c->ev + off, c->evlen - off);
    c->evlen -= off;
}

static void sse_stream_bytes(sse_bench *b, sse_conn *c, const char *p, size_t n, double now)
{
    c->ev = sse_grow(c->ev, &c->evcap, c->evlen + n + 1, 1);
    memcpy(c->ev + c->evlen, p, n);
    c->evlen += n;
    sse_lines(b, c, now);
}

static void sse_stream_input(sse_bench *b, sse_conn *c, double now)
{
    if (c->state == SSE_HEADERS) {
        char *end = c->len ? memmem(c->in, c->len, "\r\n\r\n", 4) : NULL;
        if (!end)
            return;
        size_t hlen = (size_t)(end - c->in) + 4;
        if (c->len < 12 || memcmp(c->in, "HTTP/1.1 200", 12) != 0) {
            char what[128];
            snprintf(what, sizeof what, "stream reply: %.40s", c->in);
            sse_close(b, c, what);
            return;
        }
        c->in[hlen - 1] = 0;
        c->chunked = strcasestr(c->in, "transfer-encoding: chunked") != NULL;
        memmove(c->in, c->in + hlen, c->len - hlen);
        c->len -= hlen;
        c->state = SSE_BODY;
    }
    if (!c->chunked) {
        sse_stream_bytes(b, c, c->in, c->len, now);
        c->len = 0;
        return;
    }
    size_t off = 0;
    while (off < c->len) {
        if (c->chunk_state == 0) {
            char *nl = memmem(c->in + off, c->len - off, "\r\n", 2);
            if (!nl)
                break;
            c->chunk_left = (size_t)strtoul(c->in + off, NULL, 16);
            off = (size_t)(nl - c->in) + 2;
            if (c->chunk_left == 0) {
                sse_close(b, c, "stream ended");
                return;
            }
            c->chunk_state = 1;
        } else if (c->chunk_state == 1) {
            size_t n = c->len - off < c->chunk_left ? c->len - off : c->chunk_left;
            sse_stream_bytes(b, c, c->in + off, n, now);
            off += n;
            c->chunk_left -= n;
            if (c->chunk_left == 0)
                c->chunk_state = 2;
        } else {
            if (c->len - off < 2)
                break;
            off += 2;
            c->chunk_state = 0;
        }
    }
    memmove(c->in, c->in + off, c->len - off);
    c->len -= off;
}

static void sse_writable(sse_bench *b, sse_conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        sse_close(b, c, strerror(err));
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(b->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->state = SSE_HEADERS;
    if (c->kind == SSE_STREAM) {
        char req[512];
        int n = snprintf(req, sizeof req,
                         "GET /api/progress/%s%d/stream HTTP/1.1\r\nHost: %s:%d\r\n"
                         "Authorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n",
                         b->prefix, c->rec, b->host, b->port, b->token);
        if (sse_send(c->fd, req, (size_t)n) != 0)
            sse_close(b, c, "stream send failed");
    }
}

static void sse_readable(sse_bench *b, sse_conn *c, double now)
{
    for (;;) {
        c->in = sse_grow(c->in, &c->cap, c->len + 16384, 1);
        ssize_t n = recv(c->fd, c->in + c->len, c->cap - c->len - 1, 0);
        if (n > 0) {
            c->len += (size_t)n;
            c->in[c->len] = 0;
            if (c->kind == SSE_POSTER)
                sse_poster_reply(b, c, now);
            else
                sse_stream_input(b, c, now);
            if (c->state == SSE_CLOSED)
                return;
            continue;
        }
        if (n == 0)
            sse_close(b, c, c->kind == SSE_POSTER ? "poster closed" : "stream closed");
        else if (errno != EAGAIN && errno != EINTR)
            sse_close(b, c, strerror(errno));
        return;
    }
}

/* sse_loop runs the epoll loop until done(b) or the deadline. */
static void sse_loop(sse_bench *b, double deadline, bool (*done)(sse_bench *))
{
    struct epoll_event evs[SSE_MAX_EVENTS];
    sse_conn *posters = b->conns + b->streams;
    while (!done(b)) {
        double now = sse_now();
        if (now >= deadline)
            return;
        for (int i = 0; i < b->posters; i++)
            if (posters[i].state == SSE_BODY && !posters[i].busy)
                sse_post(b, &posters[i], now);
        /* Open more streams while few are waiting for their snapshot. */
        while (b->opened < b->streams && b->opened - b->snapshots - b->closed < SSE_OPEN_AT_ONCE) {
            sse_conn *c = &b->conns[b->opened++];
            if (sse_connect(b, c) != 0) {
                sse_error(b, "stream connect failed");
                c->state = SSE_CLOSED;
                b->closed++;
            }
        }
        int n = epoll_wait(b->ep, evs, SSE_MAX_EVENTS, 1);
        now = sse_now();
        for (int i = 0; i < n; i++) {
            sse_conn *c = evs[i].data.ptr;
            if (c->state == SSE_CLOSED)
                continue;
            if (c->state == SSE_CONNECTING) {
                if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                    sse_writable(b, c);
                continue;
            }
            sse_readable(b, c, now);
        }
    }
}

static bool sse_created(sse_bench *b)
{
    return b->creates_done >= b->records || b->errors;
}

static bool sse_all_open(sse_bench *b)
{
    return b->snapshots + b->closed >= b->streams;
}

static bool sse_never(sse_bench *b)
{
    (void)b;
    return false;
}

static bool sse_updated(sse_bench *b)
{
    return b->updates_done >= b->updates_total;
}

static bool sse_converged(sse_bench *b)
{
    for (int i = 0; i < b->streams; i++) {
        sse_conn *c = &b->conns[i];
        if (c->state != SSE_CLOSED && c->last_version < b->final[c->rec])
            return false;
    }
    return true;
}

static int sse_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double sse_pct(double *v, size_t n, double p)
{
    if (!n)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

static void sse_usage(void)
{
    fprintf(stderr, "usage: bench_sse -a HOST:PORT -t TOKEN -g GATEWAY_PID [-s STREAMS] "
                    "[-r RECORDS] [-u UPDATES_PER_S] [-d SECONDS] [-c POSTERS] [-w GRACE_S] "
                    "[-p PREFIX]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    sse_bench b = {.streams = 2000,
                   .records = 200,
                   .posters = 8,
                   .rate = 1000,
                   .seconds = 10,
                   .grace = 5,
                   .prefix = "sse-"};
    static char host[64];
    int opt;
    while ((opt = getopt(argc, argv, "a:t:g:s:r:u:d:c:w:p:")) != -1) {
        switch (opt) {
        case 'a': {
            const char *colon = strrchr(optarg, ':');
            if (!colon || (size_t)(colon - optarg) >= sizeof host)
                sse_usage();
            memcpy(host, optarg, (size_t)(colon - optarg));
            b.host = host;
            b.port = atoi(colon + 1);
            break;
        }
        case 't':
            b.token = optarg;
            break;
        case 'g':
            b.pid = atoi(optarg);
            break;
        case 's':
            b.streams = atoi(optarg);
            break;
        case 'r':
            b.records = atoi(optarg);
            break;
        case 'u':
            b.rate = atof(optarg);
            break;
        case 'd':
            b.seconds = atof(optarg);
            break;
        case 'c':
            b.posters = atoi(optarg);
            break;
        case 'w':
            b.grace = atof(optarg);
            break;
        case 'p':
            b.prefix = optarg;
            break;
        default:
            sse_usage();
        }
    }
    if (!b.host || !b.token || b.pid <= 0 || b.streams < 1 || b.records < 1 || b.posters < 1 ||
        b.rate <= 0 || b.seconds <= 0)
        sse_usage();

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)b.streams + b.posters + 16) {
        fprintf(stderr, "bench_sse: %d streams need a larger fd limit than %lu (ulimit -n)\n",
                b.streams, (unsigned long)rl.rlim_cur);
        return 1;
    }

    b.updates_total = (long)(b.rate * b.seconds);
    b.per_rec = b.updates_total / b.records + 2;
    b.base = calloc((size_t)b.records, sizeof *b.base);
    b.final = calloc((size_t)b.records, sizeof *b.final);
    b.reply_at = calloc((size_t)b.records, sizeof *b.reply_at);
    b.conns = calloc((size_t)(b.streams + b.posters), sizeof *b.conns);
    b.ep = epoll_create1(EPOLL_CLOEXEC);
    if (!b.base || !b.final || !b.reply_at || !b.conns || b.ep < 0)
        return 1;
    for (int r = 0; r < b.records; r++)
        if (!(b.reply_at[r] = calloc((size_t)b.per_rec, sizeof **b.reply_at)))
            return 1;
    for (int i = 0; i < b.streams; i++) {
        b.conns[i].kind = SSE_STREAM;
        b.conns[i].rec = i % b.records;
        b.conns[i].fd = -1;
    }
    b.opened = b.streams; /* none opened until the records exist */
    for (int i = 0; i < b.posters; i++) {
        sse_conn *c = &b.conns[b.streams + i];
        c->kind = SSE_POSTER;
        if (sse_connect(&b, c) != 0) {
            fprintf(stderr, "bench_sse: cannot connect to %s:%d\n", b.host, b.port);
            return 1;
        }
    }

    /* The posters' connections go through the same loop: as soon as one
     * is writable it is marked ready to post (state BODY). */
    double t = sse_now();
    struct epoll_event evs[SSE_MAX_EVENTS];
    int ready = 0;
    while (ready < b.posters && sse_now() < t + 10) {
        int n = epoll_wait(b.ep, evs, SSE_MAX_EVENTS, 100);
        for (int i = 0; i < n; i++) {
            sse_conn *c = evs[i].data.ptr;
            if (c->state != SSE_CONNECTING)
                continue;
            sse_writable(&b, c);
            if (c->state == SSE_CLOSED)
                break;
            c->state = SSE_BODY;
            ready++;
        }
    }
    if (ready < b.posters) {
        fprintf(stderr, "bench_sse: poster connections failed: %s\n", b.first_error);
        return 1;
    }
    sse_loop(&b, sse_now() + 30, sse_created);
    if (b.creates_done < b.records) {
        fprintf(stderr, "bench_sse: creating the records failed: %s\n", b.first_error);
        return 1;
    }

    long rss_before = sse_rss_kib(b.pid);
    double t_open = sse_now();
    b.opened = 0;
    sse_loop(&b, t_open + SSE_CONNECT_TIMEOUT_S, sse_all_open);
    double open_s = sse_now() - t_open;
    int connected = b.snapshots;
    fprintf(stderr, "bench_sse: %d of %d streams show their snapshot after %.2f s\n", connected,
            b.streams, open_s);
    sse_loop(&b, sse_now() + SSE_IDLE_S, sse_never);
    long rss_idle = sse_rss_kib(b.pid);

    b.measuring = true;
    b.t_updates = sse_now();
    sse_loop(&b, b.t_updates + b.seconds * 3 + 10, sse_updated);
    double t_last = sse_now();
    double upd_s = t_last - b.t_updates;
    long rss_busy = sse_rss_kib(b.pid);
    sse_loop(&b, t_last + b.grace, sse_converged);
    double converge_ms = (sse_now() - t_last) * 1000.0;
    int missed = 0;
    for (int i = 0; i < b.streams; i++) {
        sse_conn *c = &b.conns[i];
        if (c->last_version < b.final[c->rec])
            missed++;
    }

    qsort(b.lat, b.nlat, sizeof *b.lat, sse_cmp);
    qsort(b.post_lat, b.npost, sizeof *b.post_lat, sse_cmp);
    long expected = 0;
    /* Every update of a record is expected once on each of its streams. */
    for (long k = 0; k < b.updates_done; k++)
        expected += b.streams / b.records + (k % b.records < b.streams % b.records);
    printf("sse streams=%d records=%d connected=%d open_s=%.2f updates=%ld rate=%.1f "
           "events=%ld expected=%ld early=%ld gaps=%ld dups=%ld p50_ms=%.3f p90_ms=%.3f "
           "p99_ms=%.3f max_ms=%.3f post_p50_ms=%.3f post_p99_ms=%.3f missed_final=%d "
           "converge_ms=%.0f rss_before_kib=%ld rss_idle_kib=%ld rss_busy_kib=%ld "
           "rss_per_stream_kib=%.2f closed=%d errors=%ld\n",
           b.streams, b.records, connected, open_s, b.updates_done, b.updates_done / upd_s,
           b.events, expected, b.early, b.gaps, b.dups, sse_pct(b.lat, b.nlat, 0.50),
           sse_pct(b.lat, b.nlat, 0.90), sse_pct(b.lat, b.nlat, 0.99),
           b.nlat ? b.lat[b.nlat - 1] : 0.0, sse_pct(b.post_lat, b.npost, 0.50),
           sse_pct(b.post_lat, b.npost, 0.99), missed, converge_ms, rss_before, rss_idle, rss_busy,
           connected ? (double)(rss_idle - rss_before) / connected : 0.0, b.closed, b.errors);
    if (b.errors)
        fprintf(stderr, "bench_sse: first error: %s\n", b.first_error);
    for (int i = 0; i < b.streams + b.posters; i++) {
        if (b.conns[i].state != SSE_CLOSED && b.conns[i].fd >= 0)
            close(b.conns[i].fd);
        free(b.conns[i].in);
        free(b.conns[i].ev);
    }
    for (int r = 0; r < b.records; r++)
        free(b.reply_at[r]);
    free(b.reply_at);
    free(b.base);
    free(b.final);
    free(b.conns);
    free(b.lat);
    free(b.post_lat);
    close(b.ep);
    return 0;
}
