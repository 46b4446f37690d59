/* text.h - text from outside (servers, libraries, clients) made safe to
 * store and show: valid UTF-8 only (RFC 3629: no overlong forms, no
 * surrogates U+D800..U+DFFF, nothing past U+10FFFF, no cut sequence), each
 * invalid sequence replaced by U+FFFD (one per maximal subpart, as Unicode
 * recommends), control characters (C0, DEL, C1) by spaces, and cut on a
 * character boundary. */
#ifndef SHARED_TEXT_H
#define SHARED_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "shared/buf.h"

/* The most bytes of an error message made of server or library text (an
 * account's errorMessage, a log entry's error). */
#define SH_TEXT_ERROR_MAX 512

/* sh_utf8_valid reports whether s (len bytes) is UTF-8 as above (control
 * characters are valid); when not, *bad (if bad) is the offset of the
 * first invalid sequence. */
bool sh_utf8_valid(const char *s, size_t len, size_t *bad);

/* sh_utf8_clean appends s (len bytes) to out, cleaned, stopping before the
 * character that would take the appended text past max bytes. SH_OK or
 * SH_ENOMEM. */
int sh_utf8_clean(sh_buf *out, const char *s, size_t len, size_t max);

/* sh_text_bound writes s (len bytes), cleaned and cut to at most cap - 1
 * bytes and to SH_TEXT_ERROR_MAX, to out (cap bytes, NUL-terminated; cap
 * > 0), and returns its length. out may be s itself only when cleaning
 * cannot lengthen it, so pass a copy. */
size_t sh_text_bound(char *out, size_t cap, const char *s, size_t len);

#endif
