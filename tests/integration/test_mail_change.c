/* test_mail_change.c - a change to the synced mail and its event go
 * together (mail_change.c), against a private Redis and Dovecot: a sync
 * run again over mail it stored (as after a crash before it saved the
 * folder's state) appends no event; each change applies once, its event
 * published with the id of the one before (prevId); and a change whose
 * event cannot be appended is not stored either. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dovecot_fixture.h"
#include "eventlog.h"
#include "hosts.h"
#include "keys.h"
#include "mail_change.h"
#include "mail_fixture.h"
#include "mailstore.h"
#include "shared/events.h"
#include "shared/keys.h"
#include "sync.h"

#define ST       (tf_mail_the()->st)
#define MESSAGES 5

static tf_dovecot dove;
static sh_pub *pub;
static sh_sub *sub;
static sync_env env = {.fetch_batch = 2, .fetch_budget = 1000, .renew_s = 30};
static sync_report report;

/* next_published returns the next event published within 2 s, or NULL. */
static sh_val *next_published(int ms)
{
    char *topic = NULL;
    sh_val *p = NULL;
    if (sh_sub_recv(sub, ms, &topic, &p) != SH_OK)
        return NULL;
    free(topic);
    return p;
}

static void drain(void)
{
    sh_val *p;
    while ((p = next_published(300)) != NULL)
        sh_val_free(p);
}

static int setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    if (tf_mail_setup(state) || tf_dovecot_start(&dove, "test", "secret", MESSAGES))
        return -1;
    /* The test Dovecot listens on loopback and speaks plain IMAP. */
    env.hosts = tf_loopback_hosts();
    env.allow_insecure = true;
    return tf_mail_events(ST, &pub, &sub);
}

static int teardown(void **state)
{
    sh_sub_free(sub);
    sh_pub_free(pub);
    tf_dovecot_stop(&dove);
    return tf_mail_teardown(state);
}

static void sync_now(const char *acct)
{
    sync_run run = {.env = &env, .store = ST, .pub = pub, .report = &report, .acct = acct};
    tf_mail_sync(&run, dove.port);
}

static long long count_stored(const char *acct, uint32_t uidvalidity)
{
    long long n = -1;
    sh_error err;
    assert_int_equal(sync_mail_count(ST, acct, "INBOX", uidvalidity, &n, &err), SH_OK);
    return n;
}

/* forget_state deletes the folder's saved state, as a sync that died after
 * storing its messages and before saving the state leaves it. */
static void forget_state(const char *acct)
{
    char key[SYNC_KEY_MAX];
    assert_true(sync_key_state(key, sizeof key, acct, "INBOX") > 0);
    tf_mail_int(ST, tf_mail_cmd1("DEL", key));
}

static uint32_t uidvalidity_of(const char *acct)
{
    sync_folder_state fs;
    sh_error err;
    assert_int_equal(sync_mail_state_get(ST, acct, "INBOX", &fs, &err), SH_OK);
    assert_int_not_equal(fs.uidvalidity, 0);
    return fs.uidvalidity;
}

/* A sync run again over the mail an earlier run stored appends nothing:
 * not for the messages, not for their flags, not for the counts. */
static void test_rerun_appends_nothing(void **state)
{
    (void)state;
    sync_now("r1");
    uint32_t uv = uidvalidity_of("r1");
    long long first = tf_mail_xlen(ST, "r1");
    assert_int_equal(count_stored("r1", uv), MESSAGES);
    /* MESSAGES mail.new, one folder.counts. */
    assert_int_equal(first, MESSAGES + 1);
    forget_state("r1");
    sync_now("r1");
    assert_int_equal(tf_mail_xlen(ST, "r1"), first);
    assert_int_equal(count_stored("r1", uv), MESSAGES);

    /* A flag set elsewhere: one mail.flags (and counts); run again after a
     * lost state, none more. */
    const char *cmds[] = {"SELECT INBOX", "UID STORE 2 +FLAGS (\\Flagged)", NULL};
    assert_int_equal(tf_dovecot_imap(&dove, cmds, NULL, 0), 0);
    sync_now("r1");
    long long after_flag = tf_mail_xlen(ST, "r1");
    assert_int_equal(after_flag, first + 2);
    forget_state("r1");
    sync_now("r1");
    assert_int_equal(tf_mail_xlen(ST, "r1"), after_flag);
    const char *undo[] = {"SELECT INBOX", "UID STORE 2 -FLAGS (\\Flagged)", NULL};
    assert_int_equal(tf_dovecot_imap(&dove, undo, NULL, 0), 0);
    drain();
}

static sync_msg message(uint32_t uid, const char *flags)
{
    sync_msg m;
    memset(&m, 0, sizeof m);
    m.uid = uid;
    m.size = 123;
    m.subject = "Hello";
    m.from = "a@example.org";
    m.flags = (char *)flags;
    return m;
}

/* run_one applies c and returns whether it was applied. */
static bool run_one(const char *acct, sync_change *c)
{
    sh_error err;
    size_t n = 99;
    int rc = sync_change_run(ST, pub, acct, c, 1, &n, &err);
    if (rc)
        fprintf(stderr, "run: %s\n", err.msg);
    assert_int_equal(rc, SH_OK);
    assert_int_equal(n, c->applied ? 1 : 0);
    bool applied = c->applied;
    sync_change_fini(c);
    return applied;
}

/* expect_published checks the next published event: its type, and that
 * its prevId is *prev; *prev becomes its id. */
static void expect_published(const char *type, char *prev, size_t len)
{
    sh_val *p = next_published(2000);
    assert_non_null(p);
    assert_string_equal(sh_val_get_str(p, "type", NULL), type);
    assert_string_equal(sh_val_get_str(p, "prevId", NULL), prev);
    snprintf(prev, len, "%s", sh_val_get_str(p, "id", NULL));
    sh_val_free(p);
}

/* Each change applies once, stored with its event, and each event
 * published names the one before it. */
static void test_change_once(void **state)
{
    (void)state;
    sync_change c;
    sync_msg m = message(7, "\\Seen");
    char prev[64] = "";
    char key[SYNC_KEY_MAX];
    assert_true(sync_key_message(key, sizeof key, "c1", "INBOX", 3, 7) > 0);

    assert_int_equal(sync_change_new(&env, "c1", "INBOX", 3, &m, &c), SH_OK);
    assert_true(run_one("c1", &c));
    expect_published("mail.new", prev, sizeof prev);
    assert_int_equal(tf_mail_int(ST, tf_mail_cmd1("EXISTS", key)), 1);
    assert_int_equal(tf_mail_xlen(ST, "c1"), 1);
    /* The same message again: nothing stored, nothing appended. */
    assert_int_equal(sync_change_new(&env, "c1", "INBOX", 3, &m, &c), SH_OK);
    assert_false(run_one("c1", &c));
    assert_int_equal(tf_mail_xlen(ST, "c1"), 1);

    /* The same flags: nothing; others: stored with their event, once. */
    assert_int_equal(sync_change_flags(&env, "c1", "INBOX", 3, 7, "\\Seen", &c), SH_OK);
    assert_false(run_one("c1", &c));
    assert_int_equal(sync_change_flags(&env, "c1", "INBOX", 3, 7, "\\Seen \\Flagged", &c), SH_OK);
    assert_true(run_one("c1", &c));
    expect_published("mail.flags", prev, sizeof prev);
    assert_int_equal(sync_change_flags(&env, "c1", "INBOX", 3, 7, "\\Seen \\Flagged", &c), SH_OK);
    assert_false(run_one("c1", &c));
    char flags[64];
    assert_int_equal(tf_mail_hget(ST, key, "flags", flags, sizeof flags), 0);
    assert_string_equal(flags, "\\Seen \\Flagged");
    /* Flags of a message not stored: nothing (it comes as new). */
    assert_int_equal(sync_change_flags(&env, "c1", "INBOX", 3, 8, "\\Seen", &c), SH_OK);
    assert_false(run_one("c1", &c));
    assert_int_equal(tf_mail_xlen(ST, "c1"), 2);

    /* Removed once; again, or its flags afterwards: nothing. */
    assert_int_equal(sync_change_removed(&env, "c1", "INBOX", 3, 7, &c), SH_OK);
    assert_true(run_one("c1", &c));
    expect_published("mail.removed", prev, sizeof prev);
    assert_int_equal(tf_mail_int(ST, tf_mail_cmd1("EXISTS", key)), 0);
    assert_int_equal(sync_change_removed(&env, "c1", "INBOX", 3, 7, &c), SH_OK);
    assert_false(run_one("c1", &c));
    assert_int_equal(sync_change_flags(&env, "c1", "INBOX", 3, 7, "", &c), SH_OK);
    assert_false(run_one("c1", &c));
    assert_int_equal(tf_mail_xlen(ST, "c1"), 3);
    assert_null(next_published(300));

    /* The log holds the three, in order, the last the one published last. */
    sh_val *log = NULL;
    sh_error err;
    assert_int_equal(sync_evlog_read(ST, "c1", NULL, 10, &log, &err), SH_OK);
    const sh_val *evs = sh_val_get(log, "events");
    assert_int_equal(sh_val_len(evs), 3);
    assert_string_equal(sh_val_get_str(sh_val_at(evs, 0), "type", NULL), "mail.new");
    assert_string_equal(sh_val_get_str(sh_val_at(evs, 0), "subject", NULL), "Hello");
    assert_int_equal(sh_val_int(sh_val_get(sh_val_at(evs, 0), "uid")), 7);
    assert_string_equal(sh_val_get_str(sh_val_at(evs, 2), "id", NULL), prev);
    sh_val_free(log);
}

/* A change whose event cannot be appended (the log's key is no stream)
 * fails, and is not stored. */
static void test_together(void **state)
{
    (void)state;
    char ev[SYNC_KEY_MAX], key[SYNC_KEY_MAX];
    assert_true(sync_key_events(ev, sizeof ev, "t1") > 0);
    assert_true(sync_key_message(key, sizeof key, "t1", "INBOX", 3, 9) > 0);
    sh_cmd *set = tf_mail_cmd1("SET", ev);
    sh_cmd_str(set, "not a stream");
    tf_mail_int(ST, set);

    sync_msg m = message(9, "");
    sync_change c;
    assert_int_equal(sync_change_new(&env, "t1", "INBOX", 3, &m, &c), SH_OK);
    sh_error err;
    assert_int_not_equal(sync_change_run(ST, pub, "t1", &c, 1, NULL, &err), SH_OK);
    assert_false(c.applied);
    sync_change_fini(&c);
    assert_int_equal(tf_mail_int(ST, tf_mail_cmd1("EXISTS", key)), 0);
    assert_int_equal(count_stored("t1", 3), 0);
    assert_null(next_published(300));

    /* Once the log can be written, the same change goes through whole. */
    tf_mail_int(ST, tf_mail_cmd1("DEL", ev));
    assert_int_equal(sync_change_new(&env, "t1", "INBOX", 3, &m, &c), SH_OK);
    assert_true(run_one("t1", &c));
    assert_int_equal(tf_mail_int(ST, tf_mail_cmd1("EXISTS", key)), 1);
    assert_int_equal(tf_mail_xlen(ST, "t1"), 1);
    drain();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_rerun_appends_nothing, tf_mail_each),
        cmocka_unit_test_setup(test_change_once, tf_mail_each),
        cmocka_unit_test_setup(test_together, tf_mail_each),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
