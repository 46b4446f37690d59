/* events.h - publish/subscribe of events over nng.
 *
 * Wire format of one event: the topic bytes, one '\n', then the msgpack
 * payload. Topics are "<kind>:<id>" (e.g. "progress:abc"); a subscriber
 * matching by prefix subscribes to "progress:" for all progress events or
 * "progress:abc\n" for one record (the delimiter keeps "abc" from matching
 * "abcd").
 *
 * Delivery is best effort: a slow subscriber loses messages and a new one
 * sees nothing older. Events therefore carry the version of what changed, and
 * a subscriber that sees a gap re-reads the record. */
#ifndef SHARED_EVENTS_H
#define SHARED_EVENTS_H

#include "shared/err.h"
#include "shared/val.h"

typedef struct sh_pub sh_pub;
typedef struct sh_sub sh_sub;

/* sh_pub_new listens on url; subscribers dial it. */
int sh_pub_new(const char *url, sh_pub **out, sh_error *err);
/* sh_pub_send publishes payload (borrowed) under topic; never blocks. */
int sh_pub_send(sh_pub *p, const char *topic, const sh_val *payload);
void sh_pub_free(sh_pub *p);

/* sh_sub_new dials every URL of the comma-separated list (publishers may
 * start later; reconnects are automatic). */
int sh_sub_new(const char *urls, size_t max_msg, sh_sub **out, sh_error *err);
/* sh_sub_subscribe adds a byte prefix of the wire message ("progress:"). */
int sh_sub_subscribe(sh_sub *s, const char *prefix);
/* sh_sub_recv waits up to timeout_ms for one event. On SH_OK, *topic (a
 * NUL-terminated string without the delimiter) and *payload are the
 * caller's to free. SH_ETIMEDOUT when nothing came; SH_EPROTO for an
 * undecodable event (already discarded). */
int sh_sub_recv(sh_sub *s, int timeout_ms, char **topic, sh_val **payload);
void sh_sub_free(sh_sub *s);

#endif
