/* keys.c - builders of the sync-worker's Redis keys. */
#include "keys.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* keys_with builds mail:{acct} then the suffix. */
static int keys_with(char *buf, size_t len, const char *acct, const char *suffix)
{
    return sh_key_build(buf, len, SH_KEY_MAIL, acct, suffix);
}

/* keys_fmt builds mail:{acct} then the suffix formatted from fmt. */
static int keys_fmt(char *buf, size_t len, const char *acct, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int keys_fmt(char *buf, size_t len, const char *acct, const char *fmt, ...)
{
    char suffix[SYNC_KEY_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(suffix, sizeof suffix, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof suffix)
        return -1;
    return keys_with(buf, len, acct, suffix);
}

int sync_key_state(char *buf, size_t len, const char *acct, const char *folder)
{
    return keys_fmt(buf, len, acct, ":state:%s", folder);
}

int sync_key_index(char *buf, size_t len, const char *acct, const char *folder,
                   uint32_t uidvalidity)
{
    return keys_fmt(buf, len, acct, ":idx:%s:%u", folder, (unsigned)uidvalidity);
}

int sync_key_message(char *buf, size_t len, const char *acct, const char *folder,
                     uint32_t uidvalidity, uint32_t uid)
{
    return keys_fmt(buf, len, acct, ":m:%s:%u:%u", folder, (unsigned)uidvalidity, (unsigned)uid);
}

int sync_key_unseen(char *buf, size_t len, const char *acct, const char *folder,
                    uint32_t uidvalidity)
{
    return keys_fmt(buf, len, acct, ":unseen:%s:%u", folder, (unsigned)uidvalidity);
}

int sync_key_pending(char *buf, size_t len, const char *acct, const char *folder)
{
    return keys_fmt(buf, len, acct, ":pending:%s", folder);
}

int sync_key_folders(char *buf, size_t len, const char *acct)
{
    return keys_with(buf, len, acct, ":folders");
}

int sync_key_events(char *buf, size_t len, const char *acct)
{
    return keys_with(buf, len, acct, ":events");
}

int sync_key_events_status(char *buf, size_t len, const char *acct)
{
    return keys_with(buf, len, acct, ":evstatus");
}

int sync_key_account_pattern(char *buf, size_t len, const char *acct)
{
    return keys_with(buf, len, acct, ":*");
}

int sync_key_all_pattern(char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s{*", SH_KEY_MAIL);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

int sync_key_account_of(const char *key, size_t len, char *id, size_t cap)
{
    size_t plen = strlen(SH_KEY_MAIL);
    if (len < plen + 3 || memcmp(key, SH_KEY_MAIL, plen) != 0 || key[plen] != '{')
        return -1;
    const char *open = key + plen + 1;
    const char *close = memchr(open, '}', len - plen - 1);
    size_t n = close ? (size_t)(close - open) : 0;
    if (n == 0 || n >= cap || !sh_id_valid(open, n))
        return -1;
    memcpy(id, open, n);
    id[n] = '\0';
    return (int)n;
}
