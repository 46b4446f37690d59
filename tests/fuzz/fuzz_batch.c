/* fuzz_batch.c - libFuzzer harness of the decoders of outside input on the
 * RPC wire: a request (a single call or a batch, split then decoded call by
 * call, as rpc_server.c does) and a reply (single or batch, as
 * rpc_client.c does). Built with clang and -DFUZZ=ON and run by tests/run
 * (tests/fuzz/CMakeLists.txt). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "shared/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_one(const void *data, size_t len)
{
    sh_error err;
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
