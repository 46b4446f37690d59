/* fuzz_batch.c - libFuzzer harness of the decoders of outside input on the
 * RPC wire: a request (a single call or a batch, split then decoded call by
 * call, as rpc_server.c does) and a reply (single or batch, as
 * rpc_client.c does), and the values of a message (sh_msg_unpack), which
 * must pack and unpack again to the same bytes. Built with clang and -DFUZZ=ON and run by tests/run
 * (tests/fuzz/CMakeLists.txt). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz_values decodes data as one value and checks its round trip. */
static void fuzz_values(const void *data, size_t len)
{
    sh_error err;
    sh_val *v = NULL, *again = NULL;
    sh_buf one, two;
    sh_buf_init(&one);
    sh_buf_init(&two);
    if (sh_msg_unpack(data, len, NULL, &v, &err) == SH_OK && sh_msg_pack(v, &one) == SH_OK) {
        if (sh_msg_unpack(one.data, one.len, NULL, &again, &err) != SH_OK)
            abort();
        if (sh_msg_pack(again, &two) == SH_OK &&
            (one.len != two.len || memcmp(one.data, two.data, one.len) != 0))
            abort();
    }
    sh_val_free(v);
    sh_val_free(again);
    sh_buf_fini(&one);
    sh_buf_fini(&two);
}

static void fuzz_one(const void *data, size_t len)
{
    sh_error err;
    fuzz_values(data, len);
    sh_call call;
    if (sh_call_decode(data, len, NULL, &call, &err) == SH_OK)
        sh_call_fini(&call);
    sh_reply_env env;
    if (sh_reply_decode(data, len, NULL, &env, &err) == SH_OK)
        sh_reply_env_fini(&env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!sh_batch_is(data, size)) {
        fuzz_one(data, size);
        return 0;
    }
    sh_slice *items = NULL;
    size_t n = 0;
    sh_error err;
    if (sh_batch_split(data, size, &items, &n, &err) == SH_OK) {
        for (size_t i = 0; i < n; i++) {
            /* Every slice lies inside the input. */
            const uint8_t *p = items[i].data;
            if (p < data || p + items[i].len > data + size)
                abort();
            fuzz_one(p, items[i].len);
        }
        free(items);
    }
    return 0;
}
