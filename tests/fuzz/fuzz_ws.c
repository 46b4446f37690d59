/* fuzz_ws.c - libFuzzer harness of WebSocket frames from a client: the
 * bytes are what the connection has received (as MHD hands over what it
 * read past the request head), run through the gateway's frame handling
 * (ws_conn.c over wslay) on one end of a socket pair whose other end
 * drains what the gateway writes: pings, pongs, closes, oversized and
 * invalid frames. Nothing may crash, leak or hang. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gw_ws_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        return 0;
    gw__ws_conn *c = gw__ws_conn_new(sv[0], (const char *)data, size, NULL, 30000, 10000, NULL);
    if (!c) {
        close(sv[0]);
        close(sv[1]);
        return 0;
    }
    char sink[65536];
    int64_t now = 1000;
    /* The peer stays until the input is used up, then leaves. */
    for (int round = 0; round < 64; round++) {
        if (!gw__ws_conn_io(c, now))
            break;
        while (read(sv[1], sink, sizeof sink) > 0) {
        }
        gw__ws_conn_tick(c, now);
        now += 10000;
        if (round == 8)
            shutdown(sv[1], SHUT_WR);
    }
    gw__ws_conn_free(c);
    close(sv[0]);
    close(sv[1]);
    return 0;
}
