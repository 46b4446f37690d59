"""Harness for the end-to-end tests: a private redis-server, the progress
service, the coordinator, the sync-worker and the gateway on free loopback ports, plus a small
HTTP client.

The binaries come from the build tree named by BUILD_DIR (default "build",
relative to the repository root). A server that cannot start raises, so the
test fails; it is never skipped. Service stderr goes to files that are printed
when something goes wrong. Standard library only.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Secrets every stack gets unless a test's env overrides them: the
# coordinator needs ENCRYPTION_KEY (64 hex characters), the cron routes
# CRON_SECRET, and every call and event between services is signed with
# RPC_SECRET (64 hex; "" in a test's env runs the stack unsigned). Test
# values, never used anywhere else.
TEST_ENCRYPTION_KEY = "5e" * 32
TEST_CRON_SECRET = "e2e-cron-secret-" + "c0" * 16
TEST_RPC_SECRET = "a7" * 32

# Under the sanitizer build everything is several times slower.
START_TIMEOUT = float(os.environ.get("E2E_START_TIMEOUT", "60"))
STOP_TIMEOUT = float(os.environ.get("E2E_STOP_TIMEOUT", "30"))


def build_dir():
    d = os.environ.get("BUILD_DIR", "build")
    if not os.path.isabs(d):
        d = os.path.join(REPO_ROOT, d)
    return d


def binary(name):
    path = os.path.join(build_dir(), "services", name, name)
    if not os.access(path, os.X_OK):
        raise RuntimeError("binary not found: %s (build first; BUILD_DIR=%s)" % (path, build_dir()))
    return path


_handed_out = set()


def free_port():
    """Return a TCP port that was free on 127.0.0.1 a moment ago and that
    this process has not handed out before (the kernel may offer the same
    free port twice in a row, and two services of one stack must not get
    it both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def redis_server_path():
    p = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.access(p, os.X_OK):
        raise RuntimeError("redis-server not found (apt-get install redis-server)")
    return p


def redis_command(port, *args, timeout=10.0):
    """Send one command to the Redis on 127.0.0.1:port over a connection of
    its own and return the reply: str/bytes for bulk strings (bytes when not
    UTF-8), int, list, None; an error reply raises RuntimeError."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        s.sendall(out)
        with s.makefile("rb") as f:
            return _resp_read(f)


def _resp_read(f):
    """One reply of the Redis protocol from the file f (see redis_command)."""
    line = f.readline()
    if not line:
        raise RuntimeError("Redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        try:
            return data.decode()
        except UnicodeDecodeError:
            return data
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_resp_read(f) for _ in range(n)]
    raise RuntimeError("unexpected reply from Redis: %r" % line)


def redis_ping(port, timeout=0.5):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class Redis:
    """A private redis-server on 127.0.0.1:port, no persistence."""

    def __init__(self, workdir, port=None):
        self.workdir = workdir
        self.port = port or free_port()
        self.proc = None
        self.log_path = os.path.join(workdir, "redis-%d.log" % self.port)
        # Its own directory: a replica beside it must not share dump files.
        self.dir = os.path.join(workdir, "redis-%d" % self.port)
        os.makedirs(self.dir, exist_ok=True)

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def start(self, timeout=15.0):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [redis_server_path(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir,
             "--daemonize", "no", "--protected-mode", "yes",
             # Tests stall it with DEBUG SLEEP, and start replicas that
             # should get their data at once (not after the default 5 s).
             "--enable-debug-command", "local", "--repl-diskless-sync-delay", "0"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited with %s:\n%s"
                                   % (self.proc.returncode, read_tail(self.log_path)))
            if redis_ping(self.port):
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING on port %d within %.0f s:\n%s"
                           % (self.port, timeout, read_tail(self.log_path)))

    def command(self, *args, timeout=10.0):
        return redis_command(self.port, *args, timeout=timeout)

    def kill(self):
        """SIGKILL, as a crash would."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


def read_tail(path, max_bytes=20000):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            return f.read().decode("utf-8", "replace")
    except OSError as e:
        return "<cannot read %s: %s>" % (path, e)


class Service:
    """One of our binaries, stderr and stdout captured to a file."""

    def __init__(self, name, env, workdir, label=None):
        self.name = name
        self.label = label or name
        self.env = env
        self.log_path = os.path.join(workdir, self.label + ".log")
        self.proc = None
        self.exit_code = None

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([binary(self.name)], env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM and wait; returns the exit code (SIGKILL after a timeout)."""
        if self.proc is None:
            return self.exit_code
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                self.exit_code = "killed after %.0f s without exiting on SIGTERM" % STOP_TIMEOUT
                self.proc = None
                return self.exit_code
        self.exit_code = self.proc.returncode
        self.proc = None
        return self.exit_code


class Stack:
    """redis + progress + coordinator + gateway on private ports.

    env: extra settings for every service (API_TOKEN, PROGRESS_LOG_CAP, ...).
    By default the schedule of email syncs moves only when a test ticks it
    (SCHED_AUTO_TICK=false) and the test secrets above are set.
    Use as a context manager or call start()/stop(); stop() raises if a
    service did not exit 0 on SIGTERM (under ASan a leak report makes the
    exit code non-zero, so this also checks for leaks).
    """

    def __init__(self, env=None, start_gateway=True):
        self.extra_env = dict(env or {})
        self.start_gateway = start_gateway
        self.workdir = tempfile.mkdtemp(prefix="e2e-stack-")
        self.redis = Redis(self.workdir)
        self.rpc_port = free_port()
        self.events_port = free_port()
        self.coord_port = free_port()
        self.coord_events_port = free_port()
        self.sync_port = free_port()
        self.sync_events_port = free_port()
        self.http_port = free_port()
        self.progress = None
        self.coordinator = None
        self.sync_worker = None
        self.gateway = None
        self.token = self.extra_env.get("API_TOKEN")
        self.cron_secret = self.extra_env.get("CRON_SECRET", TEST_CRON_SECRET) or None

    # -- environment -------------------------------------------------------
    def service_env(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("API_", "GATEWAY_", "PROGRESS_", "REDIS_", "KV_", "RPC_",
                                     "SSE_", "LOG_LEVEL", "COORDINATOR_", "CLAIM_",
                                     "RESERVE_", "SYNC_", "SCHED_", "ENCRYPTION_", "CRON_",
                                     "EMAIL_", "IMAP_"))}
        env.update({
            "REDIS_URL": self.redis.url,
            "PROGRESS_RPC_URL": "tcp://127.0.0.1:%d" % self.rpc_port,
            "PROGRESS_EVENTS_URL": "tcp://127.0.0.1:%d" % self.events_port,
            "COORDINATOR_RPC_URL": "tcp://127.0.0.1:%d" % self.coord_port,
            "COORDINATOR_EVENTS_URL": "tcp://127.0.0.1:%d" % self.coord_events_port,
            "SYNC_WORKER_RPC_URL": "tcp://127.0.0.1:%d" % self.sync_port,
            "SYNC_WORKER_EVENTS_URL": "tcp://127.0.0.1:%d" % self.sync_events_port,
            # The sync-worker serves the messages routes; it syncs nothing
            # (the accounts of these tests point nowhere) unless a test sets
            # SYNC_CONCURRENCY.
            "SYNC_CONCURRENCY": "0",
            "GATEWAY_LISTEN": "127.0.0.1:%d" % self.http_port,
            "LOG_LEVEL": os.environ.get("E2E_LOG_LEVEL", "info"),
            "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
            "CRON_SECRET": TEST_CRON_SECRET,
            "RPC_SECRET": TEST_RPC_SECRET,
            "CRON_LOOPBACK_ONLY": "false",
            "SCHED_AUTO_TICK": "false",
            "SYNC_INTERVAL_MINUTES": "15",
            "EMAIL_SYNC_BATCH_SIZE": "5",
            # The test Dovecot listens on loopback and speaks plain IMAP.
            "IMAP_ALLOW_HOSTS": "127.0.0.0/8",
            "IMAP_ALLOW_INSECURE": "true",
        })
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        env.update(self.extra_env)
        return env

    # -- life cycle --------------------------------------------------------
    def start(self):
        try:
            self.redis.start()
            env = self.service_env()
            self.progress = Service("progress", env, self.workdir)
            self.progress.start()
            self.coordinator = Service("coordinator", env, self.workdir)
            self.coordinator.start()
            self.sync_worker = Service("sync-worker", env, self.workdir)
            self.sync_worker.start()
            if self.start_gateway:
                self.gateway = Service("gateway", env, self.workdir)
                self.gateway.start()
                self.wait_ready(START_TIMEOUT)
        except BaseException:
            self.dump_logs()
            self.stop(check=False)
            raise
        return self

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            for svc in self.services():
                if not svc.alive():
                    raise RuntimeError("%s exited with %s during start-up"
                                       % (svc.name, svc.proc.returncode))
            try:
                status, _, body = self.client().request("GET", "/readyz", timeout=2)
                last = (status, body)
                if status == 200:
                    return
            except OSError as e:
                last = e
            time.sleep(0.1)
        raise RuntimeError("/readyz not 200 within %.0f s (last: %r)" % (timeout, last))

    def stop(self, check=True):
        """Stop everything; with check, raise unless each service exited 0."""
        problems = []
        for svc in reversed(self.services()):
            code = svc.stop()
            if code != 0:
                problems.append("%s exit status %s" % (svc.name, code))
        self.redis.stop()
        if problems:
            self.dump_logs()
            if check:
                raise AssertionError("services did not exit cleanly on SIGTERM: "
                                     + "; ".join(problems))
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if exc[0] is not None:
            self.dump_logs()
            self.stop(check=False)
        else:
            self.stop()
        return False

    def services(self):
        """The services started so far, in start order."""
        return [s for s in (self.progress, self.coordinator, self.sync_worker, self.gateway)
                if s is not None]

    def dump_logs(self):
        for svc in self.services():
            sys.stderr.write("\n----- %s log (%s) -----\n%s\n"
                             % (svc.name, svc.log_path, read_tail(svc.log_path)))
        sys.stderr.write("\n----- redis log -----\n%s\n" % read_tail(self.redis.log_path, 4000))
        sys.stderr.flush()

    def assert_alive(self):
        for svc in self.services():
            if not svc.alive():
                raise AssertionError("%s is not running (exit %s)"
                                     % (svc.name, svc.proc.returncode if svc.proc else "?"))

    def client(self, token="default"):
        if token == "default":
            token = self.token
        return Client("127.0.0.1", self.http_port, token)


class Response:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        try:
            self.json = json.loads(raw.decode("utf-8")) if raw else None
        except (ValueError, UnicodeDecodeError):
            self.json = None

    def __iter__(self):  # status, headers, json = client.request(...)
        return iter((self.status, self.headers, self.json))

    def __repr__(self):
        body = self.raw[:500].decode("utf-8", "replace")
        return "<HTTP %d %s>" % (self.status, body)

    def error(self):
        """The error message of a JSON error body ("" when there is none)."""
        if isinstance(self.json, dict):
            e = self.json.get("error")
            if isinstance(e, str):
                return e
            if isinstance(e, dict):
                return json.dumps(e)
        return ""


class Client:
    """A keep-alive HTTP/1.1 client; reconnects when the server closed.
    on_reply(method, path, response), when set, sees every reply (e2ebase
    checks them against the API description)."""

    on_reply = None

    def __init__(self, host, port, token=None, timeout=30):
        self.host = host
        self.port = port
        self.token = token
        self.timeout = timeout
        self.conn = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, headers=None, timeout=None, token="default"):
        """body: dict/list (sent as JSON), bytes/str (sent as is) or None."""
        hdrs = {}
        if token == "default":
            token = self.token
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body, separators=(",", ":")).encode()
            hdrs["Content-Type"] = "application/json"
        elif body is not None:
            if isinstance(body, str):
                body = body.encode()
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port,
                                                       timeout=timeout or self.timeout)
            else:
                self.conn.timeout = timeout or self.timeout
                if self.conn.sock is not None:
                    self.conn.sock.settimeout(timeout or self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                raw = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                reply = Response(resp.status, resp.headers, raw)
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest, http.client.ResponseNotReady):
                self.close()
                if attempt == 1:
                    raise
            except BaseException:
                self.close()
                raise
        if self.on_reply is not None:
            self.on_reply(method, path, reply)
        return reply

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


class SSEReader:
    """Reads a text/event-stream response on a thread; events land in a list.

    Each event is a dict {"event", "id", "data"} (data joined with "\n");
    comment lines (heartbeats) are counted, not stored.
    """

    def __init__(self, host, port, path, token=None, last_event_id=None, timeout=60):
        import threading
        self.events = []
        self.comments = 0
        self.status = None
        self.headers = None
        self.error = None
        self.closed = False
        self.cond = threading.Condition()
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        hdrs = {"Accept": "text/event-stream"}
        if token:
            hdrs["Authorization"] = "Bearer " + token
        if last_event_id is not None:
            hdrs["Last-Event-ID"] = str(last_event_id)
        self.conn.request("GET", path, headers=hdrs)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = self.resp.headers
        self.thread = threading.Thread(target=self.run, daemon=True)
        if self.status == 200:
            self.thread.start()
        else:
            self.body = self.resp.read()

    def run(self):
        cur = {"event": None, "id": None, "data": []}
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    break
                line = line.decode("utf-8").rstrip("\r\n")
                if line == "":
                    if cur["data"] or cur["id"] is not None or cur["event"] is not None:
                        ev = {"event": cur["event"], "id": cur["id"],
                              "data": "\n".join(cur["data"])}
                        with self.cond:
                            self.events.append(ev)
                            self.cond.notify_all()
                    cur = {"event": None, "id": None, "data": []}
                    continue
                if line.startswith(":"):
                    with self.cond:
                        self.comments += 1
                    continue
                field, _, value = line.partition(":")
                if value.startswith(" "):
                    value = value[1:]
                if field == "data":
                    cur["data"].append(value)
                elif field == "id":
                    cur["id"] = value
                elif field == "event":
                    cur["event"] = value
        except Exception as e:  # closed by close() or by the server
            if not self.closed:
                self.error = e
        finally:
            with self.cond:
                self.closed = True
                self.cond.notify_all()

    def wait_for(self, pred, timeout):
        """Wait until pred(events) is true; returns it (False on timeout)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                r = pred(self.events)
                if r:
                    return r
                left = deadline - time.monotonic()
                if left <= 0 or (self.closed and not r):
                    return pred(self.events)
                self.cond.wait(min(left, 0.5))

    def close(self):
        self.closed = True
        try:
            if self.conn.sock is not None:
                self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()
        if self.thread.is_alive():
            self.thread.join(5)


def event_record(ev):
    """The JSON record carried by an SSE event, or None."""
    try:
        return json.loads(ev["data"])
    except (ValueError, TypeError):
        return None


def event_version(ev):
    """The version of an event: its id, else the record's version."""
    if ev.get("id"):
        try:
            return int(ev["id"])
        except ValueError:
            pass
    rec = event_record(ev)
    if isinstance(rec, dict):
        v = rec.get("version")
        if isinstance(v, int):
            return v
        if isinstance(rec.get("record"), dict):
            return rec["record"].get("version")
    return None


class ScaleStack:
    """Several replicas of every service on one Redis, wired the way
    deploy/local-stack --replicas wires them: every client dials every
    replica of what it calls, every gateway subscribes to every progress
    replica. counts: {"progress": 2, "coordinator": 3, "sync-worker": 2,
    "gateway": 2}."""

    KINDS = ("progress", "coordinator", "sync-worker", "gateway")

    def __init__(self, counts, env=None, spare=None):
        """spare: {kind: n} addresses listed to every client from the start
        but served by nobody until start_spare(kind) (a replica joining
        later, without restarting the others)."""
        self.counts = counts
        self.spare = dict(spare or {})
        self.workdir = tempfile.mkdtemp(prefix="e2e-scale-")
        self.redis = Redis(self.workdir)
        self.extra_env = dict(env or {})
        self.token = self.extra_env.get("API_TOKEN")
        self.ports = {k: [(free_port(), free_port())
                          for _ in range(counts.get(k, 0) + self.spare.get(k, 0))]
                      for k in self.KINDS}
        self.replicas = {k: [] for k in self.KINDS}

    def urls(self, kind, which):
        i = 0 if which == "rpc" else 1
        return ",".join("tcp://127.0.0.1:%d" % p[i] for p in self.ports[kind])

    def env_for(self, kind, r):
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("API_", "GATEWAY_", "PROGRESS_", "REDIS_", "KV_", "RPC_",
                                     "SSE_", "LOG_LEVEL", "COORDINATOR_", "CLAIM_", "RESERVE_",
                                     "SYNC_", "SCHED_", "ENCRYPTION_", "CRON_", "EMAIL_",
                                     "IMAP_"))}
        base.update({
            "REDIS_URL": self.redis.url,
            "LOG_LEVEL": os.environ.get("E2E_LOG_LEVEL", "info"),
            "ENCRYPTION_KEY": "8f3a0c5e7b9d1f2a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a",
            "CRON_SECRET": "e2e-cron-secret-0123456789abcdef",
            "RPC_SECRET": TEST_RPC_SECRET,
            "SCHED_AUTO_TICK": "false",
            "SYNC_CONCURRENCY": "0",
            "PROGRESS_RPC_URL": self.urls("progress", "rpc"),
            "PROGRESS_EVENTS_URL": self.urls("progress", "events"),
            "COORDINATOR_RPC_URL": self.urls("coordinator", "rpc"),
            "COORDINATOR_EVENTS_URL": self.urls("coordinator", "events"),
            "SYNC_WORKER_RPC_URL": self.urls("sync-worker", "rpc"),
            "SYNC_WORKER_EVENTS_URL": self.urls("sync-worker", "events"),
            "IMAP_ALLOW_HOSTS": "127.0.0.0/8",
            "IMAP_ALLOW_INSECURE": "true",
        })
        base.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        base.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        base.update(self.extra_env)
        # A service listens on the first URL of its own list: give each
        # replica its own two addresses.
        own = {"progress": "PROGRESS", "coordinator": "COORDINATOR",
               "sync-worker": "SYNC_WORKER"}.get(kind)
        if own:
            rpc, ev = self.ports[kind][r]
            base[own + "_RPC_URL"] = "tcp://127.0.0.1:%d" % rpc
            base[own + "_EVENTS_URL"] = "tcp://127.0.0.1:%d" % ev
        else:
            base["GATEWAY_LISTEN"] = "127.0.0.1:%d" % self.ports["gateway"][r][0]
        return base

    def start(self):
        try:
            self.redis.start()
            for kind in self.KINDS:
                for r in range(self.counts.get(kind, 0)):
                    svc = Service(kind, self.env_for(kind, r), self.workdir,
                                  label="%s-%d" % (kind, r + 1))
                    svc.start()
                    self.replicas[kind].append(svc)
            deadline = time.monotonic() + START_TIMEOUT
            for r in range(self.counts.get("gateway", 0)):
                while True:
                    for svc in self.all():
                        if not svc.alive():
                            raise RuntimeError("%s exited with %s during start-up"
                                               % (svc.label, svc.proc.returncode))
                    c = self.client(r)
                    try:
                        status, _, _ = c.request("GET", "/readyz", timeout=2)
                        if status == 200:
                            break
                    except OSError:
                        pass
                    finally:
                        c.close()
                    if time.monotonic() > deadline:
                        raise RuntimeError("gateway %d not ready" % (r + 1))
                    time.sleep(0.1)
        except BaseException:
            self.dump_logs()
            self.stop(check=False)
            raise
        return self

    def start_spare(self, kind):
        """Start the next spare replica of kind; returns it."""
        r = len(self.replicas[kind])
        if r >= len(self.ports[kind]):
            raise RuntimeError("no spare %s address left" % kind)
        svc = Service(kind, self.env_for(kind, r), self.workdir, label="%s-%d" % (kind, r + 1))
        svc.start()
        self.replicas[kind].append(svc)
        return svc

    def all(self):
        return [s for k in self.KINDS for s in self.replicas[k]]

    def client(self, r, token="default"):
        if token == "default":
            token = self.token
        return Client("127.0.0.1", self.ports["gateway"][r][0], token)

    def dump_logs(self):
        for svc in self.all():
            sys.stderr.write("\n----- %s log -----\n%s\n" % (svc.label, read_tail(svc.log_path)))
        sys.stderr.flush()

    def stop(self, check=True):
        problems = []
        for svc in reversed(self.all()):
            if svc.proc is None:
                continue
            code = svc.stop()
            if code != 0:
                problems.append("%s exit status %s" % (svc.label, code))
        self.redis.stop()
        if problems:
            self.dump_logs()
            if check:
                raise AssertionError("services did not exit cleanly: " + "; ".join(problems))
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)
