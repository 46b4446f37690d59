/* redis_fixture.c - a private redis-server for tests. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "shared/store.h"

static int redis_ping(int port, const char *user, const char *password)
{
    char url[300];
    if (password)
        snprintf(url, sizeof url, "redis://%s:%s@127.0.0.1:%d", user ? user : "", password, port);
    else
        snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    sh_redis_url u;
    sh_store *s = NULL;
    sh_error err;
    if (sh_redis_url_parse(url, &u, &err) || sh_store_new(&u, NULL, &s, &err))
        return -1;
    int rc = sh_store_ping(s, &err);
    sh_store_free(s);
    return rc;
}

int tf_redis_start(tf_redis *r, int port)
{
    return tf_redis_start_args(r, port, NULL, NULL, NULL);
}

int tf_redis_start_args(tf_redis *r, int port, const char *const *extra, const char *user,
                        const char *password)
{
    if (!r->dir[0]) {
        snprintf(r->dir, sizeof r->dir, "/tmp/shtest-redis-XXXXXX");
        if (!mkdtemp(r->dir)) {
            perror("mkdtemp");
            return -1;
        }
    }
    r->port = port ? port : tf_free_port();
    snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d", r->port);
    char portarg[16];
    snprintf(portarg, sizeof portarg, "%d", r->port);
    r->pid = fork();
    if (r->pid == 0) {
        freopen("/dev/null", "w", stdout);
        const char *argv[40] = {
            "redis-server", "--port", portarg, "--bind", "127.0.0.1",   "--save", "",
            "--appendonly", "no",     "--dir", r->dir,   "--daemonize", "no"};
        int n = 13;
        for (const char *const *e = extra; e && *e && n < 39; e++)
            argv[n++] = *e;
        argv[n] = NULL;
        execvp("redis-server", (char *const *)argv);
        perror("exec redis-server");
        _exit(127);
    }
    if (r->pid < 0) {
        perror("fork");
        return -1;
    }
    for (int i = 0; i < 500; i++) {
        if (redis_ping(r->port, user, password) == 0)
            return 0;
        int st;
        if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
            fprintf(stderr, "redis-server exited at start (status %d)\n", st);
            r->pid = 0;
            return -1;
        }
        tf_sleep_ms(20);
    }
    fprintf(stderr, "redis-server did not answer PING on port %d within 10 s\n", r->port);
    tf_redis_kill(r);
    return -1;
}

void tf_redis_kill(tf_redis *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
}

void tf_redis_stop(tf_redis *r)
{
    tf_redis_kill(r);
    if (r->dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", r->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", r->dir);
        r->dir[0] = '\0';
    }
}

struct sh_store *tf_redis_store(const tf_redis *r)
{
    sh_redis_url u;
    sh_store *s = NULL;
    sh_error err;
    if (sh_redis_url_parse(r->url, &u, &err) != SH_OK ||
        sh_store_new(&u, NULL, &s, &err) != SH_OK) {
        fprintf(stderr, "store on %s: %s\n", r->url, err.msg);
        return NULL;
    }
    return s;
}
