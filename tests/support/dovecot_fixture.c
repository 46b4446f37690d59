/* dovecot_fixture.c - a private Dovecot for tests (see dovecot_fixture.h).
 * Dovecot refuses to run its login and mail processes as root, so they run
 * as the `dovenull` and `dovecot` users the Debian package creates, and the
 * maildir is handed to `dovecot`. */
#include "dovecot_fixture.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

#define DOVECOT_BIN "/usr/sbin/dovecot"

bool tf_dovecot_message_seen(int n)
{
    return n % 3 == 0;
}

size_t tf_dovecot_message(int n, char *buf, size_t len)
{
    int w = snprintf(buf, len, TF_MESSAGE_FORMAT, n, n, n, (n / 60) % 60, n % 60, n, n);
    return w < 0 ? 0 : (size_t)w >= len ? len - 1 : (size_t)w;
}

static int dovecot_mkdirs(const char *path)
{
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int dovecot_write(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, len, f);
    return fclose(f) == 0 && w == len ? 0 : -1;
}

static int dovecot_chown_tree(const char *path, uid_t uid, gid_t gid)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "chown -R %u:%u '%s'", (unsigned)uid, (unsigned)gid, path);
    return system(cmd) == 0 ? 0 : -1;
}

static int dovecot_config(tf_dovecot *d)
{
    char path[400], conf[4096];
    const char *login_user = getuid() == 0 ? "dovenull" : "";
    const char *internal_user = getuid() == 0 ? "dovecot" : "";
    int n = snprintf(conf, sizeof conf,
                     "base_dir = %s/run\n"
                     "state_dir = %s/state\n"
                     "log_path = %s/dovecot.log\n"
                     "ssl = yes\n"
                     "ssl_cert = <%s/tls/server.pem\n"
                     "ssl_key = <%s/tls/server.key\n"
                     "protocols = imap\n"
                     "listen = 127.0.0.1\n"
                     "disable_plaintext_auth = no\n"
                     "auth_mechanisms = plain login\n"
                     "%s%s%s"
                     "%s%s%s"
                     "first_valid_uid = 1\n"
                     "mail_location = maildir:%s/mail/%%u/Maildir\n"
                     "namespace inbox {\n  inbox = yes\n"
                     "  mailbox Sent {\n    special_use = \\Sent\n  }\n"
                     "  mailbox Drafts {\n    special_use = \\Drafts\n  }\n}\n"
                     "passdb {\n  driver = passwd-file\n  args = scheme=PLAIN %s/passwd\n}\n"
                     "userdb {\n  driver = static\n  args = uid=%u gid=%u home=%s/mail/%%u\n}\n"
                     "service imap-login {\n  chroot =\n"
                     "  service_count = 0\n  process_min_avail = 2\n"
                     "  inet_listener imap {\n    address = 127.0.0.1\n    port = %d\n  }\n"
                     "  inet_listener imaps {\n    address = 127.0.0.1\n    port = %d\n  }\n}\n"
                     "service imap {\n  service_count = 0\n  process_min_avail = 2\n"
                     "  vsz_limit = 2G\n}\n"
                     "service anvil {\n  chroot =\n}\n"
                     "%s%s%s",
                     d->dir, d->dir, d->dir, d->dir, d->dir,
                     login_user[0] ? "default_login_user = " : "", login_user,
                     login_user[0] ? "\n" : "", internal_user[0] ? "default_internal_user = " : "",
                     internal_user, internal_user[0] ? "\n" : "", d->dir, d->dir, (unsigned)d->uid,
                     (unsigned)d->gid, d->dir, d->port, d->tls_port,
                     d->capability[0] ? "protocol imap {\n  imap_capability = " : "", d->capability,
                     d->capability[0] ? "\n}\n" : "");
    if (n < 0 || (size_t)n >= sizeof conf)
        return -1;
    snprintf(path, sizeof path, "%s/dovecot.conf", d->dir);
    if (dovecot_write(path, conf, (size_t)n))
        return -1;
    char pw[200];
    n = snprintf(pw, sizeof pw, "%s:{PLAIN}%s\n", d->user, d->password);
    snprintf(path, sizeof path, "%s/passwd", d->dir);
    return dovecot_write(path, pw, (size_t)n);
}

/* dovecot_certs makes <dir>/tls: ca.pem (the CA), server.pem and
 * server.key (for 127.0.0.1 and localhost, signed by the CA). */
static int dovecot_certs(tf_dovecot *d)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "set -e; mkdir -p '%s/tls'; cd '%s/tls'; "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout ca.key -out ca.pem -days 2 -subj /CN=shtest-ca >/dev/null 2>&1; "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout server.key -out server.csr -subj /CN=localhost >/dev/null 2>&1; "
             "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nbasicConstraints=CA:FALSE\\n"
             "extendedKeyUsage=serverAuth\\n' > ext.cnf; "
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out server.pem -days 2 -extfile ext.cnf >/dev/null 2>&1",
             d->dir, d->dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "dovecot fixture: openssl could not make the test certificates\n");
        return -1;
    }
    snprintf(d->ca_file, sizeof d->ca_file, "%s/tls/ca.pem", d->dir);
    return 0;
}

/* dovecot_fill makes a maildir holding generated messages 1..count. */
static int dovecot_fill(const char *maildir, int count)
{
    char path[600], msg[1024];
    const char *sub[] = {"cur", "new", "tmp"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", maildir, sub[i]);
        if (dovecot_mkdirs(path))
            return -1;
    }
    for (int n = 1; n <= count; n++) {
        size_t len = tf_dovecot_message(n, msg, sizeof msg);
        snprintf(path, sizeof path, "%s/cur/%d.M%dP%d.test,S=%zu:2,%s", maildir, 1700000000 + n, n,
                 (int)getpid(), len, tf_dovecot_message_seen(n) ? "S" : "");
        if (dovecot_write(path, msg, len))
            return -1;
    }
    return 0;
}

static int dovecot_generate(tf_dovecot *d, int count)
{
    if (dovecot_fill(d->maildir, count))
        return -1;
    char mail[400];
    snprintf(mail, sizeof mail, "%s/mail", d->dir);
    return dovecot_chown_tree(mail, d->uid, d->gid);
}

int tf_imap_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int tf_imap_greeting(int fd)
{
    char buf[512];
    size_t n = 0;
    while (n < sizeof buf - 1) {
        ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
        if (r <= 0)
            return -1;
        n += (size_t)r;
        buf[n] = '\0';
        if (strstr(buf, "\r\n"))
            return strncmp(buf, "* OK", 4) == 0 ? 0 : -1;
    }
    return -1;
}

/* dovecot_launch starts `dovecot -F` on the prepared directory and waits
 * until the plain port greets. */
static int dovecot_launch(tf_dovecot *d)
{
    char conf[400], out[400];
    snprintf(conf, sizeof conf, "%s/dovecot.conf", d->dir);
    snprintf(out, sizeof out, "%s/dovecot.out", d->dir);
    const char *const argv[] = {DOVECOT_BIN, "-F", "-c", conf, NULL};
    return tf_imap_launch(d, argv, out, "dovecot");
}

int tf_imap_launch(tf_dovecot *d, const char *const *argv, const char *out, const char *name)
{
    d->pid = fork();
    if (d->pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (d->pid < 0) {
        perror("fork");
        return -1;
    }
    for (int i = 0; i < 500; i++) {
        int st;
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            fprintf(stderr, "%s exited at start (status %d); see %s and the logs in %s\n", name, st,
                    out, d->dir);
            d->pid = 0;
            return -1;
        }
        int fd = tf_imap_connect(d->port);
        if (fd >= 0) {
            int ok = tf_imap_greeting(fd);
            close(fd);
            if (ok == 0)
                return 0;
        }
        tf_sleep_ms(20);
    }
    fprintf(stderr, "%s did not answer on port %d; see the logs in %s\n", name, d->port, d->dir);
    return -1;
}

int tf_dovecot_start(tf_dovecot *d, const char *user, const char *password, int count)
{
    return tf_dovecot_start_caps(d, user, password, count, NULL);
}

int tf_dovecot_start_caps(tf_dovecot *d, const char *user, const char *password, int count,
                          const char *capability)
{
    memset(d, 0, sizeof *d);
    snprintf(d->capability, sizeof d->capability, "%s", capability ? capability : "");
    snprintf(d->dir, sizeof d->dir, "/tmp/shtest-dovecot-XXXXXX");
    if (!mkdtemp(d->dir)) {
        perror("mkdtemp");
        return -1;
    }
    chmod(d->dir, 0755);
    snprintf(d->user, sizeof d->user, "%s", user);
    snprintf(d->password, sizeof d->password, "%s", password);
    snprintf(d->maildir, sizeof d->maildir, "%s/mail/%s/Maildir", d->dir, user);
    d->uid = getuid();
    d->gid = getgid();
    if (getuid() == 0) {
        struct passwd *pw = getpwnam("dovecot");
        if (!pw) {
            fprintf(stderr, "dovecot fixture: no `dovecot` user (install dovecot-imapd)\n");
            return -1;
        }
        d->uid = pw->pw_uid;
        d->gid = pw->pw_gid;
    }
    d->port = tf_free_port();
    d->tls_port = tf_free_port();
    while (d->tls_port == d->port)
        d->tls_port = tf_free_port();
    if (access(DOVECOT_BIN, X_OK) != 0) {
        fprintf(stderr, "dovecot fixture: %s missing (install dovecot-imapd)\n", DOVECOT_BIN);
        return -1;
    }
    char path[400];
    snprintf(path, sizeof path, "%s/run", d->dir);
    if (dovecot_mkdirs(path) || snprintf(path, sizeof path, "%s/state", d->dir) < 0 ||
        dovecot_mkdirs(path) || dovecot_certs(d) || dovecot_config(d) ||
        dovecot_generate(d, count)) {
        fprintf(stderr, "dovecot fixture: cannot prepare %s\n", d->dir);
        return -1;
    }
    return dovecot_launch(d);
}

int tf_dovecot_add_user(const tf_dovecot *d, const char *user, const char *password, int count)
{
    char path[400], maildir[600], home[400];
    snprintf(home, sizeof home, "%s/mail/%.64s", d->dir, user);
    snprintf(maildir, sizeof maildir, "%s/Maildir", home);
    if (dovecot_fill(maildir, count) || dovecot_chown_tree(home, d->uid, d->gid))
        return -1;
    snprintf(path, sizeof path, "%s/passwd", d->dir);
    FILE *f = fopen(path, "a");
    if (!f)
        return -1;
    int w = fprintf(f, "%s:{PLAIN}%s\n", user, password);
    if (fclose(f) != 0 || w <= 0)
        return -1;
    /* Dovecot looks at the passwd file at most once a second: a login in
     * the second it last looked would not see the new user yet. */
    tf_sleep_ms(1100);
    return 0;
}

/* dovecot_children lists (up to max) the processes whose parent is pid. */
static int dovecot_children(pid_t pid, pid_t *out, int max)
{
    DIR *dir = opendir("/proc");
    int n = 0;
    struct dirent *e;
    while (dir && n < max && (e = readdir(dir))) {
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = e->d_name[0] >= '1' && e->d_name[0] <= '9' ? fopen(path, "r") : NULL;
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        const char *close_paren = strrchr(buf, ')');
        int ppid = 0;
        char state;
        if (close_paren && sscanf(close_paren + 1, " %c %d", &state, &ppid) == 2 && ppid == pid)
            out[n++] = (pid_t)atoi(e->d_name);
    }
    if (dir)
        closedir(dir);
    return n;
}

int tf_dovecot_halt(tf_dovecot *d)
{
    /* Its imap processes serve their clients on after the master has gone
     * (an IDLE for as long as the client likes): a halt ends them too, as a
     * server going down would. */
    pid_t kids[256];
    int nkids = d->pid > 0 ? dovecot_children(d->pid, kids, 256) : 0;
    if (d->pid > 0)
        tf_stop(d->pid, SIGTERM, 10000);
    d->pid = 0;
    for (int i = 0; i < nkids; i++)
        kill(kids[i], SIGKILL);
    /* Wait until the port is closed. */
    for (int i = 0; i < 250; i++) {
        int fd = tf_imap_connect(d->port);
        if (fd < 0)
            return 0;
        close(fd);
        tf_sleep_ms(20);
    }
    return -1;
}

int tf_dovecot_resume(tf_dovecot *d)
{
    return d->pid > 0 ? -1 : dovecot_launch(d);
}

void tf_dovecot_stop(tf_dovecot *d)
{
    if (d->pid > 0) {
        tf_stop(d->pid, SIGTERM, 10000);
        d->pid = 0;
    }
    if (d->dir[0]) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", d->dir);
        d->dir[0] = '\0';
    }
}

/* dovecot_tagged reads replies until the line of tag; returns 0 for OK. */
static int dovecot_tagged(int fd, const char *tag, char *out, size_t outlen, size_t *used)
{
    char buf[65536];
    size_t n = 0;
    char want[32];
    snprintf(want, sizeof want, "%s ", tag);
    for (;;) {
        if (n == sizeof buf - 1) {
            /* keep the tail: only the last line matters */
            memmove(buf, buf + n / 2, n - n / 2);
            n -= n / 2;
        }
        ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
        if (r <= 0)
            return -1;
        if (out && *used + (size_t)r < outlen) {
            memcpy(out + *used, buf + n, (size_t)r);
            *used += (size_t)r;
            out[*used] = '\0';
        }
        n += (size_t)r;
        buf[n] = '\0';
        char *line = buf;
        for (char *eol; (eol = strstr(line, "\r\n")); line = eol + 2) {
            if (strncmp(line, want, strlen(want)) == 0)
                return strncmp(line + strlen(want), "OK", 2) == 0 ? 0 : -1;
        }
    }
}

int tf_dovecot_imap(const tf_dovecot *d, const char *const *cmds, char *out, size_t outlen)
{
    int fd = tf_imap_connect(d->port);
    size_t used = 0;
    if (out && outlen)
        out[0] = '\0';
    if (fd < 0 || tf_imap_greeting(fd)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char line[70000];
    int rc = 0, t = 0;
    snprintf(line, sizeof line, "t0 LOGIN %s %s\r\n", d->user, d->password);
    if (write(fd, line, strlen(line)) < 0 || dovecot_tagged(fd, "t0", out, outlen, &used))
        rc = -1;
    for (const char *const *c = cmds; !rc && c && *c; c++) {
        char tag[16];
        snprintf(tag, sizeof tag, "t%d", ++t);
        int n = snprintf(line, sizeof line, "%s %s\r\n", tag, *c);
        if (n < 0 || (size_t)n >= sizeof line || write(fd, line, (size_t)n) != n ||
            dovecot_tagged(fd, tag, out, outlen, &used))
            rc = -1;
    }
    const char *bye = "tz LOGOUT\r\n";
    if (write(fd, bye, strlen(bye)) > 0)
        dovecot_tagged(fd, "tz", NULL, 0, &used);
    close(fd);
    return rc;
}
