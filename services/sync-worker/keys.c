/* keys.c - builders of the sync-worker's Redis keys. */
#include "keys.h"

#include <stdio.h>

/* keys_with builds mail:{acct} then the formatted suffix. */
static int keys_with(char *buf, size_t len, const char *acct, const char *suffix)
{
    return sh_key_build(buf, len, SH_KEY_MAIL, acct, suffix);
}

int sync_key_state(char *buf, size_t len, const char *acct, const char *folder)
{
    char suffix[SYNC_KEY_MAX];
    int n = snprintf(suffix, sizeof suffix, ":state:%s", folder);
    if (n < 0 || (size_t)n >= sizeof suffix)
        return -1;
    return keys_with(buf, len, acct, suffix);
}

int sync_key_index(char *buf, size_t len, const char *acct, const char *folder,
                   uint32_t uidvalidity)
{
    char suffix[SYNC_KEY_MAX];
    int n = snprintf(suffix, sizeof suffix, ":idx:%s:%u", folder, (unsigned)uidvalidity);
    if (n < 0 || (size_t)n >= sizeof suffix)
        return -1;
    return keys_with(buf, len, acct, suffix);
}

int sync_key_message(char *buf, size_t len, const char *acct, const char *folder,
                     uint32_t uidvalidity, uint32_t uid)
{
    char suffix[SYNC_KEY_MAX];
    int n = snprintf(suffix, sizeof suffix, ":m:%s:%u:%u", folder, (unsigned)uidvalidity,
                     (unsigned)uid);
    if (n < 0 || (size_t)n >= sizeof suffix)
        return -1;
    return keys_with(buf, len, acct, suffix);
}

int sync_key_unseen(char *buf, size_t len, const char *acct, const char *folder,
                    uint32_t uidvalidity)
{
    char suffix[SYNC_KEY_MAX];
    int n = snprintf(suffix, sizeof suffix, ":unseen:%s:%u", folder, (unsigned)uidvalidity);
    if (n < 0 || (size_t)n >= sizeof suffix)
        return -1;
    return keys_with(buf, len, acct, suffix);
}

int sync_key_pending(char *buf, size_t len, const char *acct, const char *folder)
{
    char suffix[SYNC_KEY_MAX];
    int n = snprintf(suffix, sizeof suffix, ":pending:%s", folder);
    if (n < 0 || (size_t)n >= sizeof suffix)
        return -1;
    return keys_with(buf, len, acct, suffix);
}

int sync_key_folders(char *buf, size_t len, const char *acct)
{
    return keys_with(buf, len, acct, ":folders");
}

int sync_key_account_pattern(char *buf, size_t len, const char *acct)
{
    return keys_with(buf, len, acct, ":*");
}
