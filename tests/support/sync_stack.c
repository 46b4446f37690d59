/* sync_stack.c - starting and stopping the mail-sync stack of the
 * integration tests: Redis, Dovecot and the services as processes, each
 * service logging to its own file in the Redis directory. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync_stack.h"

#include "hosts.h"

#include "services.h"

/* stack_setting adds "name=value" (written to buf) to env at n when value
 * is set (above 0); returns the new count. env has room and stays
 * NULL-terminated as it was zeroed. */
static size_t stack_setting(const char **env, size_t n, char *buf, size_t len, const char *name,
                            int value)
{
    if (value <= 0)
        return n;
    snprintf(buf, len, "%s=%d", name, value);
    env[n] = buf;
    return n + 1;
}

static pid_t stack_spawn(tf_stack *s, const char *bin, const char *name, const char *const *env)
{
    char log[400];
    snprintf(log, sizeof log, "%s/%s.log", s->redis.dir, name);
    return tf_spawn(tf_build_path(bin), env, log);
}

int tf_stack_wait_ping(sh_rpc_client *c)
{
    return tf_wait_ping(c, 1);
}

/* stack_service starts service name of the stack on rpc_url and events_url
 * with the settings of env, logging to <log>.log. */
static pid_t stack_service(tf_stack *s, const char *name, const char *log, const char *rpc_url,
                           const char *events_url, const char *const *env)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s.log", s->redis.dir, log);
    tf_service svc = {.name = name,
                      .redis_url = s->redis.url,
                      .rpc_url = rpc_url,
                      .events_url = events_url,
                      .env = env,
                      .log_path = path};
    return tf_service_spawn(&svc);
}

/* stack_url sets url to a free loopback TCP address. */
static void stack_url(char *url, size_t len)
{
    snprintf(url, len, "tcp://127.0.0.1:%d", tf_free_port());
}

/* stack_worker starts a sync-worker answering on rpc_url (events on
 * events_url) and waits until c answers ping; returns its pid, or -1. */
static pid_t stack_worker(tf_stack *s, bool with_ca, const char *rpc_url, const char *events_url,
                          sh_rpc_client *c)
{
    char p_rpc[96], c_rpc[96], c_ev[96], ca[400], name[32];
    char batch[48], renew[48], timeout[64], deadline[64], wrenew[48], poll[48], cap[64];
    snprintf(p_rpc, sizeof p_rpc, "PROGRESS_RPC_URL=%s", s->progress_url);
    snprintf(c_rpc, sizeof c_rpc, "COORDINATOR_RPC_URL=%s", s->coord_url);
    snprintf(c_ev, sizeof c_ev, "COORDINATOR_EVENTS_URL=%s", s->coord_events_url);
    /* Set even when empty, so that one from the environment is not used. */
    snprintf(ca, sizeof ca, "IMAP_CA_FILE=%s", with_ca ? s->dove.ca_file : "");
    const char *env[20] = {p_rpc,
                           c_rpc,
                           c_ev,
                           "ENCRYPTION_KEY=" TF_STACK_KEY,
                           "SYNC_CONCURRENCY=2",
                           ca,
                           TF_ALLOW_LOOPBACK};
    size_t n = 7;
    if (!s->opts.secure_only)
        env[n++] = TF_ALLOW_INSECURE;
    n = stack_setting(env, n, batch, sizeof batch, "SYNC_FETCH_BATCH", s->opts.fetch_batch);
    n = stack_setting(env, n, renew, sizeof renew, "SYNC_RENEW_SECONDS", s->opts.renew_seconds);
    n = stack_setting(env, n, timeout, sizeof timeout, "IMAP_COMMAND_TIMEOUT_SECONDS",
                      s->opts.command_timeout);
    n = stack_setting(env, n, deadline, sizeof deadline, "IMAP_COMMAND_DEADLINE_SECONDS",
                      s->opts.command_deadline);
    n = stack_setting(env, n, wrenew, sizeof wrenew, "WATCH_RENEW_SECONDS",
                      s->opts.watch_renew_seconds);
    n = stack_setting(env, n, poll, sizeof poll, "IMAP_POLL_SECONDS", s->opts.poll_seconds);
    n = stack_setting(env, n, cap, sizeof cap, "IMAP_MAX_CONNECTIONS_PER_HOST",
                      s->opts.max_per_host);
    if (s->worker_env)
        env[n++] = s->worker_env;
    if (s->opts.worker_setting)
        env[n++] = s->opts.worker_setting;
    snprintf(name, sizeof name, "sync-worker-%d", s->workers_started++);
    pid_t pid = stack_service(s, "sync-worker", name, rpc_url, events_url, env);
    if (pid <= 0 || tf_stack_wait_ping(c) != 0) {
        fprintf(stderr, "%s did not answer; logs in %s\n", name, s->redis.dir);
        return pid > 0 ? pid : -1;
    }
    return pid;
}

int tf_stack_start_worker(tf_stack *s, bool with_ca)
{
    s->worker_pid = stack_worker(s, with_ca, s->worker_url, s->worker_events_url, s->worker);
    return s->worker_pid > 0 && tf_stack_wait_ping(s->worker) == 0 ? 0 : -1;
}

pid_t tf_stack_start_extra_worker(tf_stack *s, sh_rpc_client **c)
{
    char url[64], ev[64];
    stack_url(url, sizeof url);
    stack_url(ev, sizeof ev);
    sh_error err;
    if (sh_rpc_client_new(url, 10000, 0, c, &err))
        return -1;
    return stack_worker(s, s->opts.worker_ca, url, ev, *c);
}

/* stack_start_gateway starts the gateway on a free HTTP port. */
static int stack_start_gateway(tf_stack *s)
{
    char p_rpc[96], p_ev[96], c_rpc[96], g_sync[96], g_listen[64];
    s->http_port = tf_free_port();
    snprintf(p_rpc, sizeof p_rpc, "PROGRESS_RPC_URL=%s", s->progress_url);
    snprintf(p_ev, sizeof p_ev, "PROGRESS_EVENTS_URL=%s", s->progress_events_url);
    snprintf(c_rpc, sizeof c_rpc, "COORDINATOR_RPC_URL=%s", s->coord_url);
    snprintf(g_sync, sizeof g_sync, "SYNC_WORKER_RPC_URL=%s", s->worker_url);
    snprintf(g_listen, sizeof g_listen, "GATEWAY_LISTEN=127.0.0.1:%d", s->http_port);
    const char *env[] = {p_rpc, p_ev, c_rpc, g_sync, g_listen, NULL};
    s->gateway_pid = stack_spawn(s, "services/gateway/gateway", "gateway", env);
    return s->gateway_pid > 0 ? 0 : -1;
}

/* stack_start_services starts progress and the coordinator, connects the
 * clients, then starts the sync-worker and the gateway. */
static int stack_start_services(tf_stack *s)
{
    char lease[48], wlease[48];
    stack_url(s->progress_url, sizeof s->progress_url);
    stack_url(s->progress_events_url, sizeof s->progress_events_url);
    stack_url(s->coord_url, sizeof s->coord_url);
    stack_url(s->coord_events_url, sizeof s->coord_events_url);
    stack_url(s->worker_url, sizeof s->worker_url);
    stack_url(s->worker_events_url, sizeof s->worker_events_url);
    const char *cenv[10] = {"ENCRYPTION_KEY=" TF_STACK_KEY, "SCHED_AUTO_TICK=false",
                            TF_ALLOW_LOOPBACK};
    size_t cn = 3;
    if (!s->opts.secure_only)
        cenv[cn++] = TF_ALLOW_INSECURE;
    cn = stack_setting(cenv, cn, lease, sizeof lease, "SYNC_LEASE_SECONDS", s->opts.lease_seconds);
    stack_setting(cenv, cn, wlease, sizeof wlease, "WATCH_LEASE_SECONDS",
                  s->opts.watch_lease_seconds);
    s->progress_pid =
        stack_service(s, "progress", "progress", s->progress_url, s->progress_events_url, NULL);
    s->coord_pid =
        stack_service(s, "coordinator", "coordinator", s->coord_url, s->coord_events_url, cenv);
    if (s->progress_pid <= 0 || s->coord_pid <= 0)
        return -1;
    sh_error err;
    if (sh_rpc_client_new(s->coord_url, 10000, 0, &s->coord, &err) ||
        sh_rpc_client_new(s->worker_url, 10000, 0, &s->worker, &err) ||
        sh_rpc_client_new(s->progress_url, 10000, 0, &s->progress, &err)) {
        fprintf(stderr, "rpc client: %s\n", err.msg);
        return -1;
    }
    if (tf_stack_wait_ping(s->coord) || tf_stack_wait_ping(s->progress)) {
        fprintf(stderr, "services did not answer; logs in %s\n", s->redis.dir);
        return -1;
    }
    if (tf_stack_start_worker(s, s->opts.worker_ca))
        return -1;
    return s->opts.gateway ? stack_start_gateway(s) : 0;
}

int tf_stack_start(tf_stack *s, const tf_stack_opts *opts)
{
    memset(s, 0, sizeof *s);
    s->opts = *opts;
    signal(SIGPIPE, SIG_IGN);
    if (tf_redis_start(&s->redis, 0) != 0 ||
        (opts->strict ? tf_strict_start(&s->dove, "test", "secret", opts->messages, opts->strict)
                      : tf_dovecot_start_caps(&s->dove, "test", "secret", opts->messages,
                                              opts->imap_capability)) != 0 ||
        stack_start_services(s) != 0)
        goto fail;
    sh_redis_url u;
    sh_error err;
    if (sh_redis_url_parse(s->redis.url, &u, &err) || sh_store_new(&u, NULL, &s->store, &err)) {
        fprintf(stderr, "store: %s\n", err.msg);
        goto fail;
    }
    return 0;
fail:
    tf_stack_stop(s);
    return -1;
}

/* stack_keep_logs copies the services' and Dovecot's logs to <name>.logs/
 * beside the test binary for a look after a failure; with dump, the
 * services' logs go to stderr too. */
static void stack_keep_logs(const tf_stack *s, bool dump)
{
    char cmd[1200];
    if (!s->redis.dir[0])
        return;
    snprintf(cmd, sizeof cmd, "mkdir -p %s.logs && cp %s/*.log %s/*.log %s.logs/ 2>/dev/null",
             s->opts.name, s->redis.dir, s->dove.dir, s->opts.name);
    if (system(cmd) != 0)
        fprintf(stderr, "(cannot keep the logs)\n");
    if (dump) {
        snprintf(cmd, sizeof cmd, "cat %s/*.log >&2", s->redis.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "(no logs)\n");
    }
}

int tf_stack_stop(tf_stack *s)
{
    int bad = 0;
    pid_t *pids[] = {&s->gateway_pid, &s->worker_pid, &s->coord_pid, &s->progress_pid};
    const char *names[] = {"gateway", "sync-worker", "coordinator", "progress"};
    for (size_t i = 0; i < sizeof pids / sizeof pids[0]; i++) {
        if (*pids[i] > 0 && tf_stop(*pids[i], SIGTERM, 15000) != 0) {
            fprintf(stderr, "%s did not stop cleanly\n", names[i]);
            bad = 1;
        }
        *pids[i] = 0;
    }
    stack_keep_logs(s, bad);
    sh_rpc_client_free(s->coord);
    sh_rpc_client_free(s->worker);
    sh_rpc_client_free(s->progress);
    sh_store_free(s->store);
    s->coord = s->worker = s->progress = NULL;
    s->store = NULL;
    tf_dovecot_stop(&s->dove);
    tf_redis_stop(&s->redis);
    sh_rpc_fini();
    return bad ? -1 : 0;
}

int tf_stack_teardown(void **state)
{
    return tf_stack_stop(*state);
}
