/* test_openapi.c - the embedded API description (services/gateway/openapi.json)
 * and the router's table describe the same routes: every row is one
 * operation of the document and every operation a row, with the same
 * parameters, body and token. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <ctype.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "gw_openapi.h"
#include "gw_router.h"
#include "gw_routes.h"

#define TEMPLATE_MAX 256

static const char *const openapi_methods[] = {"get",  "put",   "post",  "delete", "options",
                                              "head", "patch", "trace", NULL};

static json_object *openapi_doc;

static int openapi_setup(void **state)
{
    json_tokener *tok = json_tokener_new();
    assert_non_null(tok);
    openapi_doc =
        json_tokener_parse_ex(tok, (const char *)gw_openapi_json, (int)gw_openapi_json_len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    if (!openapi_doc || jerr != json_tokener_success)
        fail_msg("openapi.json does not parse: %s at byte %zu", json_tokener_error_desc(jerr),
                 json_tokener_get_parse_end(tok));
    /* The whole text is one document, nothing after it. */
    assert_int_equal(json_tokener_get_parse_end(tok), gw_openapi_json_len);
    json_tokener_free(tok);
    return 0;
}

static int openapi_teardown(void **state)
{
    json_object_put(openapi_doc);
    openapi_doc = NULL;
    return 0;
}

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* openapi_template writes the document's form of a router pattern:
 * "/api/accounts/:id/messages/:uid" -> "/api/accounts/{id}/messages/{uid}". */
static void openapi_template(const char *pattern, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = pattern; *p && n + 2 < size; p++) {
        if (*p == ':' && p > pattern && p[-1] == '/') {
            out[n++] = '{';
            p++;
            while (*p && *p != '/' && n + 2 < size)
                out[n++] = *p++;
            out[n++] = '}';
            if (!*p)
                break;
        }
        out[n++] = *p;
    }
    out[n] = '\0';
}

static void lower(const char *s, char *out, size_t size)
{
    size_t i = 0;
    for (; s[i] && i + 1 < size; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[i] = '\0';
}

/* openapi_operation finds the document's operation of a router row. */
static json_object *openapi_operation(const gw_route *rt, char *tmpl, size_t size)
{
    char method[16];
    openapi_template(rt->pattern, tmpl, size);
    lower(gw_method_name(rt->method), method, sizeof method);
    return get(get(get(openapi_doc, "paths"), tmpl), method);
}

/* openapi_resolve follows a local "$ref" ("#/components/..."). */
static json_object *openapi_resolve(json_object *o)
{
    json_object *ref = get(o, "$ref");
    if (!ref)
        return o;
    const char *s = json_object_get_string(ref);
    assert_true(strncmp(s, "#/", 2) == 0);
    char part[128];
    json_object *at = openapi_doc;
    for (s += 2; *s;) {
        size_t n = strcspn(s, "/");
        assert_true(n < sizeof part);
        memcpy(part, s, n);
        part[n] = '\0';
        at = get(at, part);
        if (!at)
            fail_msg("unresolved $ref %s", json_object_get_string(ref));
        s += n + (s[n] == '/');
    }
    return at;
}

static void test_document_is_openapi_3_1(void **state)
{
    const char *v = json_object_get_string(get(openapi_doc, "openapi"));
    assert_non_null(v);
    assert_true(strncmp(v, "3.1.", 4) == 0);
    assert_non_null(get(get(openapi_doc, "info"), "title"));
    json_object *schemes = get(get(openapi_doc, "components"), "securitySchemes");
    assert_string_equal(json_object_get_string(get(get(schemes, "apiToken"), "scheme")), "bearer");
    assert_string_equal(json_object_get_string(get(get(schemes, "cronSecret"), "scheme")),
                        "bearer");
    /* Unless an operation says otherwise, the API token applies. */
    json_object *sec = get(openapi_doc, "security");
    assert_int_equal(json_object_array_length(sec), 1);
    assert_non_null(get(json_object_array_get_idx(sec, 0), "apiToken"));
}

static void test_every_route_is_described(void **state)
{
    const gw_route *table = gw_route_table;
    assert_non_null(table);
    size_t rows = 0;
    for (const gw_route *rt = table; rt->pattern; rt++, rows++) {
        char tmpl[TEMPLATE_MAX];
        if (!openapi_operation(rt, tmpl, sizeof tmpl))
            fail_msg("%s %s is not in openapi.json (as %s)", gw_method_name(rt->method),
                     rt->pattern, tmpl);
        for (const gw_route *o = table; o < rt; o++)
            if (o->method == rt->method && strcmp(o->pattern, rt->pattern) == 0)
                fail_msg("%s %s is twice in the router table", gw_method_name(rt->method),
                         rt->pattern);
    }
    assert_true(rows >= 30);
}

static void test_nothing_else_is_described(void **state)
{
    json_object_object_foreach(get(openapi_doc, "paths"), path, item)
    {
        json_object_object_foreach(item, method, op)
        {
            (void)op;
            bool is_method = false;
            for (size_t m = 0; openapi_methods[m]; m++)
                is_method |= strcmp(method, openapi_methods[m]) == 0;
            if (!is_method)
                continue;
            bool routed = false;
            for (const gw_route *rt = gw_route_table; rt->pattern && !routed; rt++) {
                char tmpl[TEMPLATE_MAX], name[16];
                openapi_template(rt->pattern, tmpl, sizeof tmpl);
                lower(gw_method_name(rt->method), name, sizeof name);
                routed = strcmp(tmpl, path) == 0 && strcmp(name, method) == 0;
            }
            if (!routed)
                fail_msg("openapi.json describes %s %s, which the router does not route", method,
                         path);
        }
    }
}

/* security_is reports whether an operation's security is exactly
 * [{scheme: []}] (scheme NULL: exactly []). */
static bool security_is(json_object *sec, const char *scheme)
{
    if (!sec || !json_object_is_type(sec, json_type_array))
        return false;
    if (!scheme)
        return json_object_array_length(sec) == 0;
    json_object *req = json_object_array_get_idx(sec, 0);
    return json_object_array_length(sec) == 1 && json_object_object_length(req) == 1 &&
           get(req, scheme) && json_object_array_length(get(req, scheme)) == 0;
}

static void test_token_of_every_route(void **state)
{
    for (const gw_route *rt = gw_route_table; rt->pattern; rt++) {
        char tmpl[TEMPLATE_MAX];
        json_object *op = openapi_operation(rt, tmpl, sizeof tmpl);
        assert_non_null(op);
        json_object *sec = get(op, "security");
        bool ok;
        const char *want;
        if (rt->flags & GW_ROUTE_CRON) {
            ok = security_is(sec, "cronSecret");
            want = "[{cronSecret: []}]";
        } else if (rt->flags & GW_ROUTE_AUTH) {
            ok = !sec || security_is(sec, "apiToken");
            want = "the API token (no security of its own)";
        } else {
            ok = security_is(sec, NULL);
            want = "no token (security: [])";
        }
        if (!ok)
            fail_msg("%s %s: openapi.json must say %s", gw_method_name(rt->method), rt->pattern,
                     want);
        /* A route that checks a token answers 401 without it. */
        json_object *responses = get(op, "responses");
        if ((rt->flags & (GW_ROUTE_AUTH | GW_ROUTE_CRON)) && !get(responses, "401"))
            fail_msg("%s %s: no 401 response described", gw_method_name(rt->method), tmpl);
    }
}

static void test_body_and_path_parameters(void **state)
{
    for (const gw_route *rt = gw_route_table; rt->pattern; rt++) {
        char tmpl[TEMPLATE_MAX];
        json_object *op = openapi_operation(rt, tmpl, sizeof tmpl);
        assert_non_null(op);
        json_object *body = get(op, "requestBody");
        if (!!(rt->flags & GW_ROUTE_BODY) != !!body)
            fail_msg("%s %s: the router %s a body, openapi.json %s", gw_method_name(rt->method),
                     tmpl, rt->flags & GW_ROUTE_BODY ? "takes" : "takes no",
                     body ? "describes one" : "does not");
        if (body) {
            json_object *schema = get(get(get(body, "content"), "application/json"), "schema");
            if (!schema)
                fail_msg("%s %s: the body has no application/json schema",
                         gw_method_name(rt->method), tmpl);
            openapi_resolve(schema);
        }
        /* Each {name} of the template is a required path parameter, and
         * there is no other. */
        size_t in_path = 0, in_doc = 0;
        for (const char *p = tmpl; (p = strchr(p, '{')); p++)
            in_path++;
        json_object *params = get(op, "parameters");
        for (size_t i = 0; params && i < json_object_array_length(params); i++) {
            json_object *prm = openapi_resolve(json_object_array_get_idx(params, i));
            if (strcmp(json_object_get_string(get(prm, "in")), "path") != 0)
                continue;
            char braced[80];
            snprintf(braced, sizeof braced, "{%s}", json_object_get_string(get(prm, "name")));
            if (!strstr(tmpl, braced))
                fail_msg("%s %s: path parameter %s is not in the path", gw_method_name(rt->method),
                         tmpl, braced);
            assert_true(json_object_get_boolean(get(prm, "required")));
            in_doc++;
        }
        if (in_doc != in_path)
            fail_msg("%s %s: %zu path parameters described, %zu in the path",
                     gw_method_name(rt->method), tmpl, in_doc, in_path);
    }
}

/* openapi_walk_refs resolves every "$ref" below o; returns how many. */
static size_t openapi_walk_refs(json_object *o)
{
    size_t n = 0;
    if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++)
            n += openapi_walk_refs(json_object_array_get_idx(o, i));
    } else if (json_object_is_type(o, json_type_object)) {
        if (get(o, "$ref")) {
            openapi_resolve(o);
            n++;
        }
        json_object_object_foreach(o, key, child)
        {
            (void)key;
            n += openapi_walk_refs(child);
        }
    }
    return n;
}

static void test_every_reference_resolves(void **state)
{
    assert_true(openapi_walk_refs(openapi_doc) > 100);
    /* Every operation has a success response, and every response a
     * description. */
    json_object_object_foreach(get(openapi_doc, "paths"), path, item)
    {
        json_object_object_foreach(item, method, op)
        {
            json_object *responses = get(op, "responses");
            if (!responses)
                fail_msg("%s %s has no responses", method, path);
            bool success = false;
            json_object_object_foreach(responses, status, resp)
            {
                json_object *r = openapi_resolve(resp);
                if (!get(r, "description"))
                    fail_msg("%s %s %s: no description", method, path, status);
                success |= status[0] == '2';
            }
            if (!success)
                fail_msg("%s %s has no success response", method, path);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_document_is_openapi_3_1),
        cmocka_unit_test(test_every_route_is_described),
        cmocka_unit_test(test_nothing_else_is_described),
        cmocka_unit_test(test_token_of_every_route),
        cmocka_unit_test(test_body_and_path_parameters),
        cmocka_unit_test(test_every_reference_resolves),
    };
    return cmocka_run_group_tests(tests, openapi_setup, openapi_teardown);
}
