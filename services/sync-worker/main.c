/* main.c - the sync-worker: its settings, RPC operations and background
 * sync threads, run by the common service loop of libshared. */
#include <sys/resource.h>

#include "env.h"
#include "handlers.h"
#include "oauth_http.h"
#include "shared/log.h"
#include "shared/service.h"
#include "sweeper.h"
#include "worker.h"

static const char *cfg_key, *cfg_key_prev, *cfg_coord_rpc, *cfg_coord_events, *cfg_progress_rpc,
    *cfg_ca_file, *cfg_allow_hosts, *cfg_deny_hosts;
static long long cfg_concurrency, cfg_connect_timeout, cfg_command_timeout, cfg_batch, cfg_budget,
    cfg_renew, cfg_events_len, cfg_events_age, cfg_command_deadline, cfg_run_deadline,
    cfg_max_watches, cfg_per_host, cfg_idle_renew, cfg_poll, cfg_watch_renew, cfg_sweep, cfg_window,
    cfg_max_per_folder;
static bool cfg_allow_insecure;
static sh_hostpolicy *hosts;
static sh_key key, key_prev;
static sync_env env;

static const sh_setting sync_settings[] = {
    {"ENCRYPTION_KEY", NULL, SH_SET_SECRET, NULL, 0, 4096, &cfg_key, true,
     "64 hex characters: opens the account passwords sealed by the coordinator"},
    {"ENCRYPTION_KEY_PREVIOUS", NULL, SH_SET_SECRET, NULL, 0, 4096, &cfg_key_prev, false,
     "the former key, while rotating"},
    {"COORDINATOR_RPC_URL", NULL, SH_SET_STR, "tcp://127.0.0.1:7111", 0, 0, &cfg_coord_rpc, false,
     "the coordinator's RPC URL(s): leases and results"},
    {"COORDINATOR_EVENTS_URL", NULL, SH_SET_STR, "tcp://127.0.0.1:7112", 0, 0, &cfg_coord_events,
     false, "the coordinator's events: deleted accounts, queued syncs"},
    {"PROGRESS_RPC_URL", NULL, SH_SET_STR, "tcp://127.0.0.1:7101", 0, 0, &cfg_progress_rpc, false,
     "the progress service's RPC URL(s): sync progress"},
    {"IMAP_CA_FILE", NULL, SH_SET_STR, NULL, 0, 0, &cfg_ca_file, false,
     "CA bundle for IMAP servers (default: the system store)"},
    {"SYNC_CONCURRENCY", NULL, SH_SET_INT, "2", 0, 256, &cfg_concurrency, false,
     "sync threads, one IMAP session each (0: serve the RPC only)"},
    {"IMAP_CONNECT_TIMEOUT_SECONDS", NULL, SH_SET_INT, "10", 1, 600, &cfg_connect_timeout, false,
     "seconds to connect to an IMAP server"},
    {"IMAP_COMMAND_TIMEOUT_SECONDS", NULL, SH_SET_INT, "30", 1, 3600, &cfg_command_timeout, false,
     "seconds an IMAP reply may go without a byte"},
    {"IMAP_COMMAND_DEADLINE_SECONDS", NULL, SH_SET_INT, "60", 1, 3600, &cfg_command_deadline, false,
     "seconds a whole IMAP reply may take, however it trickles in"},
    {"SYNC_RUN_DEADLINE_SECONDS", NULL, SH_SET_INT, "600", 10, 86400, &cfg_run_deadline, false,
     "seconds one sync of an account may take; the next run goes on from there"},
    {"IMAP_ALLOW_HOSTS", NULL, SH_SET_STR, NULL, 0, 0, &cfg_allow_hosts, false,
     "host names, addresses and CIDR ranges allowed although private or loopback"},
    {"IMAP_DENY_HOSTS", NULL, SH_SET_STR, NULL, 0, 0, &cfg_deny_hosts, false,
     "host names, addresses and CIDR ranges never connected to"},
    {"IMAP_ALLOW_INSECURE", NULL, SH_SET_BOOL, "false", 0, 0, &cfg_allow_insecure, false,
     "allow accounts with security none or tlsVerify false"},
    {"SYNC_FETCH_BATCH", NULL, SH_SET_INT, "500", 1, 10000, &cfg_batch, false,
     "messages fetched and written per batch"},
    {"SYNC_FETCH_BUDGET", NULL, SH_SET_INT, "1000", 1, 1000000, &cfg_budget, false,
     "messages in flight across all sync threads (bounds memory)"},
    {"SYNC_CHECK_WINDOW", NULL, SH_SET_INT, "10000", 10, 1000000, &cfg_window, false,
     "messages per window when a folder's UIDs and flags are compared with the server's"},
    {"MAIL_MAX_MESSAGES_PER_FOLDER", NULL, SH_SET_INT, "1000000", 0, 1000000000,
     &cfg_max_per_folder, false, "messages stored per folder, the newest kept (0: no cap)"},
    {"SYNC_RENEW_SECONDS", NULL, SH_SET_INT, "30", 1, 3600, &cfg_renew, false,
     "seconds between two renewals of a lease while syncing"},
    {"MAIL_EVENTS_MAX_LEN", NULL, SH_SET_INT, "10000", 10, 10000000, &cfg_events_len, false,
     "events kept in each account's event log (about: whole stream nodes are trimmed)"},
    {"MAIL_EVENTS_MAX_AGE_SECONDS", NULL, SH_SET_INT, "604800", 1, 31536000, &cfg_events_age, false,
     "seconds an event is kept in the account's event log"},
    {"IMAP_MAX_WATCHES", NULL, SH_SET_INT, "1000", 0, 100000, &cfg_max_watches, false,
     "folders this worker holds under IDLE (one IMAP connection each; 0: no watching)"},
    {"IMAP_MAX_CONNECTIONS_PER_HOST", NULL, SH_SET_INT, "50", 0, 100000, &cfg_per_host, false,
     "IMAP connections (sync and watch) this worker opens to one host (0: no cap)"},
    {"IMAP_IDLE_RENEW_SECONDS", NULL, SH_SET_INT, "1500", 5, 1740, &cfg_idle_renew, false,
     "seconds after which an IDLE is ended and started again"},
    {"IMAP_POLL_SECONDS", NULL, SH_SET_INT, "60", 1, 3600, &cfg_poll, false,
     "seconds between two checks (NOOP) of a watched folder on a server without IDLE"},
    {"WATCH_RENEW_SECONDS", NULL, SH_SET_INT, "15", 1, 3600, &cfg_watch_renew, false,
     "seconds between two renewals of the watch leases (keep under a third of the "
     "coordinator's WATCH_LEASE_SECONDS)"},
    {"MAIL_SWEEP_SECONDS", NULL, SH_SET_INT, "3600", 0, 604800, &cfg_sweep, false,
     "seconds between two sweeps removing the mail of deleted accounts (also run at start; "
     "0: never)"},
    {NULL, NULL, 0, NULL, 0, 0, NULL, false, NULL},
};

static int sync_validate(sh_error *err)
{
    int rc = sh_key_parse(cfg_key, "ENCRYPTION_KEY", &key, err);
    if (rc)
        return rc;
    env.keys[env.nkeys++] = &key;
    if (cfg_key_prev && cfg_key_prev[0]) {
        rc = sh_key_parse(cfg_key_prev, "ENCRYPTION_KEY_PREVIOUS", &key_prev, err);
        if (rc)
            return rc;
        env.keys[env.nkeys++] = &key_prev;
        rc = sh_key_pair_check(&key, "ENCRYPTION_KEY", &key_prev, "ENCRYPTION_KEY_PREVIOUS", err);
        if (rc)
            return rc;
    }
    env.coordinator_rpc = cfg_coord_rpc;
    env.coordinator_events = cfg_coord_events;
    env.progress_rpc = cfg_progress_rpc;
    env.ca_file = cfg_ca_file;
    env.concurrency = (int)cfg_concurrency;
    env.connect_timeout_s = (int)cfg_connect_timeout;
    env.command_timeout_s = (int)cfg_command_timeout;
    env.command_deadline_s = (int)cfg_command_deadline;
    env.run_deadline_s = (int)cfg_run_deadline;
    env.allow_insecure = cfg_allow_insecure;
    rc = sh_hostpolicy_new(cfg_allow_hosts, cfg_deny_hosts, SH_IMAP_ALLOW_HOSTS, SH_IMAP_DENY_HOSTS,
                           &hosts, err);
    if (rc)
        return rc;
    env.hosts = hosts;
    env.fetch_batch = (int)cfg_batch;
    env.fetch_budget = (int)cfg_budget;
    env.check_window = (int)cfg_window;
    env.max_per_folder = cfg_max_per_folder;
    env.renew_s = (int)cfg_renew;
    env.events_max_len = cfg_events_len;
    env.events_max_age_s = cfg_events_age;
    env.max_watches = (int)cfg_max_watches;
    env.max_per_host = (int)cfg_per_host;
    env.idle_renew_s = (int)cfg_idle_renew;
    env.poll_s = (int)cfg_poll;
    env.watch_renew_s = (int)cfg_watch_renew;
    env.sweep_s = (int)cfg_sweep;
    return SH_OK;
}

/* sync_raise_fd_limit lifts the soft limit on open files to the hard one:
 * each watch holds a socket, and the usual soft limit of 1,024 is below
 * IMAP_MAX_WATCHES' default. */
static void sync_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit up = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl = up;
    }
    unsigned long long cur = rl.rlim_cur == RLIM_INFINITY ? 0 : (unsigned long long)rl.rlim_cur;
    sh_log_info("fd_limit", "open files limit %llu (hard limit %llu)", cur,
                rl.rlim_max == RLIM_INFINITY ? 0 : (unsigned long long)rl.rlim_max);
    if (cur && cur < (unsigned long long)cfg_max_watches + 64)
        sh_log_warn("fd_limit_low",
                    "open files limit %llu is below IMAP_MAX_WATCHES=%lld plus the sync "
                    "threads' connections; raise the hard limit (LimitNOFILE, ulimit -Hn)",
                    cur, cfg_max_watches);
}

static int sync_start(const sh_redis_url *url, sh_pub *pub, sh_error *err)
{
    sync_raise_fd_limit();
    int rc = sync_oauth_http_init(err);
    if (rc == SH_OK)
        rc = sync_workers_start(url, pub, &env, err);
    if (rc == SH_OK && (rc = sync_sweeper_start(url, &env, err)) != SH_OK)
        sync_workers_stop();
    return rc;
}

static void sync_stop(void)
{
    sync_sweeper_stop();
    sync_workers_stop();
    sync_oauth_http_fini();
    sh_hostpolicy_free(hosts);
    hosts = NULL;
}

int main(void)
{
    const sh_service_def def = {
        .name = "sync-worker",
        .settings = sync_settings,
        .rpc_var = "SYNC_WORKER_RPC_URL",
        .rpc_default = "tcp://127.0.0.1:7121",
        .events_var = "SYNC_WORKER_EVENTS_URL",
        .events_default = "tcp://127.0.0.1:7122",
        .ops = sync_ops,
        .env = &env,
        .validate = sync_validate,
        .start = sync_start,
        .stop = sync_stop,
    };
    return sh_service_main(&def);
}
