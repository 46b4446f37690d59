/* test_acl.c - one Redis ACL user per service (deploy/redis/users.acl.in):
 * the file matches the key registry, each user reaches only its own
 * prefixes and commands, and the services work under their own users. */
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

#include "calls.h"
#include "fixture.h"
#include "services.h"
#include "shared/keys.h"
#include "shared/rpc.h"
#include "shared/store.h"

#define PW_ADMIN    "admin-password-0123456789"
#define PW_PROGRESS "progress-password-0123456789"
#define PW_COORD    "coordinator-password-0123456789"
#define PW_SYNC     "sync-worker-password-0123456789"
#define KEY         "8f3a0c5e7b9d1f2a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a"

static tf_redis redis;
static char aclpath[300];

static const struct {
    const char *user, *password;
} users[] = {
    {SH_OWNER_PROGRESS, PW_PROGRESS}, {SH_OWNER_COORDINATOR, PW_COORD}, {SH_OWNER_SYNC, PW_SYNC}};

static int group_setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(redis.dir, sizeof redis.dir, "/tmp/shtest-acl-XXXXXX");
    if (!mkdtemp(redis.dir))
        return -1;
    snprintf(aclpath, sizeof aclpath, "%s/users.acl", redis.dir);
    char cmd[800];
    snprintf(cmd, sizeof cmd,
             "ADMIN_REDIS_PASSWORD=%s PROGRESS_REDIS_PASSWORD=%s COORDINATOR_REDIS_PASSWORD=%s "
             "SYNC_WORKER_REDIS_PASSWORD=%s %s/deploy/redis/render-acl %s",
             PW_ADMIN, PW_PROGRESS, PW_COORD, PW_SYNC, SH_SOURCE_DIR, aclpath);
    if (system(cmd) != 0) {
        fprintf(stderr, "render-acl failed\n");
        return -1;
    }
    const char *extra[] = {"--aclfile", aclpath, NULL};
    return tf_redis_start_args(&redis, 0, extra, "admin", PW_ADMIN);
}

static int group_teardown(void **state)
{
    tf_redis_stop(&redis);
    sh_rpc_fini();
    return 0;
}

static sh_store *store_as(const char *user, const char *password)
{
    char url[300];
    snprintf(url, sizeof url, "redis://%s:%s@127.0.0.1:%d", user, password, redis.port);
    sh_redis_url u;
    sh_store *s = NULL;
    sh_error err;
    assert_int_equal(sh_redis_url_parse(url, &u, &err), SH_OK);
    assert_int_equal(sh_store_new(&u, NULL, &s, &err), SH_OK);
    return s;
}

/* try runs a command of up to three words and says whether Redis allowed it. */
static bool try(sh_store *s, const char *a, const char *b, const char *c)
{
    sh_cmd *cmd = sh_cmd_new(a);
    if (b)
        sh_cmd_str(cmd, b);
    if (c)
        sh_cmd_str(cmd, c);
    sh_reply *r = NULL;
    sh_error err;
    assert_int_equal(sh_store_run(s, cmd, &r, &err), SH_OK);
    sh_cmd_free(cmd);
    bool ok = sh_reply_kind(r) != SH_REPLY_ERROR;
    if (!ok) {
        const char *e = sh_reply_string(r, NULL);
        if (strncmp(e, "NOPERM", 6) != 0 && strncmp(e, "NOAUTH", 6) != 0)
            fail_msg("refused for another reason than permissions: %s", e);
    }
    sh_reply_free(r);
    return ok;
}

/* ---- the file matches the registry ------------------------------------------ */

static void test_acl_file_matches_the_registry(void **state)
{
    char path[400];
    snprintf(path, sizeof path, "%s/deploy/redis/users.acl.in", SH_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[2048];
    int seen = 0;
    while (fgets(line, sizeof line, f)) {
        char name[64];
        if (sscanf(line, "user %63s", name) != 1)
            continue;
        bool service = false;
        for (size_t i = 0; sh_key_prefixes[i].prefix; i++)
            service |= strcmp(sh_key_prefixes[i].owner, name) == 0;
        if (!service)
            continue;
        seen++;
        /* Every pattern of the line is a prefix this service owns... */
        int patterns = 0;
        for (char *p = strstr(line, " ~"); p; p = strstr(p + 1, " ~")) {
            char pat[128];
            sscanf(p + 2, "%127s", pat);
            size_t n = strlen(pat);
            assert_true(n > 1 && pat[n - 1] == '*');
            pat[n - 1] = '\0';
            const char *owner = sh_key_owner(pat, strlen(pat));
            if (!owner || strcmp(owner, name) != 0)
                fail_msg("user %s may touch %s*, which %s owns", name, pat,
                         owner ? owner : "nobody");
            patterns++;
        }
        /* ...and it has every prefix the registry gives it. */
        int owned = 0;
        for (size_t i = 0; sh_key_prefixes[i].prefix; i++) {
            if (strcmp(sh_key_prefixes[i].owner, name) != 0)
                continue;
            owned++;
            char want[128];
            snprintf(want, sizeof want, " ~%s* ", sh_key_prefixes[i].prefix);
            if (!strstr(line, want))
                fail_msg("user %s lacks ~%s*", name, sh_key_prefixes[i].prefix);
        }
        assert_int_equal(patterns, owned);
        assert_non_null(strstr(line, "-@dangerous"));
    }
    fclose(f);
    assert_int_equal(seen, 3);
}

/* ---- isolation ------------------------------------------------------------- */

static void test_each_user_reaches_only_its_prefixes(void **state)
{
    for (size_t u = 0; u < 3; u++) {
        sh_store *s = store_as(users[u].user, users[u].password);
        for (size_t i = 0; sh_key_prefixes[i].prefix; i++) {
            char key[128];
            snprintf(key, sizeof key, "%s{acl-test}", sh_key_prefixes[i].prefix);
            bool own = strcmp(sh_key_prefixes[i].owner, users[u].user) == 0;
            if (try(s, "SET", key, "v") != own)
                fail_msg("user %s: SET %s %s", users[u].user, key, own ? "refused" : "allowed");
            if (try(s, "GET", key, NULL) != own)
                fail_msg("user %s: GET %s %s", users[u].user, key, own ? "refused" : "allowed");
        }
        assert_false(try(s, "FLUSHALL", NULL, NULL));
        assert_false(try(s, "KEYS", "*", NULL));
        assert_false(try(s, "CONFIG", "GET", "*"));
        assert_false(try(s, "SCRIPT", "FLUSH", NULL));
        assert_true(try(s, "PING", NULL, NULL));
        sh_store_free(s);
    }
    /* The default user is off. */
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", redis.port);
    sh_redis_url ru;
    sh_store *anon = NULL;
    sh_error err;
    assert_int_equal(sh_redis_url_parse(url, &ru, &err), SH_OK);
    assert_int_equal(sh_store_new(&ru, NULL, &anon, &err), SH_OK);
    assert_false(try(anon, "GET", "progress:{acl-test}", NULL));
    sh_store_free(anon);
}

/* ---- the services under their users ------------------------------------------ */

static pid_t start(const char *name, const char *user, const char *password, char *rpc_url,
                   size_t len)
{
    char redis_url[300], logpath[400];
    snprintf(rpc_url, len, "tcp://127.0.0.1:%d", tf_free_port());
    snprintf(redis_url, sizeof redis_url, "redis://%s:%s@127.0.0.1:%d", user, password, redis.port);
    snprintf(logpath, sizeof logpath, "%s/%s.log", redis.dir, name);
    const char *env[] = {"ENCRYPTION_KEY=" KEY, "SCHED_AUTO_TICK=false", NULL};
    tf_service svc = {
        .name = name, .redis_url = redis_url, .rpc_url = rpc_url, .env = env, .log_path = logpath};
    return tf_service_spawn(&svc);
}

static sh_rpc_client *client(const char *url)
{
    sh_rpc_client *c = tf_client(url);
    if (tf_wait_ping(c, 1) != 0)
        fail_msg("service at %s did not answer its ping", url);
    return c;
}

static void call_ok(sh_rpc_client *c, const char *op, sh_val *args)
{
    sh_val *res = NULL;
    sh_error err;
    int rc = sh_rpc_call(c, op, args, 5000, &res, &err);
    sh_val_free(args);
    sh_val_free(res);
    if (rc != SH_OK)
        fail_msg("%s under its ACL user: %s", op, err.msg);
}

static void test_services_work_under_their_users(void **state)
{
    char purl[64], curl[64];
    pid_t p = start("progress", "progress", PW_PROGRESS, purl, sizeof purl);
    pid_t c = start("coordinator", "coordinator", PW_COORD, curl, sizeof curl);
    sh_rpc_client *pc = client(purl), *cc = client(curl);

    sh_val *a = sh_val_new_map(), *f = sh_val_new_map();
    sh_val_set_cstr(f, "currentStep", sh_val_new_int(1));
    sh_val_set_cstr(a, "id", sh_val_new_cstr("acl-session"));
    sh_val_set_cstr(a, "fields", f);
    call_ok(pc, "progress.update", a);
    a = sh_val_new_map();
    sh_val *e = sh_val_new_map();
    sh_val_set_cstr(e, "error", sh_val_new_cstr("x"));
    sh_val_set_cstr(a, "id", sh_val_new_cstr("acl-session"));
    sh_val_set_cstr(a, "entry", e);
    call_ok(pc, "log.append", a);
    a = sh_val_new_map();
    f = sh_val_new_map();
    sh_val_set_cstr(f, "conversationId", sh_val_new_cstr("acl-conv"));
    sh_val_set_cstr(a, "fields", f);
    call_ok(pc, "job.create", a);
    a = sh_val_new_map();
    sh_val_set_cstr(a, "conversationId", sh_val_new_cstr("acl-conv"));
    call_ok(pc, "job.by_conversation", a);

    a = sh_val_new_map();
    sh_val_set_cstr(a, "sq", sh_val_new_cstr("acl-sq"));
    sh_val_set_cstr(a, "botId", sh_val_new_cstr("BOT1"));
    call_ok(cc, "claim", a);
    a = sh_val_new_map();
    sh_val_set_cstr(a, "sq", sh_val_new_cstr("acl-sq"));
    sh_val_set_cstr(a, "botId", sh_val_new_cstr("BOT1"));
    sh_val_set_cstr(a, "rowCount", sh_val_new_int(3));
    call_ok(cc, "reserve", a);
    call_ok(cc, "list", NULL);
    a = sh_val_new_map();
    sh_val_set_cstr(a, "emailAddress", sh_val_new_cstr("me@example.com"));
    sh_val_set_cstr(a, "imapHost", sh_val_new_cstr("imap.example.com"));
    sh_val_set_cstr(a, "imapPort", sh_val_new_int(993));
    sh_val_set_cstr(a, "security", sh_val_new_cstr("tls"));
    sh_val_set_cstr(a, "username", sh_val_new_cstr("me"));
    sh_val_set_cstr(a, "password", sh_val_new_cstr("secret-pw"));
    call_ok(cc, "account.create", a);
    a = sh_val_new_map();
    sh_val_set_cstr(a, "force", sh_val_new_bool(true));
    call_ok(cc, "sched.tick", a);
    call_ok(cc, "sched.status", NULL);
    call_ok(cc, "sync.lease", NULL);

    sh_rpc_client_free(pc);
    sh_rpc_client_free(cc);
    assert_int_equal(tf_stop(p, SIGTERM, 10000), 0);
    assert_int_equal(tf_stop(c, SIGTERM, 10000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acl_file_matches_the_registry),
        cmocka_unit_test(test_each_user_reaches_only_its_prefixes),
        cmocka_unit_test(test_services_work_under_their_users),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
