/* calls.c - calling a service from a test (calls.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include "calls.h"

#include <stdio.h>

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

sh_val *tf_progress_args(const char *id, const char *field, int64_t value)
{
    sh_val *a = tf_id_args(id), *f = sh_val_new_map();
    tf_put_int(f, field, value);
    sh_val_set_cstr(a, "fields", f);
    return a;
}

int tf_progress_update(sh_rpc_client *c, const char *id, const char *field, int64_t value,
                       sh_val **out)
{
    return tf_call(c, "progress.update", tf_progress_args(id, field, value), 5000, out, NULL);
}

void *tf_progress_writer_main(void *arg)
{
    tf_progress_writer *w = arg;
    char field[16];
    snprintf(field, sizeof field, "f%d", w->idx);
    int64_t last = 0;
    for (int i = 1; i <= w->writes; i++) {
        sh_val *rec = NULL;
        if (tf_progress_update(w->c, w->id, field, i, &rec) != SH_OK) {
            w->failures++;
            continue;
        }
        int64_t v = sh_val_int(sh_val_get(rec, "version"));
        if (v <= last || sh_val_int(sh_val_get(rec, field)) != i)
            w->out_of_order++;
        if (w->versions)
            w->versions[i - 1] = v;
        last = v;
        sh_val_free(rec);
    }
    return NULL;
}
