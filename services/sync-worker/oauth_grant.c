/* oauth_grant.c - the form and the answer of a refresh_token grant; the
 * only file of the sync-worker that includes json-c. */
#include "oauth_grant.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "imap.h"
#include "shared/secret.h"

static int grant_escape(sh_buf *out, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        int rc;
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            rc = sh_buf_append(out, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc = sh_buf_append(out, e, 3);
        }
        if (rc)
            return rc;
    }
    return SH_OK;
}

static int grant_param(sh_buf *out, const char *name, const char *v)
{
    if (!v)
        return SH_OK;
    int rc = sh_buf_puts(out, out->len ? "&" : "");
    rc |= sh_buf_puts(out, name);
    rc |= sh_buf_puts(out, "=");
    rc |= grant_escape(out, v);
    return rc ? SH_ENOMEM : SH_OK;
}

int sync_oauth_grant_form(const sh_oauth_secret *s, sh_buf *out)
{
    int rc = grant_param(out, "grant_type", "refresh_token");
    rc |= grant_param(out, "refresh_token", s->refresh_token);
    rc |= grant_param(out, "client_id", s->client_id);
    rc |= grant_param(out, "client_secret", s->client_secret);
    rc |= grant_param(out, "scope", s->scope);
    rc |= sh_buf_append(out, "", 1);
    if (!rc)
        out->len--; /* NUL-terminated, not counted */
    return rc ? SH_ENOMEM : SH_OK;
}

static const char *grant_str(json_object *o, const char *name)
{
    json_object *v;
    return json_object_object_get_ex(o, name, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

static char *grant_dup(const char *s)
{
    return s && s[0] ? strdup(s) : NULL;
}

/* grant_wipe_strings overwrites every string of the parsed answer: json-c's
 * copies of the tokens. */
static void grant_wipe_strings(json_object *o)
{
    json_object_object_foreach(o, k, v)
    {
        (void)k;
        if (json_object_is_type(v, json_type_string))
            sh_wipe((char *)json_object_get_string(v), (size_t)json_object_get_string_len(v));
    }
}

int sync_oauth_grant_read(long status, const char *body, size_t len, sync_oauth_grant *g,
                          sh_error *err)
{
    memset(g, 0, sizeof *g);
    json_tokener *tok = json_tokener_new();
    json_object *o = tok ? json_tokener_parse_ex(tok, body, (int)len) : NULL;
    /* The parser's buffer held the last string read, a token maybe (as
     * the gateway does with request bodies). */
    if (tok && tok->pb && tok->pb->buf)
        sh_wipe(tok->pb->buf, (size_t)tok->pb->size);
    if (tok)
        json_tokener_free(tok);
    if (o && !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = NULL;
    }
    int rc;
    const char *error = o ? grant_str(o, "error") : NULL;
    const char *at = o ? grant_str(o, "access_token") : NULL;
    if (status == 200 && at && at[0]) {
        g->access_token = grant_dup(at);
        g->refresh_token = grant_dup(grant_str(o, "refresh_token"));
        json_object *e;
        if (json_object_object_get_ex(o, "expires_in", &e))
            g->expires_in_s = json_object_get_int64(e); /* a string of digits converts too */
        rc = g->access_token ? SH_OK : sh_error_set(err, SH_ENOMEM, "out of memory");
    } else if ((status == 400 || status == 401) && error) {
        const char *desc = grant_str(o, "error_description");
        rc = sh_error_set(err, SYNC_EAUTH, "%.64s%s%.300s", error, desc ? ": " : "",
                          desc ? desc : "");
    } else if (status == 200) {
        rc = sh_error_set(err, SH_EUNAVAIL, "the token endpoint's answer holds no access_token");
    } else {
        rc = sh_error_set(err, SH_EUNAVAIL, "the token endpoint answered HTTP %ld%s%.64s", status,
                          error ? ": " : "", error ? error : "");
    }
    if (o) {
        grant_wipe_strings(o);
        json_object_put(o);
    }
    if (rc)
        sync_oauth_grant_fini(g);
    return rc;
}

void sync_oauth_grant_fini(sync_oauth_grant *g)
{
    if (g->access_token) {
        sh_wipe(g->access_token, strlen(g->access_token));
        free(g->access_token);
    }
    if (g->refresh_token) {
        sh_wipe(g->refresh_token, strlen(g->refresh_token));
        free(g->refresh_token);
    }
    memset(g, 0, sizeof *g);
}
