/* ipc_dir.c - the private directory of a test's ipc sockets. */
#include "ipc_dir.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char ipc_dir[128];

int tf_ipc_dir_make(const char *prefix)
{
    snprintf(ipc_dir, sizeof ipc_dir, "/tmp/%s.XXXXXX", prefix);
    if (!mkdtemp(ipc_dir)) {
        perror("mkdtemp");
        ipc_dir[0] = '\0';
        return -1;
    }
    return 0;
}

const char *tf_ipc_url(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "ipc://%s/%s", ipc_dir, name);
    return buf;
}

int tf_ipc_dir_remove(void)
{
    if (!ipc_dir[0])
        return -1;
    DIR *d = opendir(ipc_dir);
    if (!d)
        return -1;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", ipc_dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    int rc = rmdir(ipc_dir);
    ipc_dir[0] = '\0';
    return rc == 0 ? 0 : -1;
}
