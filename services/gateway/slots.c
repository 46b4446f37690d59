/* slots.c - the places of event streams: a count of all of them and a hash
 * table of counts by client address (gw_slots.h). An address's entry lives
 * while it has streams. */
#include "gw_slots.h"
#include "shared/secret.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS_BUCKETS 1024
#define SLOTS_KEY     16 /* an IPv4 address in 4 bytes, or an IPv6 /64 in 8, zero-padded */

typedef struct slots_addr {
    struct slots_addr *next;
    size_t n;
    unsigned char key[SLOTS_KEY];
} slots_addr;

struct gw_slot {
    gw_slots *s;
    slots_addr *addr; /* NULL: counted against the total only */
};

struct gw_slots {
    pthread_mutex_t mu;
    size_t total, per_address, open;
    slots_addr *buckets[SLOTS_BUCKETS];
};

gw_slots *gw_slots_new(size_t total, size_t per_address)
{
    gw_slots *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    s->total = total;
    s->per_address = per_address;
    return s;
}

void gw_slots_free(gw_slots *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < SLOTS_BUCKETS; i++) {
        while (s->buckets[i]) {
            slots_addr *a = s->buckets[i];
            s->buckets[i] = a->next;
            free(a);
        }
    }
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* slots_key fills key with what names sa's client; false for a family
 * that has none. */
static bool slots_key(const struct sockaddr *sa, unsigned char key[SLOTS_KEY])
{
    memset(key, 0, SLOTS_KEY);
    if (sa->sa_family == AF_INET) {
        memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        key[0] = 4;
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            memcpy(key + 1, a->s6_addr + 12, 4);
            key[0] = 4;
        } else {
            memcpy(key + 1, a->s6_addr, 8);
            key[0] = 6;
        }
        return true;
    }
    return false;
}

/* Clients choose their addresses (a /48 holds many /64s): the bucket is a
 * keyed hash, so they cannot crowd one chain. */
static size_t slots_hash(const unsigned char key[SLOTS_KEY])
{
    return (size_t)(sh_hash(key, SLOTS_KEY) % SLOTS_BUCKETS);
}

int gw_slots_take(gw_slots *s, const struct sockaddr *sa, gw_slot **out)
{
    *out = NULL;
    unsigned char key[SLOTS_KEY];
    bool keyed = s->per_address && sa && slots_key(sa, key);
    gw_slot *slot = malloc(sizeof *slot);
    if (!slot)
        return GW_SLOTS_NOMEM;
    slot->s = s;
    slot->addr = NULL;
    int rc = GW_SLOTS_OK;
    pthread_mutex_lock(&s->mu);
    slots_addr *a = NULL, **head = NULL;
    if (keyed) {
        head = &s->buckets[slots_hash(key)];
        for (a = *head; a && memcmp(a->key, key, SLOTS_KEY) != 0; a = a->next)
            ;
    }
    if (a && a->n >= s->per_address)
        rc = GW_SLOTS_ADDRESS;
    else if (s->open >= s->total)
        rc = GW_SLOTS_FULL;
    else if (keyed && !a) {
        if ((a = calloc(1, sizeof *a))) {
            memcpy(a->key, key, SLOTS_KEY);
            a->next = *head;
            *head = a;
        } else {
            rc = GW_SLOTS_NOMEM;
        }
    }
    if (rc == GW_SLOTS_OK) {
        s->open++;
        if (a)
            a->n++;
        slot->addr = a;
    }
    pthread_mutex_unlock(&s->mu);
    if (rc != GW_SLOTS_OK) {
        free(slot);
        return rc;
    }
    *out = slot;
    return GW_SLOTS_OK;
}

void gw_slot_release(gw_slot *slot)
{
    if (!slot)
        return;
    gw_slots *s = slot->s;
    pthread_mutex_lock(&s->mu);
    s->open--;
    slots_addr *a = slot->addr;
    if (a && --a->n == 0) {
        slots_addr **p = &s->buckets[slots_hash(a->key)];
        while (*p != a)
            p = &(*p)->next;
        *p = a->next;
        free(a);
    }
    pthread_mutex_unlock(&s->mu);
    free(slot);
}

size_t gw_slots_total(const gw_slots *s)
{
    return s->total;
}

size_t gw_slots_per_address(const gw_slots *s)
{
    return s->per_address;
}

size_t gw_slots_open(gw_slots *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->open;
    pthread_mutex_unlock(&s->mu);
    return n;
}
