/* http_call.c - calls from a request to the services: one call, or several
 * at once whose outcomes reach the handler together. The connection is
 * suspended while they are in flight (no HTTP thread waits) and resumed by
 * the completion, which runs on a messaging thread. */
#include <stdatomic.h>
#include <stdlib.h>

#include "gw_http_int.h"

static void http_call_done(void *arg, int rc, sh_val *result, const sh_error *err)
{
    gw_req *r = arg;
    gw_http *h = r->h;
    struct MHD_Connection *conn = r->conn;
    if (r->call_fn)
        r->call_fn(r, rc, result, err);
    else if (rc == SH_OK)
        gw_req_reply_json(r, r->ok_status, result);
    else
        gw_req_reply_rpc_error(r, rc, err, r->not_found);
    sh_val_free(result);
    /* r may be freed by an HTTP thread as soon as the connection resumes. */
    MHD_resume_connection(conn);
    atomic_fetch_sub(&h->inflight, 1);
}

/* http_client picks the calling HTTP thread's RPC client of service svc. */
static sh_rpc_client *http_client(gw_http *h, int svc)
{
    static _Thread_local int slot = -1;
    static atomic_int next_slot;
    if (slot < 0)
        slot = atomic_fetch_add(&next_slot, 1);
    return h->app->rpc[svc][slot % h->app->nrpc];
}

void gw_req_call(gw_req *r, const char *op, sh_val *args, int timeout_ms, int ok_status,
                 const char *not_found, gw_call_fn fn)
{
    gw_req_call_svc(r, GW_SVC_PROGRESS, op, args, timeout_ms, ok_status, not_found, fn);
}

void gw_req_call_svc(gw_req *r, int svc, const char *op, sh_val *args, int timeout_ms,
                     int ok_status, const char *not_found, gw_call_fn fn)
{
    gw_http *h = r->h;
    atomic_fetch_add(&h->inflight, 1);
    if (atomic_load(&h->draining)) {
        atomic_fetch_sub(&h->inflight, 1);
        sh_val_free(args);
        gw_req_reply_error(r, 503, "the gateway is shutting down");
        return;
    }
    r->svc = svc;
    r->ok_status = ok_status;
    r->not_found = not_found;
    r->call_fn = fn;
    r->state = GW__HTTP_REQ_WAITING;
    MHD_suspend_connection(r->conn);
    int rc = sh_rpc_call_async(http_client(h, svc), op, args,
                               timeout_ms > 0 ? timeout_ms : (int)h->cfg->rpc_timeout_ms,
                               http_call_done, r);
    sh_val_free(args);
    if (rc != SH_OK) {
        sh_error e;
        sh_error_set(&e, rc, "cannot call %s: %s", op, sh_strerror(rc));
        http_call_done(r, rc, NULL, &e);
    }
}

/* A fan-out of calls for one request: each call's outcome lands in its slot;
 * the last to land runs the handler's function and resumes the connection. */
typedef struct http_fanout http_fanout;

typedef struct http_fanout_slot {
    http_fanout *f;
    size_t i;
} http_fanout_slot;

struct http_fanout {
    gw_req *r;
    gw_all_fn fn;
    size_t n;
    atomic_size_t pending;
    int rc[GW_CALLS_MAX];
    sh_val *results[GW_CALLS_MAX];
    sh_error errs[GW_CALLS_MAX];
    http_fanout_slot slots[GW_CALLS_MAX];
};

static void http_fanout_done(void *arg, int rc, sh_val *result, const sh_error *err)
{
    http_fanout_slot *slot = arg;
    http_fanout *f = slot->f;
    f->rc[slot->i] = rc;
    f->results[slot->i] = result;
    if (err)
        f->errs[slot->i] = *err;
    if (atomic_fetch_sub(&f->pending, 1) != 1)
        return;
    gw_req *r = f->r;
    gw_http *h = r->h;
    struct MHD_Connection *conn = r->conn;
    f->fn(r, f->n, f->rc, f->results, f->errs);
    for (size_t i = 0; i < f->n; i++)
        sh_val_free(f->results[i]);
    free(f);
    MHD_resume_connection(conn);
    atomic_fetch_sub(&h->inflight, 1);
}

void gw_req_call_all(gw_req *r, size_t n, gw_call_spec *calls, int timeout_ms, gw_all_fn fn)
{
    gw_http *h = r->h;
    http_fanout *f = n && n <= GW_CALLS_MAX ? calloc(1, sizeof *f) : NULL;
    if (!f || atomic_load(&h->draining)) {
        for (size_t i = 0; i < n; i++)
            sh_val_free(calls[i].args);
        free(f);
        gw_req_reply_error(r, 503, f ? "the gateway is shutting down" : "out of memory");
        return;
    }
    atomic_fetch_add(&h->inflight, 1);
    f->r = r;
    f->fn = fn;
    f->n = n;
    atomic_init(&f->pending, n);
    r->state = GW__HTTP_REQ_WAITING;
    MHD_suspend_connection(r->conn);
    int timeout = timeout_ms > 0 ? timeout_ms : (int)h->cfg->rpc_timeout_ms;
    for (size_t i = 0; i < n; i++) {
        f->slots[i] = (http_fanout_slot){f, i};
        int rc = sh_rpc_call_async(http_client(h, calls[i].svc), calls[i].op, calls[i].args,
                                   timeout, http_fanout_done, &f->slots[i]);
        sh_val_free(calls[i].args);
        if (rc != SH_OK) {
            sh_error e;
            sh_error_set(&e, rc, "cannot call %s: %s", calls[i].op, sh_strerror(rc));
            http_fanout_done(&f->slots[i], rc, NULL, &e);
        }
    }
}
