/* util.c - clocks, timestamps and address checks. */
#include "shared/util.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "shared/err.h"

int64_t sh_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sh_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sh_iso8601(int64_t ms, char out[SH_ISO_LEN])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char tmp[80];
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    memcpy(out, tmp, SH_ISO_LEN - 1);
    out[SH_ISO_LEN - 1] = '\0';
}

bool sh_is_ip_literal(const char *host)
{
    unsigned char buf[16];
    char v6[INET6_ADDRSTRLEN];
    size_t len = strlen(host);
    if (len >= 2 && len - 2 < sizeof v6 && host[0] == '[' && host[len - 1] == ']') {
        memcpy(v6, host + 1, len - 2);
        v6[len - 2] = '\0';
        return inet_pton(AF_INET6, v6, buf) == 1;
    }
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

bool sh_is_loopback_host(const char *host)
{
    if (strcasecmp(host, "localhost") == 0)
        return true;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return memcmp(&a6, &in6addr_loopback, sizeof a6) == 0;
    return false;
}
