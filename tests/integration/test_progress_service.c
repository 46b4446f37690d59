/* test_progress_service.c - the progress service as a running process
 * against a private Redis: concurrent writers, versions, TTLs, the log cap,
 * 1 MiB job results, bad input over the wire, and Redis going away. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "calls.h"
#include "fixture.h"
#include "services.h"
#include "shared/events.h"
#include "shared/msg.h"
#include "shared/rpc.h"
#include "shared/store.h"
#include "shared/util.h"
#include "signing.h"

#define TTL     100
#define LOG_CAP 20

static tf_redis redis;
static pid_t svc;
static char rpc_url[64], ev_url[64];
static sh_rpc_client *cli;
static char logpath[300];

static int update_one(const char *id, const char *field, int64_t value, sh_val **out)
{
    return tf_progress_update(cli, id, field, value, out);
}

static sh_store *direct_store(void)
{
    sh_redis_url u;
    sh_store *s = NULL;
    sh_error err;
    assert_int_equal(sh_redis_url_parse(redis.url, &u, &err), SH_OK);
    assert_int_equal(sh_store_new(&u, NULL, &s, &err), SH_OK);
    return s;
}

static long long redis_int(const char *cmd, const char *key)
{
    sh_store *s = direct_store();
    sh_cmd *c = sh_cmd_new(cmd);
    sh_cmd_str(c, key);
    sh_reply *r = NULL;
    sh_error err;
    assert_int_equal(sh_store_run(s, c, &r, &err), SH_OK);
    long long v = sh_reply_integer(r);
    sh_reply_free(r);
    sh_cmd_free(c);
    sh_store_free(s);
    return v;
}

static void redis_do(const char *a0, const char *a1, const char *a2)
{
    sh_store *s = direct_store();
    sh_cmd *c = sh_cmd_new(a0);
    sh_cmd_str(c, a1);
    if (a2)
        sh_cmd_str(c, a2);
    sh_reply *r = NULL;
    sh_error err;
    assert_int_equal(sh_store_run(s, c, &r, &err), SH_OK);
    assert_int_not_equal(sh_reply_kind(r), SH_REPLY_ERROR);
    sh_reply_free(r);
    sh_cmd_free(c);
    sh_store_free(s);
}

static int start_service(void)
{
    const char *env[] = {"PROGRESS_TTL=100", "PROGRESS_LOG_CAP=20", "RPC_WORKERS=8", NULL};
    snprintf(logpath, sizeof logpath, "%s/progress.log", redis.dir);
    tf_service def = {.name = "progress",
                      .redis_url = redis.url,
                      .rpc_url = rpc_url,
                      .events_url = ev_url,
                      .env = env,
                      .log_path = logpath};
    return tf_service_start(&def, cli, &svc);
}

static int group_setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    if (tf_redis_start(&redis, 0) != 0)
        return -1;
    snprintf(rpc_url, sizeof rpc_url, "tcp://127.0.0.1:%d", tf_free_port());
    snprintf(ev_url, sizeof ev_url, "tcp://127.0.0.1:%d", tf_free_port());
    sh_error err;
    if (sh_rpc_client_new(rpc_url, 5000, 0, &cli, &err) != SH_OK)
        return -1;
    return start_service();
}

static int group_teardown(void **state)
{
    sh_rpc_client_free(cli);
    int rc = tf_services_stop(&svc, 1, logpath);
    tf_redis_stop(&redis);
    sh_rpc_fini();
    return rc;
}

/* ---- concurrent writers ------------------------------------------------ */

#define WRITERS 8
#define WRITES  200

static void test_concurrent_writers_lose_nothing(void **state)
{
    pthread_t t[WRITERS];
    tf_progress_writer a[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        a[i] = (tf_progress_writer){.c = cli, .id = "concurrent", .idx = i, .writes = WRITES};
        pthread_create(&t[i], NULL, tf_progress_writer_main, &a[i]);
    }
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].failures, 0);
        assert_int_equal(a[i].out_of_order, 0);
    }
    sh_val *rec = NULL;
    assert_int_equal(tf_call(cli, "progress.get", tf_id_args("concurrent"), 5000, &rec, NULL),
                     SH_OK);
    for (int i = 0; i < WRITERS; i++) {
        char field[16];
        snprintf(field, sizeof field, "f%d", i);
        assert_int_equal(sh_val_int(sh_val_get(rec, field)), WRITES);
    }
    assert_int_equal(sh_val_int(sh_val_get(rec, "version")), WRITERS * WRITES);
    assert_string_equal(sh_val_get_str(rec, "sessionId", NULL), "concurrent");
    assert_non_null(sh_val_get_str(rec, "timestamp", NULL));
    sh_val_free(rec);
}

/* ---- versions and events ----------------------------------------------- */

/* subscribe_probed subscribes to the events of record id and returns once
 * they come through (a subscriber sees nothing sent before it connected),
 * the probe writes' events drained; *seen is the version they left. */
static sh_sub *subscribe_probed(const char *id, int64_t *seen)
{
    sh_sub *sub = NULL;
    sh_error err;
    char topic_of[64];
    snprintf(topic_of, sizeof topic_of, "progress:%s\n", id);
    assert_int_equal(sh_sub_new(ev_url, 0, &sub, &err), SH_OK);
    assert_int_equal(sh_sub_subscribe(sub, topic_of), SH_OK);
    *seen = 0;
    for (int i = 0; i < 100 && *seen == 0; i++) {
        sh_val *rec = NULL;
        assert_int_equal(update_one(id, "probe", i, &rec), SH_OK);
        sh_val_free(rec);
        char *topic = NULL;
        sh_val *ev = NULL;
        if (sh_sub_recv(sub, 100, &topic, &ev) == SH_OK)
            *seen = sh_val_int(sh_val_get(ev, "version"));
        free(topic);
        sh_val_free(ev);
    }
    assert_true(*seen > 0);
    for (;;) {
        char *topic = NULL;
        sh_val *ev = NULL;
        int rc = sh_sub_recv(sub, 200, &topic, &ev);
        if (rc == SH_OK)
            *seen = sh_val_int(sh_val_get(ev, "version"));
        free(topic);
        sh_val_free(ev);
        if (rc != SH_OK)
            break;
    }
    return sub;
}

static void test_versions_increase_and_events_carry_them(void **state)
{
    int64_t seen;
    sh_sub *sub = subscribe_probed("evt", &seen);
    int64_t last = seen;
    for (int i = 0; i < 100; i++) {
        sh_val *rec = NULL;
        assert_int_equal(update_one("evt", "currentStep", i, &rec), SH_OK);
        int64_t v = sh_val_int(sh_val_get(rec, "version"));
        assert_int_equal(v, last + 1);
        last = v;
        sh_val_free(rec);
    }
    int64_t prev = seen;
    int got = 0;
    while (got < 100) {
        char *topic = NULL;
        sh_val *ev = NULL;
        int rc = sh_sub_recv(sub, 2000, &topic, &ev);
        assert_int_equal(rc, SH_OK);
        assert_string_equal(topic, "progress:evt");
        assert_string_equal(sh_val_get_str(ev, "kind", NULL), "update");
        int64_t v = sh_val_int(sh_val_get(ev, "version"));
        assert_true(v > prev);
        assert_int_equal(sh_val_int(sh_val_get(sh_val_get(ev, "record"), "version")), v);
        prev = v;
        got++;
        free(topic);
        sh_val_free(ev);
    }
    assert_int_equal(prev, last);
    sh_sub_free(sub);
}

#define APPENDERS 4
#define APPENDS   50

static void *appender_main(void *arg)
{
    int *failures = arg;
    for (int i = 0; i < APPENDS; i++) {
        sh_val *a = tf_id_args("ord"), *e = sh_val_new_map();
        sh_val_set_cstr(e, "error", sh_val_new_cstr("boom"));
        sh_val_set_cstr(a, "entry", e);
        if (tf_call(cli, "log.append", a, 5000, NULL, NULL) != SH_OK)
            (*failures)++;
    }
    return NULL;
}

/* Writers racing on one record can publish out of order; every event
 * carries what orders it: a log entry its sequence number (each once, 1
 * up), a delete the version it removed. */
static void test_events_carry_their_order(void **state)
{
    int64_t version;
    sh_sub *sub = subscribe_probed("ord", &version);
    pthread_t t[APPENDERS];
    int failures[APPENDERS] = {0};
    for (int i = 0; i < APPENDERS; i++)
        pthread_create(&t[i], NULL, appender_main, &failures[i]);
    for (int i = 0; i < APPENDERS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(failures[i], 0);
    }
    static char seqs[APPENDERS * APPENDS + 1];
    memset(seqs, 0, sizeof seqs);
    for (int got = 0; got < APPENDERS * APPENDS; got++) {
        char *topic = NULL;
        sh_val *ev = NULL;
        assert_int_equal(sh_sub_recv(sub, 2000, &topic, &ev), SH_OK);
        assert_string_equal(sh_val_get_str(ev, "kind", NULL), "log");
        int64_t seq = sh_val_int(sh_val_get(ev, "seq"));
        assert_true(seq >= 1 && seq <= APPENDERS * APPENDS && !seqs[seq]);
        seqs[seq] = 1;
        free(topic);
        sh_val_free(ev);
    }
    /* The sequence lives as long as the record: an update keeps it. */
    redis_do("EXPIRE", "progress:{ord}:logseq", "7");
    sh_val *rec = NULL;
    assert_int_equal(update_one("ord", "currentStep", 1, &rec), SH_OK);
    version = sh_val_int(sh_val_get(rec, "version"));
    sh_val_free(rec);
    assert_true(redis_int("TTL", "progress:{ord}:logseq") > TTL - 5);
    char *topic = NULL;
    sh_val *ev = NULL;
    assert_int_equal(sh_sub_recv(sub, 2000, &topic, &ev), SH_OK);
    free(topic);
    sh_val_free(ev);
    assert_int_equal(tf_call(cli, "progress.delete", tf_id_args("ord"), 5000, NULL, NULL), SH_OK);
    assert_int_equal(sh_sub_recv(sub, 2000, &topic, &ev), SH_OK);
    assert_string_equal(sh_val_get_str(ev, "kind", NULL), "delete");
    assert_int_equal(sh_val_int(sh_val_get(ev, "version")), version);
    free(topic);
    sh_val_free(ev);
    assert_int_equal(redis_int("EXISTS", "progress:{ord}:logseq"), 0);
    sh_sub_free(sub);
}

/* ---- scripts flushed from Redis ------------------------------------------ */

static void test_script_flush_falls_back_to_eval(void **state)
{
    sh_val *rec = NULL;
    assert_int_equal(update_one("flush", "currentStep", 1, &rec), SH_OK);
    sh_val_free(rec);
    redis_do("SCRIPT", "FLUSH", NULL);
    /* Every worker's cached SHA1 is now unknown to Redis: NOSCRIPT, then EVAL. */
    for (int i = 0; i < 20; i++) {
        assert_int_equal(update_one("flush", "currentStep", i + 2, &rec), SH_OK);
        assert_int_equal(sh_val_int(sh_val_get(rec, "version")), i + 2);
        sh_val_free(rec);
    }
}

/* ---- TTL ----------------------------------------------------------------- */

static void test_ttl_set_and_refreshed(void **state)
{
    sh_val *rec = NULL;
    assert_int_equal(update_one("ttl", "currentStep", 1, &rec), SH_OK);
    sh_val_free(rec);
    long long ttl = redis_int("TTL", "progress:{ttl}");
    assert_true(ttl > TTL - 5 && ttl <= TTL);
    redis_do("EXPIRE", "progress:{ttl}", "7");
    assert_true(redis_int("TTL", "progress:{ttl}") <= 7);
    assert_int_equal(update_one("ttl", "currentStep", 2, &rec), SH_OK);
    sh_val_free(rec);
    ttl = redis_int("TTL", "progress:{ttl}");
    assert_true(ttl > TTL - 5 && ttl <= TTL);

    /* A log append refreshes both the log and the record. */
    redis_do("EXPIRE", "progress:{ttl}", "7");
    sh_val *a = tf_id_args("ttl"), *e = sh_val_new_map();
    sh_val_set_cstr(e, "error", sh_val_new_cstr("boom"));
    sh_val_set_cstr(a, "entry", e);
    assert_int_equal(tf_call(cli, "log.append", a, 5000, NULL, NULL), SH_OK);
    assert_true(redis_int("TTL", "progress:{ttl}") > TTL - 5);
    assert_true(redis_int("TTL", "progress:{ttl}:log") > TTL - 5);
}

/* ---- error log ----------------------------------------------------------- */

static void test_log_cap_keeps_newest(void **state)
{
    for (int i = 0; i < LOG_CAP + 10; i++) {
        sh_val *a = tf_id_args("logcap"), *e = sh_val_new_map();
        char msg[32];
        snprintf(msg, sizeof msg, "e%d", i);
        sh_val_set_cstr(e, "tool", sh_val_new_cstr("git"));
        sh_val_set_cstr(e, "error", sh_val_new_cstr(msg));
        sh_val_set_cstr(e, "suggestedFix", sh_val_new_cstr("retry"));
        sh_val_set_cstr(e, "step", sh_val_new_int(i));
        sh_val_set_cstr(a, "entry", e);
        sh_val *stored = NULL;
        assert_int_equal(tf_call(cli, "log.append", a, 5000, &stored, NULL), SH_OK);
        assert_string_equal(sh_val_get_str(stored, "error", NULL), msg);
        assert_non_null(sh_val_get_str(stored, "timestamp", NULL));
        sh_val_free(stored);
    }
    sh_val *list = NULL;
    assert_int_equal(tf_call(cli, "log.list", tf_id_args("logcap"), 5000, &list, NULL), SH_OK);
    assert_int_equal(sh_val_len(list), LOG_CAP);
    for (int i = 0; i < LOG_CAP; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "e%d", i + 10);
        assert_string_equal(sh_val_get_str(sh_val_at(list, (size_t)i), "error", NULL), msg);
    }
    sh_val_free(list);

    /* Unknown fields in an entry are refused and nothing is stored. */
    sh_val *a = tf_id_args("logcap2"), *e = sh_val_new_map();
    sh_val_set_cstr(e, "error", sh_val_new_cstr("x"));
    sh_val_set_cstr(e, "color", sh_val_new_cstr("red"));
    sh_val_set_cstr(a, "entry", e);
    sh_error err;
    assert_int_equal(tf_call(cli, "log.append", a, 5000, NULL, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "color"));
    assert_int_equal(tf_call(cli, "log.list", tf_id_args("logcap2"), 5000, &list, NULL), SH_OK);
    assert_int_equal(sh_val_len(list), 0);
    sh_val_free(list);
}

/* ---- jobs ---------------------------------------------------------------- */

static void test_job_with_1mib_result_round_trips(void **state)
{
    size_t n = 1024 * 1024;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    sh_val *a = sh_val_new_map(), *f = sh_val_new_map();
    sh_val_set_cstr(f, "conversationId", sh_val_new_cstr("conv-1"));
    sh_val_set_cstr(f, "result", sh_val_new_str(big, n));
    sh_val_set_cstr(a, "fields", f);
    sh_val *job = NULL;
    assert_int_equal(tf_call(cli, "job.create", a, 5000, &job, NULL), SH_OK);
    const char *jid = sh_val_get_str(job, "jobId", NULL);
    assert_non_null(jid);
    assert_string_equal(sh_val_get_str(job, "status", NULL), "pending");
    char id[64];
    snprintf(id, sizeof id, "%s", jid);
    sh_val_free(job);

    sh_val *got = NULL;
    assert_int_equal(tf_call(cli, "job.get", tf_id_args(id), 5000, &got, NULL), SH_OK);
    size_t len;
    const char *res = sh_val_get_str(got, "result", &len);
    assert_int_equal(len, n);
    assert_memory_equal(res, big, n);
    sh_val_free(got);

    sh_val *ca = sh_val_new_map();
    sh_val_set_cstr(ca, "conversationId", sh_val_new_cstr("conv-1"));
    assert_int_equal(tf_call(cli, "job.by_conversation", ca, 5000, &got, NULL), SH_OK);
    assert_string_equal(sh_val_get_str(got, "jobId", NULL), id);
    sh_val_free(got);

    sh_val *u = tf_id_args(id), *uf = sh_val_new_map();
    sh_val_set_cstr(uf, "status", sh_val_new_cstr("done"));
    sh_val_set_cstr(u, "fields", uf);
    assert_int_equal(tf_call(cli, "job.update", u, 5000, &got, NULL), SH_OK);
    assert_string_equal(sh_val_get_str(got, "status", NULL), "done");
    assert_int_equal(sh_val_int(sh_val_get(got, "version")), 2);
    assert_non_null(sh_val_get_str(got, "result", &len));
    assert_int_equal(len, n);
    sh_val_free(got);

    /* One byte over the limit is refused. */
    big = realloc(big, n + 17);
    memset(big + n, 'z', 17);
    u = tf_id_args(id);
    uf = sh_val_new_map();
    sh_val_set_cstr(uf, "result", sh_val_new_str(big, n + 17));
    sh_val_set_cstr(u, "fields", uf);
    sh_error err;
    assert_int_equal(tf_call(cli, "job.update", u, 5000, NULL, &err), SH_ETOOBIG);
    free(big);

    assert_int_equal(tf_call(cli, "job.get", tf_id_args("nope"), 5000, NULL, &err), SH_ENOTFOUND);
    u = tf_id_args("nope");
    sh_val_set_cstr(u, "fields", sh_val_new_map());
    assert_int_equal(tf_call(cli, "job.update", u, 5000, NULL, &err), SH_ENOTFOUND);
}

/* ---- bad input ------------------------------------------------------------ */

static void test_bad_arguments_change_nothing(void **state)
{
    sh_error err;
    sh_val *a = tf_id_args("bad"), *f = sh_val_new_map();
    sh_val_set_cstr(f, "currentStep", sh_val_new_cstr("three"));
    sh_val_set_cstr(a, "fields", f);
    assert_int_equal(tf_call(cli, "progress.update", a, 5000, NULL, &err), SH_EINVAL);
    assert_non_null(strstr(err.msg, "currentStep"));
    assert_int_equal(tf_call(cli, "progress.get", tf_id_args("bad"), 5000, NULL, &err),
                     SH_ENOTFOUND);

    a = tf_id_args("bad");
    f = sh_val_new_map();
    sh_val_set_cstr(f, "version", sh_val_new_int(99));
    sh_val_set_cstr(a, "fields", f);
    assert_int_equal(tf_call(cli, "progress.update", a, 5000, NULL, &err), SH_EINVAL);

    assert_int_equal(tf_call(cli, "progress.get", tf_id_args("bad id!"), 5000, NULL, &err),
                     SH_EINVAL);
    assert_int_equal(tf_call(cli, "progress.get", sh_val_new_int(3), 5000, NULL, &err), SH_EINVAL);
    assert_int_equal(tf_call(cli, "no.such.op", NULL, 5000, NULL, &err), SH_ENOOP);
    assert_int_equal(tf_call(cli, "progress.get", tf_id_args("bad"), 5000, NULL, &err),
                     SH_ENOTFOUND);
}

/* raw_call sends bytes on a plain REQ socket and returns the reply's error
 * code name in code (or "" when no reply came). */
static void raw_call(const void *data, size_t len, char *code, size_t cap)
{
    nng_socket s;
    assert_int_equal(nng_req0_open(&s), 0);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 1000);
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 1000);
    assert_int_equal(nng_dial(s, rpc_url, NULL, 0), 0);
    code[0] = '\0';
    sh_buf req;
    sh_buf_init(&req);
    tf_sign(SH_MSGMAC_CALL, data, len, 0, NULL, &req);
    if (nng_send(s, req.data, req.len, 0) == 0) {
        void *buf;
        size_t blen;
        if (nng_recv(s, &buf, &blen, NNG_FLAG_ALLOC) == 0) {
            sh_reply_env env;
            sh_error err;
            const void *body = buf;
            size_t rlen = blen;
            tf_unsign(&body, &rlen);
            if (sh_reply_decode(body, rlen, NULL, &env, &err) == SH_OK && !env.ok)
                snprintf(code, cap, "%s", sh_err_name(env.code));
            sh_reply_env_fini(&env);
            nng_free(buf, blen);
        }
    }
    sh_buf_fini(&req);
    nng_close(s);
}

/* raw_oversized speaks the SP protocol over TCP itself (the REQ handshake,
 * then one message of len bytes) and reports whether the server closed the
 * connection without a reply. Not through nng: a socket of nng 1.5.2 whose
 * peer drops it mid-send can hang in nng_close. */
static bool raw_oversized(size_t len)
{
    int port = atoi(strrchr(rpc_url, ':') + 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    /* "\0SP\0", protocol 0x30 (req0), reserved */
    const unsigned char hello[8] = {0, 'S', 'P', 0, 0, 0x30, 0, 0};
    unsigned char peer[8];
    assert_int_equal(write(fd, hello, sizeof hello), (ssize_t)sizeof hello);
    assert_int_equal(read(fd, peer, sizeof peer), (ssize_t)sizeof peer);
    assert_int_equal(peer[5], 0x31); /* rep0 */
    /* the length (big-endian, the request id included), the id, the body */
    unsigned char head[12];
    uint64_t total = (uint64_t)len + 4;
    for (int i = 0; i < 8; i++)
        head[i] = (unsigned char)(total >> (56 - 8 * i));
    const unsigned char id[4] = {0x80, 0, 0, 1};
    memcpy(head + 8, id, 4);
    signal(SIGPIPE, SIG_IGN);
    bool closed = write(fd, head, sizeof head) == (ssize_t)sizeof head;
    static char junk[65536];
    for (size_t sent = 0; closed && sent < len; sent += sizeof junk)
        if (write(fd, junk, sizeof junk) < 0)
            break; /* the server hung up before all of it */
    char c;
    closed = closed && read(fd, &c, 1) <= 0;
    close(fd);
    return closed;
}

static void test_malformed_and_oversized_messages(void **state)
{
    char code[32];
    raw_call("\xc1", 1, code, sizeof code);
    assert_string_equal(code, "malformed");
    raw_call("\x93\x01\x02", 3, code, sizeof code); /* array claiming 3, truncated */
    assert_string_equal(code, "malformed");
    raw_call("\xdd\xff\xff\xff\xff", 5, code, sizeof code); /* 4 billion items claimed */
    assert_string_equal(code, "malformed");

    /* Bigger than the server accepts: dropped by the transport, no reply,
     * and the service keeps serving. */
    assert_true(raw_oversized(5 * 1024 * 1024));

    /* The client refuses to send what is over its own limit. */
    sh_rpc_client *small = NULL;
    sh_error err;
    assert_int_equal(sh_rpc_client_new(rpc_url, 2000, 1024, &small, &err), SH_OK);
    /* Let its connection finish setting up: nng 1.5 leaks a pipe closed
     * while still negotiating. */
    sh_val *pong = NULL;
    assert_int_equal(sh_rpc_call(small, "ping", NULL, 2000, &pong, &err), SH_OK);
    sh_val_free(pong);
    sh_val *a = tf_id_args("big"), *f = sh_val_new_map();
    char pad[2048];
    memset(pad, 'x', sizeof pad);
    sh_val_set_cstr(f, "note", sh_val_new_str(pad, sizeof pad));
    sh_val_set_cstr(a, "fields", f);
    sh_val *res = NULL;
    assert_int_equal(sh_rpc_call(small, "progress.update", a, 0, &res, &err), SH_ETOOBIG);
    sh_val_free(a);
    sh_rpc_client_free(small);

    assert_int_equal(tf_call(cli, "ping", NULL, 5000, NULL, NULL), SH_OK);
}

/* ---- Redis going away ------------------------------------------------------ */

static void test_redis_down_then_back(void **state)
{
    sh_val *rec = NULL;
    assert_int_equal(update_one("down", "currentStep", 1, &rec), SH_OK);
    sh_val_free(rec);
    tf_redis_kill(&redis);
    sh_error err;
    int64_t t0 = sh_mono_ms();
    sh_val *a = tf_id_args("down"), *f = sh_val_new_map();
    sh_val_set_cstr(f, "currentStep", sh_val_new_int(2));
    sh_val_set_cstr(a, "fields", f);
    assert_int_equal(tf_call(cli, "progress.update", a, 5000, NULL, &err), SH_EUNAVAIL);
    assert_true(sh_mono_ms() - t0 < 1500);
    assert_non_null(strstr(err.msg, "Redis"));
    assert_int_equal(tf_call(cli, "ping", NULL, 5000, NULL, &err), SH_EUNAVAIL);

    assert_int_equal(tf_redis_start(&redis, redis.port), 0);
    t0 = sh_mono_ms();
    int rc = SH_EUNAVAIL;
    while (rc != SH_OK && sh_mono_ms() - t0 < 5000) {
        rc = update_one("down", "currentStep", 3, &rec);
        sh_val_free(rec);
        rec = NULL;
        if (rc != SH_OK)
            tf_sleep_ms(20);
    }
    assert_int_equal(rc, SH_OK);
    assert_true(sh_mono_ms() - t0 < 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_writers_lose_nothing),
        cmocka_unit_test(test_versions_increase_and_events_carry_them),
        cmocka_unit_test(test_events_carry_their_order),
        cmocka_unit_test(test_ttl_set_and_refreshed),
        cmocka_unit_test(test_script_flush_falls_back_to_eval),
        cmocka_unit_test(test_log_cap_keeps_newest),
        cmocka_unit_test(test_job_with_1mib_result_round_trips),
        cmocka_unit_test(test_bad_arguments_change_nothing),
        cmocka_unit_test(test_malformed_and_oversized_messages),
        cmocka_unit_test(test_redis_down_then_back),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
