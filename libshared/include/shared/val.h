/* val.h - a dynamic value tree (nil, bool, int, float, string, binary, array,
 * map): the one data model of arguments, results, events and records.
 *
 * Life cycle: sh_val_new_* allocates; containers take ownership of the values
 * added to them; sh_val_free(root) frees the whole tree and accepts NULL.
 * Strings are copied and NUL-terminated; their length is explicit, so they
 * may contain NUL bytes. Map keys are strings and unique (set replaces). */
#ifndef SHARED_VAL_H
#define SHARED_VAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum sh_val_type {
    SH_VAL_NIL,
    SH_VAL_BOOL,
    SH_VAL_INT,
    SH_VAL_FLOAT,
    SH_VAL_STR,
    SH_VAL_BIN,
    SH_VAL_ARRAY,
    SH_VAL_MAP,
} sh_val_type;

typedef struct sh_val sh_val;

/* Constructors return NULL only when out of memory. */
sh_val *sh_val_new_nil(void);
sh_val *sh_val_new_bool(bool b);
sh_val *sh_val_new_int(int64_t i);
sh_val *sh_val_new_float(double d);
sh_val *sh_val_new_str(const char *s, size_t len);
sh_val *sh_val_new_cstr(const char *s);
sh_val *sh_val_new_bin(const void *p, size_t len);
sh_val *sh_val_new_array(void);
sh_val *sh_val_new_map(void);
/* sh_val_clone returns a deep copy (caller frees) or NULL. */
sh_val *sh_val_clone(const sh_val *v);
/* sh_val_free frees v and what it holds, wiping every string and binary
 * value first (sh_wipe): they may be passwords, tokens or keys. */
void sh_val_free(sh_val *v);

sh_val_type sh_val_type_of(const sh_val *v);
const char *sh_val_type_name(sh_val_type t);
bool sh_val_bool(const sh_val *v);
int64_t sh_val_int(const sh_val *v);
double sh_val_float(const sh_val *v); /* ints convert */
/* sh_val_str returns the bytes of a STR or BIN (NUL-terminated) and their
 * length through len (may be NULL); NULL for other types. */
const char *sh_val_str(const sh_val *v, size_t *len);
/* Number of items of an array or map, 0 otherwise. */
size_t sh_val_len(const sh_val *v);

/* Arrays. sh_val_push takes ownership of item, also on failure. */
int sh_val_push(sh_val *arr, sh_val *item);
const sh_val *sh_val_at(const sh_val *arr, size_t i);
/* sh_val_take_at hands item i to the caller (who frees it); its slot reads
 * as NULL afterwards. */
sh_val *sh_val_take_at(sh_val *arr, size_t i);

/* Maps. sh_val_set takes ownership of value, also on failure, and replaces an
 * existing key. */
int sh_val_set(sh_val *map, const char *key, size_t klen, sh_val *value);
int sh_val_set_cstr(sh_val *map, const char *key, sh_val *value);
const sh_val *sh_val_get(const sh_val *map, const char *key);
const sh_val *sh_val_get_n(const sh_val *map, const char *key, size_t klen);
/* Iterate a map by index: key i and value i. */
const char *sh_val_key_at(const sh_val *map, size_t i, size_t *klen);
const sh_val *sh_val_value_at(const sh_val *map, size_t i);
/* sh_val_take removes key from map and returns its value (caller owns). */
sh_val *sh_val_take(sh_val *map, const char *key);

/* Typed lookups for handlers: return the value of key, or NULL if absent.
 * sh_val_get_str returns NULL when the key is absent or not a string. */
const char *sh_val_get_str(const sh_val *map, const char *key, size_t *len);

bool sh_val_equal(const sh_val *a, const sh_val *b);

#endif
