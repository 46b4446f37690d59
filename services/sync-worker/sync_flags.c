/* sync_flags.c - what the syncs of a folder and its pushes both build on:
 * the changes of the stored mail applied with their events (and announced
 * on "mail:<account>"), and the flags a scan gathers, stored where they
 * differ from the stored ones (sync_int.h). sync.c and sync_push.c
 * call these; nothing here calls back into them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "mailstore.h"
#include "shared/keys.h"
#include "sync_int.h"

void sync_publish(sh_pub *pub, const char *acct, const char *kind, const char *folder,
                  uint32_t uidvalidity, uint32_t uid, const char *flags)
{
    if (!pub)
        return;
    char topic[SH_ID_MAX + 16];
    snprintf(topic, sizeof topic, "%s%s", SH_TOPIC_MAIL, acct);
    sh_val *m = sh_val_new_map();
    int rc = !m;
    rc = rc || sh_val_set_cstr(m, "kind", sh_val_new_cstr(kind));
    rc = rc || sh_val_set_cstr(m, "accountId", sh_val_new_cstr(acct));
    rc = rc || sh_val_set_cstr(m, "folder", sh_val_new_cstr(folder));
    rc = rc || sh_val_set_cstr(m, "uidvalidity", sh_val_new_int(uidvalidity));
    if (uid)
        rc = rc || sh_val_set_cstr(m, "uid", sh_val_new_int(uid));
    if (flags)
        rc = rc || sh_val_set_cstr(m, "flags", sh_val_new_cstr(flags));
    if (!rc)
        sh_pub_send(pub, topic, m);
    sh_val_free(m);
}

int sync__changes_apply(sync_folder *f, sync_change *c, const uint32_t *uids, char *const *flags,
                        size_t n, const char *kind, size_t *applied, sh_error *err)
{
    sync_run *run = f->run;
    int rc = sync_change_run(run->store, run->pub, run->acct, c, n, applied, err);
    for (size_t i = 0; i < n; i++) {
        if (!rc && c[i].applied)
            sync_publish(run->pub, run->acct, kind, f->folder, f->uidvalidity, uids[i],
                         flags ? flags[i] : NULL);
        sync_change_fini(&c[i]);
    }
    return rc;
}

int sync__log_counts(sync_run *run, const char *folder, uint32_t uidvalidity, sh_error *err)
{
    long long total, unread;
    int rc =
        sync_mail_folder_count(run->store, run->acct, folder, uidvalidity, &total, &unread, err);
    if (rc)
        return rc;
    sh_val *m = sh_val_new_map();
    if (!m || sh_val_set_cstr(m, "folder", sh_val_new_cstr(folder)) ||
        sh_val_set_cstr(m, "total", sh_val_new_int(total)) ||
        sh_val_set_cstr(m, "unread", sh_val_new_int(unread))) {
        sh_val_free(m);
        return sh_error_set(err, SH_ENOMEM, "out of memory");
    }
    const char *type = SYNC_EV_FOLDER_COUNTS;
    rc = sync_evlog_add(run->store, run->pub, run->env, run->acct, &type, &m, 1, err);
    sh_val_free(m);
    return rc;
}

int sync__flag_seen(void *arg, const sync_msg *m)
{
    sync_folder *f = arg;
    if (f->nf == f->capf) {
        size_t cap = f->capf ? f->capf * 2 : 256;
        uint32_t *u = realloc(f->f_uids, cap * sizeof *u);
        if (!u)
            return SH_ENOMEM;
        f->f_uids = u;
        char **fl = realloc(f->f_flags, cap * sizeof *fl);
        if (!fl)
            return SH_ENOMEM;
        f->f_flags = fl;
        f->capf = cap;
    }
    char *copy = strdup(m->flags);
    if (!copy)
        return SH_ENOMEM;
    f->f_uids[f->nf] = m->uid;
    f->f_flags[f->nf++] = copy;
    return SH_OK;
}

int sync__flags_apply(sync_folder *f, sh_error *err)
{
    sync_run *run = f->run;
    if (f->nf == 0)
        return SH_OK;
    char **stored = NULL;
    int rc = sync_mail_flags(run->store, run->acct, f->folder, f->uidvalidity, f->f_uids, f->nf,
                             &stored, err);
    if (rc)
        return rc;
    sync_change *c = calloc(f->nf, sizeof *c);
    uint32_t *uids = malloc(f->nf * sizeof *uids);
    char **flags = malloc(f->nf * sizeof *flags);
    size_t n = 0;
    if (!c || !uids || !flags)
        rc = sh_error_set(err, SH_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < f->nf; i++) {
        /* A message not stored yet is the next run's new message. */
        if (!stored[i] || strcmp(stored[i], f->f_flags[i]) == 0)
            continue;
        if (sync_change_flags(run->env, run->acct, f->folder, f->uidvalidity, f->f_uids[i],
                              f->f_flags[i], &c[n])) {
            rc = sh_error_set(err, SH_ENOMEM, "out of memory");
            break;
        }
        uids[n] = f->f_uids[i];
        flags[n++] = f->f_flags[i];
    }
    size_t applied = 0;
    if (!rc)
        rc = sync__changes_apply(f, c, uids, flags, n, SH_EVENT_MAIL_CHANGED, &applied, err);
    for (size_t i = 0; c && i < n; i++)
        sync_change_fini(&c[i]);
    f->changed += applied;
    free(c);
    free(uids);
    free(flags);
    sync_mail_flags_free(stored, f->nf);
    return rc;
}
