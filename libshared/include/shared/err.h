/* err.h - error codes shared by every module and by the wire protocol.
 *
 * Every function of libshared returns 0 (SH_OK) or one of these negative
 * codes. A code travels between services by its name (sh_err_name), so the
 * numbers are private to a process and the names are the contract. */
#ifndef SHARED_ERR_H
#define SHARED_ERR_H

#include <stddef.h>

enum {
    SH_OK = 0,
    SH_EINVAL = -1,     /* "invalid_argument": bad input from the caller */
    SH_ENOTFOUND = -2,  /* "not_found" */
    SH_ECONFLICT = -3,  /* "conflict": someone else holds it */
    SH_ELEASE = -4,     /* "lease_lost": stale owner or fencing token */
    SH_ETOOBIG = -5,    /* "too_large": a size limit was exceeded */
    SH_EPROTO = -6,     /* "malformed": undecodable message between services */
    SH_EUNAVAIL = -7,   /* "unavailable": a dependency (Redis, a service) is down */
    SH_ETIMEDOUT = -8,  /* "timeout": no answer in time */
    SH_ENOMEM = -9,     /* "no_memory" */
    SH_EINTERNAL = -10, /* "internal": a bug or an unexpected reply */
    SH_ENOOP = -11,     /* "unknown_operation" */
    SH_ECLOSED = -12,   /* "closed": the object is shutting down */
    SH_ELIMIT = -13,    /* "limit_exceeded": too many items (fields, entries) */
    SH_EAUTH = -14,     /* "unauthenticated": a message between services without a valid MAC */
    /* "outcome_unknown": a write was sent but its reply was lost (a stall, a
     * dropped link), so it may or may not have taken effect; safe to retry
     * with the same request id (Idempotency-Key). */
    SH_EUNKNOWN = -15,
};

/* sh_error carries a code and a human-readable message naming what is wrong.
 * It is embedded by value; no teardown is needed. */
typedef struct sh_error {
    int code;
    char msg[256];
} sh_error;

/* sh_strerror returns a static English description of code. */
const char *sh_strerror(int code);

/* sh_err_name returns the wire name of code ("not_found", ...). */
const char *sh_err_name(int code);

/* sh_err_from_name maps a wire name back to its code; unknown names map to
 * SH_EINTERNAL. */
int sh_err_from_name(const char *name, size_t len);

/* sh_error_set formats a message into err (which may be NULL) and returns
 * code, so callers can write `return sh_error_set(err, SH_EINVAL, ...)`. */
int sh_error_set(sh_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* sh_error_clear resets err to SH_OK with an empty message. */
void sh_error_clear(sh_error *err);

#endif
