/* fuzz_mutf7.c - libFuzzer harness for the decoder of folder names the
 * IMAP server sends (modified UTF-7) and for the composer that sends names
 * and strings back. Properties checked: nothing reads out of bounds or
 * leaks; a name that decodes gives valid UTF-8 that encodes and decodes
 * to itself; any bytes without NUL compose into a command whose literal
 * marks lie inside it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap_wire.h"
#include "shared/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    sh_buf dec, enc, again;
    sh_buf_init(&dec);
    sh_buf_init(&enc);
    sh_buf_init(&again);
    if (sync_mutf7_decode(&dec, in, size) == SH_OK) {
        const char *u = dec.data ? dec.data : "";
        if (sync_mutf7_encode(&enc, u, dec.len) != SH_OK)
            abort(); /* what decodes is valid UTF-8 without control bytes */
        if (sync_mutf7_decode(&again, enc.data ? enc.data : "", enc.len) != SH_OK ||
            again.len != dec.len || memcmp(again.data ? again.data : "", u, dec.len) != 0)
            abort();
    }
    sync_wire w;
    sync_wire_init(&w, size % 2 == 0);
    sync_wire_raw(&w, "LOGIN ");
    sync_wire_astring(&w, in, size);
    if (memchr(in, '\0', size) == NULL) {
        if (w.err != SH_OK)
            abort();
        for (size_t i = 0; i < w.nlits; i++)
            if (w.lits[i] > w.buf.len)
                abort();
    }
    sync_wire_fini(&w);
    sh_buf_fini(&dec);
    sh_buf_fini(&enc);
    sh_buf_fini(&again);
    return 0;
}
