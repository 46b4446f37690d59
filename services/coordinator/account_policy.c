/* account_policy.c - what an account may point at: its IMAP host checked
 * against the host policy (IMAP_ALLOW_HOSTS, IMAP_DENY_HOSTS; metadata and
 * link-local addresses never, private and loopback ones only when
 * allowed), and cleartext or unverified connections refused unless
 * IMAP_ALLOW_INSECURE. The sync-worker checks the same again when it
 * connects, after its own resolution. */
#include <string.h>

#include "ops.h"

int coord_account_policy(const coord_env *env, const sh_val *fields, sh_error *err)
{
    const char *sec = sh_val_get_str(fields, "security", NULL);
    const sh_val *verify = sh_val_get(fields, "tlsVerify");
    if (!env->allow_insecure && sec && strcmp(sec, "none") == 0)
        return sh_error_set(err, SH_EINVAL,
                            "field \"security\": \"none\" sends the password in clear; refused "
                            "unless IMAP_ALLOW_INSECURE=true");
    if (!env->allow_insecure && verify && sh_val_type_of(verify) == SH_VAL_BOOL &&
        !sh_val_bool(verify))
        return sh_error_set(err, SH_EINVAL,
                            "field \"tlsVerify\": false accepts any server's certificate; refused "
                            "unless IMAP_ALLOW_INSECURE=true");
    const char *host = sh_val_get_str(fields, "imapHost", NULL);
    if (!host)
        return SH_OK;
    sh_hostaddr addrs[SH_HOSTADDR_MAX];
    size_t n;
    sh_error e;
    int rc = sh_hostpolicy_resolve(env->hosts, host, 143, addrs, &n, &e);
    /* A name that does not resolve now may later: the sync-worker checks
     * it when it connects. */
    if (rc == SH_EINVAL)
        return sh_error_set(err, SH_EINVAL, "field \"imapHost\": %s", e.msg);
    return rc == SH_ENOMEM ? sh_error_set(err, SH_ENOMEM, "out of memory") : SH_OK;
}
