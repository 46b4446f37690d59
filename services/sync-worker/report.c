/* report.c - progress.update and log.append calls of a sync run. */
#include "report.h"

#include <stdio.h>
#include <string.h>

#include "shared/log.h"
#include "shared/util.h"

#define REPORT_TIMEOUT_MS 2000

static void report_call(sync_report *r, const char *op, sh_val *args)
{
    sh_val *res = NULL;
    sh_error err;
    if (!args) {
        sh_log_warn("progress_report", "out of memory");
        return;
    }
    int rc = sh_rpc_call(r->client, op, args, REPORT_TIMEOUT_MS, &res, &err);
    if (rc != SH_OK && !r->warned) {
        r->warned = true;
        sh_log_warn("progress_report", "%s %s: %s", op, r->id, err.msg);
    }
    sh_val_free(res);
    sh_val_free(args);
}

static void report_write(sync_report *r, const char *action, bool complete)
{
    sh_val *args = sh_val_new_map(), *f = sh_val_new_map();
    int rc = !args || !f;
    rc = rc || sh_val_set_cstr(f, "currentStep", sh_val_new_int(r->step));
    rc = rc || sh_val_set_cstr(f, "currentAction", sh_val_new_cstr(action));
    rc = rc || sh_val_set_cstr(f, "phase", sh_val_new_cstr("sync"));
    rc = rc ||
         sh_val_set_cstr(f, "folder", r->folder[0] ? sh_val_new_cstr(r->folder) : sh_val_new_nil());
    rc = rc || sh_val_set_cstr(f, "messagesDone", sh_val_new_int(r->done));
    rc = rc || sh_val_set_cstr(f, "messagesTotal", sh_val_new_int(r->total));
    rc = rc || sh_val_set_cstr(f, "complete", sh_val_new_bool(complete));
    rc = rc || sh_val_set_cstr(args, "id", sh_val_new_cstr(r->id));
    if (!rc) {
        rc = sh_val_set_cstr(args, "fields", f);
        f = NULL;
    }
    sh_val_free(f);
    if (rc) {
        sh_val_free(args);
        args = NULL;
    }
    r->sent_ms = sh_mono_ms();
    report_call(r, "progress.update", args);
}

void sync_report_update(sync_report *r, int step, const char *action, const char *folder,
                        long long done, long long total)
{
    r->step = step;
    folder = folder ? folder : "";
    snprintf(r->folder, sizeof r->folder, "%s", folder);
    /* A cut inside a UTF-8 sequence drops the sequence's first bytes too. */
    for (size_t n = strlen(r->folder); ((unsigned char)folder[n] & 0xc0) == 0x80 && n > 0;)
        r->folder[--n] = '\0';
    r->done = done;
    r->total = total;
    if (!r->client || !r->id || !r->id[0])
        return;
    if (r->sent_ms && sh_mono_ms() - r->sent_ms < SYNC_REPORT_EVERY_MS)
        return;
    report_write(r, action, false);
}

void sync_report_complete(sync_report *r, const char *action)
{
    if (r->client && r->id && r->id[0])
        report_write(r, action, true);
}

void sync_report_error(sync_report *r, const char *error, const char *fix)
{
    if (!r->client || !r->id || !r->id[0])
        return;
    sh_val *args = sh_val_new_map(), *e = sh_val_new_map();
    int rc = !args || !e;
    rc = rc || sh_val_set_cstr(e, "tool", sh_val_new_cstr("imap"));
    rc = rc || sh_val_set_cstr(e, "error", sh_val_new_cstr(error));
    rc = rc || sh_val_set_cstr(e, "suggestedFix", sh_val_new_cstr(fix ? fix : ""));
    rc = rc || sh_val_set_cstr(args, "id", sh_val_new_cstr(r->id));
    if (!rc) {
        rc = sh_val_set_cstr(args, "entry", e);
        e = NULL;
    }
    sh_val_free(e);
    if (rc) {
        sh_val_free(args);
        args = NULL;
    }
    report_call(r, "log.append", args);
}
