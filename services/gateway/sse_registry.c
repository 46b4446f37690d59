/* sse_registry.c - the streams of each record id (a topic: a hash table of
 * them, each with its list of streams), the typed event streams (one list,
 * and the id of their next event), and the watch of their sockets.
 *
 * A suspended connection is not watched by MHD, so a client that leaves
 * would only be noticed at the next heartbeat. Each stream's socket is
 * therefore also watched here (epoll, on a duplicate descriptor); the timer
 * thread waits on it and ends the stream as soon as the client hangs up. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "gw_metrics.h"
#include "gw_sse_int.h"
#include "shared/secret.h"

int gw__sse_registry_init(gw__sse_registry *reg, sh_error *err)
{
    memset(reg, 0, sizeof *reg);
    pthread_mutex_init(&reg->mu, NULL);
    reg->ep = epoll_create1(EPOLL_CLOEXEC);
    if (reg->ep < 0)
        return sh_error_set(err, SH_EINTERNAL, "cannot set up epoll for event streams");
    return SH_OK;
}

void gw__sse_registry_fini(gw__sse_registry *reg)
{
    gw__sse_retired_drain(reg);
    for (size_t b = 0; b < SSE_BUCKETS; b++) {
        gw__sse_topic *t = reg->buckets[b];
        while (t) {
            gw__sse_topic *next = t->hnext;
            free(t);
            t = next;
        }
        reg->buckets[b] = NULL;
    }
    if (reg->ep >= 0)
        close(reg->ep);
    reg->ep = -1;
    pthread_mutex_destroy(&reg->mu);
}

/* Ids come from request paths: a seeded hash, so no one can pile streams
 * on one bucket. */
static size_t sse_registry_hash(const char *id)
{
    return (size_t)(sh_hash(id, strlen(id)) & (SSE_BUCKETS - 1));
}

gw__sse_topic *gw__sse_topic_find(gw__sse_registry *reg, const char *id)
{
    for (gw__sse_topic *t = reg->buckets[sse_registry_hash(id)]; t; t = t->hnext)
        if (strcmp(t->id, id) == 0)
            return t;
    return NULL;
}

static void sse_registry_topic_remove(gw__sse_registry *reg, gw__sse_topic *t)
{
    gw__sse_topic **pp = &reg->buckets[sse_registry_hash(t->id)];
    while (*pp != t)
        pp = &(*pp)->hnext;
    *pp = t->hnext;
    free(t);
    reg->topics_gen++;
}

void gw__sse_unwatch(gw__sse_registry *reg, gw__sse_stream *st)
{
    if (st->ep_fd < 0)
        return;
    epoll_ctl(reg->ep, EPOLL_CTL_DEL, st->ep_fd, NULL);
    close(st->ep_fd);
    st->ep_fd = -1;
    st->retired_next = reg->retired;
    reg->retired = st;
}

/* sse_registry_watch starts watching sock, st's connection's (registry lock
 * held); without it a hang-up is noticed at the next heartbeat. */
static void sse_registry_watch(gw__sse_registry *reg, gw__sse_stream *st, int sock)
{
    if (sock < 0 || reg->ep < 0)
        return;
    int fd = fcntl(sock, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return;
    struct epoll_event ev = {.events = EPOLLRDHUP, .data.ptr = st};
    if (epoll_ctl(reg->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        return;
    }
    gw__sse_stream_ref(st);
    st->ep_fd = fd;
}

void gw__sse_retired_drain(gw__sse_registry *reg)
{
    pthread_mutex_lock(&reg->mu);
    gw__sse_stream *st = reg->retired;
    reg->retired = NULL;
    pthread_mutex_unlock(&reg->mu);
    while (st) {
        gw__sse_stream *next = st->retired_next;
        gw__sse_stream_unref(st);
        st = next;
    }
}

/* sse_registry_topic_of finds or makes the topic of a record id. */
static gw__sse_topic *sse_registry_topic_of(gw__sse_registry *reg, const char *id)
{
    gw__sse_topic *t = gw__sse_topic_find(reg, id);
    if (!t && (t = calloc(1, sizeof *t))) {
        snprintf(t->id, sizeof t->id, "%s", id);
        size_t b = sse_registry_hash(id);
        t->hnext = reg->buckets[b];
        reg->buckets[b] = t;
        reg->topics_gen++;
    }
    return t;
}

bool gw__sse_registry_add(gw__sse_registry *reg, gw__sse_stream *st, int sock)
{
    pthread_mutex_lock(&reg->mu);
    bool ok = !reg->shutting;
    gw__sse_topic *t = ok && !st->types ? sse_registry_topic_of(reg, st->id) : NULL;
    gw__sse_stream **head = t ? &t->streams : &reg->typed;
    ok = ok && (t || st->types);
    if (ok) {
        st->reg = reg;
        st->topic = t;
        st->next = *head;
        if (*head)
            (*head)->prev = st;
        *head = st;
        st->registered = true;
        sse_registry_watch(reg, st, sock);
        reg->nstreams++;
        if (t)
            reg->topics_gen++; /* a record's client count changed */
        gw_metrics_sse_clients_add(1);
    }
    pthread_mutex_unlock(&reg->mu);
    return ok;
}

void gw__sse_registry_remove(gw__sse_stream *st)
{
    gw__sse_registry *reg = st->reg;
    if (!reg)
        return; /* never registered, so never watched */
    pthread_mutex_lock(&reg->mu);
    gw__sse_unwatch(reg, st);
    if (st->registered) {
        gw__sse_topic *t = st->topic;
        if (st->prev)
            st->prev->next = st->next;
        else if (t)
            t->streams = st->next;
        else
            reg->typed = st->next;
        if (st->next)
            st->next->prev = st->prev;
        st->registered = false;
        st->topic = NULL;
        if (t && !t->streams)
            sse_registry_topic_remove(reg, t);
        else if (t)
            reg->topics_gen++;
        reg->nstreams--;
        gw_metrics_sse_clients_add(-1);
    }
    pthread_mutex_unlock(&reg->mu);
}

void gw__sse_registry_end(gw__sse_registry *reg, const char *text, size_t len)
{
    gw__sse_wake w;
    gw__sse_wake_init(&w);
    pthread_mutex_lock(&reg->mu);
    reg->shutting = true;
    for (size_t b = 0; b < SSE_BUCKETS; b++)
        for (gw__sse_topic *t = reg->buckets[b]; t; t = t->hnext)
            for (gw__sse_stream *st = t->streams; st; st = st->next)
                gw__sse_stream_finish(st, text, len, &w);
    for (gw__sse_stream *st = reg->typed; st; st = st->next)
        gw__sse_stream_finish(st, text, len, &w);
    pthread_mutex_unlock(&reg->mu);
    gw__sse_wake_run(&w);
}
