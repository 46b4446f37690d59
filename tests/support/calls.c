/* calls.c - calling a service from a test (calls.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include "calls.h"

int tf_call(sh_rpc_client *c, const char *op, sh_val *args, int timeout_ms, sh_val **out,
            sh_error *err)
{
    sh_val *res = NULL;
    sh_error e;
    int rc = sh_rpc_call(c, op, args, timeout_ms, &res, err ? err : &e);
    sh_val_free(args);
    if (out)
        *out = res;
    else
        sh_val_free(res);
    return rc;
}

sh_rpc_client *tf_client(const char *urls)
{
    sh_rpc_client *c = NULL;
    sh_error err;
    if (sh_rpc_client_new(urls, 5000, 0, &c, &err) != SH_OK)
        fail_msg("cannot dial %s: %s", urls, err.msg);
    return c;
}

void tf_put_str(sh_val *m, const char *k, const char *v)
{
    sh_val_set_cstr(m, k, sh_val_new_cstr(v));
}

void tf_put_int(sh_val *m, const char *k, int64_t v)
{
    sh_val_set_cstr(m, k, sh_val_new_int(v));
}

sh_val *tf_id_args(const char *id)
{
    sh_val *a = sh_val_new_map();
    tf_put_str(a, "id", id);
    return a;
}
