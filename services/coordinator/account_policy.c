/* account_policy.c - what an account may point at: its IMAP host checked
 * against the host policy (IMAP_ALLOW_HOSTS, IMAP_DENY_HOSTS; metadata and
 * link-local addresses never, private and loopback ones only when
 * allowed), and cleartext or unverified connections refused unless
 * IMAP_ALLOW_INSECURE. The sync-worker checks the same again when it
 * connects, after its own resolution. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ops.h"
#include "shared/oauth.h"
#include "shared/util.h"

/* The verdicts of the last names checked, kept a minute: creating many
 * accounts on one provider's server resolves its name once, not once per
 * account (a lookup costs tens of milliseconds, more when the name does
 * not exist). The policy is fixed for the life of the process, and the
 * sync-worker checks every address again when it connects. */
#define POLICY_CACHE_N  64
#define POLICY_CACHE_MS 60000

typedef struct policy_verdict {
    char host[256];
    int rc;
    char msg[sizeof(((sh_error *)0)->msg)];
    int64_t until;
} policy_verdict;

static policy_verdict policy_cache[POLICY_CACHE_N];
static size_t policy_next;
static pthread_mutex_t policy_lock = PTHREAD_MUTEX_INITIALIZER;

static bool policy_cached(const char *host, int *rc, sh_error *e)
{
    bool hit = false;
    int64_t now = sh_mono_ms();
    pthread_mutex_lock(&policy_lock);
    for (size_t i = 0; i < POLICY_CACHE_N && !hit; i++) {
        policy_verdict *v = &policy_cache[i];
        if (v->until > now && strcasecmp(v->host, host) == 0) {
            *rc = v->rc;
            sh_error_set(e, v->rc, "%s", v->msg);
            hit = true;
        }
    }
    pthread_mutex_unlock(&policy_lock);
    return hit;
}

static void policy_remember(const char *host, int rc, const sh_error *e)
{
    if (strlen(host) >= sizeof policy_cache[0].host)
        return;
    pthread_mutex_lock(&policy_lock);
    policy_verdict *v = &policy_cache[policy_next++ % POLICY_CACHE_N];
    snprintf(v->host, sizeof v->host, "%s", host);
    v->rc = rc;
    snprintf(v->msg, sizeof v->msg, "%s", rc ? e->msg : "");
    v->until = sh_mono_ms() + POLICY_CACHE_MS;
    pthread_mutex_unlock(&policy_lock);
}

/* policy_host checks host (NULL: nothing to check), the value of field. */
static int policy_host(const coord_env *env, const char *field, const char *host, int port,
                       sh_error *err)
{
    if (!host)
        return SH_OK;
    sh_hostaddr addrs[SH_HOSTADDR_MAX];
    size_t n;
    sh_error e;
    int rc;
    if (!policy_cached(host, &rc, &e)) {
        rc = sh_hostpolicy_resolve(env->hosts, host, port, addrs, &n, &e);
        if (rc != SH_ENOMEM)
            policy_remember(host, rc, &e);
    }
    /* A name that does not resolve now may later: the sync-worker checks
     * it when it connects. */
    if (rc == SH_EINVAL)
        return sh_error_set(err, SH_EINVAL, "field \"%s\": %s", field, e.msg);
    return rc == SH_ENOMEM ? sh_error_set(err, SH_ENOMEM, "out of memory") : SH_OK;
}

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
    int rc = policy_host(env, "imapHost", sh_val_get_str(fields, "imapHost", NULL), 143, err);
    /* A token endpoint is held to the rules of an IMAP server: the sync
     * worker posts the account's refresh token to it. */
    const char *url = sh_val_get_str(sh_val_get(fields, "auth"), "tokenUrl", NULL);
    char host[256];
    if (!rc && url && sh_oauth_url_host(url, host, sizeof host))
        rc = policy_host(env, "auth.tokenUrl", host, 443, err);
    return rc;
}
