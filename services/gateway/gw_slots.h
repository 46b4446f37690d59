/* gw_slots.h - places for event streams (SSE and WebSocket alike): a cap on
 * all of them and one per client address, so that streams, which hold their
 * connections for as long as clients like, leave connections for requests
 * and cannot all be taken from one address. An IPv4 address counts as
 * itself (an IPv4-mapped IPv6 one too); an IPv6 address as its /64, the
 * block one client is usually given.
 *
 * Life cycle: gw_slots_new, gw_slots_take and gw_slot_release for each
 * stream, then gw_slots_free once every slot is released. Thread-safe. */
#ifndef GW_SLOTS_H
#define GW_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "shared/err.h"

typedef struct gw_slots gw_slots;
typedef struct gw_slot gw_slot;

enum {
    GW_SLOTS_OK = 0,
    GW_SLOTS_FULL = 1,    /* the cap on every stream is reached */
    GW_SLOTS_ADDRESS = 2, /* the address's cap is reached */
    GW_SLOTS_NOMEM = 3,
};

/* gw_slots_new makes places for total streams, per_address of them (0: no
 * cap) for each address; NULL out of memory. */
gw_slots *gw_slots_new(size_t total, size_t per_address);
/* gw_slots_free frees s (NULL is fine); its slots must be released. */
void gw_slots_free(gw_slots *s);

/* gw_slots_take takes a place for a stream of a client at sa (NULL: an
 * unknown address, counted against the total only): GW_SLOTS_OK with *out
 * set, else why not. */
int gw_slots_take(gw_slots *s, const struct sockaddr *sa, gw_slot **out);
/* gw_slot_release gives the place back (NULL is fine). */
void gw_slot_release(gw_slot *slot);

/* gw_slots_total and gw_slots_per_address return the caps; gw_slots_open
 * the places taken. */
size_t gw_slots_total(const gw_slots *s);
size_t gw_slots_per_address(const gw_slots *s);
size_t gw_slots_open(gw_slots *s);

#endif
