/* err.c - names and descriptions of the error codes of err.h. */
#include "shared/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "shared/text.h"

static const struct {
    int code;
    const char *name;
    const char *text;
} err_table[] = {
    {SH_OK, "ok", "success"},
    {SH_EINVAL, "invalid_argument", "invalid argument"},
    {SH_ENOTFOUND, "not_found", "not found"},
    {SH_ECONFLICT, "conflict", "held by someone else"},
    {SH_ELEASE, "lease_lost", "lease lost"},
    {SH_ETOOBIG, "too_large", "too large"},
    {SH_EPROTO, "malformed", "malformed message"},
    {SH_EUNAVAIL, "unavailable", "dependency unavailable"},
    {SH_ETIMEDOUT, "timeout", "timed out"},
    {SH_ENOMEM, "no_memory", "out of memory"},
    {SH_EINTERNAL, "internal", "internal error"},
    {SH_ENOOP, "unknown_operation", "unknown operation"},
    {SH_ECLOSED, "closed", "closed"},
    {SH_ELIMIT, "limit_exceeded", "limit exceeded"},
    {SH_EAUTH, "unauthenticated", "unauthenticated message"},
    {SH_EUNKNOWN, "outcome_unknown", "outcome unknown, safe to retry with the same request id"},
    {0, NULL, NULL},
};

const char *sh_strerror(int code)
{
    for (size_t i = 0; err_table[i].name; i++)
        if (err_table[i].code == code)
            return err_table[i].text;
    return "unknown error";
}

const char *sh_err_name(int code)
{
    for (size_t i = 0; err_table[i].name; i++)
        if (err_table[i].code == code)
            return err_table[i].name;
    return "internal";
}

int sh_err_from_name(const char *name, size_t len)
{
    for (size_t i = 0; err_table[i].name; i++)
        if (strlen(err_table[i].name) == len && memcmp(err_table[i].name, name, len) == 0)
            return err_table[i].code;
    return SH_EINTERNAL;
}

int sh_error_set(sh_error *err, int code, const char *fmt, ...)
{
    if (err) {
        /* Formatted aside first: the arguments may quote err->msg itself
         * (wrapping an error with context). */
        char msg[sizeof err->msg];
        msg[0] = '\0';
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        err->code = code;
        /* Messages quote servers and libraries: valid UTF-8 without
         * control characters, whatever they sent. */
        sh_text_bound(err->msg, sizeof err->msg, msg, strlen(msg));
    }
    return code;
}

void sh_error_clear(sh_error *err)
{
    if (err) {
        err->code = SH_OK;
        err->msg[0] = '\0';
    }
}
