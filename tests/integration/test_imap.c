/* test_imap.c - the sync-worker's IMAP session (imap.c, imap_exec.c,
 * imap_stream.c) called directly, without the rest of the worker: against a
 * private Dovecot, connect errors, login, CAPABILITY-derived state, SELECT,
 * SEARCH, FETCH and its callback, STORE with UNCHANGEDSINCE, QRESYNC
 * changes and expunges, SPECIAL-USE and TLS; against the strict test
 * server, the synchronizing literal of an 8-bit password, each STORE
 * refusal mapped to "try later" or "refused", and replies no real server
 * sends (a huge literal, garbage, a stall, a close, a close inside a
 * literal) mapped to clear errors in bounded time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dovecot_fixture.h"
#include "fixture.h"
#include "imap.h"
#include "imap_idle.h"
#include "shared/hostpolicy.h"
#include "shared/util.h"
#include "strict_fixture.h"

#define NMSG 20
/* A user of the strict servers whose password needs a literal. */
#define LIT_USER "lit"
#define LIT_PASS "p\xc3\xa4ss w\"rd"

static tf_dovecot dove, strict, plain, tls;
/* Loopback allowed: every fixture listens on 127.0.0.1. */
static sh_hostpolicy *loopback;

static int group_setup(void **state)
{
    (void)state;
    static const char *const users[] = {LIT_USER ":" LIT_PASS, NULL};
    const tf_strict_opts sopts = {.extra_users = users};
    const tf_strict_opts popts = {.capability = "IMAP4rev1", .extra_users = users};
    if (tf_dovecot_start(&dove, "test", "secret", NMSG))
        return -1;
    if (tf_strict_start(&strict, "test", "secret", NMSG, &sopts))
        return -1;
    char tls_dir[300];
    snprintf(tls_dir, sizeof tls_dir, "%s/tls", dove.dir);
    const tf_strict_opts topts = {.tls_dir = tls_dir};
    if (tf_strict_start(&tls, "test", "secret", NMSG, &topts))
        return -1;
    sh_error err;
    if (sh_hostpolicy_new("127.0.0.0/8,::1", NULL, SH_IMAP_ALLOW_HOSTS, SH_IMAP_DENY_HOSTS,
                          &loopback, &err))
        return -1;
    return tf_strict_start(&plain, "test", "secret", NMSG, &popts);
}

static int group_teardown(void **state)
{
    (void)state;
    tf_dovecot_stop(&dove);
    tf_dovecot_stop(&strict);
    tf_dovecot_stop(&plain);
    tf_dovecot_stop(&tls);
    sh_hostpolicy_free(loopback);
    return 0;
}

static sync_imap_opts opts_for(int port)
{
    return (sync_imap_opts){.host = "127.0.0.1",
                            .port = port,
                            .security = SYNC_SEC_NONE,
                            .connect_timeout_s = 5,
                            .command_timeout_s = 5,
                            .hosts = loopback,
                            .allow_insecure = true};
}

/* session opens and logs in to a server of the fixture, or fails the test. */
static sync_imap *session(const tf_dovecot *d, const char *user, const char *password)
{
    sync_imap_opts o = opts_for(d->port);
    sync_imap *s = NULL;
    sh_error err;
    if (sync_imap_open(&o, &s, &err) != SH_OK)
        fail_msg("open: %s", err.msg);
    if (sync_imap_login(s, user, password, &err) != SH_OK)
        fail_msg("login: %s", err.msg);
    return s;
}

static void select_inbox(sync_imap *s, sync_folder_info *info)
{
    sh_error err;
    if (sync_imap_select(s, "INBOX", info, &err) != SH_OK)
        fail_msg("select: %s", err.msg);
}

/* control runs one command on a second connection of server d. */
static void control(const tf_dovecot *d, const char *cmd)
{
    const char *cmds[] = {cmd, NULL};
    assert_int_equal(tf_dovecot_imap(d, cmds, NULL, 0), 0);
}

static void expect_msg(const sh_error *err, const char *part)
{
    if (!strstr(err->msg, part))
        fail_msg("message \"%s\" lacks \"%s\"", err->msg, part);
}

/* What a fetch's callback saw. */
typedef struct seen_msgs {
    size_t n;
    int stop_with; /* returned by the callback when non-zero */
    uint32_t uid[64];
    char flags[64][64];
    char subject[64][64];
    char from[64][96];
    char internal_date[64][32];
    uint32_t size[64];
} seen_msgs;

static int collect(void *arg, const sync_msg *m)
{
    seen_msgs *c = arg;
    assert_true(c->n < 64);
    c->uid[c->n] = m->uid;
    snprintf(c->flags[c->n], sizeof c->flags[0], "%s", m->flags);
    snprintf(c->subject[c->n], sizeof c->subject[0], "%s", m->subject);
    snprintf(c->from[c->n], sizeof c->from[0], "%s", m->from);
    snprintf(c->internal_date[c->n], sizeof c->internal_date[0], "%s", m->internal_date);
    c->size[c->n] = m->size;
    c->n++;
    return c->stop_with;
}

/* index_of returns where uid is among the collected messages, or -1. */
static int index_of(const seen_msgs *c, uint32_t uid)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->uid[i] == uid)
            return (int)i;
    return -1;
}

/* A port that accepts connections (the kernel's backlog) but never greets. */
static int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void test_open_errors(void **state)
{
    (void)state;
    sync_imap *s = (sync_imap *)1;
    sh_error err;
    sync_imap_opts o = opts_for(0);
    assert_int_equal(sync_imap_open(&o, &s, &err), SH_EINVAL);
    assert_null(s);
    assert_string_equal(err.msg, "invalid IMAP port 0");
    o.port = 65536;
    assert_int_equal(sync_imap_open(&o, &s, &err), SH_EINVAL);

    /* Nothing listens. */
    o = opts_for(tf_free_port());
    char want[160];
    snprintf(want, sizeof want, "cannot connect to 127.0.0.1:%d (Connection refused)", o.port);
    assert_int_equal(sync_imap_open(&o, &s, &err), SH_EUNAVAIL);
    assert_null(s);
    expect_msg(&err, want);
    /* TLS spoken to a plain port. */
    o = opts_for(dove.port);
    o.security = SYNC_SEC_TLS;
    o.tls_verify = false;
    assert_int_equal(sync_imap_open(&o, &s, &err), SH_EUNAVAIL);
    expect_msg(&err, " with TLS (handshake failed)");
    /* A server that never greets: the connect timeout bounds the wait. */
    int port, fd = silent_listener(&port);
    o = opts_for(port);
    o.connect_timeout_s = 1;
    long long t0 = sh_mono_ms();
    assert_int_equal(sync_imap_open(&o, &s, &err), SH_ETIMEDOUT);
    long long took = sh_mono_ms() - t0;
    close(fd);
    assert_true(took >= 900 && took < 5000);
    snprintf(want, sizeof want,
             "IMAP server stalled: no complete greeting from 127.0.0.1:%d within 1 s", port);
    expect_msg(&err, want);
    sync_imap_free(NULL);
}

static void test_login(void **state)
{
    (void)state;
    sync_imap_opts o = opts_for(dove.port);
    sync_imap *s = NULL;
    sh_error err;
    assert_int_equal(sync_imap_open(&o, &s, &err), SH_OK);
    assert_int_equal(sync_imap_login(s, "test", "wrong", &err), SYNC_EAUTH);
    assert_int_equal(err.code, SYNC_EAUTH);
    expect_msg(&err, "IMAP login refused: ");
    /* Dovecot's own words follow. */
    assert_true(strlen(err.msg) > strlen("IMAP login refused: ") + 5);
    assert_false(sync_imap_has_condstore(s));
    assert_false(sync_imap_has_qresync(s));
    /* The session takes a second attempt. */
    assert_int_equal(sync_imap_login(s, "test", "secret", &err), SH_OK);
    assert_true(sync_imap_has_condstore(s));
    assert_true(sync_imap_has_qresync(s));
    sync_imap_free(s);
}

static void test_select_search(void **state)
{
    (void)state;
    sync_imap *s = session(&dove, "test", "secret");
    sync_folder_info info;
    sh_error err;
    select_inbox(s, &info);
    assert_true(info.uidvalidity > 0);
    assert_int_equal(info.exists, NMSG);
    assert_int_equal(info.uidnext, NMSG + 1);
    assert_true(info.highestmodseq > 0);

    assert_int_equal(sync_imap_select(s, "Nope", &info, &err), SH_EPROTO);
    expect_msg(&err, "IMAP SELECT Nope refused: ");
    assert_int_equal(info.uidvalidity, 0);
    select_inbox(s, &info);

    uint32_t *uids = NULL;
    size_t n = 0;
    assert_int_equal(sync_imap_search(s, 0, &uids, &n, &err), SH_OK);
    assert_int_equal(n, NMSG);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(uids[i], i + 1);
    free(uids);
    assert_int_equal(sync_imap_search(s, 15, &uids, &n, &err), SH_OK);
    assert_int_equal(n, NMSG - 14);
    assert_int_equal(uids[0], 15);
    assert_int_equal(uids[n - 1], NMSG);
    free(uids);
    /* "21:*" names the last message too (RFC 3501 6.4.8): left out. */
    assert_int_equal(sync_imap_search(s, NMSG + 1, &uids, &n, &err), SH_OK);
    assert_int_equal(n, 0);
    free(uids);
    /* Windows of the full check: a UID range, and the UID at a sequence
     * number. */
    assert_int_equal(sync_imap_search_range(s, 4, 9, &uids, &n, &err), SH_OK);
    assert_int_equal(n, 6);
    assert_int_equal(uids[0], 4);
    assert_int_equal(uids[5], 9);
    free(uids);
    assert_int_equal(sync_imap_search_range(s, NMSG - 1, UINT32_MAX, &uids, &n, &err), SH_OK);
    assert_int_equal(n, 2);
    assert_int_equal(uids[1], NMSG);
    free(uids);
    assert_int_equal(sync_imap_search_range(s, NMSG + 5, UINT32_MAX, &uids, &n, &err), SH_OK);
    assert_int_equal(n, 0);
    free(uids);
    uint32_t uid = 0;
    assert_int_equal(sync_imap_uid_at(s, 7, &uid, &err), SH_OK);
    assert_int_equal(uid, 7);
    assert_int_equal(sync_imap_uid_at(s, 0, &uid, &err), SH_OK);
    assert_int_equal(uid, 0);
    seen_msgs *c = calloc(1, sizeof *c);
    assert_int_equal(sync_imap_fetch_range(s, 3, 5, false, 0, collect, c, &err), SH_OK);
    assert_int_equal(c->n, 3);
    assert_true(index_of(c, 3) >= 0 && index_of(c, 5) >= 0 && index_of(c, 6) < 0);
    free(c);
    sync_imap_free(s);
}

static void test_fetch(void **state)
{
    (void)state;
    sync_imap *s = session(&dove, "test", "secret");
    sync_folder_info info;
    sh_error err;
    select_inbox(s, &info);

    /* Full fetch of a few UIDs in any order. */
    seen_msgs *c = calloc(1, sizeof *c);
    const uint32_t some[] = {3, 1, 2};
    assert_int_equal(sync_imap_fetch(s, some, 3, true, 0, collect, c, &err), SH_OK);
    assert_int_equal(c->n, 3);
    for (uint32_t u = 1; u <= 3; u++) {
        int i = index_of(c, u);
        assert_true(i >= 0);
        char want[160];
        snprintf(want, sizeof want, "Message %u", (unsigned)u);
        assert_string_equal(c->subject[i], want);
        snprintf(want, sizeof want, "sender%u@example.com", (unsigned)u);
        assert_non_null(strstr(c->from[i], want));
        assert_int_equal(strstr(c->flags[i], "\\Seen") != NULL, tf_dovecot_message_seen((int)u));
        assert_true(c->size[i] > 100);
        /* ISO 8601 UTC: 2026-01-02T03:04:05.000Z */
        assert_int_equal(strlen(c->internal_date[i]), 24);
        assert_int_equal(c->internal_date[i][10], 'T');
        assert_int_equal(c->internal_date[i][23], 'Z');
    }

    /* Flags only, 1:*: every message, no summary. */
    memset(c, 0, sizeof *c);
    assert_int_equal(sync_imap_fetch(s, NULL, 0, false, 0, collect, c, &err), SH_OK);
    assert_int_equal(c->n, NMSG);
    for (size_t i = 0; i < c->n; i++) {
        assert_string_equal(c->subject[i], "");
        assert_int_equal(strstr(c->flags[i], "\\Seen") != NULL,
                         tf_dovecot_message_seen((int)c->uid[i]));
    }
    /* CHANGEDSINCE the current mod-sequence: nothing. */
    memset(c, 0, sizeof *c);
    assert_int_equal(sync_imap_fetch(s, NULL, 0, false, info.highestmodseq, collect, c, &err),
                     SH_OK);
    assert_int_equal(c->n, 0);

    /* The callback's code stops the fetch and is returned. */
    memset(c, 0, sizeof *c);
    c->stop_with = 77;
    assert_int_equal(sync_imap_fetch(s, NULL, 0, false, 0, collect, c, &err), 77);
    assert_int_equal(c->n, 1);
    /* No UIDs: no command, no callback. */
    memset(c, 0, sizeof *c);
    assert_int_equal(sync_imap_fetch(s, some, 0, true, 0, collect, c, &err), SH_OK);
    assert_int_equal(c->n, 0);
    /* The session goes on after all of that. */
    assert_int_equal(sync_imap_fetch(s, some, 1, false, 0, collect, c, &err), SH_OK);
    assert_int_equal(c->n, 1);
    assert_int_equal(c->uid[0], 3);

    /* Fetches sent ahead: every message of both comes once, whichever
     * reply carries it (Dovecot runs pipelined fetches at once), and the
     * session goes on after them. */
    uint32_t first[NMSG / 2], second[NMSG / 2];
    for (uint32_t i = 0; i < NMSG / 2; i++) {
        first[i] = i + 1;
        second[i] = NMSG / 2 + i + 1;
    }
    memset(c, 0, sizeof *c);
    assert_int_equal(sync_imap_fetch_recv(s, true, collect, c, &err), SH_EINVAL);
    assert_int_equal(sync_imap_fetch_send(s, first, NMSG / 2, true, &err), SH_OK);
    assert_int_equal(sync_imap_fetch_send(s, second, NMSG / 2, true, &err), SH_OK);
    assert_int_equal(sync_imap_due(s), 2);
    assert_int_equal(sync_imap_fetch_recv(s, true, collect, c, &err), SH_OK);
    assert_true(c->n >= NMSG / 2);
    assert_int_equal(sync_imap_due(s), 1);
    assert_int_equal(sync_imap_fetch_recv(s, true, collect, c, &err), SH_OK);
    assert_int_equal(sync_imap_due(s), 0);
    assert_int_equal(c->n, NMSG);
    for (uint32_t u = 1; u <= NMSG; u++) {
        int i = index_of(c, u);
        assert_true(i >= 0);
        char want[32];
        snprintf(want, sizeof want, "Message %u", (unsigned)u);
        assert_string_equal(c->subject[i], want);
    }
    memset(c, 0, sizeof *c);
    assert_int_equal(sync_imap_fetch(s, some, 1, false, 0, collect, c, &err), SH_OK);
    assert_int_equal(c->n, 1);
    /* A session freed with a fetch still due. */
    assert_int_equal(sync_imap_fetch_send(s, first, 1, true, &err), SH_OK);
    free(c);
    sync_imap_free(s);
}

static void test_special_use(void **state)
{
    (void)state;
    sync_imap *s = session(&dove, "test", "secret");
    char **names = NULL;
    size_t n = 9;
    sh_error err;
    assert_int_equal(sync_imap_special_use(s, &names, &n, &err), SH_OK);
    assert_int_equal(n, 0);
    free(names);
    control(&dove, "CREATE Sent");
    control(&dove, "CREATE Drafts");
    control(&dove, "CREATE Other");
    assert_int_equal(sync_imap_special_use(s, &names, &n, &err), SH_OK);
    assert_int_equal(n, 2);
    bool sent = false, drafts = false;
    for (size_t i = 0; i < n; i++) {
        sent = sent || strcmp(names[i], "Sent") == 0;
        drafts = drafts || strcmp(names[i], "Drafts") == 0;
        free(names[i]);
    }
    free(names);
    assert_true(sent && drafts);
    sync_imap_free(s);

    /* A server without SPECIAL-USE is not asked. */
    s = session(&plain, "test", "secret");
    int lists = tf_strict_log_count(&plain, "LIST");
    assert_int_equal(sync_imap_special_use(s, &names, &n, &err), SH_OK);
    assert_int_equal(n, 0);
    free(names);
    sync_imap_free(s);
    assert_int_equal(tf_strict_log_count(&plain, "LIST"), lists);
}

/* Runs last of the Dovecot tests: it changes and expunges messages. */
static void test_store_and_changes(void **state)
{
    (void)state;
    sync_imap *s = session(&dove, "test", "secret");
    sync_folder_info info;
    sh_error err;
    bool modified = true;
    select_inbox(s, &info);
    uint64_t m0 = info.highestmodseq;
    assert_false(tf_dovecot_message_seen(1));
    assert_int_equal(sync_imap_store_seen(s, 1, true, m0, &modified, &err), SH_OK);
    assert_false(modified);
    /* A change by another client since m0 wins over ours. */
    const char *other[] = {"SELECT INBOX", "UID STORE 2 +FLAGS.SILENT (\\Flagged)", NULL};
    assert_int_equal(tf_dovecot_imap(&dove, other, NULL, 0), 0);
    assert_int_equal(sync_imap_store_seen(s, 2, true, m0, &modified, &err), SH_OK);
    assert_true(modified);

    seen_msgs *c = calloc(1, sizeof *c);
    const uint32_t two[] = {1, 2};
    assert_int_equal(sync_imap_fetch(s, two, 2, false, 0, collect, c, &err), SH_OK);
    assert_int_equal(c->n, 2);
    assert_non_null(strstr(c->flags[index_of(c, 1)], "\\Seen"));
    assert_null(strstr(c->flags[index_of(c, 2)], "\\Seen"));
    assert_non_null(strstr(c->flags[index_of(c, 2)], "\\Flagged"));

    /* What changed since m0, and what was expunged meanwhile. */
    const char *expunge[] = {"SELECT INBOX", "UID STORE 5 +FLAGS.SILENT (\\Deleted)", "EXPUNGE",
                             NULL};
    assert_int_equal(tf_dovecot_imap(&dove, expunge, NULL, 0), 0);
    sync_uid_range *gone = NULL;
    size_t ngone = 0;
    memset(c, 0, sizeof *c);
    assert_int_equal(sync_imap_changes(s, NMSG, m0, collect, c, &gone, &ngone, &err), SH_OK);
    assert_true(index_of(c, 1) >= 0);
    assert_true(index_of(c, 2) >= 0);
    assert_int_equal(index_of(c, 3), -1);
    assert_true(ngone >= 1);
    for (size_t i = 0; i < ngone; i++) {
        assert_int_equal(gone[i].lo, 5);
        assert_int_equal(gone[i].hi, 5);
    }
    free(gone);
    /* Cut to 1..hi: UID 5 is past 4. */
    memset(c, 0, sizeof *c);
    assert_int_equal(sync_imap_changes(s, 4, m0, collect, c, &gone, &ngone, &err), SH_OK);
    assert_int_equal(ngone, 0);
    assert_true(index_of(c, 1) >= 0);
    free(gone);
    /* Without a stored state there is nothing to ask. */
    assert_int_equal(sync_imap_changes(s, NMSG, 0, collect, c, &gone, &ngone, &err), SH_EINVAL);
    assert_null(gone);
    /* -FLAGS without a mod-sequence is unconditional. */
    assert_int_equal(sync_imap_store_seen(s, 1, false, 0, &modified, &err), SH_OK);
    assert_false(modified);
    memset(c, 0, sizeof *c);
    assert_int_equal(sync_imap_fetch(s, two, 1, false, 0, collect, c, &err), SH_OK);
    assert_null(strstr(c->flags[0], "\\Seen"));
    free(c);
    sync_imap_free(s);
}

static void test_tls(void **state)
{
    (void)state;
    static const struct {
        sync_security sec;
        const char *host;
        bool tls_port;
    } ok[] = {
        {SYNC_SEC_TLS, "127.0.0.1", true},
        {SYNC_SEC_TLS, "localhost", true},
        {SYNC_SEC_STARTTLS, "127.0.0.1", false},
    };
    sh_error err;
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        sync_imap_opts o = opts_for(ok[i].tls_port ? dove.tls_port : dove.port);
        o.security = ok[i].sec;
        o.host = ok[i].host;
        o.tls_verify = true;
        o.ca_file = dove.ca_file;
        sync_imap *s = NULL;
        if (sync_imap_open(&o, &s, &err) != SH_OK)
            fail_msg("%s: %s", ok[i].host, err.msg);
        assert_int_equal(sync_imap_login(s, "test", "secret", &err), SH_OK);
        sync_folder_info info;
        select_inbox(s, &info);
        assert_true(info.exists > 0);
        sync_imap_free(s);
    }
    /* The throwaway CA is not in the system store. */
    for (int starttls = 0; starttls < 2; starttls++) {
        sync_imap_opts o = opts_for(starttls ? dove.port : dove.tls_port);
        o.security = starttls ? SYNC_SEC_STARTTLS : SYNC_SEC_TLS;
        o.tls_verify = true;
        sync_imap *s = (sync_imap *)1;
        assert_int_equal(sync_imap_open(&o, &s, &err), SH_EINVAL);
        assert_null(s);
        expect_msg(&err, "TLS certificate of 127.0.0.1 not trusted");
        /* Unless verification is off. */
        o.tls_verify = false;
        assert_int_equal(sync_imap_open(&o, &s, &err), SH_OK);
        assert_int_equal(sync_imap_login(s, "test", "secret", &err), SH_OK);
        sync_imap_free(s);
    }
}

/* LOGIN before LITERAL+ is known: an 8-bit password goes as a
 * synchronizing literal, waiting for the server's "+". */
static void test_literal_login(void **state)
{
    (void)state;
    const tf_dovecot *servers[] = {&plain, &strict};
    for (size_t i = 0; i < 2; i++) {
        sync_imap_opts o = opts_for(servers[i]->port);
        sync_imap *s = NULL;
        sh_error err;
        assert_int_equal(sync_imap_open(&o, &s, &err), SH_OK);
        assert_int_equal(sync_imap_login(s, LIT_USER, "p\xc3\xa4ss w\"rX", &err), SYNC_EAUTH);
        expect_msg(&err, "invalid credentials");
        assert_int_equal(sync_imap_login(s, LIT_USER, LIT_PASS, &err), SH_OK);
        /* What the capabilities after login say. */
        assert_int_equal(sync_imap_has_condstore(s), servers[i] == &strict);
        assert_int_equal(sync_imap_has_qresync(s), servers[i] == &strict);
        sync_folder_info info;
        select_inbox(s, &info);
        assert_true(info.exists > 0);
        assert_int_equal(info.highestmodseq > 0, servers[i] == &strict);
        sync_imap_free(s);
        assert_int_equal(tf_strict_log_count(servers[i], "BAD"), 0);
    }
}

/* Each refusal of a STORE: SYNC_ETRYLATER when it may pass, SYNC_EREFUSED
 * otherwise, with the answer, its code and the server's words. */
static void test_store_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *fail;
        int rc;
        const char *msg;
    } cases[] = {
        {"NO UNAVAILABLE", SYNC_ETRYLATER,
         "IMAP UID STORE refused (NO UNAVAILABLE): refused as asked"},
        {"NO", SYNC_ETRYLATER, "IMAP UID STORE refused (NO): refused as asked"},
        {"NO INUSE", SYNC_ETRYLATER, "(NO INUSE)"},
        {"NO CANNOT", SYNC_EREFUSED, "IMAP UID STORE refused (NO CANNOT): refused as asked"},
        {"NO NOPERM", SYNC_EREFUSED, "(NO NOPERM)"},
        {"BAD", SYNC_EREFUSED, "IMAP UID STORE refused (BAD): refused as asked"},
    };
    sync_imap *s = session(&strict, "test", "secret");
    sync_folder_info info;
    select_inbox(s, &info);
    sh_error err;
    bool modified;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char cmd[80];
        snprintf(cmd, sizeof cmd, "XSTRICT FAIL-STORE 4 1 %s", cases[i].fail);
        control(&strict, cmd);
        assert_int_equal(sync_imap_store_seen(s, 4, true, info.highestmodseq, &modified, &err),
                         cases[i].rc);
        assert_int_equal(err.code, cases[i].rc);
        expect_msg(&err, cases[i].msg);
        /* Once only: the same change goes through next time. */
        assert_int_equal(sync_imap_store_seen(s, 4, true, 0, &modified, &err), SH_OK);
    }
    sync_imap_free(s);
    /* The only BAD lines are the one asked for and the request for it. */
    assert_int_equal(tf_strict_log_count(&strict, "BAD"),
                     tf_strict_log_count(&strict, "BAD refused as asked") +
                         tf_strict_log_count(&strict, "FAIL-STORE 4 1 BAD"));
}

/* One hostile answer to one command: the error and message it maps to,
 * within a few seconds, and a session that is freed without hanging. */
static void expect_hostile(const char *cmd, const char *how, int want, const char *msg)
{
    sync_imap_opts o = opts_for(strict.port);
    o.command_timeout_s = 1;
    sync_imap *s = NULL;
    sh_error err;
    assert_int_equal(sync_imap_open(&o, &s, &err), SH_OK);
    char ctl[80];
    snprintf(ctl, sizeof ctl, "XSTRICT HOSTILE %s %s", cmd, how);
    int rc = SH_OK;
    bool login = strcmp(cmd, "LOGIN") == 0;
    if (login)
        control(&strict, ctl);
    long long t0 = sh_mono_ms();
    rc = sync_imap_login(s, "test", "secret", &err);
    if (!login) {
        assert_int_equal(rc, SH_OK);
        sync_folder_info info;
        if (strcmp(cmd, "SELECT") != 0)
            select_inbox(s, &info);
        control(&strict, ctl);
        t0 = sh_mono_ms();
        if (strcmp(cmd, "SELECT") == 0) {
            rc = sync_imap_select(s, "INBOX", &info, &err);
        } else if (strcmp(cmd, "SEARCH") == 0) {
            uint32_t *uids = NULL;
            size_t n;
            rc = sync_imap_search(s, 0, &uids, &n, &err);
            assert_null(uids);
        } else {
            seen_msgs *c = calloc(1, sizeof *c);
            const uint32_t one = 1;
            rc = sync_imap_fetch(s, &one, 1, true, 0, collect, c, &err);
            assert_int_equal(c->n, 0);
            free(c);
        }
    }
    long long took = sh_mono_ms() - t0;
    if (rc != want || !strstr(err.msg, msg))
        fail_msg("%s %s: got %d \"%s\", want %d \"%s\"", cmd, how, rc, err.msg, want, msg);
    assert_int_equal(err.code, want);
    assert_true(took < 8000);
    t0 = sh_mono_ms();
    sync_imap_free(s);
    assert_true(sh_mono_ms() - t0 < 4000);
}

static void test_hostile(void **state)
{
    (void)state;
    expect_hostile("FETCH", "HUGE-LITERAL", SH_EPROTO,
                   "IMAP UID FETCH: the server's reply is larger than 64 MiB; refused");
    expect_hostile("FETCH", "GARBAGE", SH_EPROTO, "IMAP UID FETCH: malformed server reply");
    expect_hostile("FETCH", "STALL", SH_EUNAVAIL, "IMAP UID FETCH: connection lost or timed out");
    expect_hostile("FETCH", "CLOSE", SH_EUNAVAIL, "IMAP UID FETCH: connection lost or timed out");
    expect_hostile("FETCH", "CLOSE-IN-LITERAL", SH_EUNAVAIL,
                   "IMAP UID FETCH: connection lost or timed out");
    expect_hostile("SELECT", "CLOSE", SH_EUNAVAIL, "IMAP SELECT: connection lost or timed out");
    expect_hostile("SELECT", "GARBAGE", SH_EPROTO, "IMAP SELECT: malformed server reply");
    expect_hostile("SEARCH", "STALL", SH_EUNAVAIL, "IMAP UID SEARCH: connection lost or timed out");
    /* A login that dies is not a wrong password. */
    expect_hostile("LOGIN", "CLOSE", SH_EUNAVAIL, "IMAP LOGIN: connection lost or timed out");
    expect_hostile("LOGIN", "STALL", SH_EUNAVAIL, "IMAP LOGIN: connection lost or timed out");
    expect_hostile("LOGIN", "GARBAGE", SH_EPROTO, "IMAP LOGIN: malformed server reply");
    assert_int_equal(tf_strict_log_count(&strict, "hostile answer "), 11);
}

/* A reply that trickles in, a byte every 2 s: every read succeeds within
 * the idle timeout, so only the whole reply's deadline ends it. */
static void test_trickle(void **state)
{
    (void)state;
    sync_imap_opts o = opts_for(strict.port);
    o.command_timeout_s = 5;
    o.command_deadline_s = 3;
    sync_imap *s = NULL;
    sh_error err;
    assert_int_equal(sync_imap_open(&o, &s, &err), SH_OK);
    assert_int_equal(sync_imap_login(s, "test", "secret", &err), SH_OK);
    sync_folder_info info;
    select_inbox(s, &info);
    control(&strict, "XSTRICT HOSTILE FETCH TRICKLE");
    seen_msgs *c = calloc(1, sizeof *c);
    const uint32_t one = 1;
    long long t0 = sh_mono_ms();
    assert_int_equal(sync_imap_fetch(s, &one, 1, true, 0, collect, c, &err), SH_ETIMEDOUT);
    long long took = sh_mono_ms() - t0;
    assert_string_equal(err.msg, "IMAP server stalled: no complete reply to UID FETCH within 3 s");
    assert_true(took >= 2900 && took < 5000);
    free(c);
    t0 = sh_mono_ms();
    sync_imap_free(s);
    assert_true(sh_mono_ms() - t0 < 1000);

    /* The run's deadline comes first: it cuts the reply there. */
    o.command_deadline_s = 30;
    o.run_deadline_ms = sh_mono_ms() + 2500;
    o.run_deadline_s = 42;
    assert_int_equal(sync_imap_open(&o, &s, &err), SH_OK);
    assert_int_equal(sync_imap_login(s, "test", "secret", &err), SH_OK);
    select_inbox(s, &info);
    control(&strict, "XSTRICT HOSTILE FETCH TRICKLE");
    c = calloc(1, sizeof *c);
    t0 = sh_mono_ms();
    assert_int_equal(sync_imap_fetch(s, &one, 1, true, 0, collect, c, &err), SH_ETIMEDOUT);
    took = sh_mono_ms() - t0;
    expect_msg(&err, "sync run deadline of 42 s (SYNC_RUN_DEADLINE_SECONDS) reached during IMAP "
                     "UID FETCH");
    assert_true(took < 4000);
    free(c);
    sync_imap_free(s);
    /* Deadlines changed on an open session (a caller that waits on
     * purpose): the shorter one cuts the reply. */
    o.run_deadline_ms = 0;
    assert_int_equal(sync_imap_open(&o, &s, &err), SH_OK);
    assert_int_equal(sync_imap_login(s, "test", "secret", &err), SH_OK);
    select_inbox(s, &info);
    sync_imap_set_deadlines(s, 0, 2, 0);
    control(&strict, "XSTRICT HOSTILE FETCH TRICKLE");
    c = calloc(1, sizeof *c);
    t0 = sh_mono_ms();
    assert_int_equal(sync_imap_fetch(s, &one, 1, true, 0, collect, c, &err), SH_ETIMEDOUT);
    took = sh_mono_ms() - t0;
    assert_string_equal(err.msg, "IMAP server stalled: no complete reply to UID FETCH within 2 s");
    assert_true(took >= 1900 && took < 4000);
    free(c);
    sync_imap_free(s);
    o.run_deadline_ms = sh_mono_ms() - 1;
    /* Past the run's deadline nothing is even connected to. */
    assert_int_equal(sync_imap_open(&o, &s, &err), SH_ETIMEDOUT);
    expect_msg(&err, "sync run deadline of 42 s");
    assert_int_equal(tf_strict_log_count(&strict, "hostile answer TRICKLE"), 3);
}

/* rss_kb reads a size of /proc/self/status: "VmRSS" (now) or "VmHWM" (the
 * peak since reset_peak). */
static long rss_kb(const char *what)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[128], fmt[32];
    long kb = -1;
    snprintf(fmt, sizeof fmt, "%s: %%ld kB", what);
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, fmt, &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

/* reset_peak makes VmHWM start again from the current size (Linux). */
static void reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    assert_non_null(f);
    assert_true(fputs("5", f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* Greetings that never end: cut by the connect timeout, or by the cap on
 * a reply before login from the first byte, holding no more than it. */
static void test_greeting(void **state)
{
    (void)state;
    sync_imap_opts o = opts_for(strict.port);
    o.connect_timeout_s = 3;
    sync_imap *s = (sync_imap *)1;
    sh_error err;
    char want[160];
    control(&strict, "XSTRICT GREETING TRICKLE");
    long long t0 = sh_mono_ms();
    assert_int_equal(sync_imap_open(&o, &s, &err), SH_ETIMEDOUT);
    long long took = sh_mono_ms() - t0;
    assert_null(s);
    snprintf(want, sizeof want,
             "IMAP server stalled: no complete greeting from 127.0.0.1:%d within 3 s", strict.port);
    assert_string_equal(err.msg, want);
    assert_true(took >= 2900 && took < 5000);

    reset_peak();
    long before = rss_kb("VmRSS");
    control(&strict, "XSTRICT GREETING HUGE");
    assert_int_equal(sync_imap_open(&o, &s, &err), SH_EPROTO);
    assert_null(s);
    snprintf(want, sizeof want,
             "IMAP server 127.0.0.1:%d: its greeting is larger than 64 KiB; refused", strict.port);
    assert_string_equal(err.msg, want);
    /* 100 MB were offered; well under 8 MB more was ever held. */
    long after = rss_kb("VmHWM");
    fprintf(stderr, "100 MB greeting refused; peak RSS grew %ld kB\n", after - before);
    assert_true(before > 0 && after - before < 8 * 1024);
    assert_int_equal(tf_strict_log_count(&strict, "hostile greeting"), 2);
    /* The next connection is greeted as usual. */
    assert_int_equal(sync_imap_open(&o, &s, &err), SH_OK);
    sync_imap_free(s);
}

/* The host name goes in the TLS handshake (SNI), with implicit TLS and
 * with STARTTLS; an IP literal does not (RFC 6066). */
static void test_sni(void **state)
{
    (void)state;
    static const struct {
        const char *host;
        sync_security sec;
        const char *logged;
    } cases[] = {
        {"localhost", SYNC_SEC_TLS, "sni localhost"},
        {"localhost", SYNC_SEC_STARTTLS, "sni localhost"},
        {"127.0.0.1", SYNC_SEC_TLS, "sni none"},
        {"127.0.0.1", SYNC_SEC_STARTTLS, "sni none"},
    };
    sh_hostpolicy *p = NULL;
    sh_error err;
    assert_int_equal(sh_hostpolicy_new("localhost,127.0.0.1", NULL, SH_IMAP_ALLOW_HOSTS,
                                       SH_IMAP_DENY_HOSTS, &p, &err),
                     SH_OK);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        sync_imap_opts o = opts_for(cases[i].sec == SYNC_SEC_TLS ? tls.tls_port : tls.port);
        o.host = cases[i].host;
        o.security = cases[i].sec;
        o.tls_verify = true;
        o.ca_file = tls.ca_file;
        o.hosts = p;
        o.allow_insecure = false;
        int seen = tf_strict_log_count(&tls, cases[i].logged);
        int handshakes = tf_strict_log_count(&tls, "sni ");
        sync_imap *s = NULL;
        if (sync_imap_open(&o, &s, &err) != SH_OK)
            fail_msg("%s: %s", cases[i].host, err.msg);
        assert_int_equal(sync_imap_login(s, "test", "secret", &err), SH_OK);
        sync_imap_free(s);
        assert_int_equal(tf_strict_log_count(&tls, cases[i].logged), seen + 1);
        assert_int_equal(tf_strict_log_count(&tls, "sni "), handshakes + 1);
    }
    sh_hostpolicy_free(p);
    assert_int_equal(tf_strict_log_count(&tls, "BAD"), 0);
}

/* A greeting whose TLS record comes a byte every 2 s: libetpan's TLS read
 * waits inside one read, which the watchdog cancels at the deadline. */
static void test_tls_trickle(void **state)
{
    (void)state;
    sync_imap_opts o = opts_for(tls.tls_port);
    o.security = SYNC_SEC_TLS;
    o.tls_verify = true;
    o.ca_file = tls.ca_file;
    o.allow_insecure = false;
    o.connect_timeout_s = 3;
    control(&tls, "XSTRICT GREETING TLS-TRICKLE");
    sync_imap *s = (sync_imap *)1;
    sh_error err;
    long long t0 = sh_mono_ms();
    assert_int_equal(sync_imap_open(&o, &s, &err), SH_ETIMEDOUT);
    long long took = sh_mono_ms() - t0;
    assert_null(s);
    char want[160];
    snprintf(want, sizeof want,
             "IMAP server stalled: no complete greeting from 127.0.0.1:%d within 3 s",
             tls.tls_port);
    assert_string_equal(err.msg, want);
    assert_true(took >= 2900 && took < 5000);
    assert_int_equal(tf_strict_log_count(&tls, "hostile greeting TLS-TRICKLE"), 1);
    /* The next one is greeted as usual. */
    assert_int_equal(sync_imap_open(&o, &s, &err), SH_OK);
    sync_imap_free(s);
}

/* open_fds counts the descriptors of this process. */
static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n - 1; /* the directory's own */
}

/* Sessions whose socket is above 1024 (FD_SETSIZE, where select() aborts
 * the process): plain, STARTTLS and TLS work, each holds its socket and
 * nothing else, and a silent server still times out. */
static void test_high_fds(void **state)
{
    (void)state;
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = rl.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 1200)
        fail_msg("the hard limit on open files (%llu) is below 1200",
                 (unsigned long long)rl.rlim_cur);
    /* Fill every descriptor below 1100 (placeholders, not inherited). */
    enum { LOW = 1100 };
    static int held[LOW];
    int nheld = 0;
    for (;;) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        if (fd >= LOW) {
            close(fd);
            break;
        }
        held[nheld++] = fd;
    }
    static const struct {
        sync_security sec;
        bool tls_port;
    } cases[] = {
        {SYNC_SEC_NONE, false},
        {SYNC_SEC_STARTTLS, false},
        {SYNC_SEC_TLS, true},
    };
    sh_error err;
    sync_imap *sess[3] = {NULL};
    for (size_t i = 0; i < 3; i++) {
        sync_imap_opts o = opts_for(cases[i].tls_port ? dove.tls_port : dove.port);
        o.security = cases[i].sec;
        o.tls_verify = cases[i].sec != SYNC_SEC_NONE;
        o.ca_file = dove.ca_file;
        int before = open_fds();
        if (sync_imap_open(&o, &sess[i], &err) != SH_OK)
            fail_msg("security %d: %s", (int)cases[i].sec, err.msg);
        assert_int_equal(open_fds(), before + 1);
        assert_true(sync_imap_fd(sess[i]) >= LOW);
        assert_int_equal(sync_imap_login(sess[i], "test", "secret", &err), SH_OK);
        sync_folder_info info;
        select_inbox(sess[i], &info);
        assert_true(info.exists > 0);
        seen_msgs *c = calloc(1, sizeof *c);
        assert_int_equal(sync_imap_fetch(sess[i], NULL, 0, true, 0, collect, c, &err), SH_OK);
        assert_int_equal(c->n, info.exists);
        free(c);
    }
    for (size_t i = 0; i < 3; i++)
        sync_imap_free(sess[i]);
    /* The wait of a read there: a server that never greets. */
    int port, fd = silent_listener(&port);
    sync_imap_opts o = opts_for(port);
    o.connect_timeout_s = 1;
    sync_imap *s = (sync_imap *)1;
    long long t0 = sh_mono_ms();
    assert_int_equal(sync_imap_open(&o, &s, &err), SH_ETIMEDOUT);
    assert_true(sh_mono_ms() - t0 < 5000);
    assert_null(s);
    close(fd);
    for (int i = 0; i < nheld; i++)
        close(held[i]);
}

/* The host policy after resolution, and the insecure modes. */
static void test_policy(void **state)
{
    (void)state;
    sync_imap *s = (sync_imap *)1;
    sh_error err;
    sync_imap_opts o = opts_for(dove.port);
    o.hosts = NULL;
    assert_int_equal(sync_imap_open(&o, &s, &err), SH_EINVAL);
    assert_null(s);
    expect_msg(&err, "host 127.0.0.1 is a loopback address; refused unless");
    /* A name resolving to loopback is caught once resolved. */
    o.host = "localhost";
    assert_int_equal(sync_imap_open(&o, &s, &err), SH_EINVAL);
    expect_msg(&err, "host localhost resolves to ");
    expect_msg(&err, "a loopback address; refused unless IMAP_ALLOW_HOSTS");
    /* Denied, although loopback is allowed. */
    sh_hostpolicy *p = NULL;
    assert_int_equal(
        sh_hostpolicy_new("::1", "127.0.0.1", SH_IMAP_ALLOW_HOSTS, SH_IMAP_DENY_HOSTS, &p, &err),
        SH_OK);
    o.host = "127.0.0.1";
    o.hosts = p;
    assert_int_equal(sync_imap_open(&o, &s, &err), SH_EINVAL);
    expect_msg(&err, "host 127.0.0.1 is listed in IMAP_DENY_HOSTS; refused");
    sh_hostpolicy_free(p);
    /* Metadata addresses never, whatever is allowed. */
    assert_int_equal(sh_hostpolicy_new("169.254.0.0/16", NULL, SH_IMAP_ALLOW_HOSTS,
                                       SH_IMAP_DENY_HOSTS, &p, &err),
                     SH_OK);
    o.hosts = p;
    o.host = "169.254.169.254";
    long long t0 = sh_mono_ms();
    assert_int_equal(sync_imap_open(&o, &s, &err), SH_EINVAL);
    assert_true(sh_mono_ms() - t0 < 1000);
    assert_string_equal(err.msg, "host 169.254.169.254 is a link-local or metadata address; never "
                                 "connected to");
    sh_hostpolicy_free(p);

    /* Cleartext and unverified TLS need IMAP_ALLOW_INSECURE. */
    o = opts_for(dove.port);
    o.allow_insecure = false;
    assert_int_equal(sync_imap_open(&o, &s, &err), SH_EINVAL);
    assert_string_equal(err.msg, "security \"none\" sends the password in clear; refused unless "
                                 "IMAP_ALLOW_INSECURE=true");
    o = opts_for(dove.tls_port);
    o.security = SYNC_SEC_TLS;
    o.tls_verify = false;
    o.allow_insecure = false;
    assert_int_equal(sync_imap_open(&o, &s, &err), SH_EINVAL);
    assert_string_equal(err.msg, "tlsVerify false accepts any server's certificate; refused "
                                 "unless IMAP_ALLOW_INSECURE=true");
    o.allow_insecure = true;
    assert_int_equal(sync_imap_open(&o, &s, &err), SH_OK);
    sync_imap_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_login),
        cmocka_unit_test(test_select_search),
        cmocka_unit_test(test_fetch),
        cmocka_unit_test(test_special_use),
        cmocka_unit_test(test_store_and_changes),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_literal_login),
        cmocka_unit_test(test_store_refusals),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_trickle),
        cmocka_unit_test(test_greeting),
        cmocka_unit_test(test_sni),
        cmocka_unit_test(test_tls_trickle),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_high_fds),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
