/* fuzz_router.c - libFuzzer harness of how the gateway reads a request
 * line: the method name, the path matched against the route table
 * (gw_router_match: its ":id" segments must lie inside the path, the Allow
 * list stay terminated) and the ?types= filter of the event streams.
 * Input: the method, a NUL, the path, a NUL, the types value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw_router.h"
#include "gw_routes.h"
#include "gw_sse_int.h"
#include "shared/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz_part copies the next NUL-ended part of data (or the rest) to a new
 * string, advancing *off; NULL out of memory. */
static char *fuzz_part(const uint8_t *data, size_t size, size_t *off)
{
    const uint8_t *p = data + *off;
    size_t left = size - *off;
    const uint8_t *nul = memchr(p, '\0', left);
    size_t n = nul ? (size_t)(nul - p) : left;
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    *off += nul ? n + 1 : n;
    return s;
}

static void fuzz_inside(const char *path, const char *p, size_t n)
{
    size_t len = strlen(path);
    if (p && (p < path || p + n > path + len || n == 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        if (gw_router_init(gw_route_table) != 0)
            abort();
        ready = 1;
    }
    if (size > 16384)
        return 0;
    size_t off = 0;
    char *method = fuzz_part(data, size, &off);
    char *path = fuzz_part(data, size, &off);
    char *types = fuzz_part(data, size, &off);
    if (!method || !path || !types)
        goto done;
    int mth = gw_method_parse(method);
    if (mth < 0 || mth >= GW_METHOD_COUNT || !gw_method_name(mth))
        abort();
    gw_match m;
    int found = gw_router_match(mth, path, &m);
    if (found == GW_MATCH_OK) {
        if (!m.route || m.pattern < 0 || (size_t)m.pattern >= gw_router_npatterns())
            abort();
        fuzz_inside(path, m.param, m.param_len);
        fuzz_inside(path, m.param2, m.param2_len);
        (void)sh_id_valid(m.param ? m.param : "", m.param_len);
    } else if (found == GW_MATCH_BAD_METHOD) {
        if (!memchr(m.allow, '\0', sizeof m.allow) || !m.allow[0])
            abort();
    } else if (found != GW_MATCH_NOT_FOUND) {
        abort();
    }
    uint64_t mask = 0;
    char bad[80];
    memset(bad, 0x55, sizeof bad);
    if (gw__sse_types_parse(types, &mask, bad, sizeof bad) != SH_OK &&
        !memchr(bad, '\0', sizeof bad))
        abort();
done:
    free(method);
    free(path);
    free(types);
    return 0;
}
