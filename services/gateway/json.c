/* json.c - JSON text <-> sh_val. The one file of the gateway that includes
 * json-c; the writer is our own, straight from the value tree into a buffer,
 * which saves building a second tree for every response. */
#include "gw_json.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/err.h"
#include "shared/secret.h"
#include "shared/text.h"

/* json_to_val converts a json-c tree; msg names the first value refused. */
static sh_val *json_to_val(struct json_object *o, bool *min_seen, char *msg, size_t msglen)
{
    switch (json_object_get_type(o)) {
    case json_type_null:
        return sh_val_new_nil();
    case json_type_boolean:
        return sh_val_new_bool(json_object_get_boolean(o));
    case json_type_double: {
        double d = json_object_get_double(o);
        if (!isfinite(d)) {
            snprintf(msg, msglen, "malformed JSON: a number is out of range");
            return NULL;
        }
        return sh_val_new_float(d);
    }
    case json_type_int: {
        int64_t i = json_object_get_int64(o);
        if (i == INT64_MAX && json_object_get_uint64(o) > (uint64_t)INT64_MAX) {
            snprintf(msg, msglen, "malformed JSON: an integer is out of the 64-bit range");
            return NULL;
        }
        if (i == INT64_MIN)
            *min_seen = true; /* or a smaller one, clamped: see json_below_int64 */
        return sh_val_new_int(i);
    }
    case json_type_string:
        return sh_val_new_str(json_object_get_string(o), (size_t)json_object_get_string_len(o));
    case json_type_array: {
        sh_val *arr = sh_val_new_array();
        size_t n = json_object_array_length(o);
        for (size_t i = 0; arr && i < n; i++) {
            sh_val *item = json_to_val(json_object_array_get_idx(o, i), min_seen, msg, msglen);
            if (!item || sh_val_push(arr, item) != SH_OK) {
                sh_val_free(arr);
                return NULL;
            }
        }
        return arr;
    }
    case json_type_object: {
        sh_val *map = sh_val_new_map();
        if (!map)
            return NULL;
        json_object_object_foreach(o, key, child)
        {
            sh_val *item = json_to_val(child, min_seen, msg, msglen);
            if (!item || sh_val_set_cstr(map, key, item) != SH_OK) {
                sh_val_free(map);
                return NULL;
            }
        }
        return map;
    }
    }
    snprintf(msg, msglen, "malformed JSON: unsupported value");
    return NULL;
}

static int json_only_space(const char *p, const char *end)
{
    for (; p < end; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return 0;
    return 1;
}

/* json_below_int64 tells whether text holds an integer literal below
 * INT64_MIN, which json-c reads as INT64_MIN without a word. */
static bool json_below_int64(const char *text, size_t len)
{
    static const char min_digits[] = "9223372036854775808";
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
            continue;
        }
        if (c != '-')
            continue;
        size_t d = i + 1, n = 0;
        while (d + n < len && text[d + n] >= '0' && text[d + n] <= '9')
            n++;
        char next = d + n < len ? text[d + n] : '\0';
        if (next == '.' || next == 'e' || next == 'E')
            continue;
        if (n > 19 || (n == 19 && memcmp(text + d, min_digits, 19) > 0))
            return true;
    }
    return false;
}

/* json_wipe overwrites every string of o before json-c frees it: a body's
 * strings may be passwords and tokens (its parser's buffer is wiped too). */
static void json_wipe(struct json_object *o)
{
    switch (json_object_get_type(o)) {
    case json_type_string:
        sh_wipe((char *)json_object_get_string(o), (size_t)json_object_get_string_len(o));
        break;
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(o); i++)
            json_wipe(json_object_array_get_idx(o, i));
        break;
    case json_type_object: {
        json_object_object_foreach(o, key, val)
        {
            (void)key;
            json_wipe(val);
        }
        break;
    }
    default:
        break;
    }
}

int gw_json_parse(const char *text, size_t len, sh_val **out, char *msg, size_t msglen)
{
    *out = NULL;
    msg[0] = '\0';
    if (len > INT32_MAX - 1) {
        snprintf(msg, msglen, "malformed JSON: body too large to parse");
        return -1;
    }
    size_t bad;
    /* RFC 3629 (section 4): no overlong forms, surrogates or code points
     * above U+10FFFF, which json-c's own check lets through. */
    if (!sh_utf8_valid(text, len, &bad)) {
        snprintf(msg, msglen, "malformed JSON at byte %zu: invalid UTF-8", bad);
        return -1;
    }
    /* json-c counts the innermost value as a level of its own: GW_JSON_MAX_DEPTH
     * nested arrays or objects holding a value take one more. */
    struct json_tokener *tok = json_tokener_new_ex(GW_JSON_MAX_DEPTH + 1);
    if (!tok) {
        snprintf(msg, msglen, "out of memory");
        return -1;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    /* The NUL after the text ends a top-level number ("42"), which json-c
     * would otherwise wait to see continued. */
    struct json_object *o = json_tokener_parse_ex(tok, text, (int)len + 1);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    int rc = -1;
    if (jerr != json_tokener_success) {
        if (jerr == json_tokener_continue || end >= len)
            snprintf(msg, msglen, "malformed JSON: unexpected end of the body after %zu bytes",
                     len);
        else
            snprintf(msg, msglen, "malformed JSON at byte %zu: %s", end,
                     json_tokener_error_desc(jerr));
        goto done;
    }
    if (end < len && !json_only_space(text + end, text + len)) {
        size_t at = end;
        while (at < len && json_only_space(text + at, text + at + 1))
            at++;
        snprintf(msg, msglen, "malformed JSON at byte %zu: unexpected data after the value", at);
        goto done;
    }
    bool min_seen = false;
    *out = json_to_val(o, &min_seen, msg, msglen);
    if (*out && min_seen && json_below_int64(text, len)) {
        sh_val_free(*out);
        *out = NULL;
        snprintf(msg, msglen, "malformed JSON: an integer is out of the 64-bit range");
    }
    if (*out)
        rc = 0;
    else if (!msg[0])
        snprintf(msg, msglen, "out of memory");
done:
    json_wipe(o);
    if (tok->pb && tok->pb->buf)
        sh_wipe(tok->pb->buf, (size_t)tok->pb->size);
    json_object_put(o);
    json_tokener_free(tok);
    return rc;
}

/* Bytes that must be escaped inside a JSON string: controls, quote, backslash. */
static inline int json_needs_escape(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\';
}

int gw_json_write_str(sh_buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (sh_buf_reserve(out, len + 2) != SH_OK || sh_buf_append(out, "\"", 1) != SH_OK)
        return SH_ENOMEM;
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!json_needs_escape(c))
            continue;
        if (sh_buf_append(out, s + run, i - run) != SH_OK)
            return SH_ENOMEM;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        if (sh_buf_append(out, esc, n) != SH_OK)
            return SH_ENOMEM;
        run = i + 1;
    }
    if (sh_buf_append(out, s + run, len - run) != SH_OK)
        return SH_ENOMEM;
    return sh_buf_append(out, "\"", 1);
}

/* json_write_double writes the shortest text that reads back as d, always
 * with a fraction or exponent so it stays a float for the next reader. */
static int json_write_double(sh_buf *out, double d)
{
    if (!isfinite(d))
        return sh_buf_append(out, "null", 4);
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    if (!strpbrk(tmp, ".eE"))
        strcat(tmp, ".0");
    return sh_buf_puts(out, tmp);
}

int gw_json_write_member(sh_buf *out, const char *key, size_t klen, const sh_val *v)
{
    int rc = gw_json_write_str(out, key, klen);
    if (rc == SH_OK)
        rc = sh_buf_append(out, ":", 1);
    return rc == SH_OK ? gw_json_write(v, out) : rc;
}

int gw_json_write(const sh_val *v, sh_buf *out)
{
    char tmp[32];
    int rc = SH_OK;
    switch (sh_val_type_of(v)) {
    case SH_VAL_NIL:
        return sh_buf_append(out, "null", 4);
    case SH_VAL_BOOL:
        return sh_val_bool(v) ? sh_buf_append(out, "true", 4) : sh_buf_append(out, "false", 5);
    case SH_VAL_INT: {
        int n = snprintf(tmp, sizeof tmp, "%" PRId64, sh_val_int(v));
        return sh_buf_append(out, tmp, (size_t)n);
    }
    case SH_VAL_FLOAT:
        return json_write_double(out, sh_val_float(v));
    case SH_VAL_STR:
    case SH_VAL_BIN: {
        size_t len;
        const char *s = sh_val_str(v, &len);
        return gw_json_write_str(out, s ? s : "", s ? len : 0);
    }
    case SH_VAL_ARRAY: {
        size_t n = sh_val_len(v);
        rc = sh_buf_append(out, "[", 1);
        for (size_t i = 0; rc == SH_OK && i < n; i++) {
            if (i)
                rc = sh_buf_append(out, ",", 1);
            if (rc == SH_OK)
                rc = gw_json_write(sh_val_at(v, i), out);
        }
        return rc == SH_OK ? sh_buf_append(out, "]", 1) : rc;
    }
    case SH_VAL_MAP: {
        size_t n = sh_val_len(v);
        rc = sh_buf_append(out, "{", 1);
        for (size_t i = 0; rc == SH_OK && i < n; i++) {
            size_t klen;
            const char *k = sh_val_key_at(v, i, &klen);
            if (i)
                rc = sh_buf_append(out, ",", 1);
            if (rc == SH_OK)
                rc = gw_json_write_member(out, k, klen, sh_val_value_at(v, i));
        }
        return rc == SH_OK ? sh_buf_append(out, "}", 1) : rc;
    }
    }
    return sh_buf_append(out, "null", 4);
}
