/* nng_dial.h - internal to libshared: the one dial loop of every socket
 * that connects to a comma-separated list of URLs (RPC clients, event
 * subscribers). */
#ifndef SHARED_NNG_DIAL_H
#define SHARED_NNG_DIAL_H

#include <nng/nng.h>

#include "shared/err.h"

/* sh__nng_dial_all sets sock's reconnect times and dials every URL of the
 * comma-separated list urls without waiting (peers may start later). It
 * fails with SH_EINVAL naming what (e.g. "RPC") when a URL is malformed or
 * the list names none. */
int sh__nng_dial_all(nng_socket sock, const char *urls, const char *what, sh_error *err);

#endif
