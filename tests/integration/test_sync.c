/* test_sync.c - the decisions of sync.c and sync_push.c driven directly
 * (sync_int.h), against a private Redis and, for the pushes, a private
 * Dovecot: the mail events and their payload, the flags gathered from a
 * scan and stored only where they differ (one event per change), which
 * pending read/unread changes are pushed, dropped, or kept when the
 * connection fails, a conflict announced once, the stored UIDs compared
 * with the server's, accounts refused before anything is synced, and the
 * folder a watch saw change synced first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dovecot_fixture.h"
#include "hosts.h"
#include "keys.h"
#include "mail_fixture.h"
#include "mailstore.h"
#include "shared/events.h"
#include "sync_int.h"

#define ST       (tf_mail_the()->st)
#define MESSAGES 6

static tf_dovecot dove;
static sh_pub *pub;
static sh_sub *sub;
static sync_env env = {.fetch_batch = 100, .fetch_budget = 1000, .renew_s = 30};
static sync_report report; /* no progress service: reports are dropped */

/* One event received. */
typedef struct event {
    char topic[64], kind[16], folder[64], flags[64];
    long long uid, uidvalidity; /* -1 when absent */
} event;

static void event_read(event *e, const char *topic, const sh_val *p)
{
    memset(e, 0, sizeof *e);
    snprintf(e->topic, sizeof e->topic, "%s", topic);
    const char *s = sh_val_get_str(p, "kind", NULL);
    snprintf(e->kind, sizeof e->kind, "%s", s ? s : "");
    s = sh_val_get_str(p, "folder", NULL);
    snprintf(e->folder, sizeof e->folder, "%s", s ? s : "");
    s = sh_val_get_str(p, "flags", NULL);
    snprintf(e->flags, sizeof e->flags, "%s", s ? s : "(none)");
    const sh_val *v = sh_val_get(p, "uid");
    e->uid = v ? sh_val_int(v) : -1;
    v = sh_val_get(p, "uidvalidity");
    e->uidvalidity = v ? sh_val_int(v) : -1;
    assert_string_equal(sh_val_get_str(p, "accountId", NULL), topic + strlen("mail:"));
}

/* events collects what arrives until 400 ms pass without one; returns how
 * many (at most max). */
static size_t events(event *out, size_t max)
{
    size_t n = 0;
    for (;;) {
        char *topic = NULL;
        sh_val *p = NULL;
        if (sh_sub_recv(sub, 400, &topic, &p) != SH_OK)
            break;
        if (strcmp(topic, "mail:probe") != 0 && n < max)
            event_read(&out[n++], topic, p);
        free(topic);
        sh_val_free(p);
    }
    return n;
}

static int setup(void **state)
{
    /* As the services do: a write to a connection cut under a session is
     * an error, not the end of the process. */
    signal(SIGPIPE, SIG_IGN);
    if (tf_mail_setup(state) || tf_dovecot_start(&dove, "test", "secret", MESSAGES))
        return -1;
    env.hosts = tf_loopback_hosts();
    env.allow_insecure = true;
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", tf_free_port());
    sh_error err;
    if (sh_pub_new(url, &pub, &err) || sh_sub_new(url, 0, &sub, &err) ||
        sh_sub_subscribe(sub, "mail:"))
        return -1;
    /* Until the subscriber is connected, events are lost. */
    for (int i = 0; i < 100; i++) {
        sync_publish(pub, "probe", "x", "x", 1, 1, NULL);
        char *topic = NULL;
        sh_val *p = NULL;
        if (sh_sub_recv(sub, 100, &topic, &p) == SH_OK) {
            free(topic);
            sh_val_free(p);
            event drain[8];
            events(drain, 8);
            return 0;
        }
    }
    fprintf(stderr, "the subscriber never connected\n");
    return -1;
}

static int teardown(void **state)
{
    sh_sub_free(sub);
    sh_pub_free(pub);
    tf_dovecot_stop(&dove);
    return tf_mail_teardown(state);
}

static sync_run new_run(const char *acct)
{
    sync_run run = {.env = &env, .store = ST, .pub = pub, .report = &report, .acct = acct};
    return run;
}

static void folder_fini(sync_folder *f)
{
    for (size_t i = 0; i < f->nf; i++)
        free(f->f_flags[i]);
    free(f->f_flags);
    free(f->f_uids);
}

static void gather(sync_folder *f, uint32_t uid, const char *flags)
{
    char copy[64];
    snprintf(copy, sizeof copy, "%s", flags);
    sync_msg m = {.uid = uid, .flags = copy};
    assert_int_equal(sync__flag_seen(f, &m), SH_OK);
    /* The callback's message is borrowed: the gathered flags are a copy. */
    memset(copy, 'x', sizeof copy - 1);
}

/* The payload of a mail event, with uid and flags only when given; a
 * worker without a publisher sends nothing. */
static void test_publish(void **state)
{
    (void)state;
    sync_publish(pub, "a1", "changed", "Entw\xc3\xbcrfe", 77, 12, "\\Seen $Work");
    sync_publish(pub, "a2", "reset", "INBOX", 78, 0, NULL);
    sync_publish(NULL, "a3", "added", "INBOX", 1, 1, NULL);
    event e[4];
    assert_int_equal(events(e, 4), 2);
    assert_string_equal(e[0].topic, "mail:a1");
    assert_string_equal(e[0].kind, "changed");
    assert_string_equal(e[0].folder, "Entw\xc3\xbcrfe");
    assert_int_equal(e[0].uidvalidity, 77);
    assert_int_equal(e[0].uid, 12);
    assert_string_equal(e[0].flags, "\\Seen $Work");
    assert_string_equal(e[1].topic, "mail:a2");
    assert_string_equal(e[1].kind, "reset");
    assert_int_equal(e[1].uidvalidity, 78);
    assert_int_equal(e[1].uid, -1);
    assert_string_equal(e[1].flags, "(none)");
}

/* The scan's flags are stored where they differ from the stored ones,
 * with the unseen set, one "changed" event each; messages not stored yet
 * are left for the next run; a second pass changes nothing. */
static void test_flags_apply(void **state)
{
    (void)state;
    static const char *const stored[] = {"", "", "\\Seen", "\\Seen", "$Work"};
    for (uint32_t u = 1; u <= 5; u++)
        tf_mail_put(ST, "a1", "INBOX", 9, u, stored[u - 1]);
    sync_run run = new_run("a1");
    sync_folder f = {.run = &run, .folder = "INBOX", .uidvalidity = 9};
    gather(&f, 1, "");
    gather(&f, 2, "\\Seen");
    gather(&f, 3, "");
    gather(&f, 4, "\\Seen");
    gather(&f, 5, "$Work \\Flagged");
    for (uint32_t u = 1000; u < 1700; u++) /* past the first growth */
        gather(&f, u, "\\Seen");
    assert_int_equal(f.nf, 705);
    assert_int_equal(f.f_uids[2], 3);
    assert_string_equal(f.f_flags[4], "$Work \\Flagged");

    sh_error err;
    assert_int_equal(sync__flags_apply(&f, &err), SH_OK);
    assert_int_equal(f.changed, 3);
    event e[16];
    size_t n = events(e, 16);
    assert_int_equal(n, 3);
    const struct {
        long long uid;
        const char *flags;
    } want[] = {{2, "\\Seen"}, {3, ""}, {5, "$Work \\Flagged"}};
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(e[i].kind, "changed");
        assert_int_equal(e[i].uid, want[i].uid);
        assert_int_equal(e[i].uidvalidity, 9);
        assert_string_equal(e[i].flags, want[i].flags);
    }
    char **now = NULL;
    const uint32_t ask[] = {1, 2, 3, 4, 5, 1000};
    assert_int_equal(sync_mail_flags(ST, "a1", "INBOX", 9, ask, 6, &now, &err), SH_OK);
    assert_string_equal(now[1], "\\Seen");
    assert_string_equal(now[2], "");
    assert_string_equal(now[4], "$Work \\Flagged");
    assert_null(now[5]); /* not stored: the next run's new message */
    sync_mail_flags_free(now, 6);
    char unseen[SYNC_KEY_MAX];
    assert_true(sync_key_unseen(unseen, sizeof unseen, "a1", "INBOX", 9) > 0);
    sh_cmd *c = tf_mail_cmd1("ZRANGE", unseen);
    sh_cmd_str(c, "0");
    sh_cmd_str(c, "-1");
    sh_reply *r = NULL;
    assert_int_equal(sh_store_call(ST, c, &r, &err), SH_OK);
    assert_int_equal(sh_reply_count(r), 3); /* 1, 3, 5 */
    sh_reply_free(r);

    assert_int_equal(sync__flags_apply(&f, &err), SH_OK);
    assert_int_equal(f.changed, 3);
    assert_int_equal(events(e, 16), 0);
    folder_fini(&f);

    /* Nothing gathered: nothing read or written. */
    sync_folder none = {.run = &run, .folder = "INBOX", .uidvalidity = 9};
    assert_int_equal(sync__flags_apply(&none, &err), SH_OK);
    assert_int_equal(none.changed, 0);
}

/* server_seen tells from a second IMAP session whether message n (UID n
 * in the fixture's INBOX) has \Seen, and that it exists. */
static bool server_seen(int n)
{
    char cmd[64], out[8192];
    snprintf(cmd, sizeof cmd, "UID FETCH %d (FLAGS)", n);
    const char *cmds[] = {"SELECT INBOX", cmd, NULL};
    assert_int_equal(tf_dovecot_imap(&dove, cmds, out, sizeof out), 0);
    char head[32];
    snprintf(head, sizeof head, "* %d FETCH (", n);
    const char *line = strstr(out, head);
    assert_non_null(line);
    const char *end = strstr(line, "\r\n");
    assert_non_null(end);
    const char *seen = strstr(line, "\\Seen");
    return seen && seen < end;
}

static void server_store(const char *cmd)
{
    const char *cmds[] = {"SELECT INBOX", cmd, NULL};
    assert_int_equal(tf_dovecot_imap(&dove, cmds, NULL, 0), 0);
}

/* relay_serve copies bytes both ways between a and b until one closes. */
static void relay_serve(int a, int b)
{
    struct pollfd p[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
    char buf[16384];
    while (poll(p, 2, -1) > 0) {
        for (int i = 0; i < 2; i++) {
            if (!p[i].revents)
                continue;
            ssize_t n = read(p[i].fd, buf, sizeof buf);
            if (n <= 0 || write(p[1 - i].fd, buf, (size_t)n) != n)
                return;
        }
    }
}

/* relay_start forks a process relaying one connection on a free loopback
 * port to the Dovecot, so that a test can cut the connection (killing the
 * process) under a session; *port gets the port. Returns its pid. */
static pid_t relay_start(int *port)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_true(ls >= 0);
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(ls, 1), 0);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int c = accept(ls, NULL, NULL);
        int d = tf_imap_connect(dove.port);
        if (c >= 0 && d >= 0)
            relay_serve(c, d);
        _exit(0);
    }
    close(ls);
    return pid;
}

/* session opens an IMAP session on the fixture, selects INBOX and stores
 * its messages and state as a sync would have left them. */
static sync_imap *session_on(const char *acct, int port, sync_folder_info *info)
{
    sync_imap_opts o = {.host = "127.0.0.1",
                        .port = port,
                        .security = SYNC_SEC_NONE,
                        .connect_timeout_s = 5,
                        .command_timeout_s = 5,
                        .hosts = tf_loopback_hosts(),
                        .allow_insecure = true};
    sync_imap *imap = NULL;
    sh_error err;
    assert_int_equal(sync_imap_open(&o, &imap, &err), SH_OK);
    assert_int_equal(sync_imap_login(imap, "test", "secret", &err), SH_OK);
    assert_true(sync_imap_has_condstore(imap));
    assert_int_equal(sync_imap_select(imap, "INBOX", info, &err), SH_OK);
    assert_true(info->highestmodseq > 0);
    for (int n = 1; n <= MESSAGES; n++)
        tf_mail_put(ST, acct, "INBOX", info->uidvalidity, (uint32_t)n,
                    server_seen(n) ? "\\Seen" : "");
    tf_mail_folder(ST, acct, "INBOX", info->uidvalidity, info->uidnext, info->highestmodseq);
    return imap;
}

static sync_imap *session(const char *acct, sync_folder_info *info)
{
    return session_on(acct, dove.port, info);
}

static void set_seen(const char *acct, uint32_t uid, bool seen)
{
    sh_val *m = NULL;
    sh_error err;
    assert_int_equal(sync_mail_set_seen(ST, acct, "INBOX", uid, seen, &m, &err), SH_OK);
    sh_val_free(m);
}

static size_t npending(const char *acct)
{
    sync_pending *p = NULL;
    size_t n = 0;
    sh_error err;
    assert_int_equal(sync_mail_pending(ST, acct, "INBOX", &p, &n, &err), SH_OK);
    free(p);
    return n;
}

/* push runs sync__push_seen for folder INBOX of run's account. */
static int push(sync_run *run, sync_imap *imap, uint32_t uidvalidity, size_t *pushed, sh_error *err)
{
    sync_folder f = {.run = run, .folder = "INBOX", .uidvalidity = uidvalidity};
    sh_error_clear(err);
    int rc = sync__push_seen(&f, imap, pushed, err);
    folder_fini(&f);
    return rc;
}

/* Each pending change of the folder's UIDVALIDITY is sent and forgotten;
 * one recorded under another UIDVALIDITY is dropped unsent. */
static void test_push_applied_and_stale_dropped(void **state)
{
    (void)state;
    sync_folder_info info;
    sync_imap *imap = session("p1", &info);
    assert_false(server_seen(1));
    assert_true(server_seen(3)); /* the fixture's messages 3 and 6 are read */
    set_seen("p1", 1, true);
    set_seen("p1", 3, false);
    /* A change from before the folder's UIDVALIDITY changed. */
    char key[SYNC_KEY_MAX], entry[64];
    assert_true(sync_key_pending(key, sizeof key, "p1", "INBOX") > 0);
    snprintf(entry, sizeof entry, "+:%u:%llu", (unsigned)info.uidvalidity - 1,
             (unsigned long long)info.highestmodseq);
    sh_cmd *c = tf_mail_cmd1("HSET", key);
    sh_cmd_str(c, "2");
    sh_cmd_str(c, entry);
    assert_int_equal(tf_mail_int(ST, c), 1);
    assert_int_equal(npending("p1"), 3);

    sync_run run = new_run("p1");
    size_t pushed = 99;
    sh_error err;
    assert_int_equal(push(&run, imap, info.uidvalidity, &pushed, &err), SH_OK);
    assert_int_equal(pushed, 2);
    assert_int_equal(npending("p1"), 0);
    assert_true(server_seen(1));
    assert_false(server_seen(2));
    assert_false(server_seen(3));
    assert_string_equal(run.warning, "");
    event e[8];
    assert_int_equal(events(e, 8), 0); /* no conflict */

    /* Nothing pending: nothing sent. */
    assert_int_equal(push(&run, imap, info.uidvalidity, &pushed, &err), SH_OK);
    assert_int_equal(pushed, 0);
    sync_imap_free(imap);
}

/* A message changed on the server since the change was recorded keeps the
 * server's flags; the conflict is announced once and the change is
 * forgotten. */
static void test_push_conflict(void **state)
{
    (void)state;
    sync_folder_info info;
    sync_imap *imap = session("p2", &info);
    assert_false(server_seen(4));
    set_seen("p2", 4, true);
    server_store("UID STORE 4 +FLAGS (\\Flagged)");

    sync_run run = new_run("p2");
    size_t pushed = 0;
    sh_error err;
    assert_int_equal(push(&run, imap, info.uidvalidity, &pushed, &err), SH_OK);
    assert_int_equal(pushed, 1);
    assert_false(server_seen(4));
    assert_int_equal(npending("p2"), 0);
    event e[8];
    assert_int_equal(events(e, 8), 1);
    assert_string_equal(e[0].topic, "mail:p2");
    assert_string_equal(e[0].kind, "conflict");
    assert_int_equal(e[0].uid, 4);
    assert_int_equal(e[0].uidvalidity, info.uidvalidity);
    sync_imap_free(imap);
}

/* A connection lost before the push fails the push and keeps every change
 * pending, as recorded. */
static void test_push_connection_lost(void **state)
{
    (void)state;
    sync_folder_info info;
    int port = 0;
    pid_t relay = relay_start(&port);
    sync_imap *imap = session_on("p3", port, &info);
    set_seen("p3", 5, true);
    set_seen("p3", 2, true);
    sync_pending *before = NULL, *after = NULL;
    size_t nb = 0, na = 0;
    sh_error err;
    assert_int_equal(sync_mail_pending(ST, "p3", "INBOX", &before, &nb, &err), SH_OK);
    assert_int_equal(nb, 2);

    kill(relay, SIGKILL);
    waitpid(relay, NULL, 0);
    sync_run run = new_run("p3");
    size_t pushed = 0;
    int rc = push(&run, imap, info.uidvalidity, &pushed, &err);
    assert_int_not_equal(rc, SH_OK);
    assert_true(err.msg[0] != '\0');
    assert_int_equal(sync_mail_pending(ST, "p3", "INBOX", &after, &na, &err), SH_OK);
    assert_int_equal(na, nb);
    for (size_t i = 0; i < nb; i++) {
        bool found = false;
        for (size_t j = 0; j < na; j++)
            found = found ||
                    (after[j].uid == before[i].uid && strcmp(after[j].value, before[i].value) == 0);
        assert_true(found);
    }
    free(before);
    free(after);
    assert_false(server_seen(5));
    event e[8];
    assert_int_equal(events(e, 8), 0);
    sync_imap_free(imap);
}

/* sync_account_rc syncs account (taken) and returns the code, err's text
 * in msg. */
static int sync_account_rc(sh_val *account, char *msg, size_t len)
{
    sync_run run = new_run("s1");
    sh_error err;
    sh_error_clear(&err);
    int rc = sync_account(&run, account, "secret", &err);
    snprintf(msg, len, "%s", err.msg);
    sh_val_free(account);
    return rc;
}

static sh_val *account(const char *security, int port, const char *folder)
{
    sh_val *a = sh_val_new_map();
    sh_val_set_cstr(a, "imapHost", sh_val_new_cstr("127.0.0.1"));
    sh_val_set_cstr(a, "imapPort", sh_val_new_int(port));
    sh_val_set_cstr(a, "security", sh_val_new_cstr(security));
    sh_val_set_cstr(a, "username", sh_val_new_cstr("test"));
    if (folder) {
        sh_val *fs = sh_val_new_array();
        sh_val_push(fs, sh_val_new_cstr(folder));
        sh_val_set_cstr(a, "folders", fs);
    }
    return a;
}

/* Accounts that cannot be synced are refused, saying why, before any
 * message is stored. */
static void test_account_refused(void **state)
{
    (void)state;
    char msg[256];
    sh_val *a = account("ssl", dove.port, NULL);
    assert_int_equal(sync_account_rc(a, msg, sizeof msg), SH_EINVAL);
    assert_non_null(strstr(msg, "security"));
    a = account("none", dove.port, NULL);
    sh_val_set_cstr(a, "imapPort", sh_val_new_cstr("143"));
    assert_int_equal(sync_account_rc(a, msg, sizeof msg), SH_EINVAL);
    a = account("none", dove.port, NULL);
    sh_val_free(sh_val_take(a, "username"));
    assert_int_equal(sync_account_rc(a, msg, sizeof msg), SH_EINVAL);
    a = account("none", dove.port, NULL);
    sh_val_free(sh_val_take(a, "imapHost"));
    assert_int_equal(sync_account_rc(a, msg, sizeof msg), SH_EINVAL);

    /* Folder names with a control character or over 200 bytes. */
    a = account("none", dove.port, "INBOX\r\nA1 DELETE INBOX");
    assert_int_equal(sync_account_rc(a, msg, sizeof msg), SH_EINVAL);
    assert_non_null(strstr(msg, "folder name"));
    char longname[202];
    memset(longname, 'f', 201);
    longname[201] = '\0';
    a = account("none", dove.port, longname);
    assert_int_equal(sync_account_rc(a, msg, sizeof msg), SH_EINVAL);
    assert_int_equal(tf_mail_keys(ST, "s1"), 0);

    /* An account stored before the policy: refused when it syncs. */
    env.allow_insecure = false;
    a = account("none", dove.port, "INBOX");
    assert_int_equal(sync_account_rc(a, msg, sizeof msg), SH_EINVAL);
    assert_string_equal(msg, "security \"none\" sends the password in clear; refused unless "
                             "IMAP_ALLOW_INSECURE=true");
    env.allow_insecure = true;
    env.hosts = NULL;
    a = account("none", dove.port, "INBOX");
    assert_int_equal(sync_account_rc(a, msg, sizeof msg), SH_EINVAL);
    assert_non_null(strstr(msg, "host 127.0.0.1 is a loopback address; refused unless "
                                "IMAP_ALLOW_HOSTS allows it"));
    env.hosts = tf_loopback_hosts();
    assert_int_equal(tf_mail_keys(ST, "s1"), 0);

    /* The same account with a name that fits is synced. */
    a = account("none", dove.port, "INBOX");
    assert_int_equal(sync_account_rc(a, msg, sizeof msg), SH_OK);
    long long count = 0;
    sync_folder_state fs;
    sh_error err;
    assert_int_equal(sync_mail_state_get(ST, "s1", "INBOX", &fs, &err), SH_OK);
    assert_int_equal(sync_mail_count(ST, "s1", "INBOX", fs.uidvalidity, &count, &err), SH_OK);
    assert_int_equal(count, MESSAGES);
    event e[16];
    assert_int_equal(events(e, 16), MESSAGES); /* one "added" each */
    for (size_t i = 0; i < MESSAGES; i++)
        assert_string_equal(e[i].kind, "added");
}

/* A full check compares the stored UIDs with the server's: those the
 * server lacks are removed, those missing are fetched, one event each,
 * and a folder whose count differs is not taken as unchanged. */
static void test_full_compare(void **state)
{
    (void)state;
    sync_folder_info info;
    sync_imap *imap = session("c1", &info);
    sync_imap_free(imap);
    sh_error err;
    const uint32_t two = 2;
    assert_int_equal(sync_mail_remove(ST, "c1", "INBOX", info.uidvalidity, &two, 1, &err), SH_OK);
    tf_mail_put(ST, "c1", "INBOX", info.uidvalidity, 100, "");
    tf_mail_put(ST, "c1", "INBOX", info.uidvalidity, 200, "");

    sync_run run = new_run("c1");
    sh_val *a = account("none", dove.port, NULL);
    assert_int_equal(sync_account(&run, a, "secret", &err), SH_OK);
    sh_val_free(a);
    uint32_t *uids = NULL;
    size_t n = 0;
    assert_int_equal(sync_mail_index(ST, "c1", "INBOX", info.uidvalidity, &uids, &n, &err), SH_OK);
    assert_int_equal(n, MESSAGES);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(uids[i], i + 1);
    free(uids);
    event e[16];
    size_t ne = events(e, 16);
    assert_int_equal(ne, 3);
    int removed = 0, added = 0;
    for (size_t i = 0; i < ne; i++) {
        if (strcmp(e[i].kind, "removed") == 0 && (e[i].uid == 100 || e[i].uid == 200))
            removed++;
        if (strcmp(e[i].kind, "added") == 0 && e[i].uid == 2)
            added++;
    }
    assert_int_equal(removed, 2);
    assert_int_equal(added, 1);
}

/* syncFirst (set by a watch through account.sync_now) puts its folder
 * ahead of the others. */
static void test_changed_folder_first(void **state)
{
    (void)state;
    char msg[1024], append[1200];
    size_t len = tf_dovecot_message(900, msg, sizeof msg);
    snprintf(append, sizeof append, "APPEND Archive {%zu+}\r\n%s", len, msg);
    const char *cmds[] = {"CREATE Archive", append, NULL};
    assert_int_equal(tf_dovecot_imap(&dove, cmds, NULL, 0), 0);
    const char *order[2][2] = {{"o1", NULL}, {"o2", "Archive"}};
    for (int k = 0; k < 2; k++) {
        sync_run run = new_run(order[k][0]);
        sh_val *a = account("none", dove.port, NULL), *both = sh_val_new_array();
        sh_val_push(both, sh_val_new_cstr("INBOX"));
        sh_val_push(both, sh_val_new_cstr("Archive"));
        sh_val_set_cstr(a, "folders", both);
        if (order[k][1])
            sh_val_set_cstr(a, "syncFirst", sh_val_new_cstr(order[k][1]));
        sh_error err;
        assert_int_equal(sync_account(&run, a, "secret", &err), SH_OK);
        sh_val_free(a);
        event e[16];
        assert_true(events(e, 16) == MESSAGES + 1);
        assert_string_equal(e[0].folder, k ? "Archive" : "INBOX");
        assert_string_equal(e[MESSAGES].folder, k ? "INBOX" : "Archive");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_publish, tf_mail_each),
        cmocka_unit_test_setup(test_flags_apply, tf_mail_each),
        cmocka_unit_test_setup(test_push_applied_and_stale_dropped, tf_mail_each),
        cmocka_unit_test_setup(test_push_conflict, tf_mail_each),
        cmocka_unit_test_setup(test_push_connection_lost, tf_mail_each),
        cmocka_unit_test_setup(test_full_compare, tf_mail_each),
        cmocka_unit_test_setup(test_account_refused, tf_mail_each),
        cmocka_unit_test_setup(test_changed_folder_first, tf_mail_each),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
