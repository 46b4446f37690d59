/* imap_watchdog.c - one thread that cancels a read still running at its
 * deadline. The stream of imap_stream.c checks the deadline between reads
 * and the socket driver (imap_sock.c) holds each read to its timeout, but
 * a read past its deadline for any other reason would keep a thread; the
 * cancel (the driver shuts the socket down, which wakes its poll) ends it.
 * The lock is held while cancelling, so once sync__imap_watch_disarm
 * returns the stream is not touched. */
#include <pthread.h>
#include <time.h>

#include "imap_int.h"
#include "shared/util.h"

static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cond;
static pthread_once_t wd_once = PTHREAD_ONCE_INIT;
static bool wd_running;
static sync__imap_watch *wd_head;
static int64_t wd_next; /* the earliest deadline waited for, 0 for none */

static void *wd_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&wd_lock);
    for (;;) {
        int64_t now = sh_mono_ms(), next = 0;
        for (sync__imap_watch **p = &wd_head; *p;) {
            sync__imap_watch *w = *p;
            if (w->deadline_ms <= now) {
                w->fired = true;
                w->armed = false;
                *p = w->next;
                w->next = NULL;
                mailstream_low_cancel(w->low);
                continue;
            }
            if (!next || w->deadline_ms < next)
                next = w->deadline_ms;
            p = &w->next;
        }
        wd_next = next;
        if (!next) {
            pthread_cond_wait(&wd_cond, &wd_lock);
        } else {
            struct timespec ts = {.tv_sec = (time_t)(next / 1000),
                                  .tv_nsec = (long)(next % 1000) * 1000000L};
            pthread_cond_timedwait(&wd_cond, &wd_lock, &ts);
        }
    }
    return NULL;
}

static void wd_start(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&wd_cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    wd_running = pthread_create(&t, &a, wd_main, NULL) == 0;
    pthread_attr_destroy(&a);
}

void sync__imap_watch_arm(sync__imap_watch *w, mailstream_low *low, int64_t deadline_ms)
{
    pthread_once(&wd_once, wd_start);
    w->low = low;
    w->deadline_ms = deadline_ms;
    w->fired = false;
    if (!wd_running)
        return;
    pthread_mutex_lock(&wd_lock);
    w->next = wd_head;
    wd_head = w;
    w->armed = true;
    if (!wd_next || deadline_ms < wd_next) {
        wd_next = deadline_ms;
        pthread_cond_signal(&wd_cond);
    }
    pthread_mutex_unlock(&wd_lock);
}

bool sync__imap_watch_disarm(sync__imap_watch *w)
{
    if (!wd_running)
        return false;
    pthread_mutex_lock(&wd_lock);
    if (w->armed) {
        for (sync__imap_watch **p = &wd_head; *p; p = &(*p)->next)
            if (*p == w) {
                *p = w->next;
                break;
            }
        w->armed = false;
        w->next = NULL;
    }
    bool fired = w->fired;
    pthread_mutex_unlock(&wd_lock);
    return fired;
}
