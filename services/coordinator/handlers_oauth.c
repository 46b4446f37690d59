/* handlers_oauth.c - argument checking for the OAuth2 refresh operations
 * (listed in coord_ops, handlers.c). */
#include <string.h>

#include "handlers.h"
#include "ops.h"

#define HO_VERSION_MAX 32
/* A sealed secret: a few tokens of at most 8 KiB each, sealed. */
#define HO_SEALED_MAX (64 * 1024)

static int ho_args(const sh_val *args, const char **id, const char **worker, const char **version,
                   sh_error *err)
{
    if (sh_val_type_of(args) != SH_VAL_MAP)
        return sh_error_set(err, SH_EINVAL, "arguments must be an object");
    size_t len;
    *id = sh_val_get_str(args, "accountId", &len);
    if (!*id || !sh_id_valid(*id, len))
        return sh_error_set(err, SH_EINVAL,
                            "field \"accountId\" must be an id ([A-Za-z0-9._:-]{1,128})");
    *worker = sh_val_get_str(args, "worker", &len);
    if (!*worker || !sh_id_valid(*worker, len))
        return sh_error_set(err, SH_EINVAL,
                            "field \"worker\" must be an id ([A-Za-z0-9._:-]{1,128})");
    *version = sh_val_get_str(args, "version", &len);
    if (!*version || len > HO_VERSION_MAX || strlen(*version) != len)
        return sh_error_set(err, SH_EINVAL, "field \"version\" must be a string of 0..%d bytes",
                            HO_VERSION_MAX);
    for (size_t i = 0; i < len; i++)
        if (!strchr("0123456789abcdef", (*version)[i]))
            return sh_error_set(err, SH_EINVAL, "field \"version\" must be hexadecimal");
    return SH_OK;
}

int coord_h_oauth_begin(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    const char *id, *worker, *version;
    int rc = ho_args(args, &id, &worker, &version, err);
    return rc ? rc : coord_oauth_begin(state, id, worker, version, result, err);
}

int coord_h_oauth_end(void *state, const sh_val *args, sh_val **result, sh_error *err)
{
    const char *id, *worker, *version;
    int rc = ho_args(args, &id, &worker, &version, err);
    if (rc)
        return rc;
    const sh_val *sealed = sh_val_get(args, "secretSealed");
    size_t len = 0;
    const char *blob = NULL;
    if (sealed) {
        blob = sh_val_str(sealed, &len);
        if ((sh_val_type_of(sealed) != SH_VAL_BIN && sh_val_type_of(sealed) != SH_VAL_STR) ||
            len == 0 || len > HO_SEALED_MAX)
            return sh_error_set(err, SH_EINVAL,
                                "field \"secretSealed\" must be a sealed secret of 1..%d bytes",
                                HO_SEALED_MAX);
    }
    const sh_val *exp = sh_val_get(args, "expiresAt");
    if (blob && (sh_val_type_of(exp) != SH_VAL_INT || sh_val_int(exp) <= 0))
        return sh_error_set(err, SH_EINVAL,
                            "field \"expiresAt\" (ms since the epoch) is required with "
                            "secretSealed");
    bool transient = sh_val_bool(sh_val_get(args, "transient"));
    return coord_oauth_end(state, id, worker, version, blob, len, blob ? sh_val_int(exp) : 0,
                           transient, result, err);
}
