/* test_oauth_refresh.c - OAuth2 accounts on two coordinators and a private
 * Redis: account.create and account.update take `auth` (managed or
 * app-supplied), seal every secret and show only {type, provider,
 * expiresAt}; no secret is anywhere in Redis in the clear; bad `auth` is
 * refused naming the field; racing refresh_begin calls grant one refresh
 * only, whose new secret is written by compare-and-set on the version; a
 * transient failure backs the next refresh off; rotate-keys re-seals the
 * OAuth2 secrets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls.h"
#include "fixture.h"
#include "services.h"
#include "shared/msg.h"
#include "shared/oauth.h"
#include "shared/rpc.h"
#include "shared/secret.h"
#include "shared/store.h"

#define K1      "8f3a0c5e7b9d1f2a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a"
#define K2      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define NRACERS 16

static tf_redis redis;
static pid_t coord[2];
static char url[2][64];
static sh_rpc_client *c0, *c1;
static char logdir[300];

static pid_t start_coord(int i, const char *key, const char *prev, const char *cmd)
{
    char e_key[100], e_prev[120], logpath[400], ev[64];
    snprintf(ev, sizeof ev, "tcp://127.0.0.1:%d", tf_free_port());
    snprintf(e_key, sizeof e_key, "ENCRYPTION_KEY=%s", key);
    snprintf(e_prev, sizeof e_prev, "ENCRYPTION_KEY_PREVIOUS=%s", prev ? prev : "");
    snprintf(logpath, sizeof logpath, "%s/coordinator%d%s.log", logdir, i, cmd ? "-cmd" : "");
    const char *env[] = {
        e_key, e_prev, "SCHED_AUTO_TICK=false", "RPC_WORKERS=8", "IMAP_ALLOW_HOSTS=127.0.0.0/8",
        NULL};
    tf_service svc = {.name = "coordinator",
                      .redis_url = redis.url,
                      .rpc_url = url[i],
                      .events_url = ev,
                      .env = env,
                      .command = cmd,
                      .log_path = logpath};
    return tf_service_spawn(&svc);
}

static int group_setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    if (tf_redis_start(&redis, 0) != 0)
        return -1;
    snprintf(logdir, sizeof logdir, "%s", redis.dir);
    sh_error err;
    for (int i = 0; i < 2; i++) {
        snprintf(url[i], sizeof url[i], "tcp://127.0.0.1:%d", tf_free_port());
        coord[i] = start_coord(i, K1, NULL, NULL);
    }
    if (sh_rpc_client_new(url[0], 10000, 0, &c0, &err) ||
        sh_rpc_client_new(url[1], 10000, 0, &c1, &err))
        return -1;
    if (tf_wait_ping(c0, 1) == 0 && tf_wait_ping(c1, 1) == 0)
        return 0;
    fprintf(stderr, "coordinators did not answer; logs in %s\n", logdir);
    return -1;
}

static int group_teardown(void **state)
{
    sh_rpc_client_free(c0);
    sh_rpc_client_free(c1);
    char logs[400];
    snprintf(logs, sizeof logs, "%s/coordinator*.log", logdir);
    int rc = tf_services_stop(coord, 2, logs);
    tf_redis_stop(&redis);
    sh_rpc_fini();
    return rc;
}

/* account_fields returns create fields with auth (taken). */
static sh_val *account_fields(sh_val *auth)
{
    sh_val *f = sh_val_new_map();
    tf_put_str(f, "emailAddress", "alice@example.com");
    tf_put_str(f, "imapHost", "127.0.0.1");
    tf_put_int(f, "imapPort", 143);
    tf_put_str(f, "security", "tls");
    tf_put_str(f, "username", "alice");
    if (auth)
        sh_val_set_cstr(f, "auth", auth);
    return f;
}

static sh_val *managed_auth(void)
{
    sh_val *a = sh_val_new_map();
    tf_put_str(a, "type", "oauth2");
    tf_put_str(a, "provider", "custom");
    tf_put_str(a, "clientId", "client-id-1");
    tf_put_str(a, "clientSecret", "CLIENT-SECRET-zq81");
    tf_put_str(a, "refreshToken", "REFRESH-TOKEN-zq82");
    tf_put_str(a, "tokenUrl", "http://127.0.0.1:9/token");
    tf_put_str(a, "accessToken", "ACCESS-TOKEN-zq83");
    tf_put_str(a, "expiresAt", "2030-01-02T03:04:05Z");
    return a;
}

/* create makes an account of auth (taken) and copies its id to id. */
static void create(sh_val *auth, char id[64])
{
    sh_val *out = NULL;
    sh_error err;
    int rc = tf_call(c0, "account.create", account_fields(auth), 10000, &out, &err);
    if (rc)
        fail_msg("account.create: %s", err.msg);
    snprintf(id, 64, "%s", sh_val_get_str(out, "id", NULL));
    sh_val_free(out);
}

/* redis_holds tells whether any key or value of Redis holds needle. */
static bool redis_holds(const char *needle)
{
    char cmd[1200], line[8192];
    snprintf(cmd, sizeof cmd,
             "redis-cli -u '%s' --scan | while read -r k; do echo \"$k\"; "
             "redis-cli -u '%s' --raw DUMP \"$k\"; "
             "redis-cli -u '%s' --raw HGETALL \"$k\" 2>/dev/null; "
             "redis-cli -u '%s' --raw GET \"$k\" 2>/dev/null; done",
             redis.url, redis.url, redis.url, redis.url);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    bool found = false;
    while (fgets(line, sizeof line, p))
        found = found || strstr(line, needle) != NULL;
    pclose(p);
    return found;
}

/* The account's view shows the kind of sign-in and never a secret;
 * Redis holds every secret sealed only. */
static void test_create_seals_and_shows_no_secret(void **state)
{
    char id[64];
    create(managed_auth(), id);
    sh_val *out = NULL;
    assert_int_equal(tf_call(c1, "account.get", tf_id_args(id), 5000, &out, NULL), SH_OK);
    const sh_val *auth = sh_val_get(out, "auth");
    assert_non_null(auth);
    assert_string_equal(sh_val_get_str(auth, "type", NULL), "oauth2");
    assert_string_equal(sh_val_get_str(auth, "provider", NULL), "custom");
    assert_string_equal(sh_val_get_str(auth, "expiresAt", NULL), "2030-01-02T03:04:05.000Z");
    assert_int_equal(sh_val_len(auth), 3);
    sh_buf b;
    sh_buf_init(&b);
    assert_int_equal(sh_msg_pack(out, &b), SH_OK);
    sh_val_free(out);
    static const char *const secrets[] = {"zq81", "zq82", "zq83", NULL};
    for (size_t i = 0; secrets[i]; i++) {
        for (size_t j = 0; j + 4 <= b.len; j++)
            assert_false(memcmp(b.data + j, secrets[i], 4) == 0);
        assert_false(redis_holds(secrets[i]));
    }
    sh_buf_fini(&b);

    /* An app pushes a new access token: still sealed. */
    sh_val *args = sh_val_new_map(), *a = sh_val_new_map();
    tf_put_str(args, "id", id);
    tf_put_str(a, "type", "oauth2");
    tf_put_str(a, "accessToken", "PUSHED-TOKEN-zq84");
    tf_put_str(a, "expiresAt", "2031-01-01T00:00:00Z");
    sh_val *fields = sh_val_new_map();
    sh_val_set_cstr(fields, "auth", a);
    sh_val_set_cstr(args, "fields", fields);
    assert_int_equal(tf_call(c0, "account.update", args, 5000, &out, NULL), SH_OK);
    assert_string_equal(sh_val_get_str(sh_val_get(out, "auth"), "expiresAt", NULL),
                        "2031-01-01T00:00:00.000Z");
    assert_null(sh_val_get_str(sh_val_get(out, "auth"), "provider", NULL));
    sh_val_free(out);
    assert_false(redis_holds("zq84"));
}

typedef struct bad_case {
    const char *field, *value, *drop, *want;
} bad_case;

/* Bad auth objects are refused, naming the field. */
static void test_bad_auth_refused(void **state)
{
    static const bad_case cases[] = {
        {"provider", "yahoo", NULL, "auth.provider"},
        {"tokenUrl", "http://example.com/token", NULL, "auth.tokenUrl"},
        {"tokenUrl", "ftp://127.0.0.1/token", NULL, "auth.tokenUrl"},
        /* The host policy: a private address not allowed, a metadata one. */
        {"tokenUrl", "https://10.1.2.3/token", NULL, "auth.tokenUrl"},
        {"tokenUrl", "https://169.254.169.254:8443/token", NULL, "auth.tokenUrl"},
        {NULL, NULL, "tokenUrl", "auth.tokenUrl"},
        {NULL, NULL, "clientId", "auth.clientId"},
        {"type", "basic", NULL, "auth.type"},
        {"expiresAt", "tomorrow", NULL, "auth.expiresAt"},
        {"color", "blue", NULL, "auth.color"},
        {"password", NULL, NULL, "not both"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sh_val *a = managed_auth();
        sh_val *f = NULL;
        if (cases[i].drop)
            sh_val_free(sh_val_take(a, cases[i].drop));
        if (cases[i].field && strcmp(cases[i].field, "password") == 0) {
            f = account_fields(a);
            tf_put_str(f, "password", "pw");
        } else {
            if (cases[i].field)
                tf_put_str(a, cases[i].field, cases[i].value);
            f = account_fields(a);
        }
        sh_error err;
        int rc = tf_call(c0, "account.create", f, 5000, NULL, &err);
        assert_int_equal(rc, SH_EINVAL);
        if (!strstr(err.msg, cases[i].want))
            fail_msg("case %zu: \"%s\" does not name %s", i, err.msg, cases[i].want);
    }
    /* Neither a password nor auth. */
    sh_error err;
    assert_int_equal(tf_call(c0, "account.create", account_fields(NULL), 5000, NULL, &err),
                     SH_EINVAL);
    assert_non_null(strstr(err.msg, "password"));
}

static sh_val *refresh_args(const char *id, const char *worker, const char *version)
{
    sh_val *a = sh_val_new_map();
    tf_put_str(a, "accountId", id);
    tf_put_str(a, "worker", worker);
    tf_put_str(a, "version", version);
    return a;
}

/* version_of reads the account's authVersion through sync.lease's view:
 * here straight from Redis. */
static void version_of(const char *id, char *out, size_t len)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "redis-cli -u '%s' --raw HGET 'account:{%s}' authVersion", redis.url,
             id);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    out[0] = '\0';
    if (fgets(out, (int)len, p))
        out[strcspn(out, "\n")] = '\0';
    pclose(p);
}

typedef struct racer {
    const char *id, *version;
    int n;
    char state[16];
} racer;

static void *racer_main(void *arg)
{
    racer *r = arg;
    char worker[32];
    snprintf(worker, sizeof worker, "w%d", r->n);
    sh_val *out = NULL;
    sh_error err;
    if (tf_call(r->n % 2 ? c1 : c0, "oauth.refresh_begin", refresh_args(r->id, worker, r->version),
                10000, &out, &err) == SH_OK)
        snprintf(r->state, sizeof r->state, "%s", sh_val_get_str(out, "state", NULL));
    sh_val_free(out);
    return NULL;
}

/* Sixteen workers ask at once: one is granted the refresh, the others
 * wait; its secret is stored by version, and a worker still on the old
 * version is handed the new secret instead of a refresh. */
static void test_one_refresh_among_racers(void **state)
{
    char id[64], version[40];
    create(managed_auth(), id);
    version_of(id, version, sizeof version);
    assert_int_equal(strlen(version), 16);
    racer r[NRACERS];
    pthread_t th[NRACERS];
    for (int i = 0; i < NRACERS; i++) {
        r[i] = (racer){.id = id, .version = version, .n = i};
        assert_int_equal(pthread_create(&th[i], NULL, racer_main, &r[i]), 0);
    }
    int granted = 0, busy = 0, winner = -1;
    for (int i = 0; i < NRACERS; i++) {
        pthread_join(th[i], NULL);
        if (strcmp(r[i].state, "granted") == 0) {
            granted++;
            winner = i;
        }
        busy += strcmp(r[i].state, "busy") == 0;
    }
    assert_int_equal(granted, 1);
    assert_int_equal(busy, NRACERS - 1);

    char worker[32];
    snprintf(worker, sizeof worker, "w%d", winner);
    /* Another worker cannot end it. */
    sh_val *a = refresh_args(id, "intruder", version);
    sh_val_set_cstr(a, "secretSealed", sh_val_new_bin("x", 1));
    tf_put_int(a, "expiresAt", 1);
    assert_int_equal(tf_call(c0, "oauth.refresh_end", a, 5000, NULL, NULL), SH_ELEASE);

    sh_key k;
    const sh_key *keys[] = {&k};
    sh_error err;
    assert_int_equal(sh_key_parse(K1, "K1", &k, &err), SH_OK);
    sh_oauth_secret s = {.access_token = "NEW-ACCESS-zq85",
                         .refresh_token = "ROTATED-zq86",
                         .client_id = "client-id-1",
                         .token_url = "http://127.0.0.1:9/token",
                         .expires_ms = 1900000000000LL};
    sh_buf plain, blob;
    sh_buf_init_secret(&plain);
    sh_buf_init(&blob);
    assert_int_equal(sh_oauth_secret_pack(&s, &plain), SH_OK);
    assert_int_equal(sh_seal(&k, plain.data, plain.len, id, &blob), SH_OK);
    a = refresh_args(id, worker, version);
    sh_val_set_cstr(a, "secretSealed", sh_val_new_bin(blob.data, blob.len));
    tf_put_int(a, "expiresAt", s.expires_ms);
    sh_val *out = NULL;
    assert_int_equal(tf_call(c1, "oauth.refresh_end", a, 5000, &out, &err), SH_OK);
    assert_string_equal(sh_val_get_str(out, "state", NULL), "stored");
    char next[40];
    snprintf(next, sizeof next, "%s", sh_val_get_str(out, "version", NULL));
    assert_string_not_equal(next, version);
    sh_val_free(out);
    assert_false(redis_holds("zq85"));
    assert_false(redis_holds("zq86"));

    /* A late racer gets the new secret, and no refresh. */
    assert_int_equal(
        tf_call(c0, "oauth.refresh_begin", refresh_args(id, "w3", version), 5000, &out, &err),
        SH_OK);
    assert_string_equal(sh_val_get_str(out, "state", NULL), "fresh");
    assert_string_equal(sh_val_get_str(out, "version", NULL), next);
    size_t len;
    const char *got = sh_val_str(sh_val_get(out, "secretSealed"), &len);
    assert_int_equal(len, blob.len);
    sh_buf opened;
    sh_buf_init_secret(&opened);
    assert_int_equal(sh_open(keys, 1, got, len, id, &opened, &err), SH_OK);
    sh_val *m = NULL;
    sh_oauth_secret back;
    assert_int_equal(sh_oauth_secret_read(opened.data, opened.len, &m, &back, &err), SH_OK);
    assert_string_equal(back.access_token, "NEW-ACCESS-zq85");
    assert_string_equal(back.refresh_token, "ROTATED-zq86");
    sh_val_free(m);
    sh_val_free(out);
    sh_buf_fini(&opened);
    sh_buf_fini(&plain);
    sh_buf_fini(&blob);

    /* The view shows the new expiry. */
    assert_int_equal(tf_call(c0, "account.get", tf_id_args(id), 5000, &out, NULL), SH_OK);
    assert_string_equal(sh_val_get_str(sh_val_get(out, "auth"), "expiresAt", NULL),
                        "2030-03-17T17:46:40.000Z");
    sh_val_free(out);
}

/* A transient failure is counted: the next refresh waits. */
static void test_transient_failure_backs_off(void **state)
{
    char id[64], version[40];
    create(managed_auth(), id);
    version_of(id, version, sizeof version);
    sh_val *out = NULL;
    assert_int_equal(
        tf_call(c0, "oauth.refresh_begin", refresh_args(id, "w1", version), 5000, &out, NULL),
        SH_OK);
    assert_string_equal(sh_val_get_str(out, "state", NULL), "granted");
    sh_val_free(out);
    sh_val *a = refresh_args(id, "w1", version);
    sh_val_set_cstr(a, "transient", sh_val_new_bool(true));
    assert_int_equal(tf_call(c0, "oauth.refresh_end", a, 5000, &out, NULL), SH_OK);
    assert_string_equal(sh_val_get_str(out, "state", NULL), "backoff");
    assert_non_null(sh_val_get_str(out, "retryAt", NULL));
    sh_val_free(out);
    assert_int_equal(
        tf_call(c1, "oauth.refresh_begin", refresh_args(id, "w2", version), 5000, &out, NULL),
        SH_OK);
    assert_string_equal(sh_val_get_str(out, "state", NULL), "backoff");
    sh_val_free(out);
    /* A password account has nothing to refresh. */
    sh_val *f = account_fields(NULL);
    tf_put_str(f, "password", "pw");
    assert_int_equal(tf_call(c0, "account.create", f, 5000, &out, NULL), SH_OK);
    char pid[64];
    snprintf(pid, sizeof pid, "%s", sh_val_get_str(out, "id", NULL));
    assert_null(sh_val_get(out, "auth"));
    sh_val_free(out);
    assert_int_equal(
        tf_call(c0, "oauth.refresh_begin", refresh_args(pid, "w1", ""), 5000, NULL, NULL),
        SH_ENOTFOUND);
}

/* rotate-keys brings the OAuth2 secrets to the new key too. */
static void test_rotation_covers_oauth_secrets(void **state)
{
    char id[64];
    create(managed_auth(), id);
    pid_t p = start_coord(0, K2, K1, "rotate-keys");
    assert_int_equal(tf_stop(p, 0, 30000), 0);
    char cmd[400], line[4096];
    snprintf(cmd, sizeof cmd, "redis-cli -u '%s' --raw GET 'account:{%s}:secret' | head -c -1",
             redis.url, id);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t n = fread(line, 1, sizeof line, f);
    pclose(f);
    sh_key k2;
    sh_error err;
    assert_int_equal(sh_key_parse(K2, "K2", &k2, &err), SH_OK);
    const sh_key *keys[] = {&k2};
    sh_buf opened;
    sh_buf_init_secret(&opened);
    assert_int_equal(sh_open(keys, 1, line, n, id, &opened, &err), SH_OK);
    sh_val *m = NULL;
    sh_oauth_secret s;
    assert_int_equal(sh_oauth_secret_read(opened.data, opened.len, &m, &s, &err), SH_OK);
    assert_string_equal(s.client_secret, "CLIENT-SECRET-zq81");
    assert_string_equal(s.refresh_token, "REFRESH-TOKEN-zq82");
    sh_val_free(m);
    sh_buf_fini(&opened);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_seals_and_shows_no_secret),
        cmocka_unit_test(test_bad_auth_refused),
        cmocka_unit_test(test_one_refresh_among_racers),
        cmocka_unit_test(test_transient_failure_backs_off),
        cmocka_unit_test(test_rotation_covers_oauth_secrets),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
