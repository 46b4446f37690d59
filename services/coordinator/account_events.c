/* account_events.c - the events of email accounts, on topic account:<id>
 * (libshared/include/shared/keys.h): created and updated carry the public
 * view, deleted the id, status what the schedule changed (syncStatus,
 * errorMessage, lastSyncedAt, nextSyncAt) whenever it queues, leases or
 * completes an account. */
#include <stdio.h>
#include <string.h>

#include "ops.h"
#include "shared/log.h"

#define ACC_EV_STATUS_BATCH 64 /* accounts read in one round trip for status events */

static const char *const acc_ev_status_fields[] = {"id",           "syncStatus", "errorMessage",
                                                   "lastSyncedAt", "nextSyncAt", NULL};

void coord_account_event(sh_worker *w, const char *kind, const char *id, const sh_val *view)
{
    char topic[COORD_KEY_MAX];
    if (coord_topic_account(topic, sizeof topic, id) < 0)
        return;
    sh_val *body;
    if (strcmp(kind, SH_EVENT_STATUS) == 0) {
        body = sh_val_new_map();
        for (size_t i = 0; body && view && acc_ev_status_fields[i]; i++) {
            const sh_val *v = sh_val_get(view, acc_ev_status_fields[i]);
            if (v && sh_val_set_cstr(body, acc_ev_status_fields[i], sh_val_clone(v)) != SH_OK) {
                sh_val_free(body);
                body = NULL;
            }
        }
    } else if (view) {
        body = sh_val_clone(view);
    } else {
        body = sh_val_new_map();
        if (body && sh_val_set_cstr(body, "id", sh_val_new_cstr(id)) != SH_OK) {
            sh_val_free(body);
            body = NULL;
        }
    }
    coord_publish(w, topic, kind, body);
}

/* acc_ev_status_read publishes the status of n accounts read in one
 * pipeline. */
static void acc_ev_status_read(sh_worker *w, const sh_val *ids, size_t from, size_t n)
{
    sh_cmd *cmds[ACC_EV_STATUS_BATCH];
    sh_reply *replies[ACC_EV_STATUS_BATCH];
    char key[COORD_KEY_MAX];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *id = sh_val_str(sh_val_at(ids, from + i), NULL);
        if (!id || coord_key_account(key, sizeof key, id) < 0)
            continue;
        cmds[k] = sh_cmd_new("HGETALL");
        sh_cmd_str(cmds[k], key);
        replies[k] = NULL;
        k++;
    }
    sh_error err;
    sh_error_clear(&err);
    int rc = k ? sh_store_pipeline(w->store, cmds, k, replies, &err) : SH_OK;
    if (rc != SH_OK)
        sh_log_debug("event_dropped", "account status: %s", err.msg);
    for (size_t i = 0; i < k; i++) {
        if (rc == SH_OK && sh_reply_kind(replies[i]) == SH_REPLY_ARRAY &&
            sh_reply_count(replies[i]) > 0) {
            sh_val *view = coord_account_view(replies[i], NULL);
            const char *id = view ? sh_val_get_str(view, "id", NULL) : NULL;
            if (id)
                coord_account_event(w, SH_EVENT_STATUS, id, view);
            sh_val_free(view);
        }
        sh_reply_free(replies[i]);
        sh_cmd_free(cmds[i]);
    }
}

void coord_account_status_ids(sh_worker *w, const sh_val *ids)
{
    size_t n = sh_val_len(ids);
    for (size_t from = 0; from < n; from += ACC_EV_STATUS_BATCH)
        acc_ev_status_read(w, ids, from,
                           n - from < ACC_EV_STATUS_BATCH ? n - from : ACC_EV_STATUS_BATCH);
}
