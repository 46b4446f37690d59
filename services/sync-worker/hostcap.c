/* hostcap.c - connections per IMAP host: a small table under one lock,
 * entries dropped when their count falls to zero. */
#include "hostcap.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct hostcap_entry {
    struct hostcap_entry *next;
    int count;
    char host[];
} hostcap_entry;

static pthread_mutex_t hostcap_lock = PTHREAD_MUTEX_INITIALIZER;
static hostcap_entry *hostcap_list;

static hostcap_entry **hostcap_find(const char *host)
{
    hostcap_entry **e = &hostcap_list;
    while (*e && strcasecmp((*e)->host, host) != 0)
        e = &(*e)->next;
    return e;
}

int sync_hostcap_take(const char *host, int limit, sh_error *err)
{
    pthread_mutex_lock(&hostcap_lock);
    hostcap_entry **e = hostcap_find(host);
    int rc = SH_OK;
    if (*e && limit > 0 && (*e)->count >= limit) {
        rc = sh_error_set(err, SH_ELIMIT,
                          "%d IMAP connections to %.100s are open already "
                          "(IMAP_MAX_CONNECTIONS_PER_HOST)",
                          (*e)->count, host);
    } else if (*e) {
        (*e)->count++;
    } else {
        size_t n = strlen(host) + 1;
        hostcap_entry *ne = malloc(sizeof *ne + n);
        if (!ne) {
            rc = sh_error_set(err, SH_ENOMEM, "out of memory");
        } else {
            memcpy(ne->host, host, n);
            ne->count = 1;
            ne->next = NULL;
            *e = ne;
        }
    }
    pthread_mutex_unlock(&hostcap_lock);
    return rc;
}

void sync_hostcap_give(const char *host)
{
    pthread_mutex_lock(&hostcap_lock);
    hostcap_entry **e = hostcap_find(host);
    if (*e && --(*e)->count <= 0) {
        hostcap_entry *gone = *e;
        *e = gone->next;
        free(gone);
    }
    pthread_mutex_unlock(&hostcap_lock);
}

int sync_hostcap_count(const char *host)
{
    pthread_mutex_lock(&hostcap_lock);
    hostcap_entry **e = hostcap_find(host);
    int n = *e ? (*e)->count : 0;
    pthread_mutex_unlock(&hostcap_lock);
    return n;
}
