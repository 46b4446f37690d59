/* strict_fixture.c - starts the strict test IMAP server (see
 * strict_fixture.h); the script sits beside this file in the source tree. */
#include "strict_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

#ifndef TF_SOURCE_DIR
#error "TF_SOURCE_DIR must name the source tree"
#endif

#define STRICT_ARGS_MAX 64

int tf_strict_start(tf_dovecot *d, const char *user, const char *password, int count,
                    const tf_strict_opts *opts)
{
    memset(d, 0, sizeof *d);
    snprintf(d->dir, sizeof d->dir, "/tmp/shtest-strict-XXXXXX");
    if (!mkdtemp(d->dir)) {
        perror("mkdtemp");
        return -1;
    }
    snprintf(d->user, sizeof d->user, "%s", user);
    snprintf(d->password, sizeof d->password, "%s", password);
    d->port = tf_free_port();
    d->uid = getuid();
    d->gid = getgid();
    char port[16], msgs[16], fmsgs[16], log[400], out[400], users[STRICT_ARGS_MAX][160];
    snprintf(port, sizeof port, "%d", d->port);
    snprintf(msgs, sizeof msgs, "%d", count);
    snprintf(fmsgs, sizeof fmsgs, "%d", opts ? opts->folder_messages : 0);
    snprintf(log, sizeof log, "%s/imap.log", d->dir);
    snprintf(out, sizeof out, "%s/imap.out", d->dir);
    const char *argv[STRICT_ARGS_MAX + 16];
    size_t n = 0, nu = 0;
    argv[n++] = "python3";
    argv[n++] = TF_SOURCE_DIR "/tests/support/strict_imap.py";
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--log";
    argv[n++] = log;
    argv[n++] = "--messages";
    argv[n++] = msgs;
    argv[n++] = "--folder-messages";
    argv[n++] = fmsgs;
    argv[n++] = "--message-format";
    argv[n++] = TF_MESSAGE_FORMAT;
    snprintf(users[nu], sizeof users[nu], "%s:%s", user, password);
    argv[n++] = "--user";
    argv[n++] = users[nu++];
    for (const char *const *u = opts ? opts->extra_users : NULL; u && *u && n < STRICT_ARGS_MAX;
         u++) {
        argv[n++] = "--user";
        argv[n++] = *u;
    }
    for (const char *const *f = opts ? opts->folders : NULL; f && *f && n < STRICT_ARGS_MAX; f++) {
        argv[n++] = "--folder";
        argv[n++] = *f;
    }
    if (opts && opts->capability) {
        snprintf(d->capability, sizeof d->capability, "%s", opts->capability);
        argv[n++] = "--capability";
        argv[n++] = opts->capability;
    }
    char tls_port[16], cert[400], key[400];
    if (opts && opts->tls_dir) {
        d->tls_port = tf_free_port();
        snprintf(tls_port, sizeof tls_port, "%d", d->tls_port);
        snprintf(cert, sizeof cert, "%s/server.pem", opts->tls_dir);
        snprintf(key, sizeof key, "%s/server.key", opts->tls_dir);
        snprintf(d->ca_file, sizeof d->ca_file, "%s/ca.pem", opts->tls_dir);
        argv[n++] = "--tls-port";
        argv[n++] = tls_port;
        argv[n++] = "--tls-cert";
        argv[n++] = cert;
        argv[n++] = "--tls-key";
        argv[n++] = key;
    }
    if (opts && opts->idle_untagged_first)
        argv[n++] = "--idle-untagged-first";
    argv[n] = NULL;
    return tf_imap_launch(d, argv, out, "the strict IMAP server");
}

int tf_strict_log_count(const tf_dovecot *d, const char *what)
{
    char path[400];
    snprintf(path, sizeof path, "%s/imap.log", d->dir);
    return tf_file_count(path, what);
}
