/* keys.c - builders of the sync-worker's Redis keys. */
#include "keys.h"

#include <stdarg.h>
#include <stdio.h>

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
