/* routes_view.c - views of service answers: the route files pass on only
 * the fields they name, so nothing a service adds leaks through the edge. */
#include "gw_routes_int.h"

#include <stddef.h>

#include "shared/err.h"

int gw__routes_copy(sh_val *dst, const sh_val *src, const char *const *names)
{
    for (size_t i = 0; names[i]; i++) {
        const sh_val *v = sh_val_get(src, names[i]);
        if (v && sh_val_set_cstr(dst, names[i], sh_val_clone(v)) != SH_OK)
            return SH_ENOMEM;
    }
    return SH_OK;
}

sh_val *gw__routes_pick(const sh_val *src, const char *const *names)
{
    sh_val *m = sh_val_new_map();
    if (m && gw__routes_copy(m, src, names) != SH_OK) {
        sh_val_free(m);
        return NULL;
    }
    return m;
}
