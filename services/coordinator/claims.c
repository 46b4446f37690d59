/* claims.c - claims of work items with fencing tokens. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "scripts.h"
#include "shared/log.h"
#include "shared/util.h"

#define COORD_FENCE_TTL (30LL * 24 * 3600)

const coord_env *coord_env_of(const sh_worker *w)
{
    return w->env;
}

int coord_check_script_reply(const sh_reply *r, sh_error *err)
{
    if (sh_reply_kind(r) != SH_REPLY_ARRAY || sh_reply_count(r) < 6)
        return sh_error_set(err, SH_EINTERNAL, "unexpected reply from a coordinator script");
    return SH_OK;
}

int coord_run_script(sh_worker *w, sh_cmd *cmd, sh_reply **out, sh_error *err)
{
    int rc = sh_store_call(w->store, cmd, out, err);
    if (rc == SH_OK && (rc = coord_check_script_reply(*out, err))) {
        sh_reply_free(*out);
        *out = NULL;
    }
    return rc;
}

sh_val *coord_ids_val(const sh_reply *arr)
{
    sh_val *a = sh_val_new_array();
    for (size_t i = 0; a && i < sh_reply_count(arr); i++) {
        size_t len;
        const char *s = sh_reply_string(sh_reply_elem(arr, i), &len);
        if (s && sh_val_push(a, sh_val_new_str(s, len)) != SH_OK) {
            sh_val_free(a);
            return NULL;
        }
    }
    return a;
}

void coord_reply_str(const sh_reply *r, size_t i, char *buf, size_t len)
{
    size_t n;
    const char *s = sh_reply_string(sh_reply_elem(r, i), &n);
    if (!s)
        n = 0;
    if (n >= len)
        n = len - 1;
    memcpy(buf, s ? s : "", n);
    buf[n] = '\0';
}

void coord_row_scan(const sh_reply *row, const char *spec, ...)
{
    va_list ap;
    va_start(ap, spec);
    for (size_t i = 0; spec[i]; i++) {
        if (spec[i] == 's') {
            char *buf = va_arg(ap, char *);
            size_t len = va_arg(ap, size_t);
            coord_reply_str(row, i, buf, len);
        } else {
            *va_arg(ap, long long *) = sh_reply_ll(sh_reply_elem(row, i), NULL);
        }
    }
    va_end(ap);
}

void coord_publish(sh_worker *w, const char *topic, const char *kind, sh_val *body)
{
    if (!body)
        return;
    if (w->pub && sh_val_set_cstr(body, "kind", sh_val_new_cstr(kind)) == SH_OK) {
        int rc = sh_pub_send(w->pub, topic, body);
        if (rc)
            sh_log_debug("event_dropped", "topic=%s %s", topic, sh_strerror(rc));
    }
    sh_val_free(body);
}

static int claim_set_iso(sh_val *m, const char *key, long long ms)
{
    char iso[SH_ISO_LEN];
    sh_iso8601(ms, iso);
    return sh_val_set_cstr(m, key, sh_val_new_cstr(iso));
}

sh_val *coord_claim_val(const coord_claim *c)
{
    sh_val *m = sh_val_new_map();
    if (!m || sh_val_set_cstr(m, "sq", sh_val_new_cstr(c->id)) ||
        sh_val_set_cstr(m, "namespace", sh_val_new_cstr(c->ns)) ||
        sh_val_set_cstr(m, "botId", sh_val_new_cstr(c->bot)) ||
        sh_val_set_cstr(m, "token", sh_val_new_int(c->token)) ||
        sh_val_set_cstr(m, "status", sh_val_new_cstr(c->status)) ||
        claim_set_iso(m, "timestamp", c->timestamp_ms) ||
        claim_set_iso(m, "expiresAt", c->expires_ms)) {
        sh_val_free(m);
        return NULL;
    }
    return m;
}

void coord_claim_row(const sh_reply *row, const char *ns, const char *id, coord_claim *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->ns, sizeof out->ns, "%s", ns);
    coord_row_scan(row, "sslsll", out->id, sizeof out->id, out->bot, sizeof out->bot, &out->token,
                   out->status, sizeof out->status, &out->timestamp_ms, &out->expires_ms);
    if (id)
        snprintf(out->id, sizeof out->id, "%s", id);
}

static bool claim_outcome(const sh_reply *r, const char *what)
{
    size_t len;
    const char *s = sh_reply_string(sh_reply_elem(r, 0), &len);
    return s && len == strlen(what) && memcmp(s, what, len) == 0;
}

static void claim_event(sh_worker *w, const char *kind, const coord_claim *c)
{
    char topic[COORD_KEY_MAX];
    if (coord_topic_claim(topic, sizeof topic, c->ns, c->id) >= 0)
        coord_publish(w, topic, kind, coord_claim_val(c));
}

static int claim_keys(const char *ns, const char *id, char *key, char *fence, char *idx,
                      sh_error *err)
{
    if (coord_key_claim(key, COORD_KEY_MAX, ns, id) < 0 ||
        (fence && coord_key_fence(fence, COORD_KEY_MAX, ns, id) < 0) ||
        coord_key_claim_index(idx, COORD_KEY_MAX, ns) < 0)
        return sh_error_set(err, SH_EINVAL, "invalid namespace \"%.40s\" or id \"%.40s\"", ns, id);
    return SH_OK;
}

int coord_claim_cmd(sh_worker *w, const char *ns, const char *id, const char *bot, long long ttl_s,
                    const char *status, sh_cmd **cmd, sh_error *err)
{
    *cmd = NULL;
    char key[COORD_KEY_MAX], fence[COORD_KEY_MAX], idx[COORD_KEY_MAX];
    int rc = claim_keys(ns, id, key, fence, idx, err);
    if (rc)
        return rc;
    if (ttl_s <= 0)
        ttl_s = coord_env_of(w)->default_ttl;
    sh_cmd *c = sh_cmd_new_eval(&coord_script_claim, 3);
    sh_cmd_str(c, key);
    sh_cmd_str(c, fence);
    sh_cmd_str(c, idx);
    sh_cmd_str(c, bot);
    sh_cmd_int(c, ttl_s * 1000);
    sh_cmd_str(c, status ? status : "CLAIMING");
    sh_cmd_str(c, id);
    if (sh_cmd_int(c, COORD_FENCE_TTL) != SH_OK) {
        sh_cmd_free(c);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *cmd = c;
    return SH_OK;
}

int coord_claim_reply(sh_worker *w, const char *ns, const char *id, const sh_reply *r,
                      coord_claim *out, bool *renewed, sh_error *err)
{
    memset(out, 0, sizeof *out);
    *renewed = false;
    int rc = coord_check_script_reply(r, err);
    if (rc)
        return rc;
    coord_claim_row(r, ns, id, out);
    if (claim_outcome(r, "conflict")) {
        out->token = 0; /* a holder's token is never shown to others */
        rc = sh_error_set(err, SH_ECONFLICT, "%s is held by %s", id, out->bot);
    } else if (claim_outcome(r, "renewed")) {
        *renewed = true;
        claim_event(w, SH_EVENT_RENEWED, out);
    } else {
        if (claim_outcome(r, "claimed_after_expiry")) {
            coord_claim gone = *out;
            gone.bot[0] = '\0';
            claim_event(w, SH_EVENT_EXPIRED, &gone);
        }
        claim_event(w, SH_EVENT_CLAIMED, out);
    }
    return rc;
}

static sh_script *claim_holder_script(coord_holder_op op)
{
    return op == COORD_RENEW     ? &coord_script_renew
           : op == COORD_RELEASE ? &coord_script_release
                                 : &coord_script_status;
}

int coord_holder_cmd(coord_holder_op op, const char *ns, const char *id, const char *bot,
                     long long token, const char *extra, sh_cmd **cmd, sh_error *err)
{
    *cmd = NULL;
    char key[COORD_KEY_MAX], idx[COORD_KEY_MAX];
    int rc = claim_keys(ns, id, key, NULL, idx, err);
    if (rc)
        return rc;
    sh_script *script = claim_holder_script(op);
    bool with_index = script != &coord_script_status;
    sh_cmd *c = sh_cmd_new_eval(script, with_index ? 2 : 1);
    sh_cmd_str(c, key);
    if (with_index)
        sh_cmd_str(c, idx);
    sh_cmd_str(c, bot);
    rc = sh_cmd_int(c, token);
    if (extra)
        rc = sh_cmd_str(c, extra);
    if (rc) {
        sh_cmd_free(c);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *cmd = c;
    return SH_OK;
}

int coord_holder_reply(sh_worker *w, coord_holder_op op, const char *ns, const char *id,
                       long long token, const sh_reply *r, coord_claim *out, sh_error *err)
{
    static const char *const events[] = {SH_EVENT_RENEWED, SH_EVENT_RELEASED, SH_EVENT_STATUS};
    memset(out, 0, sizeof *out);
    int rc = coord_check_script_reply(r, err);
    if (rc)
        return rc;
    coord_claim_row(r, ns, id, out);
    if (claim_outcome(r, "lease_lost")) {
        out->token = 0;
        if (out->bot[0])
            rc = sh_error_set(err, SH_ELEASE, "lease_lost: %s is held by %s with another token", id,
                              out->bot);
        else
            rc = sh_error_set(err, SH_ELEASE,
                              "lease_lost: %s is not claimed (released or "
                              "expired)",
                              id);
    } else {
        out->token = token;
        claim_event(w, events[op], out);
    }
    return rc;
}

void coord_renew_ttl(long long ttl_s, char buf[32])
{
    buf[0] = '\0';
    if (ttl_s > 0)
        snprintf(buf, 32, "%lld", ttl_s * 1000);
}
