/* fuzz_url.c - libFuzzer harness of REDIS_URL (and KV_URL) parsing
 * (libshared url.c): every field stays NUL-terminated inside its array, the
 * port and db in range, and the display form never shows the password. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_field(const char *f)
{
    if (memchr(f, '\0', SH_URL_FIELD_MAX) == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    char *url = malloc(size + 1);
    if (!url)
        return 0;
    memcpy(url, data, size);
    url[size] = '\0';
    sh_redis_url u;
    sh_error err;
    memset(&u, 0xAA, sizeof u);
    if (sh_redis_url_parse(url, &u, &err) == SH_OK) {
        fuzz_field(u.host);
        fuzz_field(u.path);
        fuzz_field(u.user);
        fuzz_field(u.password);
        if (!u.unix_socket && (u.port < 1 || u.port > 65535))
            abort();
        if (u.db < 0)
            abort();
        char shown[1024];
        sh_redis_url_display(&u, shown, sizeof shown);
        if (memchr(shown, '\0', sizeof shown) == NULL)
            abort();
        /* The password shows only where the other fields (and the mask
         * that stands for it) put the same text. */
        sh_redis_url bare = u;
        strcpy(bare.password, "x");
        char base[1024];
        sh_redis_url_display(&bare, base, sizeof base);
        if (u.password[0] && strstr(shown, u.password) && !strstr(base, u.password))
            abort();
    } else if (!err.msg[0]) {
        abort(); /* a refusal names what is wrong */
    }
    free(url);
    return 0;
}
