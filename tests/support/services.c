/* services.c - the services a test starts by hand (services.h). */
#include "services.h"

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "fixture.h"
#include "shared/msgmac.h"

__attribute__((constructor)) static void services_sign(void)
{
    setenv("RPC_SECRET", TF_RPC_SECRET, 0);
    sh_error err;
    if (sh_msgmac_setup(getenv("RPC_SECRET"), SH_MSGMAC_WINDOW_DEFAULT, &err) != SH_OK) {
        fprintf(stderr, "%s\n", err.msg);
        abort();
    }
}

/* services_var writes "<NAME>_<what>=value": the service's name in upper
 * case, '-' as '_' (sync-worker: SYNC_WORKER_RPC_URL). */
static void services_var(char *buf, size_t len, const char *name, const char *what,
                         const char *value)
{
    char up[32];
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof up; i++)
        up[i] = name[i] == '-' ? '_' : (char)toupper((unsigned char)name[i]);
    up[i] = '\0';
    snprintf(buf, len, "%s_%s=%s", up, what, value);
}

pid_t tf_service_spawn(const tf_service *svc)
{
    char bin[128], e_redis[300], e_rpc[160], e_ev[160], ev[64];
    snprintf(bin, sizeof bin, "services/%s/%s", svc->name, svc->name);
    snprintf(e_redis, sizeof e_redis, "REDIS_URL=%s", svc->redis_url);
    services_var(e_rpc, sizeof e_rpc, svc->name, "RPC_URL", svc->rpc_url);
    if (!svc->events_url)
        snprintf(ev, sizeof ev, "tcp://127.0.0.1:%d", tf_free_port());
    services_var(e_ev, sizeof e_ev, svc->name, "EVENTS_URL",
                 svc->events_url ? svc->events_url : ev);
    const char *env[32] = {e_redis, e_rpc, e_ev};
    size_t n = 3;
    for (const char *const *e = svc->env; e && *e; e++) {
        if (n + 1 >= sizeof env / sizeof env[0]) {
            fprintf(stderr, "%s: too many settings\n", svc->name);
            return -1;
        }
        env[n++] = *e;
    }
    return tf_spawn_arg(tf_build_path(bin), svc->command, env, svc->log_path);
}

int tf_service_start(const tf_service *svc, sh_rpc_client *c, pid_t *pid)
{
    *pid = tf_service_spawn(svc);
    if (*pid > 0 && tf_wait_ping(c, 1) == 0)
        return 0;
    fprintf(stderr, "%s did not answer; log in %s\n", svc->name, svc->log_path);
    return -1;
}

int tf_wait_ping(sh_rpc_client *c, int answers)
{
    int ok = 0;
    for (int i = 0; i < 500 && ok < answers; i++) {
        sh_val *res = NULL;
        sh_error err;
        if (sh_rpc_call(c, "ping", NULL, 200, &res, &err) == SH_OK)
            ok++;
        else
            tf_sleep_ms(20);
        sh_val_free(res);
    }
    return ok < answers ? -1 : 0;
}

int tf_services_stop(const pid_t *pids, int n, const char *log_glob)
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        int st = pids[i] > 0 ? tf_stop(pids[i], SIGTERM, 10000) : 0;
        if (st != 0) {
            fprintf(stderr, "service %d of %d (pid %d) exited with %d\n", i + 1, n, (int)pids[i],
                    st);
            bad = 1;
        }
    }
    if (bad) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "cat %s >&2", log_glob);
        if (system(cmd) != 0)
            fprintf(stderr, "(no logs)\n");
    }
    return bad ? -1 : 0;
}
