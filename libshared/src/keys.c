/* keys.c - the registry of key prefixes and the id syntax. */
#include "shared/keys.h"

#include <stdio.h>
#include <string.h>

const sh_key_prefix sh_key_prefixes[] = {
    {SH_KEY_PROGRESS, SH_OWNER_PROGRESS, "progress records and their error logs"},
    {SH_KEY_JOB, SH_OWNER_PROGRESS, "job records"},
    {SH_KEY_JOB_INDEX, SH_OWNER_PROGRESS, "conversation -> job index"},
    {SH_KEY_JOB_REQ, SH_OWNER_PROGRESS, "request ids of job creates"},
    {SH_KEY_SQ, SH_OWNER_COORDINATOR, "claims of work items"},
    {SH_KEY_REFUND, SH_OWNER_COORDINATOR, "row reservations"},
    {SH_KEY_ACCOUNT, SH_OWNER_COORDINATOR, "email accounts"},
    {SH_KEY_SCHED, SH_OWNER_COORDINATOR, "sync schedule"},
    {SH_KEY_MAIL, SH_OWNER_SYNC, "synced mail"},
    {NULL, NULL, NULL},
};

const char *sh_key_owner(const char *key, size_t len)
{
    for (size_t i = 0; sh_key_prefixes[i].prefix; i++) {
        size_t plen = strlen(sh_key_prefixes[i].prefix);
        if (len >= plen && memcmp(key, sh_key_prefixes[i].prefix, plen) == 0)
            return sh_key_prefixes[i].owner;
    }
    return NULL;
}

bool sh_id_valid(const char *id, size_t len)
{
    if (!id || len == 0 || len > SH_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

int sh_key_build(char *buf, size_t len, const char *prefix, const char *id, const char *suffix)
{
    if (!sh_id_valid(id, strlen(id)))
        return -1;
    int n = snprintf(buf, len, "%s{%s}%s", prefix, id, suffix ? suffix : "");
    if (n < 0 || (size_t)n >= len)
        return -1;
    return n;
}
