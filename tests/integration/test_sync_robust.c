/* test_sync_robust.c - the sync-worker when things go wrong, against a real
 * Dovecot holding 5,000 messages and a fake IMAP server: the initial sync of
 * the whole mailbox, a worker killed (SIGKILL) and one stopped (SIGTERM) in
 * the middle of it, a folder recreated under a new UIDVALIDITY, the server
 * stopped and started again, and hostile or broken replies (a literal of a
 * gigabyte, a literal cut off by the server closing, garbage, a missing
 * envelope, invalid UTF-8, an over-long
 * subject) that end the account's run in `error` while the worker goes on;
 * last, a folder marked \Sent (SPECIAL-USE) synced beside INBOX. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shared/util.h"
#include "sync_stack.h"

#define NMSG 5000

static tf_stack st;
static char acct_main[160];
static long long inbox_uv;

static int group_setup(void **state)
{
    const tf_stack_opts opts = {.name = "test_sync_robust",
                                .messages = NMSG,
                                .lease_seconds = 5,
                                .fetch_batch = 50,
                                .renew_seconds = 1,
                                .command_timeout = 20};
    *state = &st;
    return tf_stack_start(&st, &opts);
}

/* create_account returns the id of a new account for user on port, with
 * the folders given (NULL: INBOX). */
static void create_account(int port, const char *user, const char *folder, char *id, size_t len)
{
    const tf_account acct = {.port = port, .user = user, .folder = folder};
    tf_stack_create_account(&st, &acct, id, len);
}

/* list_all reads every message of folder, 500 a page; the caller frees. */
static sh_val *list_all(const char *id, const char *folder)
{
    return tf_stack_list_all(&st, id, folder, 500);
}

/* check_exactly checks the folder holds exactly the generated messages
 * first..last, once each, with their envelopes and \Seen. */
static void check_exactly(const char *id, const char *folder, int first, int last)
{
    sh_val *all = list_all(id, folder);
    assert_int_equal(sh_val_len(all), last - first + 1);
    char *seen = calloc((size_t)(last - first + 1), 1);
    assert_non_null(seen);
    for (size_t i = 0; i < sh_val_len(all); i++) {
        const sh_val *m = sh_val_at(all, i);
        int n = tf_msg_number(m);
        assert_true(n >= first && n <= last);
        assert_false(seen[n - first]);
        seen[n - first] = 1;
        assert_int_equal(tf_has_flag(m, "\\Seen"), tf_dovecot_message_seen(n));
        if (n % 97 == 0 || n == first || n == last)
            tf_check_envelope(m, n);
    }
    free(seen);
    sh_val_free(all);
}

/* stored_inbox is the number of INBOX messages stored for the account. */
static long long stored_inbox(const char *id)
{
    sh_cmd *c = sh_cmd_new("ZCARD");
    sh_cmd_fmt(c, "mail:{%s}:idx:INBOX:%lld", id, inbox_uv);
    return tf_stack_redis_int(&st, c);
}

/* wait_stored waits until at least n INBOX messages are stored; returns
 * how many were when it saw them. */
static long long wait_stored(const char *id, long long n)
{
    long long have = 0;
    int64_t until = sh_mono_ms() + 60000;
    while ((have = stored_inbox(id)) < n && sh_mono_ms() < until)
        tf_sleep_ms(1);
    return have;
}

static void test_initial_sync_5000(void **state)
{
    create_account(st.dove.port, "test", NULL, acct_main, sizeof acct_main);
    int64_t t0 = sh_mono_ms();
    tf_stack_sync_and_wait(&st, acct_main, "ok", NULL);
    fprintf(stderr, "initial sync of %d messages: %lld ms\n", NMSG, (long long)(sh_mono_ms() - t0));
    char key[256];
    snprintf(key, sizeof key, "mail:{%s}:state:INBOX", acct_main);
    inbox_uv = tf_stack_hget_ll(&st, key, "uidvalidity");
    assert_true(inbox_uv > 0);
    check_exactly(acct_main, "INBOX", 1, NMSG);
    /* Every \Seen flag, unread count included. */
    sh_cmd *c = sh_cmd_new("ZCARD");
    sh_cmd_fmt(c, "mail:{%s}:unseen:INBOX:%lld", acct_main, inbox_uv);
    long long unread = 0;
    for (int n = 1; n <= NMSG; n++)
        unread += !tf_dovecot_message_seen(n);
    assert_int_equal(tf_stack_redis_int(&st, c), unread);
}

static void test_sigkill_mid_sync(void **state)
{
    char id[160], key[256];
    create_account(st.dove.port, "test", NULL, id, sizeof id);
    tf_stack_sync_now(&st, id, NULL, 0);
    long long at_kill = wait_stored(id, 1000);
    assert_int_equal(kill(st.worker_pid, SIGKILL), 0);
    int wst;
    assert_int_equal(waitpid(st.worker_pid, &wst, 0), st.worker_pid);
    st.worker_pid = 0;
    fprintf(stderr, "killed with %lld messages stored\n", at_kill);
    assert_true(at_kill >= 1000);
    assert_true(stored_inbox(id) < NMSG);
    assert_int_equal(tf_stack_start_worker(&st, false), 0);

    /* The account stays `syncing` until the dead worker's lease runs out;
     * the next tick queues it again. */
    char status[32];
    tf_stack_account_status(&st, id, status, sizeof status, NULL, 0);
    assert_string_equal(status, "syncing");
    snprintf(key, sizeof key, "account:{%s}", id);
    long long expires = tf_stack_hget_ll(&st, key, "leaseExpires");
    assert_true(expires > 0);
    while (sh_now_ms() <= expires + 50)
        tf_sleep_ms(50);
    sh_val *a = sh_val_new_map(), *res = NULL;
    sh_val_set_cstr(a, "force", sh_val_new_bool(true));
    sh_val_set_cstr(a, "now", sh_val_new_int(sh_now_ms()));
    assert_int_equal(tf_stack_call(st.coord, "sched.tick", a, &res), SH_OK);
    const sh_val *rq = sh_val_get(res, "requeued");
    bool found = false;
    for (size_t i = 0; i < sh_val_len(rq); i++)
        found = found || strcmp(sh_val_str(sh_val_at(rq, i), NULL), id) == 0;
    sh_val_free(res);
    assert_true(found);
    tf_stack_wait_settled(&st, id, "ok", NULL, 0);

    check_exactly(id, "INBOX", 1, NMSG);
    assert_int_equal(stored_inbox(id), NMSG);
    snprintf(key, sizeof key, "mail:{%s}:m:INBOX:*", id);
    assert_int_equal(tf_stack_count_keys(&st, key), NMSG);
}

static void test_sigterm_mid_sync(void **state)
{
    char id[160], msg[512], status[32];
    create_account(st.dove.port, "test", NULL, id, sizeof id);
    tf_stack_sync_now(&st, id, NULL, 0);
    assert_true(wait_stored(id, 1000) >= 1000);
    int64_t t0 = sh_mono_ms();
    int rc = tf_stop(st.worker_pid, SIGTERM, 10000);
    int64_t took = sh_mono_ms() - t0;
    st.worker_pid = 0;
    fprintf(stderr, "stopped in %lld ms with %lld messages stored\n", (long long)took,
            stored_inbox(id));
    assert_int_equal(rc, 0);
    assert_true(took < 10000);
    tf_stack_account_status(&st, id, status, sizeof status, msg, sizeof msg);
    assert_string_not_equal(status, "syncing");
    assert_string_equal(status, "error");
    assert_string_equal(msg, "interrupted by shutdown");
    assert_true(stored_inbox(id) < NMSG);

    assert_int_equal(tf_stack_start_worker(&st, false), 0);
    tf_stack_sync_and_wait(&st, id, "ok", NULL);
    check_exactly(id, "INBOX", 1, NMSG);
}

/* fill_folder runs prep on the server (e.g. CREATE of folder), then
 * appends generated messages first..last (four at most) to folder. */
static void fill_folder(const char *const *prep, const char *folder, int first, int last)
{
    char out[4096], bufs[4][1200], msg[1024];
    const char *cmds[5];
    assert_int_equal(tf_dovecot_imap(&st.dove, prep, out, sizeof out), 0);
    assert_true(last - first < 4);
    int k = 0;
    for (int n = first; n <= last; n++, k++) {
        size_t len = tf_dovecot_message(n, msg, sizeof msg);
        snprintf(bufs[k], sizeof bufs[k], "APPEND %s (%s) {%zu+}\r\n%s", folder,
                 tf_dovecot_message_seen(n) ? "\\Seen" : "", len, msg);
        cmds[k] = bufs[k];
    }
    cmds[k] = NULL;
    assert_int_equal(tf_dovecot_imap(&st.dove, cmds, out, sizeof out), 0);
}

static void test_uidvalidity_reset(void **state)
{
    char id[160], key[256];
    const char *create[] = {"CREATE Work", NULL};
    fill_folder(create, "Work", 7001, 7003);
    create_account(st.dove.port, "test", "Work", id, sizeof id);
    tf_stack_sync_and_wait(&st, id, "ok", NULL);
    check_exactly(id, "Work", 7001, 7003);
    snprintf(key, sizeof key, "mail:{%s}:state:Work", id);
    long long old_uv = tf_stack_hget_ll(&st, key, "uidvalidity");
    assert_true(old_uv > 0);

    /* The folder deleted and made again: a new UIDVALIDITY, other mail. */
    const char *recreate[] = {"DELETE Work", "CREATE Work", NULL};
    fill_folder(recreate, "Work", 7101, 7102);
    tf_stack_sync_and_wait(&st, id, "ok", NULL);
    long long new_uv = tf_stack_hget_ll(&st, key, "uidvalidity");
    fprintf(stderr, "uidvalidity %lld -> %lld\n", old_uv, new_uv);
    assert_true(new_uv > 0 && new_uv != old_uv);
    check_exactly(id, "Work", 7101, 7102);
    char pat[256];
    snprintf(pat, sizeof pat, "mail:{%s}:*:Work:%lld*", id, old_uv);
    assert_int_equal(tf_stack_count_keys(&st, pat), 0);
    snprintf(pat, sizeof pat, "mail:{%s}:m:Work:%lld:*", id, new_uv);
    assert_int_equal(tf_stack_count_keys(&st, pat), 2);
    sh_val *all = list_all(id, "Work");
    for (size_t i = 0; i < sh_val_len(all); i++)
        assert_int_equal(sh_val_int(sh_val_get(sh_val_at(all, i), "uidvalidity")), new_uv);
    sh_val_free(all);
}

static void test_server_down_then_back(void **state)
{
    char key[256];
    tf_sync_end end;
    assert_int_equal(tf_dovecot_halt(&st.dove), 0);
    int64_t before = sh_now_ms();
    tf_stack_sync_and_wait(&st, acct_main, "error", &end);
    fprintf(stderr, "server down: %s\n", end.error);
    assert_non_null(strstr(end.error, "cannot connect"));
    /* Backed off: the next scheduled sync is an interval (15 min) away. */
    snprintf(key, sizeof key, "account:{%s}", acct_main);
    assert_true(tf_stack_hget_ll(&st, key, "nextSyncAt") >= before + 14 * 60000LL);
    assert_int_equal(tf_stack_hget_ll(&st, key, "failures"), 1);

    assert_int_equal(tf_dovecot_resume(&st.dove), 0);
    tf_stack_sync_and_wait(&st, acct_main, "ok", NULL);
    assert_int_equal(tf_stack_hget_ll(&st, key, "failures"), 0);
    assert_int_equal(stored_inbox(acct_main), NMSG);
}

/* The fake IMAP server: one thread per connection, what it answers to UID
 * FETCH chosen by the user name that logged in. */
static int fake_fd = -1, fake_port;
static volatile int fake_stop;

static int fake_send(int fd, const char *s, size_t len)
{
    while (len) {
        ssize_t w = write(fd, s, len);
        if (w <= 0)
            return -1;
        s += w;
        len -= (size_t)w;
    }
    return 0;
}

static int fake_puts(int fd, const char *s)
{
    return fake_send(fd, s, strlen(s));
}

#define FAKE_HEAD                                                                                  \
    "RFC822.SIZE 120 INTERNALDATE \"01-Jan-2024 10:00:00 +0000\" ENVELOPE (\"Mon, 01 Jan 2024 "    \
    "10:00:00 +0000\" "

/* fake_fetch answers a UID FETCH for user. */
static void fake_fetch(int fd, const char *user, const char *tag)
{
    char line[512];
    if (strcmp(user, "huge") == 0) {
        fake_puts(fd, "* 1 FETCH (UID 1 FLAGS (\\Seen) " FAKE_HEAD "{999999999}\r\n");
        static char junk[1 << 20];
        memset(junk, 'x', sizeof junk);
        for (int i = 0; i < 80 && fake_send(fd, junk, sizeof junk) == 0; i++)
            ;
        return; /* the client has hung up, or gets the connection closed */
    }
    if (strcmp(user, "cutoff") == 0) {
        /* a literal announced, then the connection closed half-way */
        fake_puts(fd, "* 1 FETCH (UID 1 FLAGS (\\Seen) " FAKE_HEAD "{5000}\r\nonly this");
        return;
    }
    if (strcmp(user, "garbage") == 0) {
        fake_puts(fd, "* 1 FETCH (UID 1 FLAGS (\\Seen) ENVELOPE (((((( ]]] \x01\x02 }{\r\n");
    } else if (strcmp(user, "noenv") == 0) {
        fake_puts(fd, "* 1 FETCH (UID 1 FLAGS (\\Seen) RFC822.SIZE 10 INTERNALDATE "
                      "\"01-Jan-2024 10:00:00 +0000\")\r\n"
                      "* 2 FETCH (UID 2 FLAGS () RFC822.SIZE 10 INTERNALDATE "
                      "\"01-Jan-2024 10:00:00 +0000\")\r\n");
    } else {
        /* utf8: invalid UTF-8 in the subject and a name, then a subject of
         * 10,000 bytes. */
        const char *subj = "Caf\xe9 \xff\xfe ok";
        const char *name = "Bj\xf6rn";
        snprintf(line, sizeof line,
                 "* 1 FETCH (UID 1 FLAGS (\\Seen) " FAKE_HEAD
                 "{%zu}\r\n%s (({%zu}\r\n%s NIL \"bjorn\" \"example.com\")) NIL NIL "
                 "((\"To\" NIL \"to\" \"example.com\")) NIL NIL NIL \"<u1@fake>\"))\r\n",
                 strlen(subj), subj, strlen(name), name);
        fake_puts(fd, line);
        static char big[10000];
        memset(big, 'A', sizeof big);
        snprintf(line, sizeof line, "* 2 FETCH (UID 2 FLAGS () " FAKE_HEAD "{%zu}\r\n", sizeof big);
        fake_puts(fd, line);
        fake_send(fd, big, sizeof big);
        fake_puts(fd, " NIL NIL NIL ((\"To\" NIL \"to\" \"example.com\")) NIL NIL NIL "
                      "\"<u2@fake>\"))\r\n");
    }
    snprintf(line, sizeof line, "%s OK FETCH done\r\n", tag);
    fake_puts(fd, line);
}

static void *fake_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096], user[64] = "";
    size_t n = 0;
    fake_puts(fd, "* OK fake IMAP ready\r\n");
    for (;;) {
        char *eol = n ? memchr(buf, '\n', n) : NULL;
        if (!eol) {
            if (n == sizeof buf)
                break;
            ssize_t r = read(fd, buf + n, sizeof buf - n);
            if (r <= 0)
                break;
            n += (size_t)r;
            continue;
        }
        *eol = '\0';
        if (eol > buf && eol[-1] == '\r')
            eol[-1] = '\0';
        char tag[32] = "", cmd[32] = "", rest[512] = "", reply[512];
        sscanf(buf, "%31s %31s %511[^\n]", tag, cmd, rest);
        size_t used = (size_t)(eol + 1 - buf);
        memmove(buf, eol + 1, n - used);
        n -= used;
        if (strcasecmp(cmd, "CAPABILITY") == 0) {
            snprintf(reply, sizeof reply, "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n%s OK done\r\n",
                     tag);
        } else if (strcasecmp(cmd, "LOGIN") == 0) {
            sscanf(rest[0] == '"' ? rest + 1 : rest, "%63[^\" ]", user);
            snprintf(reply, sizeof reply, "%s OK logged in\r\n", tag);
        } else if (strcasecmp(cmd, "SELECT") == 0 || strcasecmp(cmd, "EXAMINE") == 0) {
            snprintf(reply, sizeof reply,
                     "* FLAGS (\\Seen)\r\n* 2 EXISTS\r\n* 0 RECENT\r\n"
                     "* OK [UIDVALIDITY 42] ok\r\n* OK [UIDNEXT 3] ok\r\n"
                     "%s OK [READ-WRITE] selected\r\n",
                     tag);
        } else if (strcasecmp(cmd, "UID") == 0 && strncasecmp(rest, "SEARCH", 6) == 0) {
            snprintf(reply, sizeof reply, "* SEARCH 1 2\r\n%s OK done\r\n", tag);
        } else if (strcasecmp(cmd, "UID") == 0 && strncasecmp(rest, "FETCH", 5) == 0) {
            fake_fetch(fd, user, tag);
            if (strcmp(user, "huge") == 0 || strcmp(user, "cutoff") == 0)
                break;
            continue;
        } else if (strcasecmp(cmd, "LOGOUT") == 0) {
            snprintf(reply, sizeof reply, "* BYE\r\n%s OK bye\r\n", tag);
            fake_puts(fd, reply);
            break;
        } else {
            snprintf(reply, sizeof reply, "%s BAD unknown command\r\n", tag);
        }
        if (fake_puts(fd, reply))
            break;
    }
    close(fd);
    return NULL;
}

static void *fake_main(void *arg)
{
    while (!fake_stop) {
        int fd = accept(fake_fd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_t t;
        if (pthread_create(&t, NULL, fake_conn, (void *)(intptr_t)fd) == 0)
            pthread_detach(t);
        else
            close(fd);
    }
    return arg;
}

static bool valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int need = *p < 0x80             ? 0
                   : (*p & 0xE0) == 0xC0 ? 1
                   : (*p & 0xF0) == 0xE0 ? 2
                   : (*p & 0xF8) == 0xF0 ? 3
                                         : -1;
        if (need < 0)
            return false;
        p++;
        for (int k = 0; k < need; k++, p++)
            if ((*p & 0xC0) != 0x80)
                return false;
    }
    return true;
}

static void test_hostile_server(void **state)
{
    fake_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fake_fd >= 0);
    int one = 1;
    setsockopt(fake_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    assert_int_equal(bind(fake_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fake_fd, 16), 0);
    assert_int_equal(getsockname(fake_fd, (struct sockaddr *)&a, &alen), 0);
    fake_port = ntohs(a.sin_port);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fake_main, NULL), 0);

    char huge[160], garbage[160], noenv[160], utf8[160], cutoff[160];
    tf_sync_end end;
    create_account(fake_port, "huge", NULL, huge, sizeof huge);
    create_account(fake_port, "garbage", NULL, garbage, sizeof garbage);
    create_account(fake_port, "noenv", NULL, noenv, sizeof noenv);
    create_account(fake_port, "utf8", NULL, utf8, sizeof utf8);
    create_account(fake_port, "cutoff", NULL, cutoff, sizeof cutoff);

    tf_stack_sync_and_wait(&st, huge, "error", &end);
    fprintf(stderr, "huge literal: %s\n", end.error);
    assert_non_null(strstr(end.error, "larger than"));
    tf_stack_sync_and_wait(&st, garbage, "error", &end);
    fprintf(stderr, "garbage: %s\n", end.error);
    assert_non_null(strstr(end.error, "INBOX"));
    /* A server that closes the connection inside a literal: libetpan 1.9.4
     * would wait for the rest for ever, reading nothing in a busy loop. */
    tf_stack_sync_and_wait(&st, cutoff, "error", &end);
    fprintf(stderr, "cut off: %s\n", end.error);
    assert_non_null(strstr(end.error, "connection lost"));
    tf_stack_sync_and_wait(&st, noenv, "error", &end);
    fprintf(stderr, "no envelope: %s\n", end.error);
    assert_non_null(strstr(end.error, "lacks"));

    tf_stack_sync_and_wait(&st, utf8, "ok", NULL);
    sh_val *m = tf_stack_get_message(&st, utf8, 1);
    const char *subject = sh_val_get_str(m, "subject", NULL);
    const char *from = sh_val_get_str(m, "from", NULL);
    fprintf(stderr, "subject \"%s\" from \"%s\"\n", subject, from);
    assert_true(valid_utf8(subject));
    assert_true(valid_utf8(from));
    assert_non_null(strstr(subject, "Caf"));
    assert_non_null(strstr(subject, " ok"));
    assert_string_not_equal(subject, "Caf\xe9 \xff\xfe ok");
    assert_non_null(strstr(from, "bjorn@example.com"));
    sh_val_free(m);
    m = tf_stack_get_message(&st, utf8, 2);
    size_t len = strlen(sh_val_get_str(m, "subject", NULL));
    assert_true(len >= 1000 && len <= 4096);
    sh_val_free(m);

    /* The worker is still up and syncs a real account. */
    int wst;
    assert_int_equal(waitpid(st.worker_pid, &wst, WNOHANG), 0);
    tf_stack_sync_and_wait(&st, acct_main, "ok", NULL);
    assert_int_equal(stored_inbox(acct_main), NMSG);

    fake_stop = 1;
    shutdown(fake_fd, SHUT_RDWR);
    close(fake_fd);
    pthread_join(t, NULL);
}

/* A folder the server marks \Sent is synced with INBOX, though the
 * account names no folder. */
static void test_special_use_sent(void **state)
{
    char id[160];
    const char *create[] = {"CREATE Sent", NULL};
    fill_folder(create, "Sent", 8001, 8002);
    create_account(st.dove.port, "test", NULL, id, sizeof id);
    tf_stack_sync_and_wait(&st, id, "ok", NULL);
    check_exactly(id, "Sent", 8001, 8002);
    assert_int_equal(stored_inbox(id), NMSG);
    sh_val *a = sh_val_new_map(), *res = NULL;
    tf_put_str(a, "accountId", id);
    assert_int_equal(tf_stack_call(st.worker, "folders.counts", a, &res), SH_OK);
    const sh_val *f = sh_val_get(res, "folders");
    bool sent = false;
    for (size_t i = 0; i < sh_val_len(f); i++) {
        const sh_val *e = sh_val_at(f, i);
        if (strcmp(sh_val_get_str(e, "name", NULL), "Sent") == 0) {
            sent = true;
            assert_int_equal(sh_val_int(sh_val_get(e, "total")), 2);
        }
    }
    assert_true(sent);
    sh_val_free(res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_initial_sync_5000),     cmocka_unit_test(test_sigkill_mid_sync),
        cmocka_unit_test(test_sigterm_mid_sync),      cmocka_unit_test(test_uidvalidity_reset),
        cmocka_unit_test(test_server_down_then_back), cmocka_unit_test(test_hostile_server),
        cmocka_unit_test(test_special_use_sent),
    };
    return cmocka_run_group_tests(tests, group_setup, tf_stack_teardown);
}
