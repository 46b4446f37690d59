/* gw_json.h - JSON text to sh_val trees and back, at the HTTP edge only.
 *
 * Parsing is json-c's strict mode (RFC 8259 but for the leniencies of
 * json-c 0.16: "1." and "00" read as numbers, raw control bytes inside
 * strings are taken) with UTF-8 checked to RFC 3629 and no trailing bytes;
 * it keeps 64-bit integers. Writing produces compact JSON on one line, so a
 * record fits in one Server-Sent Events "data:" field. */
#ifndef GW_JSON_H
#define GW_JSON_H

#include <stddef.h>

#include "shared/buf.h"
#include "shared/val.h"

/* Deepest nesting accepted in a request body (arrays and objects inside one
 * another, holding a value): the call envelope adds two levels to the limit
 * of the msgpack decoder (SH_MSG_DEFAULT_MAX_DEPTH). */
#define GW_JSON_MAX_DEPTH 30

/* gw_json_parse parses text[0..len), which must be followed by a NUL byte.
 * On success *out is a new tree the caller frees and 0 is returned; on error
 * -1 is returned and msg (msglen bytes) says where and why it failed. */
int gw_json_parse(const char *text, size_t len, sh_val **out, char *msg, size_t msglen);

/* gw_json_write appends the JSON text of v to out. Binary strings are
 * written as strings. Returns SH_OK or SH_ENOMEM. */
int gw_json_write(const sh_val *v, sh_buf *out);

/* gw_json_write_member appends the object member "key":v (key klen bytes). */
int gw_json_write_member(sh_buf *out, const char *key, size_t klen, const sh_val *v);

/* gw_json_write_str appends s[0..len) as a quoted JSON string. */
int gw_json_write_str(sh_buf *out, const char *s, size_t len);

#endif
