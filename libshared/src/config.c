/* config.c - settings from the environment, validated against their table
 * rows; errors name the variable and the accepted range. */
#include "shared/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "shared/buf.h"

static const char *config_raw(const sh_setting *s, const char **used)
{
    const char *v = getenv(s->name);
    *used = s->name;
    if ((!v || !*v) && s->alias) {
        v = getenv(s->alias);
        *used = s->alias;
    }
    if (v && !*v)
        v = NULL;
    if (!v)
        *used = s->name;
    return v;
}

static int config_one(const sh_setting *s, sh_error *err)
{
    const char *used;
    const char *v = config_raw(s, &used);
    if (!v && s->required)
        return sh_error_set(err, SH_EINVAL, "%s is required but not set%s%s", s->name,
                            s->help ? ": " : "", s->help ? s->help : "");
    const char *text = v ? v : s->def;
    switch (s->type) {
    case SH_SET_INT: {
        if (!text)
            return SH_OK;
        char *end;
        errno = 0;
        long long n = strtoll(text, &end, 10);
        if (errno || end == text || *end != '\0')
            return sh_error_set(err, SH_EINVAL, "%s must be an integer, got \"%.64s\"", used, text);
        if (n < s->min || n > s->max)
            return sh_error_set(err, SH_EINVAL, "%s must be between %lld and %lld, got %lld", used,
                                s->min, s->max, n);
        *(long long *)s->target = n;
        return SH_OK;
    }
    case SH_SET_BOOL: {
        if (!text)
            return SH_OK;
        static const char *yes[] = {"1", "true", "yes", "on"};
        static const char *no[] = {"0", "false", "no", "off"};
        for (int i = 0; i < 4; i++) {
            if (strcasecmp(text, yes[i]) == 0) {
                *(bool *)s->target = true;
                return SH_OK;
            }
            if (strcasecmp(text, no[i]) == 0) {
                *(bool *)s->target = false;
                return SH_OK;
            }
        }
        return sh_error_set(err, SH_EINVAL, "%s must be true or false, got \"%.64s\"", used, text);
    }
    case SH_SET_STR:
    case SH_SET_SECRET:
        if (text && s->max > 0 && (long long)strlen(text) > s->max)
            return sh_error_set(err, SH_EINVAL, "%s is too long (%zu characters, at most %lld)",
                                used, strlen(text), s->max);
        if (text && s->type == SH_SET_SECRET && sh_config_placeholder(text))
            return sh_error_set(err, SH_EINVAL,
                                "%s is still the example value of deploy/.env.example: set a "
                                "secret of your own (openssl rand -hex 32)",
                                used);
        if (text && s->type == SH_SET_SECRET && (long long)strlen(text) < s->min)
            return sh_error_set(err, SH_EINVAL, "%s is too short (%zu characters, at least %lld)",
                                used, strlen(text), s->min);
        *(const char **)s->target = text;
        return SH_OK;
    }
    return sh_error_set(err, SH_EINVAL, "%s: unknown setting type", s->name);
}

int sh_config_load(const sh_setting *table, sh_error *err)
{
    for (const sh_setting *s = table; s->name; s++) {
        int rc = config_one(s, err);
        if (rc != SH_OK)
            return rc;
    }
    return SH_OK;
}

bool sh_config_placeholder(const char *value)
{
    return value && strncasecmp(value, SH_CONFIG_PLACEHOLDER, strlen(SH_CONFIG_PLACEHOLDER)) == 0;
}

char *sh_config_describe(const sh_setting *table)
{
    sh_buf b;
    sh_buf_init(&b);
    for (const sh_setting *s = table; s->name; s++) {
        if (b.len)
            sh_buf_puts(&b, " ");
        switch (s->type) {
        case SH_SET_INT:
            sh_buf_printf(&b, "%s=%lld", s->name, *(long long *)s->target);
            break;
        case SH_SET_BOOL:
            sh_buf_printf(&b, "%s=%s", s->name, *(bool *)s->target ? "true" : "false");
            break;
        case SH_SET_STR: {
            const char *v = *(const char **)s->target;
            sh_buf_printf(&b, "%s=%s", s->name, v ? v : "<unset>");
            break;
        }
        case SH_SET_SECRET:
            sh_buf_printf(&b, "%s=%s", s->name, *(const char **)s->target ? "<secret>" : "<unset>");
            break;
        }
    }
    return sh_buf_steal(&b, NULL);
}
