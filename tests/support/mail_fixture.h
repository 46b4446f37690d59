/* mail_fixture.h - the sync-worker's mail store on a private Redis, for the
 * tests of its modules (mailstore, views, pending changes, sync): a store on
 * a fresh redis-server, and messages and folder states written through the
 * module's own calls. Built into each test that links sync_core, not into
 * testsupport. The helpers fail the running cmocka test on an error. */
#ifndef TESTS_MAIL_FIXTURE_H
#define TESTS_MAIL_FIXTURE_H

#include <stdint.h>

#include "fixture.h"
#include "shared/events.h"
#include "shared/store.h"
#include "sync.h"

typedef struct tf_mail {
    tf_redis redis;
    sh_store *st;
} tf_mail;

/* tf_mail_start starts Redis and opens a store on it with a command
 * timeout of command_ms (0: the store's default). Returns 0 or -1 (reason
 * on stderr). tf_mail_stop frees the store and stops Redis. */
int tf_mail_start(tf_mail *m, int command_ms);
void tf_mail_stop(tf_mail *m);

/* The cmocka fixtures of a test file using one such store: group setup
 * (a command timeout of 300 ms, so a stopped Redis fails calls quickly) and
 * teardown, and a per-test setup emptying Redis. tf_mail_the returns it. */
int tf_mail_setup(void **state);
int tf_mail_teardown(void **state);
int tf_mail_each(void **state);
tf_mail *tf_mail_the(void);

/* tf_mail_put stores message uid of folder under uidvalidity with flags
 * and the subject "Message <uid>" (sync_mail_put_cmds + sync_mail_run). */
void tf_mail_put(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                 uint32_t uid, const char *flags);
/* tf_mail_folder records the folder as synced with that state. */
void tf_mail_folder(sh_store *st, const char *acct, const char *folder, uint32_t uidvalidity,
                    uint32_t uidnext, uint64_t modseq);

/* tf_mail_int runs c (taken) and returns its integer reply, or a string
 * reply read as a number; -1 for nil. */
long long tf_mail_int(sh_store *st, sh_cmd *c);
/* tf_mail_cmd1 makes the command name with one argument. */
sh_cmd *tf_mail_cmd1(const char *name, const char *arg);
/* tf_mail_hget copies field of hash key into buf; returns 0, or -1 when
 * absent (buf then ""). */
int tf_mail_hget(sh_store *st, const char *key, const char *field, char *buf, size_t len);
/* tf_mail_keys counts the keys of account acct. */
long long tf_mail_keys(sh_store *st, const char *acct);
/* tf_mail_flush empties Redis. */
void tf_mail_flush(sh_store *st);

/* tf_mail_events opens a publisher and a subscriber to the mail events
 * (SH_TOPIC_MAIL_EVENT) on a free loopback port, and returns 0 once the
 * subscriber receives (probe events of account "probe", drained), -1
 * otherwise. */
int tf_mail_events(sh_store *st, sh_pub **pub, sh_sub **sub);
/* tf_mail_account returns the account of user "test" on a plain IMAP
 * server at 127.0.0.1:port (caller frees). */
sh_val *tf_mail_account(int port);
/* tf_mail_sync runs a sync of that account (password "secret") with run,
 * failing the test unless it succeeds. */
void tf_mail_sync(sync_run *run, int port);

/* tf_mail_xlen returns the length of the account's event log. */
long long tf_mail_xlen(sh_store *st, const char *acct);

#endif
