/* signing.c - signed messages built and opened by hand (signing.h). */
#include "signing.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

/* cmocka needs the headers above first. */
#include <cmocka.h>

#include "shared/util.h"

void tf_sign(sh_msgmac_kind kind, const void *payload, size_t len, int64_t ts_ms,
             const unsigned char *nonce, sh_buf *out)
{
    sh_msgmac_conf c;
    sh_msgmac_current(&c);
    if (!c.on) {
        assert_int_equal(sh_buf_append(out, payload, len), SH_OK);
        return;
    }
    size_t mark = out->len;
    unsigned char head[SH_MSGMAC_HEAD_BYTES], tag[SH_MSGMAC_TAG_BYTES];
    sh_msgmac_head(kind, ts_ms ? ts_ms : sh_now_ms(), nonce, NULL, head);
    assert_int_equal(sh_buf_append(out, head, sizeof head), SH_OK);
    assert_int_equal(sh_buf_append(out, payload, len), SH_OK);
    sh_msgmac_tag(&c, (const char *)out->data + mark, out->len - mark, tag);
    assert_int_equal(sh_buf_append(out, tag, sizeof tag), SH_OK);
}

void tf_unsign(const void **data, size_t *len)
{
    sh_msgmac_conf c;
    sh_msgmac_current(&c);
    if (!c.on || !sh_msgmac_is_signed(*data, *len))
        return;
    sh_error err;
    if (sh_msgmac_open(&c, SH_MSGMAC_REPLY, NULL, sh_now_ms(), *data, *len, NULL, NULL, data, len,
                       &err) != SH_OK)
        fail_msg("reply: %s", err.msg);
}
