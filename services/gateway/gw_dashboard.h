/* gw_dashboard.h - the dashboard: the static files of services/gateway/dashboard/,
 * embedded at build time by embed.cmake, and the routes that serve them. Only
 * the files of that table can be served, so no path reaches anything else. */
#ifndef GW_DASHBOARD_H
#define GW_DASHBOARD_H

#include <stddef.h>

typedef struct gw_req gw_req;

/* One embedded file: its name in the directory, its bytes (len of them,
 * then a NUL). */
typedef struct gw_embed_file {
    const char *name;
    const unsigned char *data;
    size_t len;
} gw_embed_file;

/* The dashboard's files, ending in a row whose name is NULL. */
extern const gw_embed_file gw_dashboard_files[];

/* The page itself; GET /dashboard answers it, GET /dashboard/:file the
 * other files. */
#define GW_DASHBOARD_PAGE "index.html"

/* The Content-Security-Policy of every dashboard reply: scripts, styles and
 * images from the gateway only, nothing inline, requests to the gateway only. */
extern const char gw_dashboard_csp[];

/* gw_dashboard_find returns the file named name, or NULL. */
const gw_embed_file *gw_dashboard_find(const char *name);

/* gw_dashboard_type returns the Content-Type of a file name by its
 * extension, or NULL for an extension the dashboard does not use. */
const char *gw_dashboard_type(const char *name);

/* GET /dashboard: the page. */
void gw_route_dashboard(gw_req *r);
/* GET /dashboard/:file: one of its scripts, style sheets or images (not the
 * page: its relative links hold only at /dashboard). */
void gw_route_dashboard_file(gw_req *r);

#endif
