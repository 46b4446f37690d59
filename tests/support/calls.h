/* calls.h - calling a service from a test: one RPC call with its arguments
 * taken, a client dialed or the test failed, and the argument maps. */
#ifndef TESTS_CALLS_H
#define TESTS_CALLS_H

#include <stdint.h>

#include "shared/rpc.h"
#include "shared/val.h"

/* tf_call calls op on c with args (taken: freed here) and waits up to
 * timeout_ms; the result goes to *out (caller frees) or is dropped when
 * out is NULL, the error to err (may be NULL). Returns the call's code. */
int tf_call(sh_rpc_client *c, const char *op, sh_val *args, int timeout_ms, sh_val **out,
            sh_error *err);

/* tf_client dials urls (a comma-separated list) with a 5 s timeout; the
 * running cmocka test fails when it cannot. Freed with sh_rpc_client_free. */
sh_rpc_client *tf_client(const char *urls);

/* tf_put_str and tf_put_int set key k of map m to v. */
void tf_put_str(sh_val *m, const char *k, const char *v);
void tf_put_int(sh_val *m, const char *k, int64_t v);
/* tf_id_args returns a new map {"id": id} (caller frees). */
sh_val *tf_id_args(const char *id);

/* tf_progress_args returns the arguments {id, fields: {field: value}} of a
 * progress.update (caller frees). */
sh_val *tf_progress_args(const char *id, const char *field, int64_t value);
/* tf_progress_update sets field of progress record id to value through c
 * (progress.update, 5 s); the record goes to *out (caller frees; NULL
 * drops it). Returns the call's code. */
int tf_progress_update(sh_rpc_client *c, const char *id, const char *field, int64_t value,
                       sh_val **out);

/* A writer of one field of a progress record, run by
 * tf_progress_writer_main (for pthread_create): it writes 1..writes to
 * field "f<idx>" of record id through c, one update each, and counts the
 * calls that failed and the replies out of order (a version not above its
 * last, or the field not the value just written); versions (may be NULL)
 * receives every version it got back. */
typedef struct tf_progress_writer {
    sh_rpc_client *c;
    const char *id;
    int idx, writes;
    int failures, out_of_order;
    int64_t *versions;
} tf_progress_writer;
void *tf_progress_writer_main(void *arg);

#endif
