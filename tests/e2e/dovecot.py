"""A private Dovecot IMAP server for the end-to-end tests, as
tests/support/dovecot_fixture.c makes one for the C tests: its own
configuration directory under /tmp (never the system configuration or
service), passwd-file auth with plaintext test users, a maildir per user
filled with generated messages, a loopback port, `dovecot -F`.

A server that cannot start raises, so the test fails; it is never skipped.
stop() ends it and removes its directory. Its log (one timestamped line
per login, in UTC) tells which user logged in when: logins() reads it.
Standard library only.
"""

import datetime
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from stack import free_port, read_tail

DOVECOT_BIN = "/usr/sbin/dovecot"

# "2024-01-01T10:00:00 imap-login: Info: Login: user=<u01>, method=PLAIN, ..."
LOGIN_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d) imap-login: Info: Login: user=<([^>]*)>")
METHOD_LINE = re.compile(r"imap-login: Info: Login: user=<([^>]*)>, method=([A-Z0-9-]+)")


def message(user, n):
    """The RFC 5322 text of generated message n of user."""
    return ("From: Sender %d <sender%d@example.com>\r\n"
            "To: %s <%s@example.com>\r\n"
            "Subject: Message %d for %s\r\n"
            "Date: Mon, 01 Jan 2024 10:%02d:%02d +0000\r\n"
            "Message-ID: <msg%d.%s@example.test>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "\r\n"
            "Body of message %d.\r\n"
            % (n, n, user, user, n, user, (n // 60) % 60, n % 60, n, user, n)).encode()


def message_seen(n):
    """Generated messages with n % 3 == 0 are \\Seen."""
    return n % 3 == 0


class Dovecot:
    """users: {name: password}; messages: how many generated messages each
    user's INBOX holds. With oauth2_url, users sign in with OAuth2 instead
    (Dovecot's oauth2 passdb, built into dovecot-core, asks that
    introspection URL about each token; oauth_server.py serves one), by the
    SASL mechanisms listed in mechanisms."""

    def __init__(self, users, messages=3, oauth2_url=None, mechanisms="xoauth2 oauthbearer"):
        self.users = dict(users)
        self.messages = messages
        self.oauth2_url = oauth2_url
        self.mechanisms = mechanisms
        self.dir = None
        self.port = None
        self.proc = None

    @property
    def log_path(self):
        return os.path.join(self.dir, "dovecot.log")

    def start(self, timeout=30.0):
        if not os.access(DOVECOT_BIN, os.X_OK):
            raise RuntimeError("%s missing (apt-get install dovecot-imapd)" % DOVECOT_BIN)
        self.dir = tempfile.mkdtemp(prefix="e2e-dovecot-", dir="/tmp")
        try:
            os.chmod(self.dir, 0o755)
            self.port = free_port()
            uid, gid = self.mail_owner()
            os.makedirs(os.path.join(self.dir, "run"))
            os.makedirs(os.path.join(self.dir, "state"))
            self.write_config(uid, gid)
            self.generate(uid, gid)
            self.launch(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def mail_owner(self):
        """Dovecot refuses to run its login and mail processes as root: as
        root they run as the `dovenull` and `dovecot` users the Debian
        package creates, and the mail belongs to `dovecot`."""
        if os.getuid() != 0:
            return os.getuid(), os.getgid()
        try:
            pw = pwd.getpwnam("dovecot")
        except KeyError:
            raise RuntimeError("no `dovecot` user (apt-get install dovecot-imapd)")
        return pw.pw_uid, pw.pw_gid

    def write_config(self, uid, gid):
        if os.getuid() == 0:
            users = "default_login_user = dovenull\ndefault_internal_user = dovecot\n"
        else:
            me = pwd.getpwuid(os.getuid()).pw_name
            users = "default_login_user = %s\ndefault_internal_user = %s\n" % (me, me)
        d = self.dir
        passdb = "passdb {\n  driver = passwd-file\n  args = scheme=PLAIN %s/passwd\n}\n" % d
        mechanisms = "plain login"
        if self.oauth2_url:
            passdb = ("passdb {\n  driver = oauth2\n  mechanisms = %s\n"
                      "  args = %s/dovecot-oauth2.conf.ext\n}\n" % (self.mechanisms, d))
            mechanisms = self.mechanisms
            with open(os.path.join(d, "dovecot-oauth2.conf.ext"), "w") as f:
                f.write("introspection_mode = post\n"
                        "introspection_url = %s\n"
                        "username_attribute = username\n"
                        "active_attribute = active\n"
                        "active_value = true\n" % self.oauth2_url)
        conf = (
            "base_dir = {d}/run\n"
            "state_dir = {d}/state\n"
            "log_path = {d}/dovecot.log\n"
            'log_timestamp = "%Y-%m-%dT%H:%M:%S "\n'
            "ssl = no\n"
            "protocols = imap\n"
            "listen = 127.0.0.1\n"
            "disable_plaintext_auth = no\n"
            "auth_mechanisms = {mechanisms}\n"
            "{users}"
            "first_valid_uid = 1\n"
            "mail_location = maildir:{d}/mail/%u/Maildir\n"
            "namespace inbox {{\n  inbox = yes\n}}\n"
            "{passdb}"
            "userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={d}/mail/%u\n}}\n"
            "service imap-login {{\n  chroot =\n"
            "  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n"
            "  inet_listener imaps {{\n    port = 0\n  }}\n}}\n"
            "service anvil {{\n  chroot =\n}}\n"
        ).format(d=d, users=users, uid=uid, gid=gid, port=self.port, mechanisms=mechanisms,
                   passdb=passdb)
        with open(os.path.join(d, "dovecot.conf"), "w") as f:
            f.write(conf)
        with open(os.path.join(d, "passwd"), "w") as f:
            for user, password in self.users.items():
                f.write("%s:{PLAIN}%s\n" % (user, password))

    def generate(self, uid, gid):
        mail = os.path.join(self.dir, "mail")
        for user in self.users:
            maildir = os.path.join(mail, user, "Maildir")
            for sub in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(maildir, sub))
            for n in range(1, self.messages + 1):
                data = message(user, n)
                name = "%d.M%dP%d.e2e,S=%d:2,%s" % (1700000000 + n, n, os.getpid(), len(data),
                                                    "S" if message_seen(n) else "")
                with open(os.path.join(maildir, "cur", name), "wb") as f:
                    f.write(data)
        for root, dirs, files in os.walk(mail):
            for name in [root] + [os.path.join(root, x) for x in dirs + files]:
                os.chown(name, uid, gid)

    def launch(self, timeout):
        out = open(os.path.join(self.dir, "dovecot.out"), "wb")
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "TZ": "UTC"}
        self.proc = subprocess.Popen(
            [DOVECOT_BIN, "-F", "-c", os.path.join(self.dir, "dovecot.conf")],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dovecot exited at start with %s:\n%s\n%s"
                                   % (self.proc.returncode, self.tail("dovecot.out"),
                                      self.tail("dovecot.log")))
            if self.greets():
                return
            time.sleep(0.05)
        raise RuntimeError("dovecot did not answer on port %d within %.0f s:\n%s"
                           % (self.port, timeout, self.tail("dovecot.log")))

    def greets(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                return s.recv(512).startswith(b"* OK")
        except OSError:
            return False

    def tail(self, name):
        return read_tail(os.path.join(self.dir, name), 4000)

    def stop(self):
        """Stop the server (its children leave with the master) and remove
        its directory."""
        self.end_process()
        self.proc = None
        if self.port:
            deadline = time.monotonic() + 5
            while self.greets() and time.monotonic() < deadline:
                time.sleep(0.05)
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def restart(self, timeout=30.0):
        """Stop the server and start it again on the same port, with the
        same mail: its clients lose their connections meanwhile."""
        self.end_process()
        deadline = time.monotonic() + 5
        while self.greets() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.launch(timeout)

    def end_process(self):
        """SIGTERM the master (its children leave with it) and wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def logins(self):
        """Every login so far: a list of (UTC datetime, user), in log order."""
        out = []
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    m = LOGIN_LINE.match(line)
                    if m:
                        t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
                        out.append((t.replace(tzinfo=datetime.timezone.utc), m.group(2)))
        except FileNotFoundError:
            pass
        return out

    def login_methods(self):
        """The SASL mechanism of every login so far: a list of (user,
        method), in log order."""
        out = []
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    m = METHOD_LINE.search(line)
                    if m:
                        out.append((m.group(1), m.group(2)))
        except FileNotFoundError:
            pass
        return out
