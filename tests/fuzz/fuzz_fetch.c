/* fuzz_fetch.c - libFuzzer harness for what an IMAP server's FETCH reply
 * becomes: the bytes (with a tagged "1 OK" line after them) are parsed by
 * libetpan as a session would, and the results decoded into messages by
 * the sync-worker (imap_decode.c: ENVELOPE, FLAGS, UID, sizes, dates), and
 * any VANISHED responses (QRESYNC) into UID ranges. Nothing may read out of
 * bounds, leak, hand the callback text that is not valid UTF-8, or give a
 * range outside 1..the highest UID asked about. Inputs announcing a
 * literal over 1 MiB are skipped: libetpan allocates the announced size at
 * once (virtual memory the session's 64 MiB reply cap never lets it fill,
 * which test_sync_robust checks against a live worker), and the fuzzer
 * would stop at its memory limit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap_int.h"
#include "imap_mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz_utf8 checks s is valid UTF-8 without control bytes. */
static void fuzz_utf8(const char *s)
{
    sh_buf b;
    sh_buf_init(&b);
    if (sync__imap_clean(&b, s, strlen(s)) != SH_OK || strcmp(b.data ? b.data : "", s) != 0)
        abort();
    sh_buf_fini(&b);
}

static int fuzz_msg(void *arg, const sync_msg *m)
{
    const char *fields[] = {m->flags, m->subject, m->from, m->to, m->cc, m->date, m->message_id};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
        if (strlen(fields[i]) <= SYNC__IMAP_FIELD_MAX)
            fuzz_utf8(fields[i]);
    return SH_OK;
}

/* fuzz_big_literal tells whether the input announces a literal over 1 MiB. */
static bool fuzz_big_literal(const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (d[i] != '{')
            continue;
        unsigned long long v = 0;
        size_t j = i + 1;
        while (j < n && d[j] >= '0' && d[j] <= '9' && v <= (1u << 20))
            v = v * 10 + (unsigned)(d[j++] - '0');
        if (v > (1u << 20))
            return true;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536 || fuzz_big_literal(data, size))
        return 0;
    char *all = malloc(size + 16);
    if (!all)
        return 0;
    memcpy(all, data, size);
    memcpy(all + size, "1 OK done\r\n", 11);
    clist *res = NULL, *ext = NULL;
    if (tf_imap_parse_reply(all, size + 11, &res, &ext) == 0) {
        sh_error err;
        if (res)
            sync__imap_fetch_results(res, size % 2 == 0, fuzz_msg, NULL, &err);
        sync_uid_range *gone = NULL;
        size_t ngone = 0;
        uint32_t hi = size % 3 == 0 ? 4294967295u : 1000;
        if (sync__imap_vanished(ext, hi, &gone, &ngone) == SH_OK)
            for (size_t i = 0; i < ngone; i++)
                if (gone[i].lo < 1 || gone[i].lo > gone[i].hi || gone[i].hi > hi)
                    abort();
        free(gone);
        tf_imap_extensions_free(ext);
    }
    free(all);
    return 0;
}
