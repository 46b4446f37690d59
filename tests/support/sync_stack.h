/* sync_stack.h - the whole mail-sync stack for integration tests: a private
 * Redis, a private Dovecot holding generated messages, and the progress,
 * coordinator and sync-worker services (the gateway too, when asked) as
 * processes wired to each other on loopback; RPC clients to them and a store
 * on the Redis. On top of it, what the tests do with it: create an account,
 * ask for a sync and wait for its end, list and fetch messages, count keys.
 *
 * The IMAP server is Dovecot, or with opts.strict the strict test server,
 * which answers BAD to any command that strays from the grammar.
 *
 * Life cycle: tf_stack_start brings everything up (and takes down what it
 * had started when a part fails); tf_stack_stop stops the services, keeps
 * their logs in <name>.logs/ beside the test binary and removes the rest.
 * The helpers that call the services fail the running cmocka test on an
 * unexpected reply. */
#ifndef TESTS_SYNC_STACK_H
#define TESTS_SYNC_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "calls.h"
#include "dovecot_fixture.h"
#include "fixture.h"
#include "shared/rpc.h"
#include "shared/store.h"
#include "shared/val.h"
#include "strict_fixture.h"

/* The password-sealing key every service of the stack is given. */
#define TF_STACK_KEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

/* What differs between the tests that use the stack; 0 in a setting leaves
 * the service's default. */
typedef struct tf_stack_opts {
    const char *name;             /* the test's name: its logs go to <name>.logs/ */
    int messages;                 /* generated messages in the Dovecot's INBOX */
    int lease_seconds;            /* the coordinator's SYNC_LEASE_SECONDS */
    int fetch_batch;              /* the sync-worker's SYNC_FETCH_BATCH */
    int renew_seconds;            /* the sync-worker's SYNC_RENEW_SECONDS */
    int command_timeout;          /* the sync-worker's IMAP_COMMAND_TIMEOUT_SECONDS */
    int command_deadline;         /* the sync-worker's IMAP_COMMAND_DEADLINE_SECONDS */
    int watch_lease_seconds;      /* the coordinator's WATCH_LEASE_SECONDS */
    int watch_renew_seconds;      /* the sync-worker's WATCH_RENEW_SECONDS */
    int poll_seconds;             /* the sync-worker's IMAP_POLL_SECONDS */
    int max_per_host;             /* the sync-worker's IMAP_MAX_CONNECTIONS_PER_HOST */
    const char *worker_setting;   /* one more "K=V" for every sync-worker, or NULL */
    bool worker_ca;               /* IMAP_CA_FILE names the Dovecot's CA (else empty) */
    bool secure_only;             /* no IMAP_ALLOW_INSECURE (loopback is always allowed) */
    bool gateway;                 /* start the gateway on http_port too */
    const char *imap_capability;  /* Dovecot's CAPABILITY after login, NULL
                                     for its own (tf_dovecot_start_caps) */
    const tf_strict_opts *strict; /* run the strict test server (strict_fixture.h)
                                     with these options instead of Dovecot */
} tf_stack_opts;

typedef struct tf_stack {
    tf_stack_opts opts;
    tf_redis redis;
    tf_dovecot dove;
    pid_t progress_pid, coord_pid, worker_pid, gateway_pid;
    int workers_started;    /* numbers the sync-worker logs */
    const char *worker_env; /* one more "K=V" for the sync-workers started
                               from now on, or NULL */
    int http_port;          /* the gateway's, when started */
    char progress_url[64], progress_events_url[64];
    char coord_url[64], coord_events_url[64];
    char worker_url[64], worker_events_url[64];
    sh_rpc_client *coord, *worker, *progress;
    sh_store *store;
} tf_stack;

/* tf_stack_start starts Redis, Dovecot (user "test", password "secret",
 * opts->messages generated messages), progress, coordinator (with
 * SCHED_AUTO_TICK=false: syncs run when asked), the sync-worker and, with
 * opts->gateway, the gateway; connects the clients and the store and waits
 * until the services answer ping. opts is copied. Returns 0, or -1 (reason
 * on stderr, nothing left running). */
int tf_stack_start(tf_stack *s, const tf_stack_opts *opts);
/* tf_stack_start_worker starts a sync-worker (after the last one stopped;
 * set worker_pid to 0 once it is reaped) with IMAP_CA_FILE naming the
 * Dovecot's CA when with_ca, and waits until it answers ping. Each one logs to
 * sync-worker-<n>.log. Returns 0 or -1. */
int tf_stack_start_worker(tf_stack *s, bool with_ca);
/* tf_stack_start_extra_worker starts one more sync-worker beside the
 * stack's, on RPC and event URLs of its own, and waits until *c (a client
 * of it, made here: the caller frees it) answers ping. Returns its pid
 * (the caller stops it), or -1. */
pid_t tf_stack_start_extra_worker(tf_stack *s, sh_rpc_client **c);
/* tf_stack_wait_ping waits up to 5 s for c to answer ping; returns 0 or -1. */
int tf_stack_wait_ping(sh_rpc_client *c);
/* tf_stack_stop stops the services (SIGTERM), keeps their logs and stops
 * Redis and Dovecot. Returns -1 when a service did not exit cleanly (its
 * logs then go to stderr too), else 0. Safe to call again, and on a stack
 * that tf_stack_start left after a failure. */
int tf_stack_stop(tf_stack *s);
/* tf_stack_teardown is a cmocka group teardown: tf_stack_stop of the stack
 * the group setup put in *state. */
int tf_stack_teardown(void **state);

/* A group of tests run on a stack of its own, e.g. against one IMAP
 * server; a test file describes its groups by structs that begin with
 * one. */
struct CMUnitTest;
typedef struct tf_stack_group {
    const char *name; /* the group's, and its logs' (<name>.logs/) */
    const struct CMUnitTest *tests;
    size_t count;
} tf_stack_group;
#define TF_STACK_TESTS(t) (t), sizeof(t) / sizeof((t)[0])

/* tf_stack_run_groups runs n groups in turn, each with setup and
 * tf_stack_teardown: groups is an array of n structs of stride bytes, each
 * beginning with its tf_stack_group. Returns the count of failed tests. */
int tf_stack_run_groups(const void *groups, size_t n, size_t stride, int (*setup)(void **state));
/* tf_stack_group_current returns the struct of the group running (its
 * setup reads the group's settings there). */
const void *tf_stack_group_current(void);

/* tf_stack_expect_bad checks the strict server answered BAD to bad
 * commands exactly (those made malformed on purpose), else fails the test
 * naming its log. */
void tf_stack_expect_bad(const tf_stack *s, int bad);

/* tf_stack_call calls op with args (taken, freed here) and waits up to 10 s;
 * the reply goes to out (caller frees) or is dropped when out is NULL.
 * Returns the call's code, the error text on stderr when not SH_OK. */
int tf_stack_call(sh_rpc_client *c, const char *op, sh_val *args, sh_val **out);

/* How an account verifies the server's certificate. */
typedef enum tf_verify {
    TF_VERIFY_UNSET, /* tlsVerify left out */
    TF_VERIFY_ON,
    TF_VERIFY_OFF,
} tf_verify;

/* An account to create; zero fields take the defaults in brackets. */
typedef struct tf_account {
    int port;             /* IMAP port [the Dovecot's plain port, or its TLS
                             port with security "tls"] */
    const char *user;     /* ["test"] */
    const char *password; /* ["secret"] */
    const char *security; /* ["none"] */
    tf_verify verify;     /* [tlsVerify left out] */
    const char *folder;   /* the one folder to sync [none named: INBOX] */
    bool unwatched;       /* watchFolders [] (tests of the syncs themselves,
                             which a watch would sync once more) [INBOX watched] */
} tf_account;

/* tf_stack_create_account creates the account (address test@example.com
 * on 127.0.0.1) through the coordinator; its id goes to id. */
void tf_stack_create_account(tf_stack *s, const tf_account *a, char *id, size_t len);

/* The end of a sync run. */
typedef struct tf_sync_end {
    char progress_id[128]; /* the run's progress record */
    char error[1024];      /* the account's errorMessage after it */
} tf_sync_end;

/* tf_stack_sync_now asks for a sync of account id; the run's progress id
 * goes to progress_id (may be NULL). */
void tf_stack_sync_now(tf_stack *s, const char *id, char *progress_id, size_t len);
/* tf_stack_wait_settled waits (up to 2 min) until the account is neither
 * queued nor syncing and checks its status is want; its errorMessage goes to
 * msg (may be NULL). */
void tf_stack_wait_settled(tf_stack *s, const char *id, const char *want, char *msg, size_t mlen);
/* tf_stack_sync_and_wait asks for a sync, waits (up to 2 min) until the
 * run's progress record says complete, then for the account's status to
 * settle, and checks it is want. end (may be NULL) gets the run. */
void tf_stack_sync_and_wait(tf_stack *s, const char *id, const char *want, tf_sync_end *end);
/* tf_stack_account_status copies the account's syncStatus and errorMessage
 * (msg may be NULL). */
void tf_stack_account_status(tf_stack *s, const char *id, char *status, size_t slen, char *msg,
                             size_t mlen);

/* tf_stack_list_all reads every message of folder (NULL: none named, so
 * INBOX) through messages.list, limit a page; returns an array the caller
 * frees. */
sh_val *tf_stack_list_all(tf_stack *s, const char *id, const char *folder, int limit);
/* tf_stack_get_message returns messages.get of uid (caller frees). */
sh_val *tf_stack_get_message(tf_stack *s, const char *id, int64_t uid);
/* tf_has_flag tells whether message m carries flag. */
bool tf_has_flag(const sh_val *m, const char *flag);
/* tf_msg_number returns n of a generated message from its id, or -1. */
int tf_msg_number(const sh_val *m);
/* tf_check_envelope checks m has the subject, sender, recipient and a
 * plausible size of generated message n. */
void tf_check_envelope(const sh_val *m, int n);

/* tf_stack_http sends method path to the stack's gateway with curl and
 * returns the HTTP status; the body goes to body (len bytes at most). */
int tf_stack_http(tf_stack *s, const char *method, const char *path, char *body, size_t len);
/* tf_stack_account_http is tf_stack_http of /api/accounts/<id><rest>. */
int tf_stack_account_http(tf_stack *s, const char *id, const char *method, const char *rest,
                          char *body, size_t len);

/* tf_stack_worker_log_count counts the lines of the running sync-worker's
 * log that hold every one of the NULL-terminated strings. */
int tf_stack_worker_log_count(const tf_stack *s, ...);

/* tf_stack_redis_int runs c (taken) and returns its integer reply, or a
 * string reply read as a number, or 0. */
long long tf_stack_redis_int(tf_stack *s, sh_cmd *c);
/* tf_stack_hget_ll returns field of hash key as a number (0 when absent). */
long long tf_stack_hget_ll(tf_stack *s, const char *key, const char *field);
/* tf_stack_count_keys returns how many keys match pattern. */
long long tf_stack_count_keys(tf_stack *s, const char *pattern);

#endif
