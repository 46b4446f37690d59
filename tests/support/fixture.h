/* fixture.h - test fixtures: a private redis-server on loopback, and child
 * processes (the services) started with their own environment. Tests that
 * need a server fail, not skip, when it cannot start. */
#ifndef TESTS_FIXTURE_H
#define TESTS_FIXTURE_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct tf_redis {
    pid_t pid;
    int port;
    char dir[256];
    char url[128];
} tf_redis;

/* tf_redis_start starts redis-server on a free port with a private temp
 * directory and no persistence, and waits until it answers PING. port 0
 * picks a free port. Returns 0 or -1 (with a message on stderr). */
int tf_redis_start(tf_redis *r, int port);
/* tf_redis_start_args does the same with extra redis-server arguments
 * (NULL-terminated, e.g. {"--aclfile", path, NULL}); PING then uses user and
 * password when given. */
int tf_redis_start_args(tf_redis *r, int port, const char *const *extra, const char *user,
                        const char *password);
/* tf_redis_store returns a new store on r (the caller frees it with
 * sh_store_free), or NULL with a message on stderr. */
struct sh_store *tf_redis_store(const tf_redis *r);
/* tf_redis_kill stops it at once (SIGKILL) and reaps it. */
void tf_redis_kill(tf_redis *r);
/* tf_redis_stop stops it and removes its directory. */
void tf_redis_stop(tf_redis *r);

/* tf_free_port returns a currently unused loopback TCP port. */
int tf_free_port(void);

/* tf_spawn starts path with env (NULL-terminated "K=V" list added to the
 * current environment); its stderr goes to log_path. Returns the pid or -1. */
pid_t tf_spawn(const char *path, const char *const *env, const char *log_path);
/* tf_spawn_arg does the same with one argument (NULL: none). */
pid_t tf_spawn_arg(const char *path, const char *arg, const char *const *env, const char *log_path);
/* tf_stop sends sig, waits up to timeout_ms and returns the exit status
 * (or 128+signal; -1 when it had to be killed). */
int tf_stop(pid_t pid, int sig, int timeout_ms);

/* tf_build_path returns SH_BUILD_DIR + "/" + rel in a static buffer. */
const char *tf_build_path(const char *rel);

/* tf_file_count counts the lines of the file at path that hold what (0
 * when it cannot be read). */
int tf_file_count(const char *path, const char *what);

/* tf_sleep_ms sleeps. */
void tf_sleep_ms(int ms);

#endif
