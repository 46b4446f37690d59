/* schedule.c - the staggered sync schedule: ticks that queue due accounts,
 * leases that hand them to sync workers, and the outcome of each sync. */
#include <stdio.h>
#include <string.h>

#include "ops.h"
#include "scripts.h"
#include "shared/log.h"
#include "shared/util.h"

/* sched_effective: how often each of n scheduled accounts is really synced
 * with this batch size, and the batch that would keep the interval. */
static void sched_effective(long long n, long long batch, long long interval, long long *eff,
                            long long *rec)
{
    long long need = batch > 0 ? (n + batch - 1) / batch : 0;
    *eff = need > interval ? need : interval;
    *rec = (n + interval - 1) / interval;
    if (*rec < 1)
        *rec = 1;
}

int coord_tick(sh_worker *w, long long now_ms, long long batch, bool force, sh_val **out,
               sh_error *err)
{
    *out = NULL;
    const coord_env *env = coord_env_of(w);
    if (batch <= 0)
        batch = env->batch;
    coord_sched_keys k;
    coord_sched_keys_init(&k);
    sh_cmd *cmds[2];
    cmds[0] = sh_cmd_new_eval(&coord_script_tick, 5);
    sh_cmd_str(cmds[0], k.due);
    sh_cmd_str(cmds[0], k.queue);
    sh_cmd_str(cmds[0], k.leases);
    sh_cmd_str(cmds[0], k.tick);
    sh_cmd_str(cmds[0], k.errors);
    if (now_ms >= 0)
        sh_cmd_int(cmds[0], now_ms);
    else
        sh_cmd_str(cmds[0], "");
    sh_cmd_int(cmds[0], batch);
    sh_cmd_int(cmds[0], env->interval_min);
    sh_cmd_str(cmds[0], force ? "1" : "0");
    sh_cmd_str(cmds[0], k.account_prefix);
    cmds[1] = sh_cmd_new("ZCARD");
    sh_cmd_str(cmds[1], k.due);
    sh_reply *r[2] = {NULL, NULL};
    int rc = sh_store_pipeline(w->store, cmds, 2, r, err);
    sh_cmd_free(cmds[0]);
    sh_cmd_free(cmds[1]);
    if (rc)
        return rc;
    if (sh_reply_kind(r[0]) != SH_REPLY_ARRAY || sh_reply_count(r[0]) != 3) {
        size_t len;
        const char *e = sh_reply_string(r[0], &len);
        rc = sh_error_set(err, SH_EINTERNAL, "unexpected reply to a tick: %.*s", (int)len,
                          e ? e : "");
        goto done;
    }
    long long eff, rec;
    sched_effective(sh_reply_integer(r[1]), batch, env->interval_min, &eff, &rec);
    sh_val *queued = coord_ids_val(sh_reply_elem(r[0], 0));
    sh_val *requeued = coord_ids_val(sh_reply_elem(r[0], 1));
    size_t nq = sh_val_len(queued), nr = sh_val_len(requeued);
    sh_val *m = sh_val_new_map();
    if (!m || sh_val_set_cstr(m, "queued", queued) || sh_val_set_cstr(m, "requeued", requeued) ||
        sh_val_set_cstr(m, "effectiveIntervalMinutes", sh_val_new_int(eff)) ||
        sh_val_set_cstr(m, "recommendedBatchSize", sh_val_new_int(rec)) ||
        sh_val_set_cstr(m, "batchSize", sh_val_new_int(batch))) {
        sh_val_free(m);
        rc = sh_error_set(err, SH_ENOMEM, "out of memory");
        goto done;
    }
    if (nq || nr) {
        sh_log_info("tick", "queued=%zu requeued_after_lease_expiry=%zu batch=%lld", nq, nr, batch);
        sh_val *ev = sh_val_new_map();
        if (ev && sh_val_set_cstr(ev, "count", sh_val_new_int((long long)(nq + nr)))) {
            sh_val_free(ev);
            ev = NULL;
        }
        coord_publish(w, COORD_TOPIC_QUEUED, SH_EVENT_QUEUED, ev);
        coord_account_status_ids(w, queued);
        coord_account_status_ids(w, requeued);
    }
    if (eff > env->interval_min)
        sh_log_warn("schedule_overloaded",
                    "%lld accounts with a batch of %lld are each synced every %lld minutes, not "
                    "every %lld; EMAIL_SYNC_BATCH_SIZE=%lld would keep the interval",
                    sh_reply_integer(r[1]), batch, eff, env->interval_min, rec);
    *out = m;
done:
    sh_reply_free(r[0]);
    sh_reply_free(r[1]);
    return rc;
}

int coord_sched_status(sh_worker *w, sh_val **out, sh_error *err)
{
    *out = NULL;
    const coord_env *env = coord_env_of(w);
    coord_sched_keys k;
    coord_sched_keys_init(&k);
    sh_cmd *c = sh_cmd_new_eval(&coord_script_sched_status, 5);
    sh_cmd_str(c, k.ids);
    sh_cmd_str(c, k.queue);
    sh_cmd_str(c, k.leases);
    sh_cmd_str(c, k.errors);
    sh_cmd_str(c, k.due);
    sh_cmd_int(c, sh_now_ms());
    sh_reply *r;
    int rc = sh_store_call(w->store, c, &r, err);
    if (rc)
        return rc;
    long long v[6];
    for (size_t i = 0; i < 6; i++)
        v[i] = sh_reply_integer(sh_reply_elem(r, i));
    sh_reply_free(r);
    long long eff, rec;
    sched_effective(v[5], env->batch, env->interval_min, &eff, &rec);
    sh_val *m = sh_val_new_map();
    if (!m || sh_val_set_cstr(m, "totalAccounts", sh_val_new_int(v[0])) ||
        sh_val_set_cstr(m, "pendingSync", sh_val_new_int(v[1] + v[2] + v[4])) ||
        sh_val_set_cstr(m, "errorAccounts", sh_val_new_int(v[3])) ||
        sh_val_set_cstr(m, "syncInterval", sh_val_new_int(env->interval_min)) ||
        sh_val_set_cstr(m, "batchSize", sh_val_new_int(env->batch)) ||
        sh_val_set_cstr(m, "effectiveIntervalMinutes", sh_val_new_int(eff)) ||
        sh_val_set_cstr(m, "recommendedBatchSize", sh_val_new_int(rec))) {
        sh_val_free(m);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *out = m;
    return SH_OK;
}

/* sched_announce_queued tells idle sync workers that account id is queued. */
static void sched_announce_queued(sh_worker *w, const char *id)
{
    sh_val *ev = sh_val_new_map();
    if (ev && sh_val_set_cstr(ev, "accountId", sh_val_new_cstr(id))) {
        sh_val_free(ev);
        ev = NULL;
    }
    coord_publish(w, COORD_TOPIC_QUEUED, SH_EVENT_QUEUED, ev);
}

int coord_sync_now(sh_worker *w, const char *id, const char *folder, sh_val **out, sh_error *err)
{
    *out = NULL;
    char key[COORD_KEY_MAX], pid[96], rnd[17];
    coord_sched_keys k;
    int rc = coord_account_keys(id, key, &k, err);
    if (rc)
        return rc;
    sh_random_hex(rnd, 8);
    snprintf(pid, sizeof pid, "sync-%s-%s", id, rnd);
    sh_cmd *c = sh_cmd_new_eval(&coord_script_sync_now, 2);
    sh_cmd_str(c, key);
    sh_cmd_str(c, k.queue);
    sh_cmd_str(c, pid);
    sh_cmd_str(c, id);
    sh_cmd_str(c, folder ? folder : "");
    sh_reply *r;
    rc = sh_store_call(w->store, c, &r, err);
    if (rc)
        return rc;
    if (sh_reply_kind(r) != SH_REPLY_ARRAY || sh_reply_count(r) != 2) {
        sh_reply_free(r);
        return sh_error_set(err, SH_ENOTFOUND, "Account not found");
    }
    size_t len;
    const char *p = sh_reply_string(sh_reply_elem(r, 1), &len);
    sh_val *m = sh_val_new_map();
    if (!m || sh_val_set_cstr(m, "progressId", sh_val_new_str(p ? p : "", p ? len : 0)) ||
        sh_val_set_cstr(m, "queued", sh_val_new_bool(sh_reply_integer(sh_reply_elem(r, 0)) == 1))) {
        sh_val_free(m);
        sh_reply_free(r);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    if (sh_val_bool(sh_val_get(m, "queued"))) {
        sched_announce_queued(w, id);
        sh_val *ids = sh_val_new_array();
        if (ids && sh_val_push(ids, sh_val_new_cstr(id)) == SH_OK)
            coord_account_status_ids(w, ids);
        sh_val_free(ids);
    }
    sh_reply_free(r);
    *out = m;
    return SH_OK;
}

int coord_lease(sh_worker *w, const char *worker, sh_val **out, sh_error *err)
{
    *out = NULL;
    const coord_env *env = coord_env_of(w);
    char token[33], pid[96];
    sh_random_hex(token, 16);
    long long now = sh_now_ms();
    coord_sched_keys k;
    coord_sched_keys_init(&k);
    char req[COORD_KEY_MAX];
    coord_key_lease_req(req, sizeof req, token);
    sh_cmd *c = sh_cmd_new_eval(&coord_script_lease, 3);
    sh_cmd_str(c, k.queue);
    sh_cmd_str(c, k.leases);
    sh_cmd_str(c, req);
    sh_cmd_int(c, now);
    sh_cmd_int(c, env->lease_s * 1000);
    sh_cmd_str(c, token);
    sh_cmd_str(c, k.account_prefix);
    snprintf(pid, sizeof pid, "sync-%lld-%.8s", now, token);
    sh_cmd_str(c, pid);
    sh_cmd_int(c, SH_REQUEST_TTL_INTERNAL);
    sh_reply *r;
    int rc = sh_store_call(w->store, c, &r, err);
    if (rc)
        return rc;
    sh_val *m = sh_val_new_map(), *lease = NULL;
    if (sh_reply_kind(r) == SH_REPLY_ARRAY && sh_reply_count(r) == 4) {
        lease = sh_val_new_map();
        sh_val *acct = coord_account_view(sh_reply_elem(r, 2), sh_reply_elem(r, 3));
        char iso[SH_ISO_LEN];
        size_t len;
        const char *id = sh_reply_string(sh_reply_elem(r, 0), &len);
        sh_iso8601(now + env->lease_s * 1000, iso);
        if (!lease || !acct || sh_val_set_cstr(lease, "accountId", sh_val_new_str(id, len)) ||
            sh_val_set_cstr(lease, "leaseToken", sh_val_new_cstr(token)) ||
            sh_val_set_cstr(lease, "leaseExpiresAt", sh_val_new_cstr(iso)) ||
            sh_val_set_cstr(lease, "progressId", sh_val_clone(sh_val_get(acct, "progressId"))) ||
            sh_val_set_cstr(lease, "account", acct)) {
            acct = NULL;
            sh_val_free(lease);
            lease = NULL;
            rc = sh_error_set(err, SH_ENOMEM, "out of memory");
        } else {
            sh_log_info("lease", "account=%.*s worker=%s", (int)len, id, worker);
            coord_account_event(w, SH_EVENT_STATUS, sh_val_get_str(lease, "accountId", NULL), acct);
        }
    } else {
        lease = sh_val_new_nil();
    }
    sh_reply_free(r);
    if (rc || !m || sh_val_set_cstr(m, "lease", lease)) {
        sh_val_free(m);
        return rc ? rc : sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *out = m;
    return SH_OK;
}

int coord_lease_renew(sh_worker *w, const char *id, const char *token, sh_val **out, sh_error *err)
{
    *out = NULL;
    char key[COORD_KEY_MAX];
    coord_sched_keys k;
    int rc = coord_account_keys(id, key, &k, err);
    if (rc)
        return rc;
    long long now = sh_now_ms(), ms = coord_env_of(w)->lease_s * 1000;
    sh_cmd *c = sh_cmd_new_eval(&coord_script_lease_renew, 2);
    sh_cmd_str(c, key);
    sh_cmd_str(c, k.leases);
    sh_cmd_str(c, id);
    sh_cmd_str(c, token);
    sh_cmd_int(c, now);
    sh_cmd_int(c, ms);
    sh_reply *r;
    rc = sh_store_call(w->store, c, &r, err);
    if (rc)
        return rc;
    bool lost = sh_reply_kind(r) != SH_REPLY_STRING;
    sh_reply_free(r);
    if (lost)
        return sh_error_set(err, SH_ELEASE,
                            "lease_lost: the lease on %s expired or was taken by another worker",
                            id);
    char iso[SH_ISO_LEN];
    sh_iso8601(now + ms, iso);
    sh_val *m = sh_val_new_map();
    if (!m || sh_val_set_cstr(m, "leaseExpiresAt", sh_val_new_cstr(iso))) {
        sh_val_free(m);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    *out = m;
    return SH_OK;
}

int coord_lease_complete(sh_worker *w, const char *id, const char *token, const char *outcome,
                         const char *message, sh_val **out, sh_error *err)
{
    *out = NULL;
    char key[COORD_KEY_MAX];
    coord_sched_keys k;
    int rc = coord_account_keys(id, key, &k, err);
    if (rc)
        return rc;
    char pid[96], rnd[17];
    sh_random_hex(rnd, 8);
    snprintf(pid, sizeof pid, "sync-%s-%s", id, rnd);
    const char *const keys[] = {key, k.leases, k.due, k.errors, k.queue, NULL};
    sh_cmd *c = sh_cmd_new_eval_keys(&coord_script_lease_complete, keys);
    sh_cmd_str(c, id);
    sh_cmd_str(c, token);
    sh_cmd_int(c, sh_now_ms());
    sh_cmd_str(c, outcome);
    sh_cmd_str(c, message ? message : "");
    sh_cmd_int(c, coord_env_of(w)->interval_min * 60000);
    sh_cmd_str(c, pid);
    sh_reply *r;
    rc = sh_store_call(w->store, c, &r, err);
    if (rc)
        return rc;
    if (sh_reply_kind(r) != SH_REPLY_ARRAY) {
        sh_reply_free(r);
        return sh_error_set(err, SH_ELEASE,
                            "lease_lost: the lease on %s expired or was taken by another worker",
                            id);
    }
    *out = coord_account_view(r, NULL);
    sh_reply_free(r);
    if (!*out)
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    sh_log_info("sync_complete", "account=%s outcome=%s", id, outcome);
    coord_account_event(w, SH_EVENT_STATUS, id, *out);
    const char *status = sh_val_get_str(*out, "syncStatus", NULL);
    if (status && strcmp(status, "queued") == 0) {
        /* A sync asked for while this one ran: wake the idle workers. */
        sh_log_info("sync_again", "account=%s queued again: asked for while it synced", id);
        sched_announce_queued(w, id);
    }
    return SH_OK;
}
