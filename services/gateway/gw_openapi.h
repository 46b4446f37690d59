/* gw_openapi.h - the OpenAPI 3.1 description of the HTTP API
 * (services/gateway/openapi.json, embedded at build time by embed.cmake) and
 * the route that serves it. */
#ifndef GW_OPENAPI_H
#define GW_OPENAPI_H

#include <stddef.h>

typedef struct gw_req gw_req;

/* The document's bytes (gw_openapi_json_len of them, then a NUL). */
extern const unsigned char gw_openapi_json[];
extern const size_t gw_openapi_json_len;

/* gw_route_openapi answers GET /openapi.json with the document. */
void gw_route_openapi(gw_req *r);

#endif
