/* events.h - publish/subscribe of events over nng.
 *
 * An event is a topic ("<kind>:<id>", e.g. "progress:abc") and a payload.
 * Publishers batch: sh_pub_send queues the event and a publisher thread
 * sends what has gathered as one message, so a busy service makes one send
 * per batch rather than per event. Wire format of one message: "*\n" then a
 * msgpack array [topic, payload, topic, payload, ...], events in the order
 * they were sent. (A message "<topic>\n<msgpack payload>" is one event and
 * is read too.) Subscribers filter by prefixes of "<topic>\n": "progress:"
 * for all progress events, "progress:abc\n" for one record (the delimiter
 * keeps "abc" from matching "abcd").
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
/* sh_pub_send queues payload (borrowed, encoded now) under topic; never
 * blocks. Past SH_PUB_QUEUE_MAX bytes waiting, events are dropped. */
int sh_pub_send(sh_pub *p, const char *topic, const sh_val *payload);
/* sh_pub_free sends what is queued, then closes. */
void sh_pub_free(sh_pub *p);

#define SH_PUB_QUEUE_MAX (8u * 1024u * 1024u)

/* sh_sub_new dials every URL of the comma-separated list (publishers may
 * start later; reconnects are automatic). */
int sh_sub_new(const char *urls, size_t max_msg, sh_sub **out, sh_error *err);
/* sh_sub_subscribe adds a prefix of "<topic>\n" to receive ("progress:"). */
int sh_sub_subscribe(sh_sub *s, const char *prefix);
/* sh_sub_recv waits up to timeout_ms for one event. On SH_OK, *topic (a
 * NUL-terminated string without the delimiter) and *payload are the
 * caller's to free. SH_ETIMEDOUT when nothing came; SH_EPROTO for an
 * undecodable message (already discarded). */
int sh_sub_recv(sh_sub *s, int timeout_ms, char **topic, sh_val **payload);
void sh_sub_free(sh_sub *s);

#endif
