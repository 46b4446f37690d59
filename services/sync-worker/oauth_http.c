/* oauth_http.c - the only file that includes libcurl: a POST to an OAuth2
 * token endpoint. Certificates and host names are verified (libcurl's
 * defaults, set again here so no build changes them), redirects are not
 * followed (a token endpoint does not redirect; following one would send
 * the refresh token elsewhere), http and https only, and the answer is
 * cut off past SYNC_OAUTH_HTTP_MAX. */
#include "oauth_http.h"

#include <curl/curl.h>
#include <string.h>

int sync_oauth_http_init(sh_error *err)
{
    CURLcode c = curl_global_init(CURL_GLOBAL_DEFAULT);
    return c == CURLE_OK ? SH_OK
                         : sh_error_set(err, SH_EINTERNAL, "libcurl: %s", curl_easy_strerror(c));
}

void sync_oauth_http_fini(void)
{
    curl_global_cleanup();
}

static size_t oauth_http_write(char *p, size_t size, size_t n, void *arg)
{
    sh_buf *body = arg;
    size_t len = size * n;
    if (body->len + len > SYNC_OAUTH_HTTP_MAX || sh_buf_append(body, p, len))
        return 0; /* ends the transfer: CURLE_WRITE_ERROR */
    return len;
}

/* The connection's host, its policy, and what the policy said of the last
 * address refused. */
typedef struct oauth_http_conn {
    const sh_hostpolicy *hosts;
    char host[256];
    bool refused;
    sh_error why;
} oauth_http_conn;

/* oauth_http_socket opens the socket of an address curl resolved, unless
 * the host policy refuses it (curl then tries the next address). */
static curl_socket_t oauth_http_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    oauth_http_conn *x = arg;
    if (purpose != CURLSOCKTYPE_IPCXN)
        return CURL_SOCKET_BAD;
    if (sh_hostpolicy_check_addr(x->hosts, x->host, &a->addr, &x->why) != SH_OK) {
        x->refused = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

/* oauth_http_host writes the host of url into x->host; -1 without one. */
static int oauth_http_host(const char *url, oauth_http_conn *x)
{
    CURLU *u = curl_url();
    char *host = NULL;
    int rc = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
                     curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
                     strlen(host) < sizeof x->host
                 ? 0
                 : -1;
    if (!rc)
        snprintf(x->host, sizeof x->host, "%s", host);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

int sync_oauth_http_post(const sh_hostpolicy *hosts, const char *url, const char *form, size_t len,
                         int timeout_s, long *status, sh_buf *body, sh_error *err)
{
    *status = 0;
    oauth_http_conn conn = {.hosts = hosts};
    if (oauth_http_host(url, &conn) != 0)
        return sh_error_set(err, SH_EINVAL, "token endpoint URL without a host");
    CURL *c = curl_easy_init();
    if (!c)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    struct curl_slist *hdr = curl_slist_append(NULL, "Accept: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)(timeout_s > 1 ? timeout_s / 2 : 1));
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)timeout_s);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "sync-worker");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, oauth_http_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, oauth_http_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &conn);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    if (rc == CURLE_COULDNT_CONNECT && conn.refused)
        return sh_error_set(err, SH_EINVAL, "token endpoint refused: %s", conn.why.msg);
    if (rc != CURLE_OK)
        return sh_error_set(err, SH_EUNAVAIL, "token endpoint unreachable: %s",
                            rc == CURLE_WRITE_ERROR ? "answer too large" : curl_easy_strerror(rc));
    return SH_OK;
}
