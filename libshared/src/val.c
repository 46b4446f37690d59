/* val.c - the dynamic value tree of val.h. Maps keep insertion order and,
 * past a few entries, a hash index (seeded: sh_hash) so that lookups and
 * duplicate checks stay O(1) even for hostile inputs with many keys. */
#include "shared/val.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shared/err.h"
#include "shared/secret.h"

#define VAL_INDEX_MIN 16 /* maps with fewer entries are searched linearly */

typedef struct val_kv {
    char *key;
    size_t klen;
    sh_val *val;
} val_kv;

struct sh_val {
    sh_val_type type;
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            char *p;
            size_t len;
        } s;
        struct {
            sh_val **items;
            size_t len, cap;
        } a;
        struct {
            val_kv *kv;
            size_t len, cap;
            uint32_t *index; /* slots hold entry+1, 0 = empty */
            size_t nslots;
        } m;
    } u;
};

static sh_val *val_alloc(sh_val_type t)
{
    sh_val *v = calloc(1, sizeof *v);
    if (v)
        v->type = t;
    return v;
}

sh_val *sh_val_new_nil(void)
{
    return val_alloc(SH_VAL_NIL);
}

sh_val *sh_val_new_bool(bool b)
{
    sh_val *v = val_alloc(SH_VAL_BOOL);
    if (v)
        v->u.b = b;
    return v;
}

sh_val *sh_val_new_int(int64_t i)
{
    sh_val *v = val_alloc(SH_VAL_INT);
    if (v)
        v->u.i = i;
    return v;
}

sh_val *sh_val_new_float(double d)
{
    sh_val *v = val_alloc(SH_VAL_FLOAT);
    if (v)
        v->u.f = d;
    return v;
}

static sh_val *val_new_bytes(sh_val_type t, const void *p, size_t len)
{
    sh_val *v = val_alloc(t);
    if (!v)
        return NULL;
    v->u.s.p = malloc(len + 1);
    if (!v->u.s.p) {
        free(v);
        return NULL;
    }
    if (len)
        memcpy(v->u.s.p, p, len);
    v->u.s.p[len] = '\0';
    v->u.s.len = len;
    return v;
}

sh_val *sh_val_new_str(const char *s, size_t len)
{
    return val_new_bytes(SH_VAL_STR, s, len);
}

sh_val *sh_val_new_cstr(const char *s)
{
    return val_new_bytes(SH_VAL_STR, s, strlen(s));
}

sh_val *sh_val_new_bin(const void *p, size_t len)
{
    return val_new_bytes(SH_VAL_BIN, p, len);
}

sh_val *sh_val_new_array(void)
{
    return val_alloc(SH_VAL_ARRAY);
}

sh_val *sh_val_new_map(void)
{
    return val_alloc(SH_VAL_MAP);
}

void sh_val_free(sh_val *v)
{
    if (!v)
        return;
    switch (v->type) {
    case SH_VAL_STR:
    case SH_VAL_BIN:
        /* Strings of calls and bodies may be passwords and tokens. */
        sh_wipe(v->u.s.p, v->u.s.len);
        free(v->u.s.p);
        break;
    case SH_VAL_ARRAY:
        for (size_t i = 0; i < v->u.a.len; i++)
            sh_val_free(v->u.a.items[i]);
        free(v->u.a.items);
        break;
    case SH_VAL_MAP:
        for (size_t i = 0; i < v->u.m.len; i++) {
            free(v->u.m.kv[i].key);
            sh_val_free(v->u.m.kv[i].val);
        }
        free(v->u.m.kv);
        free(v->u.m.index);
        break;
    default:
        break;
    }
    free(v);
}

sh_val *sh_val_clone(const sh_val *v)
{
    if (!v)
        return NULL;
    switch (v->type) {
    case SH_VAL_NIL:
        return sh_val_new_nil();
    case SH_VAL_BOOL:
        return sh_val_new_bool(v->u.b);
    case SH_VAL_INT:
        return sh_val_new_int(v->u.i);
    case SH_VAL_FLOAT:
        return sh_val_new_float(v->u.f);
    case SH_VAL_STR:
    case SH_VAL_BIN:
        return val_new_bytes(v->type, v->u.s.p, v->u.s.len);
    case SH_VAL_ARRAY: {
        sh_val *a = sh_val_new_array();
        for (size_t i = 0; a && i < v->u.a.len; i++) {
            if (sh_val_push(a, sh_val_clone(v->u.a.items[i])) != SH_OK) {
                sh_val_free(a);
                return NULL;
            }
        }
        return a;
    }
    case SH_VAL_MAP: {
        sh_val *m = sh_val_new_map();
        for (size_t i = 0; m && i < v->u.m.len; i++) {
            const val_kv *kv = &v->u.m.kv[i];
            if (sh_val_set(m, kv->key, kv->klen, sh_val_clone(kv->val)) != SH_OK) {
                sh_val_free(m);
                return NULL;
            }
        }
        return m;
    }
    }
    return NULL;
}

sh_val_type sh_val_type_of(const sh_val *v)
{
    return v ? v->type : SH_VAL_NIL;
}

const char *sh_val_type_name(sh_val_type t)
{
    static const char *names[] = {"null",   "boolean", "integer", "number",
                                  "string", "binary",  "array",   "object"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

bool sh_val_bool(const sh_val *v)
{
    return v && v->type == SH_VAL_BOOL && v->u.b;
}

int64_t sh_val_int(const sh_val *v)
{
    if (!v)
        return 0;
    if (v->type == SH_VAL_INT)
        return v->u.i;
    if (v->type == SH_VAL_FLOAT && isfinite(v->u.f) && v->u.f > -9.2e18 && v->u.f < 9.2e18)
        return (int64_t)v->u.f;
    return 0;
}

double sh_val_float(const sh_val *v)
{
    if (!v)
        return 0;
    if (v->type == SH_VAL_FLOAT)
        return v->u.f;
    if (v->type == SH_VAL_INT)
        return (double)v->u.i;
    return 0;
}

const char *sh_val_str(const sh_val *v, size_t *len)
{
    if (!v || (v->type != SH_VAL_STR && v->type != SH_VAL_BIN))
        return NULL;
    if (len)
        *len = v->u.s.len;
    return v->u.s.p;
}

size_t sh_val_len(const sh_val *v)
{
    if (!v)
        return 0;
    if (v->type == SH_VAL_ARRAY)
        return v->u.a.len;
    if (v->type == SH_VAL_MAP)
        return v->u.m.len;
    return 0;
}

int sh_val_push(sh_val *arr, sh_val *item)
{
    if (!arr || arr->type != SH_VAL_ARRAY || !item) {
        sh_val_free(item);
        return item ? SH_EINVAL : SH_ENOMEM;
    }
    if (arr->u.a.len == arr->u.a.cap) {
        size_t cap = arr->u.a.cap ? arr->u.a.cap * 2 : 4;
        sh_val **p = realloc(arr->u.a.items, cap * sizeof *p);
        if (!p) {
            sh_val_free(item);
            return SH_ENOMEM;
        }
        arr->u.a.items = p;
        arr->u.a.cap = cap;
    }
    arr->u.a.items[arr->u.a.len++] = item;
    return SH_OK;
}

const sh_val *sh_val_at(const sh_val *arr, size_t i)
{
    if (!arr || arr->type != SH_VAL_ARRAY || i >= arr->u.a.len)
        return NULL;
    return arr->u.a.items[i];
}

sh_val *sh_val_take_at(sh_val *arr, size_t i)
{
    if (!arr || arr->type != SH_VAL_ARRAY || i >= arr->u.a.len)
        return NULL;
    sh_val *v = arr->u.a.items[i];
    arr->u.a.items[i] = NULL;
    return v;
}

/* Keys come from request bodies and messages: a seeded hash (sh_hash), so
 * that colliding keys cannot be chosen to make the index quadratic. */
static uint64_t val_hash(const char *k, size_t len)
{
    return sh_hash(k, len);
}

static void val_index_insert(sh_val *m, size_t entry)
{
    size_t mask = m->u.m.nslots - 1;
    size_t s = (size_t)val_hash(m->u.m.kv[entry].key, m->u.m.kv[entry].klen) & mask;
    while (m->u.m.index[s])
        s = (s + 1) & mask;
    m->u.m.index[s] = (uint32_t)entry + 1;
}

static int val_index_rebuild(sh_val *m, size_t want)
{
    size_t n = 32;
    while (n < want * 2)
        n *= 2;
    uint32_t *idx = calloc(n, sizeof *idx);
    if (!idx)
        return SH_ENOMEM;
    free(m->u.m.index);
    m->u.m.index = idx;
    m->u.m.nslots = n;
    for (size_t i = 0; i < m->u.m.len; i++)
        val_index_insert(m, i);
    return SH_OK;
}

static long val_find(const sh_val *m, const char *key, size_t klen)
{
    if (m->u.m.index) {
        size_t mask = m->u.m.nslots - 1;
        size_t s = (size_t)val_hash(key, klen) & mask;
        while (m->u.m.index[s]) {
            const val_kv *kv = &m->u.m.kv[m->u.m.index[s] - 1];
            if (kv->klen == klen && memcmp(kv->key, key, klen) == 0)
                return (long)m->u.m.index[s] - 1;
            s = (s + 1) & mask;
        }
        return -1;
    }
    for (size_t i = 0; i < m->u.m.len; i++) {
        const val_kv *kv = &m->u.m.kv[i];
        if (kv->klen == klen && memcmp(kv->key, key, klen) == 0)
            return (long)i;
    }
    return -1;
}

int sh_val_set(sh_val *map, const char *key, size_t klen, sh_val *value)
{
    if (!value)
        return SH_ENOMEM;
    if (!map || map->type != SH_VAL_MAP || klen > UINT32_MAX / 2) {
        sh_val_free(value);
        return SH_EINVAL;
    }
    long at = val_find(map, key, klen);
    if (at >= 0) {
        sh_val_free(map->u.m.kv[at].val);
        map->u.m.kv[at].val = value;
        return SH_OK;
    }
    if (map->u.m.len == map->u.m.cap) {
        size_t cap = map->u.m.cap ? map->u.m.cap * 2 : 8;
        val_kv *p = realloc(map->u.m.kv, cap * sizeof *p);
        if (!p) {
            sh_val_free(value);
            return SH_ENOMEM;
        }
        map->u.m.kv = p;
        map->u.m.cap = cap;
    }
    char *k = malloc(klen + 1);
    if (!k) {
        sh_val_free(value);
        return SH_ENOMEM;
    }
    memcpy(k, key, klen);
    k[klen] = '\0';
    size_t entry = map->u.m.len++;
    map->u.m.kv[entry] = (val_kv){k, klen, value};
    if (map->u.m.len >= VAL_INDEX_MIN) {
        if (!map->u.m.index || map->u.m.len * 2 > map->u.m.nslots) {
            if (val_index_rebuild(map, map->u.m.len) != SH_OK) {
                /* Fall back to linear search rather than fail the insert. */
                free(map->u.m.index);
                map->u.m.index = NULL;
                map->u.m.nslots = 0;
            }
        } else {
            val_index_insert(map, entry);
        }
    }
    return SH_OK;
}

int sh_val_set_cstr(sh_val *map, const char *key, sh_val *value)
{
    return sh_val_set(map, key, strlen(key), value);
}

const sh_val *sh_val_get_n(const sh_val *map, const char *key, size_t klen)
{
    if (!map || map->type != SH_VAL_MAP)
        return NULL;
    long at = val_find(map, key, klen);
    return at >= 0 ? map->u.m.kv[at].val : NULL;
}

const sh_val *sh_val_get(const sh_val *map, const char *key)
{
    return sh_val_get_n(map, key, strlen(key));
}

const char *sh_val_key_at(const sh_val *map, size_t i, size_t *klen)
{
    if (!map || map->type != SH_VAL_MAP || i >= map->u.m.len)
        return NULL;
    if (klen)
        *klen = map->u.m.kv[i].klen;
    return map->u.m.kv[i].key;
}

const sh_val *sh_val_value_at(const sh_val *map, size_t i)
{
    if (!map || map->type != SH_VAL_MAP || i >= map->u.m.len)
        return NULL;
    return map->u.m.kv[i].val;
}

sh_val *sh_val_take(sh_val *map, const char *key)
{
    if (!map || map->type != SH_VAL_MAP)
        return NULL;
    long at = val_find(map, key, strlen(key));
    if (at < 0)
        return NULL;
    sh_val *v = map->u.m.kv[at].val;
    free(map->u.m.kv[at].key);
    memmove(&map->u.m.kv[at], &map->u.m.kv[at + 1],
            (map->u.m.len - (size_t)at - 1) * sizeof(val_kv));
    map->u.m.len--;
    if (map->u.m.index && val_index_rebuild(map, map->u.m.len) != SH_OK) {
        free(map->u.m.index);
        map->u.m.index = NULL;
        map->u.m.nslots = 0;
    }
    return v;
}

const char *sh_val_get_str(const sh_val *map, const char *key, size_t *len)
{
    const sh_val *v = sh_val_get(map, key);
    if (!v || v->type != SH_VAL_STR)
        return NULL;
    return sh_val_str(v, len);
}

bool sh_val_equal(const sh_val *a, const sh_val *b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type) {
        if ((a->type == SH_VAL_INT || a->type == SH_VAL_FLOAT) &&
            (b->type == SH_VAL_INT || b->type == SH_VAL_FLOAT))
            return sh_val_float(a) == sh_val_float(b);
        return false;
    }
    switch (a->type) {
    case SH_VAL_NIL:
        return true;
    case SH_VAL_BOOL:
        return a->u.b == b->u.b;
    case SH_VAL_INT:
        return a->u.i == b->u.i;
    case SH_VAL_FLOAT:
        return a->u.f == b->u.f;
    case SH_VAL_STR:
    case SH_VAL_BIN:
        return a->u.s.len == b->u.s.len && memcmp(a->u.s.p, b->u.s.p, a->u.s.len) == 0;
    case SH_VAL_ARRAY:
        if (a->u.a.len != b->u.a.len)
            return false;
        for (size_t i = 0; i < a->u.a.len; i++)
            if (!sh_val_equal(a->u.a.items[i], b->u.a.items[i]))
                return false;
        return true;
    case SH_VAL_MAP:
        if (a->u.m.len != b->u.m.len)
            return false;
        for (size_t i = 0; i < a->u.m.len; i++) {
            const val_kv *kv = &a->u.m.kv[i];
            if (!sh_val_equal(kv->val, sh_val_get_n(b, kv->key, kv->klen)))
                return false;
        }
        return true;
    }
    return false;
}
