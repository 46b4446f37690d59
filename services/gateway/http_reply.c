/* http_reply.c - the replies a request can be given (JSON, raw, an error
 * body, a stream) and the mapping of a service's error codes to HTTP
 * statuses. A reply is only recorded here; http.c sends it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_http_int.h"
#include "gw_json.h"

const char gw__http_json[] = "application/json";

const char *gw_service_name(int svc)
{
    return svc == GW_SVC_COORDINATOR ? "coordinator"
           : svc == GW_SVC_SYNC      ? "sync-worker"
                                     : "progress";
}

static void http_reply_clear(gw_req *r)
{
    free(r->resp);
    r->resp = NULL;
    r->resp_len = 0;
    r->xhdr_name = NULL;
    r->xhdr_value = NULL;
}

void gw_req_reply_raw(gw_req *r, int status, const char *content_type, sh_buf *body)
{
    http_reply_clear(r);
    r->resp = sh_buf_steal(body, &r->resp_len);
    if (!r->resp) {
        status = 500;
        r->resp_len = 0;
    }
    r->status = status;
    r->ctype = content_type;
    r->replied = true;
}

void gw_req_reply_json(gw_req *r, int status, const sh_val *v)
{
    sh_buf b;
    sh_buf_init(&b);
    if (gw_json_write(v, &b) != SH_OK) {
        sh_buf_fini(&b);
        gw_req_reply_error(r, 500, "out of memory writing the reply");
        return;
    }
    gw_req_reply_raw(r, status, gw__http_json, &b);
}

/* Routes of seed 003 answer errors as {"success": false, "error": ...}. */
static void http_reply_verror(gw_req *r, int status, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    sh_buf b;
    sh_buf_init(&b);
    bool seed = r->m.route && (r->m.route->flags & GW_ROUTE_SEED);
    sh_buf_puts(&b, seed ? "{\"success\":false,\"error\":" : "{\"error\":");
    gw_json_write_str(&b, msg, strlen(msg));
    sh_buf_puts(&b, "}");
    gw_req_reply_raw(r, status, gw__http_json, &b);
}

void gw_req_reply_error(gw_req *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    http_reply_verror(r, status, fmt, ap);
    va_end(ap);
}

void gw_req_reply_stream(gw_req *r, struct MHD_Response *resp)
{
    http_reply_clear(r);
    r->stream = resp;
    r->status = MHD_HTTP_OK;
    r->replied = true;
}

void gw_req_reply_header(gw_req *r, const char *name, const char *value)
{
    r->xhdr_name = name;
    r->xhdr_value = value;
}

void gw_req_reply_upgrade(gw_req *r, struct MHD_Response *resp)
{
    http_reply_clear(r);
    r->stream = resp;
    r->status = MHD_HTTP_SWITCHING_PROTOCOLS;
    r->replied = true;
    r->upgraded = true;
}

void gw_req_reply_rpc_error(gw_req *r, int rc, const sh_error *err, const char *not_found)
{
    const char *msg = err && err->msg[0] ? err->msg : sh_strerror(rc);
    switch (rc) {
    case SH_EINVAL:
    case SH_EPROTO:
    case SH_ELIMIT:
        gw_req_reply_error(r, 400, "%s", msg);
        break;
    case SH_ENOTFOUND:
        gw_req_reply_error(r, 404, "%s", not_found ? not_found : msg);
        break;
    case SH_ECONFLICT:
    case SH_ELEASE:
        gw_req_reply_error(r, 409, "%s", msg);
        break;
    case SH_ETOOBIG:
        gw_req_reply_error(r, 413, "%s", msg);
        break;
    case SH_EUNAVAIL:
        /* The service's own words, e.g. that Redis is down. */
        gw_req_reply_error(r, 503, "%s", msg);
        break;
    case SH_EUNKNOWN:
        /* A write whose reply was lost: the client may retry it with the
         * same Idempotency-Key and get the first outcome. */
        gw_req_reply_error(r, 503, "%s", msg);
        break;
    case SH_ETIMEDOUT:
    case SH_ECLOSED:
        gw_req_reply_error(r, 503, "%s service unavailable: %s", gw_service_name(r->svc), msg);
        break;
    default:
        gw_req_reply_error(r, 500, "internal error: %s", msg);
    }
}
