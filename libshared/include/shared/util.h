/* util.h - small helpers: clocks, ISO 8601 timestamps, random ids,
 * constant-time comparison. */
#ifndef SHARED_UTIL_H
#define SHARED_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Wall clock in milliseconds since the epoch. */
int64_t sh_now_ms(void);
/* Monotonic clock in milliseconds. */
int64_t sh_mono_ms(void);

#define SH_ISO_LEN 25 /* "2026-01-01T00:00:00.000Z" + NUL */
/* sh_iso8601 formats ms since the epoch as UTC with milliseconds. */
void sh_iso8601(int64_t ms, char out[SH_ISO_LEN]);

/* sh_random_hex (secret.c, with sh_secret_equal) fills out with 2*nbytes hex digits of
 * cryptographic randomness and a NUL (out must hold 2*nbytes+1). */
int sh_random_hex(char *out, size_t nbytes);

/* sh_secret_equal compares two secrets in time independent of their
 * contents (lengths are compared first). */
bool sh_secret_equal(const char *a, size_t alen, const char *b, size_t blen);

/* sh_is_loopback_host reports whether host (an IPv4/IPv6 literal or
 * "localhost") is a loopback address. */
bool sh_is_loopback_host(const char *host);

/* sh_is_ip_literal tells an IP address ("192.0.2.1", "::1", or "[::1]"
 * bracketed as in a URL) from a host name. */
bool sh_is_ip_literal(const char *host);

#endif
