/* mac.c - MACs, timestamps and nonces on internal messages (the wire format
 * is documented in msgmac.h), the nonce cache that refuses replays, and the
 * start-up warning for a process that listens openly. */
#include "shared/msgmac.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/log.h"
#include "shared/secret.h"
#include "shared/util.h"

#define MAC_VERSION   1
#define MAC_MAGIC0    0xc1
#define MAC_MAGIC1    'M'
#define MAC_LOG_BURST 10
#define MAC_LOG_SPAN  10000 /* ms */

static sh_msgmac_conf mac_process;
static pthread_mutex_t mac_lock = PTHREAD_MUTEX_INITIALIZER;

int sh_msgmac_conf_make(const char *secret, long long window_s, sh_msgmac_conf *out, sh_error *err)
{
    memset(out, 0, sizeof *out);
    if (window_s < 1 || window_s > 3600)
        return sh_error_set(err, SH_EINVAL,
                            "RPC_MAC_WINDOW_SECONDS must be 1..3600 seconds, got %lld", window_s);
    out->window_ms = window_s * 1000;
    if (!secret || !secret[0])
        return SH_OK;
    int rc = sh_key_parse(secret, "RPC_SECRET", &out->key, err);
    if (rc)
        return rc;
    out->on = true;
    return SH_OK;
}

int sh_msgmac_setup(const char *secret, long long window_s, sh_error *err)
{
    sh_msgmac_conf c;
    int rc = sh_msgmac_conf_make(secret, window_s, &c, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&mac_lock);
    mac_process = c;
    pthread_mutex_unlock(&mac_lock);
    sh_wipe(&c, sizeof c);
    return SH_OK;
}

void sh_msgmac_current(sh_msgmac_conf *out)
{
    pthread_mutex_lock(&mac_lock);
    *out = mac_process;
    pthread_mutex_unlock(&mac_lock);
    if (!out->window_ms)
        out->window_ms = SH_MSGMAC_WINDOW_DEFAULT * 1000;
}

/* mac_open_host reports whether url listens beyond loopback. */
static bool mac_open_host(const char *url)
{
    const char *p = strstr(url, "://");
    if (!p)
        return false;
    size_t scheme = (size_t)(p - url);
    if (!((scheme >= 3 && memcmp(p - 3, "tcp", 3) == 0) ||
          (scheme >= 4 && (memcmp(p - 4, "tcp4", 4) == 0 || memcmp(p - 4, "tcp6", 4) == 0)) ||
          (scheme >= 2 && memcmp(p - 2, "ws", 2) == 0) ||
          (scheme >= 3 && memcmp(p - 3, "wss", 3) == 0)))
        return false; /* ipc://, inproc:// stay on the host */
    p += 3;
    char host[256];
    size_t n = 0;
    if (*p == '[') {
        const char *end = strchr(p, ']');
        if (!end)
            return true;
        n = (size_t)(end - p - 1);
        p++;
    } else {
        const char *end = strrchr(p, ':');
        n = end ? (size_t)(end - p) : strlen(p);
    }
    if (n == 0 || n >= sizeof host)
        return true; /* "tcp://:7101" listens everywhere */
    memcpy(host, p, n);
    host[n] = '\0';
    return !sh_is_loopback_host(host);
}

void sh_msgmac_warn_open(const char *what, const char *urls)
{
    sh_msgmac_conf c;
    sh_msgmac_current(&c);
    if (c.on || !urls)
        return;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", urls);
    char *save = NULL;
    for (char *u = strtok_r(buf, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
        while (*u == ' ')
            u++;
        if (mac_open_host(u))
            sh_log_warn("rpc_unauthenticated",
                        "%s listens on %s beyond loopback without RPC_SECRET: anyone who "
                        "reaches it can %s; set RPC_SECRET on every service",
                        what, u,
                        strcmp(what, "events") == 0 ? "read every event" : "call every operation");
    }
    sh_wipe(&c, sizeof c);
}

bool sh_msgmac_is_signed(const void *data, size_t len)
{
    const unsigned char *p = data;
    return len >= 2 && p[0] == MAC_MAGIC0 && p[1] == MAC_MAGIC1;
}

/* A nonce must never repeat, nothing more (the tag covers it): 8 random
 * bytes drawn once per process, then a counter. One random draw per
 * message was a system call, a fifth of what signing cost. */
static pthread_once_t mac_nonce_once = PTHREAD_ONCE_INIT;
static unsigned char mac_nonce_prefix[8];
static uint64_t mac_nonce_count; /* atomic */

static void mac_nonce_init(void)
{
    sh_random_bytes(mac_nonce_prefix, sizeof mac_nonce_prefix);
}

static void mac_nonce_next(unsigned char out[SH_MSGMAC_NONCE_BYTES])
{
    pthread_once(&mac_nonce_once, mac_nonce_init);
    uint64_t n = __atomic_add_fetch(&mac_nonce_count, 1, __ATOMIC_RELAXED);
    memcpy(out, mac_nonce_prefix, sizeof mac_nonce_prefix);
    for (int i = 0; i < 8; i++)
        out[8 + i] = (unsigned char)(n >> (56 - 8 * i));
}

void sh_msgmac_head(sh_msgmac_kind kind, int64_t ts_ms, const unsigned char *nonce,
                    unsigned char *nonce_out, unsigned char head[SH_MSGMAC_HEAD_BYTES])
{
    head[0] = MAC_MAGIC0;
    head[1] = MAC_MAGIC1;
    head[2] = MAC_VERSION;
    head[3] = (unsigned char)kind;
    uint64_t ts = (uint64_t)ts_ms;
    for (int i = 0; i < 8; i++)
        head[4 + i] = (unsigned char)(ts >> (56 - 8 * i));
    if (nonce)
        memcpy(head + 12, nonce, SH_MSGMAC_NONCE_BYTES);
    else
        mac_nonce_next(head + 12);
    if (nonce_out)
        memcpy(nonce_out, head + 12, SH_MSGMAC_NONCE_BYTES);
}

void sh_msgmac_tag(const sh_msgmac_conf *c, const void *data, size_t len,
                   unsigned char tag[SH_MSGMAC_TAG_BYTES])
{
    sh_mac(&c->key, data, len, tag);
}

/* ---- the nonce cache ------------------------------------------------------ */

/* Entries live in a ring in arrival order, indexed by a chained hash of
 * their nonce (random bytes, and only ever of messages whose MAC held, so
 * nobody without the key can aim at one chain). */
typedef struct mac_entry {
    unsigned char nonce[SH_MSGMAC_NONCE_BYTES];
    int64_t ts;
    uint32_t next; /* index + 1 of the next entry of the chain, 0: none */
} mac_entry;

struct sh_msgmac_seen {
    pthread_mutex_t lock;
    mac_entry *e;
    uint32_t *bucket; /* index + 1 of the first entry, 0: none */
    size_t cap, nbuckets, count;
    int64_t floor; /* newest timestamp that left the ring */
};

int sh_msgmac_seen_new(size_t cap, sh_msgmac_seen **out)
{
    *out = NULL;
    if (cap < 1 || cap > UINT32_MAX - 1)
        return SH_EINVAL;
    sh_msgmac_seen *s = calloc(1, sizeof *s);
    if (!s)
        return SH_ENOMEM;
    s->cap = cap;
    s->nbuckets = 1;
    while (s->nbuckets < cap)
        s->nbuckets <<= 1;
    s->e = calloc(cap, sizeof *s->e);
    s->bucket = calloc(s->nbuckets, sizeof *s->bucket);
    s->floor = INT64_MIN;
    pthread_mutex_init(&s->lock, NULL);
    if (!s->e || !s->bucket) {
        sh_msgmac_seen_free(s);
        return SH_ENOMEM;
    }
    *out = s;
    return SH_OK;
}

void sh_msgmac_seen_free(sh_msgmac_seen *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->lock);
    free(s->e);
    free(s->bucket);
    free(s);
}

/* mac_hash mixes both halves of a nonce: one process's nonces share their
 * first half. */
static size_t mac_hash(const sh_msgmac_seen *s, const unsigned char *nonce)
{
    uint64_t a, b;
    memcpy(&a, nonce, sizeof a);
    memcpy(&b, nonce + 8, sizeof b);
    uint64_t h = a ^ b; /* then splitmix64's finaliser: every bit moves every bit */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return (size_t)(h & (s->nbuckets - 1));
}

/* mac_unlink takes entry i out of its chain. */
static void mac_unlink(sh_msgmac_seen *s, uint32_t i)
{
    uint32_t *link = &s->bucket[mac_hash(s, s->e[i].nonce)];
    while (*link && *link != i + 1)
        link = &s->e[*link - 1].next;
    if (*link)
        *link = s->e[i].next;
}

/* mac_seen_take records nonce at ts: 0 when new, 1 when seen before, 2 when
 * ts is no newer than a nonce the ring has let go. */
static int mac_seen_take(sh_msgmac_seen *s, const unsigned char *nonce, int64_t ts, int64_t *floor)
{
    pthread_mutex_lock(&s->lock);
    int rc = 0;
    *floor = s->floor;
    if (ts <= s->floor) {
        rc = 2;
        goto done;
    }
    size_t b = mac_hash(s, nonce);
    for (uint32_t i = s->bucket[b]; i; i = s->e[i - 1].next) {
        if (memcmp(s->e[i - 1].nonce, nonce, SH_MSGMAC_NONCE_BYTES) == 0) {
            rc = 1;
            goto done;
        }
    }
    uint32_t slot = (uint32_t)(s->count % s->cap);
    if (s->count >= s->cap) {
        mac_unlink(s, slot);
        if (s->e[slot].ts > s->floor)
            s->floor = s->e[slot].ts;
    }
    memcpy(s->e[slot].nonce, nonce, SH_MSGMAC_NONCE_BYTES);
    s->e[slot].ts = ts;
    s->e[slot].next = s->bucket[b];
    s->bucket[b] = slot + 1;
    s->count++;
done:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- checking ------------------------------------------------------------- */

static const char *mac_kind_name(int kind)
{
    switch (kind) {
    case SH_MSGMAC_CALL:
        return "call";
    case SH_MSGMAC_REPLY:
        return "reply";
    case SH_MSGMAC_EVENT:
        return "event";
    default:
        return "unknown";
    }
}

int sh_msgmac_open(const sh_msgmac_conf *c, sh_msgmac_kind kind, sh_msgmac_seen *seen,
                   int64_t now_ms, const void *data, size_t len, const unsigned char *want_nonce,
                   unsigned char *nonce_out, const void **payload, size_t *plen, sh_error *err)
{
    const unsigned char *p = data;
    const char *what = mac_kind_name(kind);
    if (!sh_msgmac_is_signed(data, len))
        return sh_error_set(err, SH_EAUTH, "missing MAC: the %s of %zu bytes carries no MAC", what,
                            len);
    if (len < SH_MSGMAC_OVERHEAD)
        return sh_error_set(err, SH_EAUTH, "missing MAC: the %s of %zu bytes is too short", what,
                            len);
    if (p[2] != MAC_VERSION)
        return sh_error_set(err, SH_EAUTH, "MAC version %u is not supported (this side speaks %d)",
                            p[2], MAC_VERSION);
    if (p[3] != (unsigned char)kind)
        return sh_error_set(err, SH_EAUTH, "a %s was sent where a %s belongs", mac_kind_name(p[3]),
                            what);
    if (!sh_mac_verify(&c->key, p, len - SH_MSGMAC_TAG_BYTES, p + len - SH_MSGMAC_TAG_BYTES))
        return sh_error_set(err, SH_EAUTH,
                            "bad MAC on a %s: altered, or signed with another RPC_SECRET", what);
    uint64_t uts = 0;
    for (int i = 0; i < 8; i++)
        uts = (uts << 8) | p[4 + i];
    int64_t ts = (int64_t)uts;
    int64_t skew = now_ms - ts;
    if (skew > c->window_ms || skew < -c->window_ms)
        return sh_error_set(err, SH_EAUTH,
                            "stale timestamp on a %s: %.1f s %s this host's clock, the window is "
                            "%lld s",
                            what, (double)(skew < 0 ? -skew : skew) / 1000.0,
                            skew < 0 ? "ahead of" : "behind", (long long)(c->window_ms / 1000));
    const unsigned char *nonce = p + 12;
    if (want_nonce && memcmp(nonce, want_nonce, SH_MSGMAC_NONCE_BYTES) != 0)
        return sh_error_set(err, SH_EAUTH, "a %s carries the nonce of another request", what);
    if (seen) {
        int64_t floor;
        int r = mac_seen_take(seen, nonce, ts, &floor);
        if (r == 1)
            return sh_error_set(err, SH_EAUTH, "replayed nonce: this %s was taken before", what);
        if (r == 2)
            return sh_error_set(err, SH_EAUTH,
                                "stale timestamp on a %s: %lld ms older than the nonces still "
                                "remembered (the replay cache is full)",
                                what, (long long)(floor - ts));
    }
    if (nonce_out)
        memcpy(nonce_out, nonce, SH_MSGMAC_NONCE_BYTES);
    *payload = p + SH_MSGMAC_HEAD_BYTES;
    *plen = len - SH_MSGMAC_OVERHEAD;
    return SH_OK;
}

/* ---- rate-limited logging ------------------------------------------------ */

static pthread_mutex_t mac_log_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t mac_log_start;
static int mac_log_count;
static long mac_log_left_out;

void sh_msgmac_log_refusal(const char *where, const sh_error *err)
{
    int64_t now = sh_mono_ms();
    pthread_mutex_lock(&mac_log_lock);
    long left_out = 0;
    if (now - mac_log_start >= MAC_LOG_SPAN) {
        left_out = mac_log_left_out;
        mac_log_left_out = 0;
        mac_log_start = now;
        mac_log_count = 0;
    }
    int log = mac_log_count < MAC_LOG_BURST;
    if (log)
        mac_log_count++;
    else
        mac_log_left_out++;
    pthread_mutex_unlock(&mac_log_lock);
    if (left_out)
        sh_log_warn("mac_refused", "%ld more refused messages were not logged", left_out);
    if (log)
        sh_log_warn("mac_refused", "%s: refused: %s", where, err->msg);
}
