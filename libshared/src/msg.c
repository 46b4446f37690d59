/* msg.c - msgpack encoding of sh_val trees and the call/reply envelope.
 * The one file of libshared that includes msgpack-c.
 *
 * Encoding uses msgpack-c's packer. Decoding is done here, by hand, because
 * every length in the input must be checked against the bytes that remain
 * before anything is allocated: msgpack-c's unpacker allocates what a header
 * claims (an array header can claim four billion items in five bytes) and
 * reads a truncated buffer as "continue" rather than as an error. */
#include "shared/msg.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

/* ---- encoding ---------------------------------------------------------- */

static int msg_write(void *data, const char *buf, size_t len)
{
    return sh_buf_append((sh_buf *)data, buf, len) == SH_OK ? 0 : -1;
}

static int msg_pack_val(msgpack_packer *pk, const sh_val *v)
{
    size_t len;
    const char *s;
    switch (sh_val_type_of(v)) {
    case SH_VAL_NIL:
        return msgpack_pack_nil(pk);
    case SH_VAL_BOOL:
        return sh_val_bool(v) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    case SH_VAL_INT:
        return msgpack_pack_int64(pk, sh_val_int(v));
    case SH_VAL_FLOAT:
        return msgpack_pack_double(pk, sh_val_float(v));
    case SH_VAL_STR:
        s = sh_val_str(v, &len);
        if (len > UINT32_MAX)
            return -1;
        if (msgpack_pack_str(pk, len) != 0)
            return -1;
        return msgpack_pack_str_body(pk, s, len);
    case SH_VAL_BIN:
        s = sh_val_str(v, &len);
        if (len > UINT32_MAX)
            return -1;
        if (msgpack_pack_bin(pk, len) != 0)
            return -1;
        return msgpack_pack_bin_body(pk, s, len);
    case SH_VAL_ARRAY:
        if (msgpack_pack_array(pk, sh_val_len(v)) != 0)
            return -1;
        for (size_t i = 0; i < sh_val_len(v); i++)
            if (msg_pack_val(pk, sh_val_at(v, i)) != 0)
                return -1;
        return 0;
    case SH_VAL_MAP:
        if (msgpack_pack_map(pk, sh_val_len(v)) != 0)
            return -1;
        for (size_t i = 0; i < sh_val_len(v); i++) {
            const char *k = sh_val_key_at(v, i, &len);
            if (msgpack_pack_str(pk, len) != 0 || msgpack_pack_str_body(pk, k, len) != 0)
                return -1;
            if (msg_pack_val(pk, sh_val_value_at(v, i)) != 0)
                return -1;
        }
        return 0;
    }
    return -1;
}

int sh_msg_pack(const sh_val *v, sh_buf *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msg_write);
    return msg_pack_val(&pk, v) == 0 ? SH_OK : SH_ENOMEM;
}

int sh_msg_pack_array_header(size_t n, sh_buf *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msg_write);
    return msgpack_pack_array(&pk, n) == 0 ? SH_OK : SH_ENOMEM;
}

int sh_msg_pack_str(const char *str, size_t len, sh_buf *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msg_write);
    if (len > UINT32_MAX || msgpack_pack_str(&pk, len) || msgpack_pack_str_body(&pk, str, len))
        return SH_ENOMEM;
    return SH_OK;
}

static int msg_pack_key(msgpack_packer *pk, const char *k)
{
    size_t n = strlen(k);
    return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, k, n);
}

int sh_call_encode(const char *op, uint64_t id, const sh_val *args, sh_buf *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msg_write);
    size_t oplen = strlen(op);
    if (oplen == 0 || oplen > SH_OP_MAX)
        return SH_EINVAL;
    if (msgpack_pack_map(&pk, 3) || msg_pack_key(&pk, "op") || msgpack_pack_str(&pk, oplen) ||
        msgpack_pack_str_body(&pk, op, oplen) || msg_pack_key(&pk, "id") ||
        msgpack_pack_uint64(&pk, id) || msg_pack_key(&pk, "args"))
        return SH_ENOMEM;
    if (args ? msg_pack_val(&pk, args) : msgpack_pack_nil(&pk))
        return SH_ENOMEM;
    return SH_OK;
}

int sh_reply_encode_ok(uint64_t id, const sh_val *result, sh_buf *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msg_write);
    if (msgpack_pack_map(&pk, 3) || msg_pack_key(&pk, "id") || msgpack_pack_uint64(&pk, id) ||
        msg_pack_key(&pk, "ok") || msgpack_pack_true(&pk) || msg_pack_key(&pk, "result"))
        return SH_ENOMEM;
    if (result ? msg_pack_val(&pk, result) : msgpack_pack_nil(&pk))
        return SH_ENOMEM;
    return SH_OK;
}

int sh_reply_encode_err(uint64_t id, int code, const char *message, sh_buf *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msg_write);
    const char *name = sh_err_name(code);
    if (!message)
        message = sh_strerror(code);
    size_t nlen = strlen(name), mlen = strlen(message);
    if (msgpack_pack_map(&pk, 3) || msg_pack_key(&pk, "id") || msgpack_pack_uint64(&pk, id) ||
        msg_pack_key(&pk, "ok") || msgpack_pack_false(&pk) || msg_pack_key(&pk, "error") ||
        msgpack_pack_map(&pk, 2) || msg_pack_key(&pk, "code") || msgpack_pack_str(&pk, nlen) ||
        msgpack_pack_str_body(&pk, name, nlen) || msg_pack_key(&pk, "message") ||
        msgpack_pack_str(&pk, mlen) || msgpack_pack_str_body(&pk, message, mlen))
        return SH_ENOMEM;
    return SH_OK;
}

/* ---- decoding ---------------------------------------------------------- */

typedef struct msg_reader {
    const unsigned char *p;
    size_t left;
    size_t items;
    const sh_msg_limits *lim;
    sh_error *err;
} msg_reader;

static int msg_need(msg_reader *r, size_t n)
{
    if (r->left < n)
        return sh_error_set(r->err, SH_EPROTO, "msgpack truncated: need %zu more bytes, have %zu",
                            n, r->left);
    return SH_OK;
}

static uint64_t msg_be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* msg_uint reads an n-byte big-endian integer that follows the type byte. */
static int msg_uint(msg_reader *r, int n, uint64_t *out)
{
    int rc = msg_need(r, (size_t)n);
    if (rc)
        return rc;
    *out = msg_be(r->p, n);
    r->p += n;
    r->left -= (size_t)n;
    return SH_OK;
}

static int msg_read(msg_reader *r, int depth, sh_val **out);

static int msg_read_bytes(msg_reader *r, size_t n, sh_val_type t, sh_val **out)
{
    int rc = msg_need(r, n);
    if (rc)
        return rc;
    *out = t == SH_VAL_STR ? sh_val_new_str((const char *)r->p, n) : sh_val_new_bin(r->p, n);
    if (!*out)
        return sh_error_set(r->err, SH_ENOMEM, "out of memory decoding msgpack");
    r->p += n;
    r->left -= n;
    return SH_OK;
}

static int msg_read_array(msg_reader *r, int depth, uint64_t n, sh_val **out)
{
    /* Every item takes at least one byte: a count beyond what remains is a
     * lie, refused before allocating anything. */
    if (n > r->left)
        return sh_error_set(r->err, SH_EPROTO,
                            "msgpack array claims %llu items but only %zu bytes remain",
                            (unsigned long long)n, r->left);
    sh_val *a = sh_val_new_array();
    if (!a)
        return sh_error_set(r->err, SH_ENOMEM, "out of memory decoding msgpack");
    for (uint64_t i = 0; i < n; i++) {
        sh_val *item = NULL;
        int rc = msg_read(r, depth + 1, &item);
        if (rc == SH_OK && sh_val_push(a, item) != SH_OK)
            rc = sh_error_set(r->err, SH_ENOMEM, "out of memory decoding msgpack");
        if (rc) {
            sh_val_free(a);
            return rc;
        }
    }
    *out = a;
    return SH_OK;
}

static int msg_read_map(msg_reader *r, int depth, uint64_t n, sh_val **out)
{
    if (n > r->left / 2)
        return sh_error_set(r->err, SH_EPROTO,
                            "msgpack map claims %llu entries but only %zu bytes remain",
                            (unsigned long long)n, r->left);
    sh_val *m = sh_val_new_map();
    if (!m)
        return sh_error_set(r->err, SH_ENOMEM, "out of memory decoding msgpack");
    for (uint64_t i = 0; i < n; i++) {
        sh_val *k = NULL, *v = NULL;
        int rc = msg_read(r, depth + 1, &k);
        if (rc == SH_OK && sh_val_type_of(k) != SH_VAL_STR)
            rc = sh_error_set(r->err, SH_EPROTO, "msgpack map key must be a string, got %s",
                              sh_val_type_name(sh_val_type_of(k)));
        if (rc == SH_OK)
            rc = msg_read(r, depth + 1, &v);
        if (rc == SH_OK) {
            size_t klen;
            const char *ks = sh_val_str(k, &klen);
            if (sh_val_get_n(m, ks, klen)) {
                sh_val_free(v);
                rc = sh_error_set(r->err, SH_EPROTO, "msgpack map has duplicate key \"%.64s\"", ks);
            } else if (sh_val_set(m, ks, klen, v) != SH_OK) {
                rc = sh_error_set(r->err, SH_ENOMEM, "out of memory decoding msgpack");
            }
        }
        sh_val_free(k);
        if (rc) {
            sh_val_free(m);
            return rc;
        }
    }
    *out = m;
    return SH_OK;
}

static int msg_read(msg_reader *r, int depth, sh_val **out)
{
    if (depth > r->lim->max_depth)
        return sh_error_set(r->err, SH_ELIMIT, "msgpack nesting deeper than %d", r->lim->max_depth);
    if (++r->items > r->lim->max_items)
        return sh_error_set(r->err, SH_ELIMIT, "msgpack has more than %zu values",
                            r->lim->max_items);
    int rc = msg_need(r, 1);
    if (rc)
        return rc;
    unsigned char t = *r->p++;
    r->left--;
    uint64_t n;
    if (t <= 0x7f) {
        *out = sh_val_new_int(t);
    } else if (t >= 0xe0) {
        *out = sh_val_new_int((int8_t)t);
    } else if (t >= 0x80 && t <= 0x8f) {
        return msg_read_map(r, depth, t & 0x0f, out);
    } else if (t >= 0x90 && t <= 0x9f) {
        return msg_read_array(r, depth, t & 0x0f, out);
    } else if (t >= 0xa0 && t <= 0xbf) {
        return msg_read_bytes(r, t & 0x1f, SH_VAL_STR, out);
    } else {
        switch (t) {
        case 0xc0:
            *out = sh_val_new_nil();
            break;
        case 0xc2:
            *out = sh_val_new_bool(false);
            break;
        case 0xc3:
            *out = sh_val_new_bool(true);
            break;
        case 0xc4:
        case 0xc5:
        case 0xc6:
            if ((rc = msg_uint(r, 1 << (t - 0xc4), &n)))
                return rc;
            return msg_read_bytes(r, (size_t)n, SH_VAL_BIN, out);
        case 0xd9:
        case 0xda:
        case 0xdb:
            if ((rc = msg_uint(r, 1 << (t - 0xd9), &n)))
                return rc;
            return msg_read_bytes(r, (size_t)n, SH_VAL_STR, out);
        case 0xca: {
            if ((rc = msg_uint(r, 4, &n)))
                return rc;
            uint32_t u = (uint32_t)n;
            float f;
            memcpy(&f, &u, sizeof f);
            *out = sh_val_new_float(f);
            break;
        }
        case 0xcb: {
            if ((rc = msg_uint(r, 8, &n)))
                return rc;
            double d;
            memcpy(&d, &n, sizeof d);
            *out = sh_val_new_float(d);
            break;
        }
        case 0xcc:
        case 0xcd:
        case 0xce:
        case 0xcf:
            if ((rc = msg_uint(r, 1 << (t - 0xcc), &n)))
                return rc;
            if (n > INT64_MAX)
                return sh_error_set(r->err, SH_EPROTO,
                                    "msgpack integer %llu is out of range (max 2^63-1)",
                                    (unsigned long long)n);
            *out = sh_val_new_int((int64_t)n);
            break;
        case 0xd0:
        case 0xd1:
        case 0xd2:
        case 0xd3: {
            int w = 1 << (t - 0xd0);
            if ((rc = msg_uint(r, w, &n)))
                return rc;
            int64_t sv = w == 8 ? (int64_t)n : (int64_t)(n << (64 - 8 * w)) >> (64 - 8 * w);
            *out = sh_val_new_int(sv);
            break;
        }
        case 0xdc:
        case 0xdd:
            if ((rc = msg_uint(r, t == 0xdc ? 2 : 4, &n)))
                return rc;
            return msg_read_array(r, depth, n, out);
        case 0xde:
        case 0xdf:
            if ((rc = msg_uint(r, t == 0xde ? 2 : 4, &n)))
                return rc;
            return msg_read_map(r, depth, n, out);
        default:
            return sh_error_set(r->err, SH_EPROTO, "msgpack type byte 0x%02x is not supported", t);
        }
    }
    if (!*out)
        return sh_error_set(r->err, SH_ENOMEM, "out of memory decoding msgpack");
    return SH_OK;
}

void sh_msg_limits_default(sh_msg_limits *lim)
{
    lim->max_bytes = SH_MSG_DEFAULT_MAX_BYTES;
    lim->max_depth = SH_MSG_DEFAULT_MAX_DEPTH;
    lim->max_items = SH_MSG_DEFAULT_MAX_ITEMS;
}

int sh_msg_unpack(const void *data, size_t len, const sh_msg_limits *lim, sh_val **out,
                  sh_error *err)
{
    sh_msg_limits def;
    if (!lim) {
        sh_msg_limits_default(&def);
        lim = &def;
    }
    *out = NULL;
    if (len > lim->max_bytes)
        return sh_error_set(err, SH_ETOOBIG, "message of %zu bytes exceeds the limit of %zu", len,
                            lim->max_bytes);
    if (len == 0)
        return sh_error_set(err, SH_EPROTO, "empty message");
    msg_reader r = {data, len, 0, lim, err};
    sh_val *v = NULL;
    int rc = msg_read(&r, 0, &v);
    if (rc)
        return rc;
    if (r.left) {
        sh_val_free(v);
        return sh_error_set(err, SH_EPROTO, "%zu trailing bytes after the msgpack value", r.left);
    }
    *out = v;
    return SH_OK;
}

/* ---- envelope ---------------------------------------------------------- */

static int msg_get_id(const sh_val *m, uint64_t *id, sh_error *err)
{
    const sh_val *v = sh_val_get(m, "id");
    if (!v || sh_val_type_of(v) != SH_VAL_INT || sh_val_int(v) < 0)
        return sh_error_set(err, SH_EPROTO, "envelope lacks a non-negative integer \"id\"");
    *id = (uint64_t)sh_val_int(v);
    return SH_OK;
}

/* msg_call_read reads the fields of a call envelope m (a map) into out. */
static int msg_call_read(sh_val *m, void *outp, sh_error *err)
{
    sh_call *out = outp;
    size_t oplen;
    const char *op = sh_val_get_str(m, "op", &oplen);
    if (!op || oplen == 0 || oplen > SH_OP_MAX)
        return sh_error_set(err, SH_EPROTO, "call envelope lacks a string \"op\" of 1..%d bytes",
                            SH_OP_MAX);
    int rc = msg_get_id(m, &out->id, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < sh_val_len(m); i++) {
        const char *k = sh_val_key_at(m, i, NULL);
        if (strcmp(k, "op") && strcmp(k, "id") && strcmp(k, "args"))
            return sh_error_set(err, SH_EPROTO, "call envelope has unknown key \"%.32s\"", k);
    }
    memcpy(out->op, op, oplen);
    out->op[oplen] = '\0';
    out->args = sh_val_take(m, "args");
    if (!out->args && !(out->args = sh_val_new_nil()))
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    return SH_OK;
}

/* msg_reply_read reads the fields of a reply envelope m (a map) into out. */
static int msg_reply_read(sh_val *m, void *outp, sh_error *err)
{
    sh_reply_env *out = outp;
    int rc = msg_get_id(m, &out->id, err);
    if (rc)
        return rc;
    const sh_val *ok = sh_val_get(m, "ok");
    if (sh_val_type_of(ok) != SH_VAL_BOOL)
        return sh_error_set(err, SH_EPROTO, "reply envelope lacks a boolean \"ok\"");
    out->ok = sh_val_bool(ok);
    if (out->ok) {
        out->result = sh_val_take(m, "result");
        if (!out->result && !(out->result = sh_val_new_nil()))
            return sh_error_set(err, SH_ENOMEM, "out of memory");
        return SH_OK;
    }
    const sh_val *e = sh_val_get(m, "error");
    size_t clen, mlen;
    const char *code = sh_val_get_str(e, "code", &clen);
    const char *msg = sh_val_get_str(e, "message", &mlen);
    if (!code || !msg)
        return sh_error_set(err, SH_EPROTO,
                            "reply envelope error lacks string \"code\" and \"message\"");
    out->code = sh_err_from_name(code, clen);
    if (out->code == SH_OK)
        out->code = SH_EINTERNAL;
    if (mlen >= sizeof out->message)
        mlen = sizeof out->message - 1;
    memcpy(out->message, msg, mlen);
    out->message[mlen] = '\0';
    return SH_OK;
}

/* msg_envelope decodes an envelope (what: "call" or "reply"): a msgpack
 * map, whose fields read takes into out. */
static int msg_envelope(const void *data, size_t len, const sh_msg_limits *lim, const char *what,
                        int (*read)(sh_val *m, void *out, sh_error *err), void *out, sh_error *err)
{
    sh_val *m = NULL;
    int rc = sh_msg_unpack(data, len, lim, &m, err);
    if (rc)
        return rc;
    if (sh_val_type_of(m) != SH_VAL_MAP)
        rc = sh_error_set(err, SH_EPROTO, "%s envelope must be a map, got %s", what,
                          sh_val_type_name(sh_val_type_of(m)));
    else
        rc = read(m, out, err);
    sh_val_free(m);
    return rc;
}

int sh_call_decode(const void *data, size_t len, const sh_msg_limits *lim, sh_call *out,
                   sh_error *err)
{
    memset(out, 0, sizeof *out);
    return msg_envelope(data, len, lim, "call", msg_call_read, out, err);
}

void sh_call_fini(sh_call *c)
{
    sh_val_free(c->args);
    c->args = NULL;
}

int sh_reply_decode(const void *data, size_t len, const sh_msg_limits *lim, sh_reply_env *out,
                    sh_error *err)
{
    memset(out, 0, sizeof *out);
    return msg_envelope(data, len, lim, "reply", msg_reply_read, out, err);
}

void sh_reply_env_fini(sh_reply_env *r)
{
    sh_val_free(r->result);
    r->result = NULL;
}

/* ---- batches ----------------------------------------------------------- */

int sh_batch_is(const void *data, size_t len)
{
    const unsigned char *p = data;
    return len > 0 && ((p[0] >= 0x90 && p[0] <= 0x9f) || p[0] == 0xdc || p[0] == 0xdd);
}

int sh_batch_split(const void *data, size_t len, sh_slice **items, size_t *n, sh_error *err)
{
    *items = NULL;
    *n = 0;
    sh_msg_limits lim;
    sh_msg_limits_default(&lim);
    msg_reader r = {data, len, 0, &lim, err};
    if (!sh_batch_is(data, len))
        return sh_error_set(err, SH_EPROTO, "a batch must be a msgpack array");
    unsigned char t = *r.p++;
    r.left--;
    uint64_t count;
    int rc = SH_OK;
    if (t <= 0x9f)
        count = t & 0x0f;
    else if ((rc = msg_uint(&r, t == 0xdc ? 2 : 4, &count)))
        return rc;
    /* Every item takes at least two bytes (a bin header and its length). */
    if (count == 0 || count > r.left / 2)
        return sh_error_set(err, SH_EPROTO, "a batch of %llu calls in %zu bytes",
                            (unsigned long long)count, r.left);
    sh_slice *out = calloc((size_t)count, sizeof *out);
    if (!out)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < count; i++) {
        if ((rc = msg_need(&r, 1)))
            goto fail;
        t = *r.p++;
        r.left--;
        uint64_t blen;
        if (t < 0xc4 || t > 0xc6) {
            rc = sh_error_set(err, SH_EPROTO, "item %llu of a batch is not a bin (type 0x%02x)",
                              (unsigned long long)i, t);
            goto fail;
        }
        if ((rc = msg_uint(&r, 1 << (t - 0xc4), &blen)) || (rc = msg_need(&r, (size_t)blen)))
            goto fail;
        out[i].data = r.p;
        out[i].len = (size_t)blen;
        r.p += blen;
        r.left -= (size_t)blen;
    }
    if (r.left) {
        rc = sh_error_set(err, SH_EPROTO, "%zu trailing bytes after a batch", r.left);
        goto fail;
    }
    *items = out;
    *n = (size_t)count;
    return SH_OK;
fail:
    free(out);
    return rc;
}

int sh_batch_begin(size_t n, sh_buf *out)
{
    return sh_msg_pack_array_header(n, out);
}

int sh_batch_add(const void *env, size_t len, sh_buf *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msg_write);
    if (len > UINT32_MAX || msgpack_pack_bin(&pk, len) || msgpack_pack_bin_body(&pk, env, len))
        return SH_ENOMEM;
    return SH_OK;
}

int sh_batch_add_header(size_t len, sh_buf *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msg_write);
    return len > UINT32_MAX || msgpack_pack_bin(&pk, len) ? SH_ENOMEM : SH_OK;
}

size_t sh_batch_overhead(size_t n)
{
    return 5 + 5 * n;
}
