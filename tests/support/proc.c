/* proc.c - child processes for tests, and reading what they log. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

void tf_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* tf_port_once picks a port the kernel calls free now. */
static int tf_port_once(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* The kernel may offer the same free port twice in a row: never hand out
 * one port twice in a test process. */
int tf_free_port(void)
{
    static int given[1024];
    static size_t ngiven;
    for (int tries = 0; tries < 100; tries++) {
        int port = tf_port_once();
        bool seen = false;
        for (size_t i = 0; i < ngiven && !seen; i++)
            seen = given[i] == port;
        if (port > 0 && !seen) {
            if (ngiven < sizeof given / sizeof given[0])
                given[ngiven++] = port;
            return port;
        }
    }
    return -1;
}

pid_t tf_spawn(const char *path, const char *const *env, const char *log_path)
{
    return tf_spawn_arg(path, NULL, env, log_path);
}

pid_t tf_spawn_arg(const char *path, const char *arg, const char *const *env, const char *log_path)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    for (const char *const *e = env; e && *e; e++)
        putenv((char *)*e);
    if (log_path) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
            close(fd);
        }
    }
    execl(path, path, arg, (char *)NULL);
    fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
    _exit(127);
}

int tf_stop(pid_t pid, int sig, int timeout_ms)
{
    if (pid <= 0)
        return -1;
    kill(pid, sig);
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        tf_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

const char *tf_build_path(const char *rel)
{
    static char buf[1024];
    const char *dir = getenv("SH_BUILD_DIR");
    snprintf(buf, sizeof buf, "%s/%s", dir ? dir : "build", rel);
    return buf;
}

int tf_file_count(const char *path, const char *what)
{
    char line[8192];
    FILE *f = fopen(path, "r");
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, what) != NULL;
    if (f)
        fclose(f);
    return n;
}
