/* strict_fixture.c - starts the strict test IMAP server (see
 * strict_fixture.h); the script sits beside this file in the source tree. */
#include "strict_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

#ifndef TF_SOURCE_DIR
#error "TF_SOURCE_DIR must name the source tree"
#endif

#define STRICT_ARGS_MAX 64

static int strict_greets(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    char buf[256];
    ssize_t n = -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
        n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n > 4 && strncmp(buf, "* OK", 4) == 0 ? 0 : -1;
}

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
    argv[n] = NULL;
    d->pid = fork();
    if (d->pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execvp("python3", (char *const *)argv);
        _exit(127);
    }
    if (d->pid < 0) {
        perror("fork");
        return -1;
    }
    for (int i = 0; i < 500; i++) {
        int st;
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            fprintf(stderr, "strict IMAP server exited at start (status %d); see %s\n", st, out);
            d->pid = 0;
            return -1;
        }
        if (strict_greets(d->port) == 0)
            return 0;
        tf_sleep_ms(20);
    }
    fprintf(stderr, "strict IMAP server did not answer on port %d; see %s\n", d->port, out);
    return -1;
}

int tf_strict_log_count(const tf_dovecot *d, const char *what)
{
    char path[400], line[8192];
    snprintf(path, sizeof path, "%s/imap.log", d->dir);
    FILE *f = fopen(path, "r");
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, what) != NULL;
    if (f)
        fclose(f);
    return n;
}
