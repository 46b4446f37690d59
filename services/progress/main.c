/* main.c - the progress service: its settings and operations, run by the
 * common service loop of libshared. */
#include "handlers.h"
#include "ops.h"
#include "shared/service.h"

static long long cfg_ttl, cfg_log_cap;
static prog_env env;

static const sh_setting prog_settings[] = {
    {"PROGRESS_TTL", NULL, SH_SET_INT, "3600", 1, 30LL * 24 * 3600, &cfg_ttl, false,
     "seconds a record lives after its last write"},
    {"PROGRESS_LOG_CAP", NULL, SH_SET_INT, "100", 1, 100000, &cfg_log_cap, false,
     "entries kept per error log"},
    {NULL, NULL, 0, NULL, 0, 0, NULL, false, NULL},
};

static int prog_validate(sh_error *err)
{
    env.ttl = cfg_ttl;
    env.log_cap = cfg_log_cap;
    return SH_OK;
}

int main(void)
{
    const sh_service_def def = {
        .name = "progress",
        .settings = prog_settings,
        .rpc_var = "PROGRESS_RPC_URL",
        .rpc_default = "tcp://127.0.0.1:7101",
        .events_var = "PROGRESS_EVENTS_URL",
        .events_default = "tcp://127.0.0.1:7102",
        .ops = prog_ops,
        .env = &env,
        .validate = prog_validate,
    };
    return sh_service_main(&def);
}
