/* test_sync_folders.c - folder names that need care on the wire, against
 * Dovecot and against the strict test server (which answers BAD to any
 * command that strays from the grammar): a space (quoted string), a
 * non-ASCII name (modified UTF-7 on the wire, UTF-8 in Redis and the API),
 * quotes and a backslash (escaped), "/" and "." hierarchies and an "INBOX."
 * namespace prefix (a child of INBOX in Dovecot's "." hierarchy; Dovecot's
 * Maildir++ refuses "/" in a name, so "A/B" is the strict server's only).
 * Each is synced, listed through the RPC and the gateway
 * under its UTF-8 name, counted in the account view, and a read/unread
 * change made in the non-ASCII folder reaches the server. A password with
 * 8-bit bytes, a space and a quote is sent as a literal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync_stack.h"

#define NMSG 5 /* in INBOX */
#define FMSG 3 /* in each other folder */

/* The folders, as the API names them (UTF-8), and as the wire does. */
typedef struct folder {
    const char *name;
    const char *wire;
    bool strict_only;
} folder;

static const folder folders[] = {
    {"Sent Items", "\"Sent Items\"", false},     {"Entw\xc3\xbcrfe", "Entw&APw-rfe", false},
    {"\"quoted\"", "\"\\\"quoted\\\"\"", false}, {"Back\\Slash", "\"Back\\\\Slash\"", false},
    {"INBOX.Archive", "INBOX.Archive", false},   {"A/B", "A/B", true},
};
#define NFOLDERS (sizeof folders / sizeof *folders)

/* The second user's password: 8-bit, a space and a quote need a literal. */
#define ODD_PASSWORD "p\xc3\xa4ssw\xc3\xb6rd \"q\""

static const char *const strict_folders[] = {"Sent Items=\\Sent",
                                             "Entw\xc3\xbcrfe=\\Drafts",
                                             "\"quoted\"",
                                             "Back\\Slash",
                                             "INBOX.Archive",
                                             "A/B",
                                             NULL};
static const char *const strict_users[] = {"juergen:" ODD_PASSWORD, NULL};
static const tf_strict_opts strict = {
    .folders = strict_folders, .folder_messages = FMSG, .extra_users = strict_users};

/* The servers the tests run against, a group of tests each. */
typedef struct server_kind {
    tf_stack_group group;
    const tf_strict_opts *strict; /* NULL: Dovecot */
} server_kind;

static const server_kind *kind;
static tf_stack st;
static char account_id[160];

/* dovecot_fill creates the folders on Dovecot and appends FMSG generated
 * messages to each (the strict server is started holding them), and adds
 * the second user. */
static int dovecot_fill(void)
{
    char cmds[NFOLDERS * (1 + FMSG)][1400], msg[1024];
    const char *list[NFOLDERS * (1 + FMSG) + 1];
    size_t k = 0;
    for (size_t i = 0; i < NFOLDERS; i++) {
        if (folders[i].strict_only)
            continue;
        snprintf(cmds[k], sizeof cmds[k], "CREATE %s", folders[i].wire);
        list[k] = cmds[k];
        k++;
        for (int n = 1; n <= FMSG; n++) {
            size_t len = tf_dovecot_message(n, msg, sizeof msg);
            snprintf(cmds[k], sizeof cmds[k], "APPEND %s %s{%zu+}\r\n%s", folders[i].wire,
                     n % 3 == 0 ? "(\\Seen) " : "", len, msg);
            list[k] = cmds[k];
            k++;
        }
    }
    list[k] = NULL;
    char out[65536];
    if (tf_dovecot_imap(&st.dove, list, out, sizeof out) != 0) {
        fprintf(stderr, "Dovecot refused to make the folders:\n%s\n", out);
        return -1;
    }
    return tf_dovecot_add_user(&st.dove, "juergen", ODD_PASSWORD, 2);
}

static int group_setup(void **state)
{
    kind = tf_stack_group_current();
    account_id[0] = '\0';
    const tf_stack_opts opts = {.name = kind->group.name,
                                .messages = NMSG,
                                .command_timeout = 20,
                                .gateway = true,
                                .strict = kind->strict};
    *state = &st;
    if (tf_stack_start(&st, &opts))
        return -1;
    return kind->strict ? 0 : dovecot_fill();
}

static void create_account(const char *user, const char *password, bool all_folders, char *id,
                           size_t len)
{
    sh_val *a = sh_val_new_map(), *res = NULL;
    tf_put_str(a, "emailAddress", "test@example.com");
    tf_put_str(a, "imapHost", "127.0.0.1");
    sh_val_set_cstr(a, "imapPort", sh_val_new_int(st.dove.port));
    tf_put_str(a, "security", "none");
    tf_put_str(a, "username", user);
    tf_put_str(a, "password", password);
    if (all_folders) {
        sh_val *f = sh_val_new_array();
        sh_val_push(f, sh_val_new_cstr("inbox")); /* INBOX in any case */
        for (size_t i = 0; i < NFOLDERS; i++)
            if (!folders[i].strict_only || kind->strict)
                sh_val_push(f, sh_val_new_cstr(folders[i].name));
        sh_val_set_cstr(a, "folders", f);
    }
    assert_int_equal(tf_stack_call(st.coord, "account.create", a, &res), SH_OK);
    const char *got = sh_val_get_str(res, "id", NULL);
    assert_non_null(got);
    snprintf(id, len, "%s", got);
    sh_val_free(res);
}

/* Every folder is synced under its UTF-8 name. */
static void test_folders_synced(void **state)
{
    create_account("test", "secret", true, account_id, sizeof account_id);
    tf_stack_sync_and_wait(&st, account_id, "ok", NULL);
    sh_val *all = tf_stack_list_all(&st, account_id, "INBOX", 50);
    assert_int_equal(sh_val_len(all), NMSG);
    sh_val_free(all);
    for (size_t i = 0; i < NFOLDERS; i++) {
        if (folders[i].strict_only && !kind->strict)
            continue;
        all = tf_stack_list_all(&st, account_id, folders[i].name, 50);
        if (sh_val_len(all) != FMSG)
            fail_msg("folder %s holds %zu messages, not %d", folders[i].name, sh_val_len(all),
                     FMSG);
        for (size_t j = 0; j < sh_val_len(all); j++) {
            const sh_val *m = sh_val_at(all, j);
            assert_string_equal(sh_val_get_str(m, "folder", NULL), folders[i].name);
            int n = tf_msg_number(m);
            tf_check_envelope(m, n);
            assert_int_equal(tf_has_flag(m, "\\Seen"), n % 3 == 0);
        }
        sh_val_free(all);
    }
}

/* The gateway takes the names percent-encoded in UTF-8 and shows them in
 * UTF-8, in the messages and in the account's folder counts. */
static void test_gateway_names(void **state)
{
    char body[65536];
    assert_int_equal(tf_stack_account_http(&st, account_id, "GET", "/messages?folder=Entw%C3%BCrfe",
                                           body, sizeof body),
                     200);
    if (!strstr(body, "\"folder\":\"Entw\xc3\xbcrfe\""))
        fail_msg("no UTF-8 folder name in %s", body);
    assert_int_equal(tf_stack_account_http(&st, account_id, "GET", "/messages?folder=%22quoted%22",
                                           body, sizeof body),
                     200);
    assert_non_null(strstr(body, "\"folder\":\"\\\"quoted\\\"\""));
    const char *archive =
        kind->strict ? "/messages?folder=A%2FB" : "/messages?folder=INBOX.Archive";
    assert_int_equal(tf_stack_account_http(&st, account_id, "GET", archive, body, sizeof body),
                     200);
    assert_non_null(strstr(body, "\"subject\":\"Message 3\""));
    assert_int_equal(tf_stack_account_http(&st, account_id, "GET", "", body, sizeof body), 200);
    const char *want[] = {"{\"name\":\"Entw\xc3\xbcrfe\",\"total\":3,\"unread\":2}",
                          "{\"name\":\"Sent Items\",\"total\":3,\"unread\":2}",
                          "{\"name\":\"INBOX\",\"total\":5,\"unread\":4}"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        if (!strstr(body, want[i]))
            fail_msg("no %s in %s", want[i], body);
}

/* server_seen tells whether uid of the folder (wire name) has \Seen on the
 * server, from a second session. */
static bool server_seen(const char *wire, uint32_t uid)
{
    char examine[200], fetch[64], out[8192];
    snprintf(examine, sizeof examine, "EXAMINE %s", wire);
    snprintf(fetch, sizeof fetch, "UID FETCH %u (FLAGS)", (unsigned)uid);
    const char *cmds[] = {examine, fetch, NULL};
    assert_int_equal(tf_dovecot_imap(&st.dove, cmds, out, sizeof out), 0);
    const char *p = strstr(out, " FETCH (");
    assert_non_null(p);
    const char *e = strstr(p, "\r\n");
    assert_non_null(e);
    const char *seen = strstr(p, "\\Seen");
    return seen && seen < e;
}

/* Read/unread in the non-ASCII folder and in the quoted one reach the
 * server. */
static void test_flags_pushed(void **state)
{
    const folder *f[] = {&folders[1], &folders[2]};
    for (size_t i = 0; i < 2; i++) {
        assert_false(server_seen(f[i]->wire, 1));
        sh_val *a = sh_val_new_map(), *res = NULL;
        tf_put_str(a, "accountId", account_id);
        tf_put_str(a, "folder", f[i]->name);
        sh_val_set_cstr(a, "uid", sh_val_new_int(1));
        sh_val_set_cstr(a, "seen", sh_val_new_bool(true));
        assert_int_equal(tf_stack_call(st.worker, "messages.set_seen", a, &res), SH_OK);
        assert_true(tf_has_flag(res, "\\Seen"));
        sh_val_free(res);
    }
    tf_stack_sync_and_wait(&st, account_id, "ok", NULL);
    for (size_t i = 0; i < 2; i++)
        assert_true(server_seen(f[i]->wire, 1));
}

/* A password with 8-bit bytes, a space and a quote logs in. */
static void test_literal_password(void **state)
{
    char id[160];
    create_account("juergen", ODD_PASSWORD, false, id, sizeof id);
    tf_stack_sync_and_wait(&st, id, "ok", NULL);
    sh_val *all = tf_stack_list_all(&st, id, NULL, 50);
    assert_true(sh_val_len(all) > 0);
    sh_val_free(all);
}

/* Against the strict server: it answered BAD to nothing the worker sent. */
static void test_wire_exact(void **state)
{
    assert_true(tf_strict_log_count(&st.dove, "SELECT Entw&APw-rfe (CONDSTORE)") > 0);
    tf_stack_expect_bad(&st, 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_folders_synced),
    cmocka_unit_test(test_gateway_names),
    cmocka_unit_test(test_flags_pushed),
    cmocka_unit_test(test_literal_password),
};
static const struct CMUnitTest strict_tests[] = {
    cmocka_unit_test(test_folders_synced), cmocka_unit_test(test_gateway_names),
    cmocka_unit_test(test_flags_pushed),   cmocka_unit_test(test_literal_password),
    cmocka_unit_test(test_wire_exact),
};

static const server_kind kinds[] = {
    {{"test_sync_folders", TF_STACK_TESTS(tests)}, NULL},
    {{"test_sync_folders_strict", TF_STACK_TESTS(strict_tests)}, &strict},
};

int main(void)
{
    return tf_stack_run_groups(kinds, sizeof kinds / sizeof kinds[0], sizeof kinds[0], group_setup);
}
