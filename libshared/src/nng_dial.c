/* nng_dial.c - dialing a socket to a list of URLs, shared by rpc_client.c
 * and events.c. */
#include "nng_dial.h"

#include <stdlib.h>
#include <string.h>

int sh__nng_dial_all(nng_socket sock, const char *urls, const char *what, sh_error *err)
{
    nng_socket_set_ms(sock, NNG_OPT_RECONNMINT, 20);
    nng_socket_set_ms(sock, NNG_OPT_RECONNMAXT, 500);
    char *list = strdup(urls ? urls : "");
    if (!list)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    int dialed = 0, rv;
    char *save = NULL;
    for (char *u = strtok_r(list, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
        while (*u == ' ')
            u++;
        if (!*u)
            continue;
        if ((rv = nng_dial(sock, u, NULL, NNG_FLAG_NONBLOCK))) {
            sh_error_set(err, SH_EINVAL, "cannot dial %s: %s", u, nng_strerror(rv));
            free(list);
            return SH_EINVAL;
        }
        dialed++;
    }
    free(list);
    if (!dialed)
        return sh_error_set(err, SH_EINVAL, "no %s URL to dial", what);
    return SH_OK;
}
