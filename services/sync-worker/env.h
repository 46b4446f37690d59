/* env.h - the sync-worker's settings, loaded once at start-up and read-only
 * afterwards. */
#ifndef SYNC_ENV_H
#define SYNC_ENV_H

#include <stdbool.h>
#include <stddef.h>

#include "shared/hostpolicy.h"
#include "shared/secret.h"

typedef struct sync_env {
    const sh_key *keys[2]; /* ENCRYPTION_KEY, then ENCRYPTION_KEY_PREVIOUS if set */
    size_t nkeys;
    const char *coordinator_rpc;
    const char *coordinator_events;
    const char *progress_rpc;
    const char *ca_file; /* NULL or "" for the system store */
    int concurrency;
    int connect_timeout_s;
    int command_timeout_s;      /* IMAP_COMMAND_TIMEOUT_SECONDS: longest silence */
    int command_deadline_s;     /* IMAP_COMMAND_DEADLINE_SECONDS: longest whole reply */
    int run_deadline_s;         /* SYNC_RUN_DEADLINE_SECONDS: longest run */
    const sh_hostpolicy *hosts; /* IMAP_ALLOW_HOSTS, IMAP_DENY_HOSTS */
    bool allow_insecure;        /* IMAP_ALLOW_INSECURE */
    int fetch_batch;
    int fetch_budget;           /* messages in flight across all sync threads */
    int check_window;           /* SYNC_CHECK_WINDOW: messages compared per window */
    long long max_per_folder;   /* MAIL_MAX_MESSAGES_PER_FOLDER (0: no cap) */
    int renew_s;                /* seconds between two lease renewals */
    long long events_max_len;   /* MAIL_EVENTS_MAX_LEN: entries kept per account's log */
    long long events_max_age_s; /* MAIL_EVENTS_MAX_AGE_SECONDS: age kept */
    int max_watches;            /* IMAP_MAX_WATCHES: watched folders (0: no watching) */
    int max_per_host;           /* IMAP_MAX_CONNECTIONS_PER_HOST */
    int idle_renew_s;           /* IMAP_IDLE_RENEW_SECONDS: IDLE restarted this often */
    int poll_s;                 /* IMAP_POLL_SECONDS: NOOP check without IDLE */
    int watch_renew_s;          /* WATCH_RENEW_SECONDS: watch lease renewals */
    int sweep_s;                /* MAIL_SWEEP_SECONDS: sweeps of deleted accounts' mail */
} sync_env;

#endif
