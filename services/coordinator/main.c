/* main.c - the coordinator: its settings and operations, run by the common
 * service loop of libshared. `coordinator rotate-keys` re-seals every
 * account's password under ENCRYPTION_KEY (ENCRYPTION_KEY_PREVIOUS opens the
 * old ones). */
#include <stdio.h>
#include <string.h>

#include "handlers.h"
#include "ops.h"
#include "shared/log.h"
#include "shared/service.h"
#include "ticker.h"

static long long cfg_ttl, cfg_max_ttl, cfg_max_rows, cfg_first_row, cfg_list_max;
static long long cfg_interval, cfg_batch, cfg_lease, cfg_watch_lease;
static const char *cfg_key, *cfg_key_prev, *cfg_allow_hosts, *cfg_deny_hosts;
static bool cfg_auto_tick, cfg_allow_insecure;
static sh_hostpolicy *hosts;
static sh_key key, key_prev;
static coord_env env;

static const sh_setting coord_settings[] = {
    {"CLAIM_TTL", NULL, SH_SET_INT, "600", 1, 7LL * 24 * 3600, &cfg_ttl, false,
     "seconds a claim or reservation lives unless renewed"},
    {"CLAIM_MAX_TTL", NULL, SH_SET_INT, "86400", 1, 30LL * 24 * 3600, &cfg_max_ttl, false,
     "largest ttlSeconds accepted"},
    {"RESERVE_MAX_ROWS", NULL, SH_SET_INT, "100000", 1, 1000000000LL, &cfg_max_rows, false,
     "largest rowCount accepted"},
    {"RESERVE_FIRST_ROW", NULL, SH_SET_INT, "1", 0, 1000000000LL, &cfg_first_row, false,
     "first row handed out in a log"},
    {"QUEUE_LIST_MAX", NULL, SH_SET_INT, "10000", 1, 1000000, &cfg_list_max, false,
     "most entries a list returns"},
    {"ENCRYPTION_KEY", NULL, SH_SET_SECRET, NULL, 0, 4096, &cfg_key, false,
     "64 hex characters sealing account passwords"},
    {"ENCRYPTION_KEY_PREVIOUS", NULL, SH_SET_SECRET, NULL, 0, 4096, &cfg_key_prev, false,
     "the former key, while rotating"},
    {"SYNC_INTERVAL_MINUTES", NULL, SH_SET_INT, "15", 1, 1440, &cfg_interval, false,
     "minutes between two syncs of an account"},
    {"EMAIL_SYNC_BATCH_SIZE", NULL, SH_SET_INT, "5", 1, 1000, &cfg_batch, false,
     "most accounts queued per minute"},
    {"SYNC_LEASE_SECONDS", NULL, SH_SET_INT, "120", 5, 3600, &cfg_lease, false,
     "a sync worker's lease on an account unless renewed"},
    {"WATCH_LEASE_SECONDS", NULL, SH_SET_INT, "60", 3, 3600, &cfg_watch_lease, false,
     "a sync worker's lease on an account's IDLE watch, unless renewed"},
    {"SCHED_AUTO_TICK", NULL, SH_SET_BOOL, "true", 0, 0, &cfg_auto_tick, false,
     "tick the schedule every minute"},
    {"IMAP_ALLOW_HOSTS", NULL, SH_SET_STR, NULL, 0, 0, &cfg_allow_hosts, false,
     "host names, addresses and CIDR ranges an account may use although private or loopback"},
    {"IMAP_DENY_HOSTS", NULL, SH_SET_STR, NULL, 0, 0, &cfg_deny_hosts, false,
     "host names, addresses and CIDR ranges an account may not use"},
    {"IMAP_ALLOW_INSECURE", NULL, SH_SET_BOOL, "false", 0, 0, &cfg_allow_insecure, false,
     "allow accounts with security none or tlsVerify false"},
    {NULL, NULL, 0, NULL, 0, 0, NULL, false, NULL},
};

static int coord_validate(sh_error *err)
{
    if (cfg_ttl > cfg_max_ttl)
        return sh_error_set(err, SH_EINVAL, "CLAIM_TTL (%lld) exceeds CLAIM_MAX_TTL (%lld)",
                            cfg_ttl, cfg_max_ttl);
    env.default_ttl = cfg_ttl;
    env.max_ttl = cfg_max_ttl;
    env.max_rows = cfg_max_rows;
    env.first_row = cfg_first_row;
    env.list_max = cfg_list_max;
    env.interval_min = cfg_interval;
    env.batch = cfg_batch;
    env.lease_s = cfg_lease;
    env.watch_lease_s = cfg_watch_lease;
    env.allow_insecure = cfg_allow_insecure;
    int prc = sh_hostpolicy_new(cfg_allow_hosts, cfg_deny_hosts, SH_IMAP_ALLOW_HOSTS,
                                SH_IMAP_DENY_HOSTS, &hosts, err);
    if (prc)
        return prc;
    env.hosts = hosts;
    if (cfg_key) {
        int rc = sh_key_parse(cfg_key, "ENCRYPTION_KEY", &key, err);
        if (rc)
            return rc;
        env.key = &key;
    } else {
        sh_log_warn("no_encryption_key", "ENCRYPTION_KEY is not set: email accounts are "
                                         "disabled until it is");
    }
    if (cfg_key_prev) {
        int rc = sh_key_parse(cfg_key_prev, "ENCRYPTION_KEY_PREVIOUS", &key_prev, err);
        if (rc)
            return rc;
        env.key_prev = &key_prev;
    }
    return sh_key_pair_check(env.key, "ENCRYPTION_KEY", env.key_prev, "ENCRYPTION_KEY_PREVIOUS",
                             err);
}

static int coord_start(const sh_redis_url *url, sh_pub *pub, sh_error *err)
{
    sh_store *store = NULL;
    int rc = sh_store_new(url, NULL, &store, err);
    if (rc == SH_OK)
        rc = coord_rows_check_first(store, cfg_first_row, err);
    sh_store_free(store);
    /* Redis down: the reserve script's floor still keeps rows apart. */
    if (rc == SH_EUNAVAIL || rc == SH_ETIMEDOUT) {
        sh_log_warn("rows_check", "RESERVE_FIRST_ROW not checked: %s", err->msg);
        rc = SH_OK;
    }
    if (rc)
        return rc;
    return cfg_auto_tick ? coord_ticker_start(url, pub, &env, err) : SH_OK;
}

static void coord_stop(void)
{
    coord_ticker_stop();
    sh_hostpolicy_free(hosts);
    hosts = NULL;
}

static int coord_rotate_command(sh_store *store, const void *e, sh_error *err)
{
    coord_rotate_counts n;
    int rc = coord_rotate(store, e, &n, err);
    printf("rotate-keys: %lld scanned, %lld re-sealed, %lld already current, %lld failed\n",
           n.scanned, n.resealed, n.current, n.failed);
    fflush(stdout);
    return rc;
}

int main(int argc, char **argv)
{
    const sh_service_def def = {
        .name = "coordinator",
        .settings = coord_settings,
        .rpc_var = "COORDINATOR_RPC_URL",
        .rpc_default = "tcp://127.0.0.1:7111",
        .events_var = "COORDINATOR_EVENTS_URL",
        .events_default = "tcp://127.0.0.1:7112",
        .ops = coord_ops,
        .env = &env,
        .validate = coord_validate,
        .start = coord_start,
        .stop = coord_stop,
    };
    if (argc > 1) {
        if (strcmp(argv[1], "rotate-keys") == 0)
            return sh_service_command(&def, "rotate_keys", coord_rotate_command);
        fprintf(stderr, "usage: %s [rotate-keys]\n", argv[0]);
        return 2;
    }
    return sh_service_main(&def);
}
