/* oauth_http.h - one HTTPS POST to an OAuth2 token endpoint (libcurl, in
 * oauth_http.c only): TLS verified against the system store, no
 * redirects, bounded in time and in the size of the answer. */
#ifndef SYNC_OAUTH_HTTP_H
#define SYNC_OAUTH_HTTP_H

#include <stddef.h>

#include "shared/buf.h"
#include "shared/err.h"
#include "shared/hostpolicy.h"

/* The largest answer read from a token endpoint. */
#define SYNC_OAUTH_HTTP_MAX (64 * 1024)

/* sync_oauth_http_init and _fini set libcurl up and down, once per
 * process (main.c), before and after any thread posts. */
int sync_oauth_http_init(sh_error *err);
void sync_oauth_http_fini(void);

/* sync_oauth_http_post POSTs the form body (application/x-www-form-
 * urlencoded, len bytes) to url within timeout_s seconds (connecting
 * within half of it): *status gets the HTTP status and body the answer
 * (a secret buffer: it holds tokens). Each address the host resolves to is
 * checked against hosts (IMAP_ALLOW_HOSTS, IMAP_DENY_HOSTS: a token
 * endpoint is held to the rules of an IMAP server) before it is connected
 * to; SH_EINVAL, with the policy's words, when every one is refused.
 * SH_EUNAVAIL when no answer came, with libcurl's words (never the body)
 * in err. */
int sync_oauth_http_post(const sh_hostpolicy *hosts, const char *url, const char *form, size_t len,
                         int timeout_s, long *status, sh_buf *body, sh_error *err);

#endif
