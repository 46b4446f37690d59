/* routes_dashboard.c - GET /dashboard and its files, served from the table
 * embed.cmake compiles in: no token is needed to load them (their data
 * needs one), each carries its type, a strict Content-Security-Policy and
 * no-cache (the names are not versioned, so a browser must ask again after
 * an upgrade of the gateway). */
#include <microhttpd.h>
#include <string.h>

#include "gw_dashboard.h"
#include "gw_http.h"

const char gw_dashboard_csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                                "img-src 'self'; connect-src 'self'; base-uri 'none'; "
                                "form-action 'none'; frame-ancestors 'none'";

static const struct {
    const char *ext;
    const char *type;
} dashboard_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {NULL, NULL},
};

const gw_embed_file *gw_dashboard_find(const char *name)
{
    for (const gw_embed_file *f = gw_dashboard_files; f->name; f++)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

const char *gw_dashboard_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && dashboard_types[i].ext; i++)
        if (strcmp(dot, dashboard_types[i].ext) == 0)
            return dashboard_types[i].type;
    return NULL;
}

/* dashboard_reply answers with file f, or 404 when there is none (or it has
 * a type the dashboard does not serve). */
static void dashboard_reply(gw_req *r, const gw_embed_file *f)
{
    const char *type = f ? gw_dashboard_type(f->name) : NULL;
    if (!type) {
        gw_req_reply_error(r, 404, "not found");
        return;
    }
    /* The bytes are static: the response points at them. A response of the
     * handler's own making (gw_req_reply_stream takes any) is how headers
     * beyond the type go out. */
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(f->len, (void *)f->data, MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES ||
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache") != MHD_YES ||
        MHD_add_response_header(resp, "Content-Security-Policy", gw_dashboard_csp) != MHD_YES ||
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") != MHD_YES ||
        MHD_add_response_header(resp, "Referrer-Policy", "no-referrer") != MHD_YES ||
        MHD_add_response_header(resp, "X-Frame-Options", "DENY") != MHD_YES) {
        MHD_destroy_response(resp);
        gw_req_reply_error(r, 503, "out of memory");
        return;
    }
    gw_req_reply_stream(r, resp);
}

void gw_route_dashboard(gw_req *r)
{
    dashboard_reply(r, gw_dashboard_find(GW_DASHBOARD_PAGE));
}

void gw_route_dashboard_file(gw_req *r)
{
    const char *name = gw_req_param(r);
    dashboard_reply(r, strcmp(name, GW_DASHBOARD_PAGE) == 0 ? NULL : gw_dashboard_find(name));
}
