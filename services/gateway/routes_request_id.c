/* routes_request_id.c - the Idempotency-Key header of the routes that
 * create something: checked here, then passed to the service as the call's
 * "requestId", which the service's create script records with its outcome
 * so that a retry answers that outcome instead of creating again. */
#include <string.h>

#include "gw_routes.h"
#include "gw_routes_int.h"
#include "shared/keys.h"

const char *gw__routes_request_id_check(const char *key)
{
    size_t len = strlen(key);
    if (len == 0 || len > SH_ID_MAX)
        return "Idempotency-Key must be 1 to 128 characters long";
    if (!sh_id_valid(key, len))
        return "Idempotency-Key may only hold letters, digits and . _ : - (a UUID will do)";
    return NULL;
}

bool gw__routes_add_request_id(gw_req *r, sh_val *args)
{
    const char *key = gw_req_header(r, "Idempotency-Key");
    if (!key)
        return true;
    const char *why = gw__routes_request_id_check(key);
    if (why) {
        gw_req_reply_error(r, 400, "%s", why);
        return false;
    }
    if (sh_val_set_cstr(args, "requestId", sh_val_new_cstr(key)) != SH_OK) {
        gw_req_reply_error(r, 503, "out of memory");
        return false;
    }
    return true;
}
