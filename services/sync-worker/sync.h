/* sync.h - one sync of one account: connect, log in, and bring every folder
 * of the account in Redis up to date with the server (new messages, flag
 * changes, deletions, UIDVALIDITY resets), publishing an event per changed
 * message and reporting progress. */
#ifndef SYNC_SYNC_H
#define SYNC_SYNC_H

#include "env.h"
#include "imap.h"
#include "report.h"
#include "shared/events.h"
#include "shared/store.h"
#include "shared/val.h"

/* Called between batches: renews the lease when due; a non-zero return
 * (lease lost, worker stopping) aborts the sync with that code. */
typedef int (*sync_keepalive_fn)(void *arg, sh_error *err);

typedef struct sync_run {
    const sync_env *env;
    sh_store *store;
    sh_pub *pub;
    sync_report *report;
    const char *acct;
    sync_keepalive_fn keepalive;
    void *keepalive_arg;
    long long fetched; /* messages fetched by the run, set by sync_account */
    /* sh_mono_ms() time the run must end by (SYNC_RUN_DEADLINE_SECONDS
     * from its start); 0: sync_account sets it (none when that setting
     * is 0). */
    int64_t deadline_ms;
    /* A problem the run went on past (a read/unread change the server
     * refused), shown as the account's errorMessage of an ok run; "" when
     * none. Set by sync_account. */
    char warning[400];
    /* The OAuth2 sign-in of an OAuth2 account (oauth.h), NULL for a
     * password account. */
    struct sync_auth *auth;
} sync_run;

/* sync_account syncs the account (the lease's account map) with the given
 * password. Returns SH_OK, SYNC_EAUTH when the login was refused, or another
 * code with err saying what failed. */
int sync_account(sync_run *run, const sh_val *account, const char *password, sh_error *err);

/* sync_security_of reads an account's security ("tls", "starttls",
 * "none"); -1 for anything else. */
int sync_security_of(const char *s, sync_security *out);

/* sync_publish publishes {kind, accountId, folder, uid, uidvalidity, flags?}
 * on topic "mail:<acct>". */
void sync_publish(sh_pub *pub, const char *acct, const char *kind, const char *folder,
                  uint32_t uidvalidity, uint32_t uid, const char *flags);

#endif
