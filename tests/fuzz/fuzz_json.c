/* fuzz_json.c - libFuzzer harness of JSON request bodies as the gateway
 * reads them (gw_json_parse: UTF-8 check, json-c, then the sh_val tree with
 * its map index), and of what becomes of an accepted value: its JSON text
 * must parse again to the same text, and its msgpack form (what goes to a
 * service) must decode back under the default limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw_json.h"
#include "shared/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20))
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    sh_val *v = NULL, *again = NULL, *back = NULL;
    char msg[256];
    sh_buf one, two, packed;
    sh_buf_init(&one);
    sh_buf_init(&two);
    sh_buf_init(&packed);
    if (gw_json_parse(text, size, &v, msg, sizeof msg) != 0) {
        /* Refused: with a reason, and nothing returned. */
        if (v || !msg[0])
            abort();
        goto done;
    }
    if (gw_json_write(v, &one) != SH_OK)
        goto done;
    if (gw_json_parse(one.data, one.len, &again, msg, sizeof msg) != 0)
        abort(); /* what we write, we read */
    if (gw_json_write(again, &two) != SH_OK)
        goto done;
    if (one.len != two.len || memcmp(one.data, two.data, one.len) != 0)
        abort();
    if (sh_msg_pack(v, &packed) == SH_OK) {
        sh_error err;
        sh_msg_limits lim;
        sh_msg_limits_default(&lim);
        /* JSON nests a little deeper than a call's arguments may. */
        lim.max_depth = GW_JSON_MAX_DEPTH + 2;
        lim.max_items = (size_t)-1;
        lim.max_bytes = (size_t)-1;
        if (sh_msg_unpack(packed.data, packed.len, &lim, &back, &err) != SH_OK)
            abort();
    }
done:
    sh_val_free(v);
    sh_val_free(again);
    sh_val_free(back);
    sh_buf_fini(&one);
    sh_buf_fini(&two);
    sh_buf_fini(&packed);
    free(text);
    return 0;
}
