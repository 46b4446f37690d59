/* ipc_dir.h - a private temporary directory for the ipc:// sockets of a
 * test process, so tests never need fixed TCP ports. */
#ifndef TESTS_IPC_DIR_H
#define TESTS_IPC_DIR_H

#include <stddef.h>

/* tf_ipc_dir_make creates /tmp/<prefix>.XXXXXX for this process. Returns 0
 * or -1 (with a message on stderr). */
int tf_ipc_dir_make(const char *prefix);
/* tf_ipc_url writes "ipc://<dir>/<name>" into buf and returns buf. */
const char *tf_ipc_url(char *buf, size_t size, const char *name);
/* tf_ipc_dir_remove removes the directory and what is left in it. Returns 0
 * or -1. */
int tf_ipc_dir_remove(void);

#endif
