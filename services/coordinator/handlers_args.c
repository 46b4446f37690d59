/* handlers_args.c - the argument checks every handler file shares: below
 * handlers.c, handlers_accounts.c and handlers_watch.c. */
#include <string.h>

#include "handlers.h"
#include "shared/keys.h"

int coord_arg_id(const sh_val *args, const char *name, const char **out, sh_error *err)
{
    if (sh_val_type_of(args) != SH_VAL_MAP)
        return sh_error_set(err, SH_EINVAL, "arguments must be an object, got %s",
                            sh_val_type_name(sh_val_type_of(args)));
    size_t len;
    const char *s = sh_val_get_str(args, name, &len);
    if (!s || !sh_id_valid(s, len))
        return sh_error_set(err, SH_EINVAL, "field \"%s\" must be an id ([A-Za-z0-9._:-]{1,128})",
                            name);
    *out = s;
    return SH_OK;
}

int coord_args_known(const sh_val *args, const char *const *names, sh_error *err)
{
    if (sh_val_type_of(args) != SH_VAL_MAP)
        return sh_error_set(err, SH_EINVAL, "arguments must be an object, got %s",
                            sh_val_type_name(sh_val_type_of(args)));
    for (size_t i = 0; i < sh_val_len(args); i++) {
        const char *k = sh_val_key_at(args, i, NULL);
        bool ok = false;
        for (size_t j = 0; names[j] && !ok; j++)
            ok = strcmp(k, names[j]) == 0;
        if (!ok) {
            char list[256] = "";
            for (size_t j = 0; names[j]; j++) {
                strncat(list, j ? ", " : "", sizeof list - strlen(list) - 1);
                strncat(list, names[j], sizeof list - strlen(list) - 1);
            }
            return sh_error_set(err, SH_EINVAL, "unknown field \"%.40s\" (allowed: %s)", k, list);
        }
    }
    return SH_OK;
}
