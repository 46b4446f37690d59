/* reservations.c - blocks of rows of a named log, one per item and owner. */
#include <stdio.h>
#include <string.h>

#include "ops.h"
#include "scripts.h"
#include "shared/util.h"

sh_val *coord_reservation_val(const coord_reservation *r)
{
    char ts[SH_ISO_LEN], exp[SH_ISO_LEN];
    sh_iso8601(r->timestamp_ms, ts);
    sh_iso8601(r->expires_ms, exp);
    sh_val *m = sh_val_new_map();
    if (!m || sh_val_set_cstr(m, "sq", sh_val_new_cstr(r->id)) ||
        sh_val_set_cstr(m, "log", sh_val_new_cstr(r->log)) ||
        sh_val_set_cstr(m, "botId", sh_val_new_cstr(r->bot)) ||
        sh_val_set_cstr(m, "startRow", sh_val_new_int(r->start_row)) ||
        sh_val_set_cstr(m, "rowCount", sh_val_new_int(r->row_count)) ||
        sh_val_set_cstr(m, "status", sh_val_new_cstr(r->status)) ||
        sh_val_set_cstr(m, "timestamp", sh_val_new_cstr(ts)) ||
        sh_val_set_cstr(m, "expiresAt", sh_val_new_cstr(exp))) {
        sh_val_free(m);
        return NULL;
    }
    return m;
}

void coord_reservation_row(const sh_reply *row, const char *log, const char *id,
                           coord_reservation *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->log, sizeof out->log, "%s", log);
    coord_row_scan(row, "ssllsll", out->id, sizeof out->id, out->bot, sizeof out->bot,
                   &out->start_row, &out->row_count, out->status, sizeof out->status,
                   &out->timestamp_ms, &out->expires_ms);
    if (id)
        snprintf(out->id, sizeof out->id, "%s", id);
}

static const char *res_outcome(const sh_reply *r, char *buf, size_t len)
{
    coord_reply_str(r, 0, buf, len);
    return buf;
}

static void res_event(sh_worker *w, const char *kind, const coord_reservation *res)
{
    char topic[COORD_KEY_MAX];
    if (coord_topic_reservation(topic, sizeof topic, res->log, res->id) >= 0)
        coord_publish(w, topic, kind, coord_reservation_val(res));
}

static int res_keys(const char *log, const char *id, char *key, char *rows, char *rows_max,
                    char *idx, sh_error *err)
{
    if (coord_key_reservation(key, COORD_KEY_MAX, log, id) < 0 ||
        (rows && coord_key_rows(rows, COORD_KEY_MAX, log) < 0) ||
        (rows_max && coord_key_rows_max(rows_max, COORD_KEY_MAX, log) < 0) ||
        coord_key_reservation_index(idx, COORD_KEY_MAX, log) < 0)
        return sh_error_set(err, SH_EINVAL, "invalid log \"%.40s\" or id \"%.40s\"", log, id);
    return SH_OK;
}

int coord_reserve_cmd(sh_worker *w, const char *log, const char *id, const char *bot,
                      long long rows, long long ttl_s, sh_cmd **cmd, sh_error *err)
{
    *cmd = NULL;
    char key[COORD_KEY_MAX], rowkey[COORD_KEY_MAX], maxkey[COORD_KEY_MAX], idx[COORD_KEY_MAX];
    char logs[COORD_KEY_MAX];
    int rc = res_keys(log, id, key, rowkey, maxkey, idx, err);
    if (rc)
        return rc;
    if (ttl_s <= 0)
        ttl_s = coord_env_of(w)->default_ttl;
    coord_key_reservation_logs(logs, sizeof logs);
    sh_cmd *c = sh_cmd_new_eval(&coord_script_reserve, 5);
    sh_cmd_str(c, key);
    sh_cmd_str(c, rowkey);
    sh_cmd_str(c, idx);
    sh_cmd_str(c, maxkey);
    sh_cmd_str(c, logs);
    sh_cmd_str(c, bot);
    sh_cmd_int(c, rows);
    sh_cmd_int(c, ttl_s * 1000);
    sh_cmd_str(c, id);
    sh_cmd_int(c, coord_env_of(w)->first_row);
    sh_cmd_str(c, "WRITING");
    if (sh_cmd_str(c, log) != SH_OK) {
        sh_cmd_free(c);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *cmd = c;
    return SH_OK;
}

int coord_reserve_reply(sh_worker *w, const char *log, const char *id, const sh_reply *r,
                        coord_reservation *out, sh_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = coord_check_script_reply(r, err);
    if (rc)
        return rc;
    if (sh_reply_count(r) < 7)
        return sh_error_set(err, SH_EINTERNAL, "unexpected reply from the reserve script");
    coord_reservation_row(r, log, id, out);
    char outcome[32];
    if (strcmp(res_outcome(r, outcome, sizeof outcome), "conflict") == 0)
        rc = sh_error_set(err, SH_ECONFLICT, "%s is reserved by %s", id, out->bot);
    else
        res_event(w, strcmp(outcome, "renewed") == 0 ? SH_EVENT_RENEWED : SH_EVENT_RESERVED, out);
    return rc;
}

int coord_reserve_release(sh_worker *w, const char *log, const char *id, const char *bot,
                          coord_reservation *out, sh_error *err)
{
    memset(out, 0, sizeof *out);
    char key[COORD_KEY_MAX], idx[COORD_KEY_MAX];
    int rc = res_keys(log, id, key, NULL, NULL, idx, err);
    if (rc)
        return rc;
    sh_cmd *c = sh_cmd_new_eval(&coord_script_reserve_release, 2);
    sh_cmd_str(c, key);
    sh_cmd_str(c, idx);
    sh_cmd_str(c, bot);
    sh_reply *r;
    if ((rc = coord_run_script(w, c, &r, err)))
        return rc;
    coord_reservation_row(r, log, id, out);
    char outcome[32];
    if (strcmp(res_outcome(r, outcome, sizeof outcome), "lease_lost") == 0) {
        if (out->bot[0])
            rc = sh_error_set(err, SH_ELEASE, "lease_lost: the reservation of %s is held by %s", id,
                              out->bot);
        else
            rc = sh_error_set(err, SH_ELEASE,
                              "lease_lost: %s has no reservation (released or expired)", id);
    } else {
        res_event(w, SH_EVENT_RELEASED, out);
    }
    sh_reply_free(r);
    return rc;
}
