/* mail_change.h - a change to the synced mail and its event, applied
 * together: one script stores the change and appends the event to the
 * account's log (eventlog.h), or does neither when the store already holds
 * the change. So a sync that dies between the two loses no event, and one
 * run again over mail already stored appends none.
 *
 * Life cycle: sync_change_new / _flags / _removed make one change (the
 * script command and its event); sync_change_run applies n of them in one
 * pipeline and publishes those applied; sync_change_fini frees what a
 * change holds (also when never run). */
#ifndef SYNC_MAIL_CHANGE_H
#define SYNC_MAIL_CHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "env.h"
#include "imap.h"
#include "shared/events.h"
#include "shared/store.h"
#include "shared/val.h"

typedef struct sync_change {
    sh_cmd *cmd;
    sh_val *ev;   /* the event, published once applied */
    bool applied; /* set by sync_change_run: the store did not hold it yet */
} sync_change;

/* sync_change_new makes the store of the new message m (its hash, index
 * and unseen entry) with its mail.new event (the messages route's
 * fields); a no-op when the folder's index holds its UID already. */
int sync_change_new(const sync_env *env, const char *acct, const char *folder, uint32_t uidvalidity,
                    const sync_msg *m, sync_change *out);
/* sync_change_flags makes the store of a message's flags (space-separated)
 * with its mail.flags event; a no-op when the message is not stored or has
 * those flags already. */
int sync_change_flags(const sync_env *env, const char *acct, const char *folder,
                      uint32_t uidvalidity, uint32_t uid, const char *flags, sync_change *out);
/* sync_change_removed makes the removal of a stored message with its
 * mail.removed event; a no-op when it is not stored. */
int sync_change_removed(const sync_env *env, const char *acct, const char *folder,
                        uint32_t uidvalidity, uint32_t uid, sync_change *out);
/* sync_change_run applies the n changes in one pipeline (their commands
 * are consumed), sets each one's applied and publishes its event (pub may
 * be NULL); *napplied (may be NULL) counts them. */
int sync_change_run(sh_store *st, sh_pub *pub, const char *acct, sync_change *c, size_t n,
                    size_t *napplied, sh_error *err);
void sync_change_fini(sync_change *c);

#endif
