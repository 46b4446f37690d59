/* main.c - the coordinator: its settings and operations, run by the common
 * service loop of libshared. */
#include "handlers.h"
#include "ops.h"
#include "shared/service.h"

static long long cfg_ttl, cfg_max_ttl, cfg_max_rows, cfg_first_row, cfg_list_max;
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
     "most claims (and reservations) a list returns"},
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
    return SH_OK;
}

int main(void)
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
    };
    return sh_service_main(&def);
}
