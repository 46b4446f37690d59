/* config.h - settings from the environment, one table row per setting.
 *
 * A service declares a table of sh_setting rows ending in a row whose name is
 * NULL, then calls sh_config_load once at start-up. Each row names the
 * variable (and an optional alias such as KV_URL for REDIS_URL), its type,
 * default, bounds and target. Errors name the variable and what is wrong. */
#ifndef SHARED_CONFIG_H
#define SHARED_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "shared/err.h"

typedef enum sh_setting_type {
    SH_SET_INT,    /* target: long long *; bounds min..max */
    SH_SET_STR,    /* target: const char **; points into the environment or def */
    SH_SET_SECRET, /* like STR, never logged; min = minimum length; the
                    * example values of deploy/.env.example are refused */
    SH_SET_BOOL,   /* target: bool *; accepts 1/0 true/false yes/no on/off */
} sh_setting_type;

typedef struct sh_setting {
    const char *name;
    const char *alias; /* or NULL */
    sh_setting_type type;
    const char *def; /* default as text, or NULL for none */
    long long min, max;
    void *target;
    bool required;
    const char *help;
} sh_setting;

/* Every secret's example value in deploy/.env.example starts with this;
 * such a value is refused (sh_config_placeholder). */
#define SH_CONFIG_PLACEHOLDER "change-me"

/* sh_config_placeholder reports whether value is an example value of
 * deploy/.env.example (it starts with SH_CONFIG_PLACEHOLDER, in any case):
 * a secret left as the example says is no secret. */
bool sh_config_placeholder(const char *value);

/* sh_config_load reads every row of table from the environment. On error it
 * returns SH_EINVAL and err names the setting; targets may be half set. */
int sh_config_load(const sh_setting *table, sh_error *err);

/* sh_config_describe appends one line per setting (name, value, or "<secret>"
 * / "<unset>") to a log-friendly string; caller frees. */
char *sh_config_describe(const sh_setting *table);

#endif
