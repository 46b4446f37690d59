/* bench_sync.c - sync-worker figures against a private Dovecot (the test
 * fixture), run by tests/bench/sync, which starts Redis, progress and the
 * coordinator and exports their settings; this program starts the
 * sync-worker itself (it inherits the environment, SYNC_CONCURRENCY
 * included) because one figure needs a fresh worker. In one run:
 *
 *   - the references: a minimal IMAP client (plain sockets) doing LOGIN,
 *     SELECT INBOX and UID FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE) of a
 *     mailbox of MESSAGES messages, timed from connect to the tagged OK,
 *     after one warm-up run; and LOGIN + SELECT INBOX (CONDSTORE) + LOGOUT
 *     on a new connection per small account, from 1 and CHECK_THREADS
 *     connections;
 *   - the initial sync of the same mailbox into Redis: a new account per
 *     run, account.sync_now, until the run's progress record says complete;
 *     the account must then be `ok` and Redis must hold every message (each
 *     UID of the index with its message hash). Run 0 warms Dovecot up and is left out; then
 *     PARALLEL such syncs at once (the worker's memory at its fullest);
 *   - ACCOUNTS accounts with small mailboxes (SMALL messages) of their own
 *     Dovecot users, synced once (untimed, checked), then synced again with
 *     nothing changed: through account.sync_now to the running worker, and
 *     as a backlog queued while no worker runs, cleared by a worker started
 *     afterwards (every sync thread busy from the start);
 *   - each worker process's RSS when idle and at its peak (VmHWM).
 *
 * The start and end of each sync come from the progress service's events,
 * timed on arrival by a thread of their own: the worker's first progress
 * update of a run follows its lease at once, and its last (complete)
 * precedes sync.complete by one call. Prints parseable lines on stdout:
 *
 *   fetch run=1 messages=10000 ms=... per_s=...
 *   fetch messages=10000 runs=5 best_per_s=... median_per_s=... best_ms=... median_ms=...
 *   initial run=0 messages=10000 stored=10000 sync_ms=... e2e_ms=... rss_kib=... hwm_kib=...
 *   initial messages=10000 runs=5 sync_per_s=... e2e_per_s=... (medians) best_... hwm_kib=...
 *   parallel accounts=8 messages=80000 ms=... per_s=... hwm_kib=...
 *   first accounts=200 ms=... errors=0
 *   check accounts=200 threads=8 ms=... per_s=... p50_ms=... p99_ms=... errors=0
 *   nochange mode=running|backlog accounts=200 ms=... per_s=... busy_ms=... busy_per_s=...
 *            p50_ms=... p99_ms=... errors=0
 *   worker run=1 idle_kib=... hwm_kib=...
 *
 * With -L LARGE, then: a Dovecot without CONDSTORE holding LARGE messages
 * in one folder and CHECK (-C, 100,000) in another user's, and CHECK more
 * for a user of the first Dovecot; the bare fetch of the large folder
 * (after a warm-up), its initial sync by a fresh worker with that worker's
 * peak RSS, one no-change sync of it, and no-change syncs of the CHECK
 * folders with and without CONDSTORE:
 *
 *   generate messages=... ms=...
 *   bigfetch messages=... warm_ms=... ms=... per_s=...
 *   large condstore=0 messages=... ms=... per_s=... idle_kib=... hwm_kib=...
 *   bigcheck condstore=0|1 messages=... runs=... median_ms=... best_ms=... hwm_kib=...
 *
 * Usage: bench_sync -b SYNC_WORKER_BIN -l LOG_DIR [-n MESSAGES] [-a ACCOUNTS] [-m SMALL]
 *                   [-r FETCH_RUNS] [-s SYNC_RUNS] [-t CHECK_THREADS] [-p PARALLEL]
 *                   [-k REPEATS] [-L LARGE] [-C CHECK] */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "calls.h"
#include "dovecot_fixture.h"
#include "fixture.h"
#include "services.h"
#include "shared/events.h"
#include "shared/keys.h"
#include "shared/rpc.h"
#include "shared/store.h"
#include "shared/util.h"
#include "sync_stack.h"

#define BS_PASSWORD    "secret"
#define BS_BIG_USER    "bench"
#define BS_RPC_MS      10000
#define BS_MAX_THREADS 64
#define BS_MAX_RUNS    50

static volatile sig_atomic_t bs_stopping;
static tf_dovecot dove, plain; /* plain: a Dovecot without CONDSTORE */
static bool dove_started, plain_started;
static pid_t worker_pid;
static int worker_runs;
static const char *worker_bin, *log_dir;
static sh_rpc_client *coord, *progress, *wrpc;
static sh_sub *events;
static sh_store *store;

static void bs_on_signal(int sig)
{
    (void)sig;
    bs_stopping = 1;
}

static double bs_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bs_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* bs_pct returns the p-th percentile of n sorted values. */
static double bs_pct(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* The minimal IMAP client of the reference figures. */
typedef struct bs_imap {
    int fd;
    char *buf;
    size_t cap, off, len; /* unread bytes: buf[off .. off + len) */
} bs_imap;

static void bs_imap_close(bs_imap *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    c->fd = -1;
    c->buf = NULL;
}

/* bs_imap_fill reads what the server has sent next; -1 at end or error. */
static int bs_imap_fill(bs_imap *c)
{
    if (c->off + c->len == c->cap) {
        if (c->off) {
            memmove(c->buf, c->buf + c->off, c->len);
            c->off = 0;
        } else {
            char *n = realloc(c->buf, c->cap * 2);
            if (!n)
                return -1;
            c->buf = n;
            c->cap *= 2;
        }
    }
    ssize_t r = read(c->fd, c->buf + c->off + c->len, c->cap - c->off - c->len);
    if (r <= 0)
        return -1;
    c->len += (size_t)r;
    return 0;
}

/* bs_imap_line sets *line to the next line (without CRLF), valid until the
 * next read, and *n to its length. */
static int bs_imap_line(bs_imap *c, const char **line, size_t *n)
{
    size_t scanned = 0;
    for (;;) {
        char *nl = memchr(c->buf + c->off + scanned, '\n', c->len - scanned);
        if (nl) {
            *line = c->buf + c->off;
            size_t total = (size_t)(nl - *line) + 1;
            *n = total - 1 - (total >= 2 && nl[-1] == '\r');
            c->off += total;
            c->len -= total;
            if (c->len == 0)
                c->off = 0;
            return 0;
        }
        scanned = c->len;
        if (bs_imap_fill(c))
            return -1;
    }
}

/* bs_imap_skip drops the next n bytes (a literal's data). */
static int bs_imap_skip(bs_imap *c, size_t n)
{
    while (n) {
        if (c->len == 0 && bs_imap_fill(c))
            return -1;
        size_t take = n < c->len ? n : c->len;
        c->off += take;
        c->len -= take;
        n -= take;
        if (c->len == 0)
            c->off = 0;
    }
    return 0;
}

/* bs_literal tells whether a line ends with a literal's announcement
 * "{N}" (or "{N+}") and gives N. */
static bool bs_literal(const char *line, size_t n, size_t *size)
{
    if (n < 3 || line[n - 1] != '}')
        return false;
    size_t i = n - 1;
    if (line[i - 1] == '+')
        i--;
    size_t end = i;
    while (i > 0 && isdigit((unsigned char)line[i - 1]))
        i--;
    if (i == 0 || i == end || line[i - 1] != '{')
        return false;
    *size = (size_t)strtoull(line + i, NULL, 10);
    return true;
}

/* bs_imap_reply reads responses until the one tagged tag; counts untagged
 * FETCH responses in *fetched when given. Returns 0 when the server
 * answered OK. */
static int bs_imap_reply(bs_imap *c, const char *tag, long *fetched)
{
    size_t tl = strlen(tag);
    bool start = true; /* the line starts a response, not a literal's rest */
    for (;;) {
        const char *line;
        size_t n, lit;
        if (bs_imap_line(c, &line, &n))
            return -1;
        if (start && n > tl && memcmp(line, tag, tl) == 0 && line[tl] == ' ')
            return n >= tl + 3 && memcmp(line + tl + 1, "OK", 2) == 0 ? 0 : -1;
        if (start && fetched && n > 2 && line[0] == '*' && line[1] == ' ' &&
            isdigit((unsigned char)line[2])) {
            size_t i = 2;
            while (i < n && isdigit((unsigned char)line[i]))
                i++;
            if (n - i >= 7 && memcmp(line + i, " FETCH ", 7) == 0)
                (*fetched)++;
        }
        start = !bs_literal(line, n, &lit);
        if (!start && bs_imap_skip(c, lit))
            return -1;
    }
}

static int bs_imap_cmd(bs_imap *c, const char *tag, const char *cmd, long *fetched)
{
    char line[512];
    int n = snprintf(line, sizeof line, "%s %s\r\n", tag, cmd);
    if (n < 0 || (size_t)n >= sizeof line || write(c->fd, line, (size_t)n) != n)
        return -1;
    return bs_imap_reply(c, tag, fetched);
}

/* bs_imap_login connects to the server, reads its greeting and logs in. */
static int bs_imap_login(bs_imap *c, int port, const char *user, const char *password)
{
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    c->cap = 256 * 1024;
    c->off = c->len = 0;
    c->buf = malloc(c->cap);
    if (c->fd < 0 || !c->buf)
        return -1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {30, 0};
    int one = 1;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0)
        return -1;
    const char *line;
    size_t n;
    if (bs_imap_line(c, &line, &n) || n < 4 || memcmp(line, "* OK", 4) != 0)
        return -1;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "LOGIN \"%s\" \"%s\"", user, password);
    return bs_imap_cmd(c, "a1", cmd, NULL);
}

/* bs_fetch_once times one session of the bare client, connect to the UID
 * FETCH's tagged OK; returns the seconds or -1. */
static double bs_fetch_of(int port, const char *user, long want, int timeout_s)
{
    bs_imap c = {.fd = -1};
    long fetched = 0;
    double t0 = bs_now();
    int rc = bs_imap_login(&c, port, user, BS_PASSWORD);
    struct timeval tv = {timeout_s, 0};
    if (!rc && timeout_s > 0)
        setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (!rc)
        rc = bs_imap_cmd(&c, "a2", "SELECT INBOX", NULL);
    if (!rc)
        rc = bs_imap_cmd(&c, "a3", "UID FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE)", &fetched);
    double secs = bs_now() - t0;
    if (!rc)
        bs_imap_cmd(&c, "a4", "LOGOUT", NULL);
    bs_imap_close(&c);
    if (rc || fetched != want) {
        fprintf(stderr, "bench_sync: bare UID FETCH: %s, %ld of %ld FETCH responses\n",
                rc ? "failed" : "short", fetched, want);
        return -1;
    }
    return secs;
}

static double bs_fetch_once(long want)
{
    return bs_fetch_of(dove.port, BS_BIG_USER, want, 0);
}

/* The bare no-change check: threads share the account counter. */
typedef struct bs_check {
    int next, accounts, errors;
    double *lat;
    pthread_mutex_t lock;
} bs_check;

static void *bs_check_main(void *arg)
{
    bs_check *k = arg;
    for (;;) {
        pthread_mutex_lock(&k->lock);
        int i = k->next < k->accounts ? k->next++ : -1;
        pthread_mutex_unlock(&k->lock);
        if (i < 0)
            break;
        char user[32];
        snprintf(user, sizeof user, "u%d", i);
        bs_imap c = {.fd = -1};
        double t0 = bs_now();
        int rc = bs_imap_login(&c, dove.port, user, BS_PASSWORD);
        if (!rc)
            rc = bs_imap_cmd(&c, "a2", "SELECT INBOX (CONDSTORE)", NULL);
        if (!rc)
            rc = bs_imap_cmd(&c, "a3", "LOGOUT", NULL);
        bs_imap_close(&c);
        k->lat[i] = bs_now() - t0;
        if (rc) {
            pthread_mutex_lock(&k->lock);
            k->errors++;
            pthread_mutex_unlock(&k->lock);
        }
    }
    return NULL;
}

/* bs_check_run runs the bare check of every account reps times from
 * threads connections; prints each run and the median. */
static int bs_check_run(int accounts, int threads, int reps)
{
    size_t n = (size_t)accounts;
    double *all = calloc(n * (size_t)reps, sizeof *all), rate[BS_MAX_RUNS];
    if (!all)
        return -1;
    int errors = 0, started = 0;
    for (int r = 0; r < reps; r++) {
        bs_check k = {.accounts = accounts, .lat = all + n * (size_t)r};
        pthread_t t[BS_MAX_THREADS];
        pthread_mutex_init(&k.lock, NULL);
        double t0 = bs_now();
        for (started = 0; started < threads; started++)
            if (pthread_create(&t[started], NULL, bs_check_main, &k) != 0)
                break;
        for (int i = 0; i < started; i++)
            pthread_join(t[i], NULL);
        rate[r] = accounts / (bs_now() - t0);
        pthread_mutex_destroy(&k.lock);
        errors += k.errors;
        printf("check run=%d accounts=%d threads=%d per_s=%.1f errors=%d\n", r + 1, accounts,
               started, rate[r], k.errors);
    }
    qsort(rate, (size_t)reps, sizeof *rate, bs_cmp);
    qsort(all, n * (size_t)reps, sizeof *all, bs_cmp);
    printf("check accounts=%d threads=%d runs=%d per_s=%.1f best_per_s=%.1f p50_ms=%.3f "
           "p99_ms=%.3f errors=%d\n",
           accounts, started, reps, bs_pct(rate, (size_t)reps, 50), rate[reps > 0 ? reps - 1 : 0],
           bs_pct(all, n * (size_t)reps, 50) * 1e3, bs_pct(all, n * (size_t)reps, 99) * 1e3,
           errors);
    fflush(stdout);
    free(all);
    return errors || started == 0 ? -1 : 0;
}

/* RPC helpers. */
static int bs_wait_ping(sh_rpc_client *c, const char *what)
{
    if (tf_wait_ping(c, 1) == 0)
        return 0;
    fprintf(stderr, "bench_sync: %s does not answer\n", what);
    return -1;
}

/* One account's runs, as the events show them. */
typedef struct bs_acct {
    char id[160];
    char pid[160];  /* progress id of the current run */
    double t_start; /* first progress event of the run */
    double t_done;  /* the event saying complete */
    char status[32];
} bs_acct;

static int bs_create_on(bs_acct *a, int port, const char *user)
{
    char email[96];
    snprintf(email, sizeof email, "%s@example.com", user);
    sh_val *f = sh_val_new_map(), *res = NULL;
    sh_val_set_cstr(f, "emailAddress", sh_val_new_cstr(email));
    sh_val_set_cstr(f, "imapHost", sh_val_new_cstr("127.0.0.1"));
    sh_val_set_cstr(f, "imapPort", sh_val_new_int(port));
    sh_val_set_cstr(f, "security", sh_val_new_cstr("none"));
    sh_val_set_cstr(f, "username", sh_val_new_cstr(user));
    sh_val_set_cstr(f, "password", sh_val_new_cstr(BS_PASSWORD));
    if (tf_stack_call(coord, "account.create", f, &res))
        return -1;
    const char *id = sh_val_get_str(res, "id", NULL);
    snprintf(a->id, sizeof a->id, "%s", id ? id : "");
    sh_val_free(res);
    return id ? 0 : -1;
}

static int bs_create(bs_acct *a, const char *user)
{
    return bs_create_on(a, dove.port, user);
}

/* bs_sync_now queues a run of the account and notes its progress id. */
static int bs_sync_now(bs_acct *a)
{
    sh_val *res = NULL;
    if (tf_stack_call(coord, "account.sync_now", tf_id_args(a->id), &res))
        return -1;
    const char *p = sh_val_get_str(res, "progressId", NULL);
    snprintf(a->pid, sizeof a->pid, "%s", p ? p : "");
    a->t_start = a->t_done = 0;
    a->status[0] = '\0';
    sh_val_free(res);
    if (!a->pid[0])
        fprintf(stderr, "bench_sync: account.sync_now gave no progress id\n");
    return a->pid[0] ? 0 : -1;
}

static int bs_status(bs_acct *a, char *msg, size_t mlen)
{
    sh_val *res = NULL;
    if (tf_stack_call(coord, "account.get", tf_id_args(a->id), &res))
        return -1;
    const char *st = sh_val_get_str(res, "syncStatus", NULL);
    const char *em = sh_val_get_str(res, "errorMessage", NULL);
    snprintf(a->status, sizeof a->status, "%s", st ? st : "");
    if (msg)
        snprintf(msg, mlen, "%s", em ? em : "");
    sh_val_free(res);
    return 0;
}

static bool bs_settled(const char *status)
{
    return status[0] && strcmp(status, "queued") && strcmp(status, "syncing");
}

/* Progress events, timed as they arrive by a thread of their own: the main
 * thread is at times busy with calls, and an event read late would carry a
 * late time. */
typedef struct bs_evt {
    double t;
    bool complete;
    char pid[160];
} bs_evt;

static struct {
    pthread_t thread;
    bool started;
    int stop;
    pthread_mutex_t lock;
    bs_evt *log;
    size_t n, cap;
    size_t applied; /* entries already matched against accounts */
} ev = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *bs_events_main(void *arg)
{
    size_t pl = strlen(SH_KEY_PROGRESS);
    while (!__atomic_load_n(&ev.stop, __ATOMIC_ACQUIRE)) {
        char *topic = NULL;
        sh_val *e = NULL;
        if (sh_sub_recv(events, 100, &topic, &e) != SH_OK)
            continue;
        double now = bs_now();
        const char *kind = sh_val_get_str(e, "kind", NULL);
        if (strncmp(topic, SH_KEY_PROGRESS, pl) == 0 && kind && strcmp(kind, "update") == 0) {
            pthread_mutex_lock(&ev.lock);
            if (ev.n == ev.cap) {
                size_t cap = ev.cap ? ev.cap * 2 : 4096;
                bs_evt *l = realloc(ev.log, cap * sizeof *l);
                if (l) {
                    ev.log = l;
                    ev.cap = cap;
                }
            }
            if (ev.n < ev.cap) {
                bs_evt *x = &ev.log[ev.n++];
                x->t = now;
                x->complete = sh_val_bool(sh_val_get(sh_val_get(e, "record"), "complete"));
                snprintf(x->pid, sizeof x->pid, "%s", topic + pl);
            }
            pthread_mutex_unlock(&ev.lock);
        }
        free(topic);
        sh_val_free(e);
    }
    return arg;
}

/* bs_events_apply notes the times of the events logged since the last
 * call on the accounts whose runs they belong to. */
static void bs_events_apply(bs_acct *accts, int n)
{
    pthread_mutex_lock(&ev.lock);
    for (; ev.applied < ev.n; ev.applied++) {
        const bs_evt *x = &ev.log[ev.applied];
        for (int i = 0; i < n; i++) {
            if (strcmp(accts[i].pid, x->pid) != 0)
                continue;
            if (!accts[i].t_start)
                accts[i].t_start = x->t;
            if (!accts[i].t_done && x->complete)
                accts[i].t_done = x->t;
            break;
        }
    }
    pthread_mutex_unlock(&ev.lock);
}

/* bs_wait waits until every account's run has ended and its status has
 * settled; the times come from the events, and the coordinator is asked
 * only once the events are in (or when they stop coming: delivery is best
 * effort). Returns the number of runs not ending `ok`, or -1. */
static int bs_wait(bs_acct *accts, int n, int timeout_s)
{
    double until = bs_now() + timeout_s, last = bs_now();
    int done = 0;
    for (int i = 0; i < n; i++)
        done += accts[i].t_done > 0;
    while (done < n && bs_now() < until && !bs_stopping) {
        int before = done;
        tf_sleep_ms(5);
        bs_events_apply(accts, n);
        done = 0;
        for (int i = 0; i < n; i++)
            done += accts[i].t_done > 0;
        if (done > before)
            last = bs_now();
        if (done < n && bs_now() - last > 2.0) {
            /* No event for a while: ask about the runs not seen ending. */
            for (int i = 0; i < n; i++) {
                if (!accts[i].t_done && bs_status(&accts[i], NULL, 0) == 0 &&
                    bs_settled(accts[i].status))
                    accts[i].t_done = bs_now();
            }
            last = bs_now();
        }
    }
    int bad = 0;
    for (int i = 0; i < n; i++) {
        char msg[512] = "";
        for (int k = 0; k < 400 && !bs_stopping; k++) {
            if (bs_status(&accts[i], msg, sizeof msg))
                return -1;
            if (bs_settled(accts[i].status))
                break;
            tf_sleep_ms(25);
        }
        if (strcmp(accts[i].status, "ok") != 0) {
            if (!bad)
                fprintf(stderr, "bench_sync: account %s ended %s: %s\n", accts[i].id,
                        accts[i].status[0] ? accts[i].status : "(unknown)", msg);
            bad++;
        }
    }
    if (done < n && !bs_stopping)
        fprintf(stderr, "bench_sync: %d of %d runs did not end within %d s\n", n - done, n,
                timeout_s);
    return bs_stopping || done < n ? -1 : bad;
}

/* bs_wait_events makes sure the subscription is live: updates a record of
 * our own until its event comes back. */
static int bs_wait_events(void)
{
    bs_acct probe = {.id = "", .pid = "bench-sync-probe"};
    for (int i = 0; i < 250 && !bs_stopping; i++) {
        sh_val *a = sh_val_new_map(), *f = sh_val_new_map();
        sh_val_set_cstr(f, "currentStep", sh_val_new_int(i));
        sh_val_set_cstr(a, "id", sh_val_new_cstr(probe.pid));
        sh_val_set_cstr(a, "fields", f);
        if (tf_stack_call(progress, "progress.update", a, NULL))
            return -1;
        for (int k = 0; k < 10 && !probe.t_start; k++) {
            tf_sleep_ms(10);
            bs_events_apply(&probe, 1);
        }
        if (probe.t_start)
            return 0;
    }
    fprintf(stderr, "bench_sync: no events from the progress service\n");
    return -1;
}

/* Redis: the count of stored messages of INBOX. */
static long long bs_redis_int(sh_cmd *c)
{
    sh_reply *r = NULL;
    sh_error err;
    long long v = -1;
    if (sh_store_call(store, c, &r, &err) != SH_OK) {
        fprintf(stderr, "bench_sync: redis: %s\n", err.msg);
        return -1;
    }
    if (sh_reply_kind(r) == SH_REPLY_INTEGER)
        v = sh_reply_integer(r);
    else if (sh_reply_kind(r) == SH_REPLY_STRING)
        v = atoll(sh_reply_string(r, NULL));
    sh_reply_free(r);
    return v;
}

/* bs_stored returns how many INBOX messages Redis holds for the account:
 * the UIDs of the folder's index, each with its message hash (checked with
 * EXISTS, pipelined); -1 when they disagree. */
static long long bs_stored(const char *id)
{
    sh_cmd *c = sh_cmd_new("HGET");
    sh_cmd_fmt(c, "%s{%s}:state:INBOX", SH_KEY_MAIL, id);
    sh_cmd_str(c, "uidvalidity");
    long long uv = bs_redis_int(c);
    if (uv <= 0)
        return -1;
    sh_reply *idx = NULL;
    sh_error err;
    c = sh_cmd_new("ZRANGE");
    sh_cmd_fmt(c, "%s{%s}:idx:INBOX:%lld", SH_KEY_MAIL, id, uv);
    sh_cmd_str(c, "0");
    sh_cmd_str(c, "-1");
    if (sh_store_call(store, c, &idx, &err) != SH_OK) {
        fprintf(stderr, "bench_sync: redis: %s\n", err.msg);
        return -1;
    }
    enum { chunk = 1000 };
    sh_cmd *cmds[chunk];
    sh_reply *outs[chunk];
    size_t n = sh_reply_count(idx), present = 0;
    for (size_t at = 0; at < n; at += chunk) {
        size_t k = n - at < chunk ? n - at : chunk;
        for (size_t i = 0; i < k; i++) {
            cmds[i] = sh_cmd_new("EXISTS");
            sh_cmd_fmt(cmds[i], "%s{%s}:m:INBOX:%lld:%s", SH_KEY_MAIL, id, uv,
                       sh_reply_string(sh_reply_elem(idx, at + i), NULL));
        }
        int rc = sh_store_pipeline(store, cmds, k, outs, &err);
        for (size_t i = 0; i < k; i++) {
            if (rc == SH_OK && sh_reply_kind(outs[i]) == SH_REPLY_INTEGER)
                present += sh_reply_integer(outs[i]) == 1;
            sh_reply_free(outs[i]);
            sh_cmd_free(cmds[i]);
        }
        if (rc != SH_OK) {
            fprintf(stderr, "bench_sync: redis: %s\n", err.msg);
            sh_reply_free(idx);
            return -1;
        }
    }
    sh_reply_free(idx);
    if (present != n) {
        fprintf(stderr, "bench_sync: account %s: %zu UIDs indexed, %zu message hashes\n", id, n,
                present);
        return -1;
    }
    return (long long)n;
}

/* bs_stored_is checks that Redis holds want messages for the account. */
static int bs_stored_is(const bs_acct *a, long long want)
{
    long long stored = bs_stored(a->id);
    if (stored == want)
        return 0;
    fprintf(stderr, "bench_sync: account %s: Redis holds %lld messages, not %lld\n", a->id, stored,
            want);
    return -1;
}

/* The worker process. */
static long bs_vm_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    size_t fl = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':')
            v = atol(line + fl + 1);
    if (f)
        fclose(f);
    return v;
}

static long worker_idle_kib;

/* bs_pids notes the children this program started, for the script to end
 * them should this program die first. */
static void bs_pids(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/bench_sync.pids", log_dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    if (dove_started && dove.pid > 0)
        fprintf(f, "%d\n", (int)dove.pid);
    if (plain_started && plain.pid > 0)
        fprintf(f, "%d\n", (int)plain.pid);
    if (worker_pid > 0)
        fprintf(f, "%d\n", (int)worker_pid);
    fclose(f);
}

static int bs_worker_start(void)
{
    char log[512];
    snprintf(log, sizeof log, "%s/sync-worker-%d.log", log_dir, ++worker_runs);
    worker_pid = tf_spawn(worker_bin, NULL, log);
    bs_pids();
    if (worker_pid <= 0 || bs_wait_ping(wrpc, "the sync-worker"))
        return -1;
    return 0;
}

static void bs_worker_stop(void)
{
    if (worker_pid <= 0)
        return;
    long hwm = bs_vm_kib(worker_pid, "VmHWM");
    printf("worker run=%d idle_kib=%ld hwm_kib=%ld\n", worker_runs, worker_idle_kib, hwm);
    fflush(stdout);
    if (tf_stop(worker_pid, SIGTERM, 15000) != 0)
        fprintf(stderr, "bench_sync: the sync-worker did not stop cleanly\n");
    worker_pid = 0;
    bs_pids();
}

/* The figures of repeated no-change runs of the same accounts. */
typedef struct bs_series {
    const char *mode;
    int n, reps, errors;
    double rate[BS_MAX_RUNS], busy[BS_MAX_RUNS];
    double *lat; /* n per run */
} bs_series;

/* bs_nochange waits for run r of the series, started (sync_now or worker
 * start) at t0, and notes its figures. */
static int bs_nochange(bs_series *se, int r, bs_acct *accts, double t0)
{
    int bad = bs_wait(accts, se->n, 300);
    if (bad < 0)
        return -1;
    double first = 0, last = 0, *lat = se->lat + (size_t)se->n * (size_t)r;
    for (int i = 0; i < se->n; i++) {
        double s = accts[i].t_start ? accts[i].t_start : accts[i].t_done;
        if (!first || s < first)
            first = s;
        if (accts[i].t_done > last)
            last = accts[i].t_done;
        lat[i] = accts[i].t_done - s;
    }
    se->rate[r] = se->n / (last - t0);
    se->busy[r] = se->n / (last - first);
    se->errors += bad;
    printf("nochange run=%d mode=%s accounts=%d ms=%.1f per_s=%.1f busy_per_s=%.1f errors=%d\n",
           r + 1, se->mode, se->n, (last - t0) * 1e3, se->rate[r], se->busy[r], bad);
    fflush(stdout);
    return bad ? -1 : 0;
}

/* bs_nochange_report prints the medians of the series. */
static void bs_nochange_report(bs_series *se)
{
    size_t nl = (size_t)se->n * (size_t)se->reps, reps = (size_t)se->reps;
    qsort(se->rate, reps, sizeof(double), bs_cmp);
    qsort(se->busy, reps, sizeof(double), bs_cmp);
    qsort(se->lat, nl, sizeof(double), bs_cmp);
    printf("nochange mode=%s accounts=%d runs=%d per_s=%.1f best_per_s=%.1f busy_per_s=%.1f "
           "p50_ms=%.3f p99_ms=%.3f errors=%d\n",
           se->mode, se->n, se->reps, bs_pct(se->rate, reps, 50), se->rate[reps ? reps - 1 : 0],
           bs_pct(se->busy, reps, 50), bs_pct(se->lat, nl, 50) * 1e3, bs_pct(se->lat, nl, 99) * 1e3,
           se->errors);
    fflush(stdout);
}

/* Dovecot's own CAPABILITY list without CONDSTORE and QRESYNC: every sync
 * of such a server goes through the full check. */
#define BS_NO_CONDSTORE                                                                            \
    "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE UIDPLUS SPECIAL-USE"
#define BS_LARGE_USER "large"
#define BS_CHECK_USER "hundredk"

/* bs_nochange_of times reps no-change syncs of one account, sync_now to
 * complete, and prints their median. */
static int bs_nochange_of(bs_acct *a, int condstore, int messages, int reps)
{
    double v[BS_MAX_RUNS];
    for (int r = 0; r < reps; r++) {
        double t0 = bs_now();
        if (bs_sync_now(a) || bs_wait(a, 1, 600) != 0)
            return -1;
        v[r] = a->t_done - (a->t_start ? a->t_start : t0);
    }
    qsort(v, (size_t)reps, sizeof *v, bs_cmp);
    printf("bigcheck condstore=%d messages=%d runs=%d median_ms=%.1f best_ms=%.1f hwm_kib=%ld\n",
           condstore, messages, reps, bs_pct(v, (size_t)reps, 50) * 1e3, v[0] * 1e3,
           bs_vm_kib(worker_pid, "VmHWM"));
    fflush(stdout);
    return bs_stored_is(a, messages);
}

/* bs_large: a folder of large messages on a Dovecot without CONDSTORE,
 * synced by a fresh worker (its peak RSS is the folder's), then the
 * no-change check of a folder of check messages with and without
 * CONDSTORE. The messages are written as maildir files by the fixture. */
static int bs_large(int large, int check, int reps)
{
    fprintf(stderr, "bench_sync: Dovecot without CONDSTORE, %d + %d messages\n", large, check);
    double g0 = bs_now();
    if (tf_dovecot_start_caps(&plain, BS_LARGE_USER, BS_PASSWORD, large, BS_NO_CONDSTORE))
        return -1;
    plain_started = true;
    bs_pids();
    if (tf_dovecot_add_user(&plain, BS_CHECK_USER, BS_PASSWORD, check) ||
        tf_dovecot_add_user(&dove, BS_CHECK_USER, BS_PASSWORD, check))
        return -1;
    printf("generate messages=%d ms=%.0f\n", large + 2 * check, (bs_now() - g0) * 1e3);
    fflush(stdout);

    /* The bare fetch, once to warm Dovecot's index and cache, once timed. */
    fprintf(stderr, "bench_sync: bare UID FETCH of %d messages, 1 + 1 runs\n", large);
    /* The first SELECT of a fresh maildir of millions of files, and the
     * first fetch of their envelopes, keep Dovecot silent a long while. */
    double w = bs_fetch_of(plain.port, BS_LARGE_USER, large, 3600);
    double f = w < 0 ? -1 : bs_fetch_of(plain.port, BS_LARGE_USER, large, 600);
    if (f < 0)
        return -1;
    printf("bigfetch messages=%d warm_ms=%.0f ms=%.0f per_s=%.0f\n", large, w * 1e3, f * 1e3,
           large / f);
    fflush(stdout);

    bs_worker_stop();
    if (bs_worker_start())
        return -1;
    long idle = bs_vm_kib(worker_pid, "VmRSS");
    fprintf(stderr, "bench_sync: initial sync of %d messages without CONDSTORE\n", large);
    bs_acct a;
    memset(&a, 0, sizeof a);
    double t0 = bs_now();
    if (bs_create_on(&a, plain.port, BS_LARGE_USER) || bs_sync_now(&a) || bs_wait(&a, 1, 7200))
        return -1;
    double s = a.t_done - (a.t_start ? a.t_start : t0);
    long hwm = bs_vm_kib(worker_pid, "VmHWM");
    if (bs_stored_is(&a, large))
        return -1;
    printf("large condstore=0 messages=%d ms=%.0f per_s=%.0f idle_kib=%ld hwm_kib=%ld\n", large,
           s * 1e3, large / s, idle, hwm);
    fflush(stdout);
    fprintf(stderr, "bench_sync: no-change sync of %d messages without CONDSTORE\n", large);
    if (bs_nochange_of(&a, 0, large, 1))
        return -1;

    fprintf(stderr, "bench_sync: no-change sync of %d messages, with and without CONDSTORE\n",
            check);
    bs_acct c0, c1;
    memset(&c0, 0, sizeof c0);
    memset(&c1, 0, sizeof c1);
    if (bs_create_on(&c0, plain.port, BS_CHECK_USER) ||
        bs_create_on(&c1, dove.port, BS_CHECK_USER) || bs_sync_now(&c0) || bs_sync_now(&c1) ||
        bs_wait(&c0, 1, 1200) || bs_wait(&c1, 1, 1200))
        return -1;
    return bs_nochange_of(&c0, 0, check, reps) || bs_nochange_of(&c1, 1, check, reps) ? -1 : 0;
}

static int bs_main(int messages, int accounts, int small, int fetch_runs, int sync_runs,
                   int threads, int parallel, int reps, int large, int check)
{
    const char *c_url = getenv("COORDINATOR_RPC_URL"), *p_url = getenv("PROGRESS_RPC_URL");
    const char *e_url = getenv("PROGRESS_EVENTS_URL"), *w_url = getenv("SYNC_WORKER_RPC_URL");
    const char *r_url = getenv("REDIS_URL");
    if (!c_url || !p_url || !e_url || !w_url || !r_url) {
        fprintf(stderr, "bench_sync: set COORDINATOR_RPC_URL, PROGRESS_RPC_URL, "
                        "PROGRESS_EVENTS_URL, SYNC_WORKER_RPC_URL and REDIS_URL\n");
        return -1;
    }
    sh_error err;
    sh_redis_url ru;
    if (sh_rpc_client_new(c_url, BS_RPC_MS, 0, &coord, &err) ||
        sh_rpc_client_new(p_url, BS_RPC_MS, 0, &progress, &err) ||
        sh_rpc_client_new(w_url, BS_RPC_MS, 0, &wrpc, &err) ||
        sh_sub_new(e_url, 0, &events, &err) || sh_sub_subscribe(events, SH_KEY_PROGRESS) ||
        sh_redis_url_parse(r_url, &ru, &err) || sh_store_new(&ru, NULL, &store, &err)) {
        fprintf(stderr, "bench_sync: %s\n", err.msg);
        return -1;
    }
    if (pthread_create(&ev.thread, NULL, bs_events_main, NULL) != 0)
        return -1;
    ev.started = true;
    if (bs_wait_ping(coord, "the coordinator") || bs_wait_ping(progress, "progress") ||
        bs_wait_events())
        return -1;

    fprintf(stderr, "bench_sync: Dovecot with %d messages, %d users of %d messages\n", messages,
            accounts, small);
    if (tf_dovecot_start(&dove, BS_BIG_USER, BS_PASSWORD, messages) != 0)
        return -1;
    dove_started = true;
    bs_pids();
    for (int i = 0; i < accounts; i++) {
        char user[32];
        snprintf(user, sizeof user, "u%d", i);
        if (tf_dovecot_add_user(&dove, user, BS_PASSWORD, small)) {
            fprintf(stderr, "bench_sync: cannot add Dovecot user %s\n", user);
            return -1;
        }
    }
    if (bs_worker_start())
        return -1;

    /* The reference; the warm-up run also has Dovecot build its index and
     * cache of the mailbox, which every later reader finds ready. */
    fprintf(stderr, "bench_sync: bare UID FETCH of %d messages, 1 + %d runs\n", messages,
            fetch_runs);
    double fetch[BS_MAX_RUNS];
    for (int i = 0; i <= fetch_runs; i++) {
        double s = bs_fetch_once(messages);
        if (s < 0)
            return -1;
        if (i == 0)
            continue;
        fetch[i - 1] = s;
        printf("fetch run=%d messages=%d ms=%.1f per_s=%.0f\n", i, messages, s * 1e3, messages / s);
        fflush(stdout);
    }
    qsort(fetch, (size_t)fetch_runs, sizeof *fetch, bs_cmp);
    double f_med = bs_pct(fetch, (size_t)fetch_runs, 50);
    printf("fetch messages=%d runs=%d best_per_s=%.0f median_per_s=%.0f best_ms=%.1f "
           "median_ms=%.1f\n",
           messages, fetch_runs, messages / fetch[0], messages / f_med, fetch[0] * 1e3,
           f_med * 1e3);
    fflush(stdout);
    worker_idle_kib = bs_vm_kib(worker_pid, "VmRSS");

    /* Run 0 warms Dovecot's cache of what the sync asks beyond the bare
     * fetch (INTERNALDATE: a stat of each file of the maildir at first), as
     * the bare fetch's own warm-up did for the rest. */
    fprintf(stderr, "bench_sync: initial sync of %d messages, 1 + %d runs\n", messages, sync_runs);
    double sync[BS_MAX_RUNS], e2e[BS_MAX_RUNS];
    for (int i = 0; i <= sync_runs; i++) {
        bs_acct a;
        memset(&a, 0, sizeof a);
        if (bs_create(&a, BS_BIG_USER))
            return -1;
        double t0 = bs_now();
        if (bs_sync_now(&a) || bs_wait(&a, 1, 300) != 0 || bs_stored_is(&a, messages))
            return -1;
        double s = a.t_done - (a.t_start ? a.t_start : t0), e = a.t_done - t0;
        printf("initial run=%d messages=%d stored=%d sync_ms=%.1f e2e_ms=%.1f rss_kib=%ld "
               "hwm_kib=%ld\n",
               i, messages, messages, s * 1e3, e * 1e3, bs_vm_kib(worker_pid, "VmRSS"),
               bs_vm_kib(worker_pid, "VmHWM"));
        fflush(stdout);
        if (i > 0) {
            sync[i - 1] = s;
            e2e[i - 1] = e;
        }
    }
    qsort(sync, (size_t)sync_runs, sizeof *sync, bs_cmp);
    qsort(e2e, (size_t)sync_runs, sizeof *e2e, bs_cmp);
    printf("initial messages=%d runs=%d sync_per_s=%.0f e2e_per_s=%.0f best_sync_per_s=%.0f "
           "best_e2e_per_s=%.0f hwm_kib=%ld\n",
           messages, sync_runs, messages / bs_pct(sync, (size_t)sync_runs, 50),
           messages / bs_pct(e2e, (size_t)sync_runs, 50), messages / sync[0], messages / e2e[0],
           bs_vm_kib(worker_pid, "VmHWM"));
    fflush(stdout);

    /* Every sync thread on a mailbox of its own at once: the worker's
     * memory at its fullest. */
    fprintf(stderr, "bench_sync: %d initial syncs of %d messages at once\n", parallel, messages);
    bs_acct *par = calloc((size_t)parallel, sizeof *par);
    if (!par)
        return -1;
    double p0 = bs_now();
    int prc = 0;
    for (int i = 0; i < parallel && !prc; i++)
        prc = bs_create(&par[i], BS_BIG_USER) || bs_sync_now(&par[i]);
    prc = prc || bs_wait(par, parallel, 600) != 0;
    double p1 = 0;
    for (int i = 0; i < parallel && !prc; i++) {
        prc = bs_stored_is(&par[i], messages);
        p1 = par[i].t_done > p1 ? par[i].t_done : p1;
    }
    free(par);
    if (prc)
        return -1;
    printf("parallel accounts=%d messages=%lld ms=%.1f per_s=%.0f hwm_kib=%ld\n", parallel,
           (long long)parallel * messages, (p1 - p0) * 1e3, (double)parallel * messages / (p1 - p0),
           bs_vm_kib(worker_pid, "VmHWM"));
    fflush(stdout);

    fprintf(stderr, "bench_sync: %d accounts of %d messages: first sync (untimed)\n", accounts,
            small);
    bs_acct *accts = calloc((size_t)accounts, sizeof *accts);
    if (!accts)
        return -1;
    int rc = -1;
    bs_series running = {.mode = "running", .n = accounts, .reps = reps};
    bs_series backlog = {.mode = "backlog", .n = accounts, .reps = reps};
    double t0 = bs_now();
    for (int i = 0; i < accounts; i++) {
        char user[32];
        snprintf(user, sizeof user, "u%d", i);
        if (bs_create(&accts[i], user) || bs_sync_now(&accts[i]))
            goto done;
    }
    int bad = bs_wait(accts, accounts, 300);
    printf("first accounts=%d ms=%.1f errors=%d\n", accounts, (bs_now() - t0) * 1e3, bad);
    fflush(stdout);
    if (bad)
        goto done;
    for (int i = 0; i < accounts; i++)
        if (bs_stored_is(&accts[i], small))
            goto done;

    fprintf(stderr, "bench_sync: bare no-change check of %d accounts, 1 and %d connections\n",
            accounts, threads);
    if (bs_check_run(accounts, 1, 1) || bs_check_run(accounts, threads, reps))
        goto done;

    fprintf(stderr, "bench_sync: no-change sync of %d accounts, sync_now to the running worker\n",
            accounts);
    running.lat = calloc((size_t)accounts * (size_t)reps, sizeof(double));
    backlog.lat = calloc((size_t)accounts * (size_t)reps, sizeof(double));
    if (!running.lat || !backlog.lat)
        goto done;
    for (int r = 0; r < reps; r++) {
        t0 = bs_now();
        for (int i = 0; i < accounts; i++)
            if (bs_sync_now(&accts[i]))
                goto done;
        if (bs_nochange(&running, r, accts, t0))
            goto done;
    }
    bs_nochange_report(&running);

    fprintf(stderr, "bench_sync: no-change sync of %d accounts, queued before a worker starts\n",
            accounts);
    for (int r = 0; r < reps; r++) {
        bs_worker_stop();
        for (int i = 0; i < accounts; i++)
            if (bs_sync_now(&accts[i]))
                goto done;
        t0 = bs_now();
        if (bs_worker_start())
            goto done;
        worker_idle_kib = -1; /* busy from its start */
        if (bs_nochange(&backlog, r, accts, t0))
            goto done;
    }
    bs_nochange_report(&backlog);
    for (int i = 0; i < accounts; i++)
        if (bs_stored_is(&accts[i], small))
            goto done;
    if (large > 0 && bs_large(large, check, reps))
        goto done;
    rc = 0;
done:
    free(running.lat);
    free(backlog.lat);
    free(accts);
    return rc;
}

int main(int argc, char **argv)
{
    int messages = 10000, accounts = 200, small = 20, fetch_runs = 5, sync_runs = 5, threads = 8;
    int parallel = 8, reps = 3, large = 0, check = 100000;
    int opt;
    while ((opt = getopt(argc, argv, "b:l:n:a:m:r:s:t:p:k:L:C:")) != -1) {
        switch (opt) {
        case 'b':
            worker_bin = optarg;
            break;
        case 'l':
            log_dir = optarg;
            break;
        case 'n':
            messages = atoi(optarg);
            break;
        case 'a':
            accounts = atoi(optarg);
            break;
        case 'm':
            small = atoi(optarg);
            break;
        case 'r':
            fetch_runs = atoi(optarg);
            break;
        case 's':
            sync_runs = atoi(optarg);
            break;
        case 't':
            threads = atoi(optarg);
            break;
        case 'p':
            parallel = atoi(optarg);
            break;
        case 'k':
            reps = atoi(optarg);
            break;
        case 'L':
            large = atoi(optarg);
            break;
        case 'C':
            check = atoi(optarg);
            break;
        default:
            return 2;
        }
    }
    if (!worker_bin || !log_dir || messages < 1 || accounts < 1 || small < 1 || fetch_runs < 1 ||
        fetch_runs > BS_MAX_RUNS || sync_runs < 1 || sync_runs > BS_MAX_RUNS || threads < 1 ||
        threads > BS_MAX_THREADS || parallel < 1 || reps < 1 || reps > BS_MAX_RUNS || large < 0 ||
        check < 1) {
        fprintf(stderr, "usage: bench_sync -b SYNC_WORKER_BIN -l LOG_DIR [-n MESSAGES] "
                        "[-a ACCOUNTS] [-m SMALL] [-r FETCH_RUNS] [-s SYNC_RUNS] "
                        "[-t CHECK_THREADS] [-p PARALLEL] [-k REPEATS] [-L LARGE] [-C CHECK]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = bs_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int rc = bs_main(messages, accounts, small, fetch_runs, sync_runs, threads, parallel, reps,
                     large, check);
    bs_worker_stop();
    if (plain_started) {
        if (rc) {
            char cmd[700];
            snprintf(cmd, sizeof cmd, "cp '%s/dovecot.log' '%s/dovecot-plain.log' 2>/dev/null",
                     plain.dir, log_dir);
            if (system(cmd) != 0)
                fprintf(stderr, "bench_sync: (no log of the Dovecot without CONDSTORE)\n");
        }
        tf_dovecot_stop(&plain);
    }
    if (dove_started) {
        if (rc) {
            char cmd[700];
            snprintf(cmd, sizeof cmd, "cp '%s/dovecot.log' '%s/' 2>/dev/null", dove.dir, log_dir);
            if (system(cmd) != 0)
                fprintf(stderr, "bench_sync: (no Dovecot log)\n");
        }
        tf_dovecot_stop(&dove);
    }
    if (ev.started) {
        __atomic_store_n(&ev.stop, 1, __ATOMIC_RELEASE);
        pthread_join(ev.thread, NULL);
    }
    free(ev.log);
    sh_sub_free(events);
    sh_rpc_client_free(coord);
    sh_rpc_client_free(progress);
    sh_rpc_client_free(wrpc);
    sh_store_free(store);
    sh_rpc_fini();
    return rc ? 1 : 0;
}
