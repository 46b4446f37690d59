"""The driver of tests/bench/live (which starts Redis, progress, the
coordinator and the gateway, and passes their addresses in the
environment): a private Dovecot with many users and raised limits, a
sync-worker this driver starts and restarts, and the figures:

  - delivery latency, APPEND by another IMAP client to the mail.new event at
    a client, on the account's SSE stream and on its WebSocket, one message
    at a time (p50, p99);
  - one sync-worker watching ACCOUNTS accounts (one IDLE session each): the
    time for every watch to be up from the worker's start and after a
    restart, its RSS, and its CPU over IDLE_SECONDS of quiet.

Prints one line per figure ("name value unit"), then the aims with
PASS/MISS. Standard library only; the Dovecot of tests/e2e/dovecot.py."""

import datetime
import http.client
import imaplib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from dovecot import Dovecot, message  # noqa: E402
from test_websocket import WS, WSClosed  # noqa: E402

MESSAGES = int(os.environ.get("BENCH_LIVE_MESSAGES", "200"))
ACCOUNTS = int(os.environ.get("BENCH_LIVE_ACCOUNTS", "1000"))
IDLE_SECONDS = float(os.environ.get("BENCH_LIVE_IDLE_SECONDS", "30"))
HTTP_PORT = int(os.environ["HTTP_PORT"])
TOKEN = os.environ["API_TOKEN"]
WORKER_BIN = os.environ["SYNC_WORKER_BIN"]
WORK = os.environ["WORK"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BigDovecot(Dovecot):
    """The test Dovecot with process and connection limits raised for one
    IDLE session per user, and every user's INBOX empty but for one."""

    def write_config(self, uid, gid):
        super().write_config(uid, gid)
        n = len(self.users) + 200
        with open(os.path.join(self.dir, "dovecot.conf"), "a") as f:
            f.write("default_process_limit = %d\n"
                    "default_client_limit = %d\n"
                    "mail_max_userip_connections = 50\n"
                    "service imap {\n  process_limit = %d\n}\n"
                    "service auth {\n  client_limit = %d\n}\n"
                    "service anvil {\n  client_limit = %d\n}\n"
                    % (n, 4 * n, n, 4 * n, 4 * n))


def api(method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=30)
    try:
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Authorization": "Bearer " + TOKEN,
                           "Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        return r.status, json.loads(data) if data else None
    finally:
        c.close()


def create_account(user, password, port):
    status, body = api("POST", "/api/accounts", {
        "emailAddress": "%s@example.com" % user, "imapHost": "127.0.0.1", "imapPort": port,
        "security": "none", "username": user, "password": password})
    if status != 201:
        raise SystemExit("bench: account of %s: %s %r" % (user, status, body))
    return body["id"]


def watch_states():
    """{accountId: watch} of every account."""
    out, cursor = {}, None
    while True:
        path = "/api/accounts" + ("?cursor=%s" % cursor if cursor else "")
        status, body = api("GET", path)
        if status != 200:
            raise SystemExit("bench: GET /api/accounts: %s %r" % (status, body))
        items = body["accounts"] if isinstance(body, dict) else body
        for a in items:
            out[a["id"]] = a.get("watch") or {}
        cursor = body.get("nextCursor") if isinstance(body, dict) else None
        if not cursor:
            return out


class Worker:
    """The sync-worker under measurement."""

    def __init__(self, env):
        self.env = env
        self.proc = None
        self.log = os.path.join(WORK, "bench-live-sync-worker.log")

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([WORKER_BIN], env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        with open(os.path.join(WORK, "bench_live.pids"), "a") as f:
            f.write("%d\n" % self.proc.pid)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def last_line(self):
        with open(self.log, errors="replace") as f:
            lines = [l.strip() for l in f if l.strip()]
        return lines[-1] if lines else "(empty log)"

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def cpu_ticks(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime


def quantile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def wait_all_idle(ids, after, timeout, worker):
    """Seconds until every account of ids has its watch idle, entered after
    the wall time after; None when not within timeout or when the worker
    died (its last log line printed)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if not worker.alive():
            print("worker_died %s" % worker.last_line())
            return None
        states = watch_states()
        up = sum(1 for i in ids if states.get(i, {}).get("state") == "idle" and
                 iso_s(states[i].get("since")) >= after)
        if up == len(ids):
            return time.monotonic() - start
        time.sleep(0.2)
    return None


def iso_s(s):
    if not s:
        return 0.0
    d = datetime.datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc)
    return d.timestamp() + float("0" + s[19:].rstrip("Z"))


class Arrivals:
    """When each mail.new arrived, by uid, noted by a reader thread."""

    def __init__(self):
        self.arrived = {}
        self.cond = threading.Condition()

    def note(self, uid):
        with self.cond:
            self.arrived.setdefault(uid, time.monotonic())
            self.cond.notify_all()

    def wait(self, uid, timeout):
        end = time.monotonic() + timeout
        with self.cond:
            while uid not in self.arrived and time.monotonic() < end:
                self.cond.wait(end - time.monotonic())
            return self.arrived.get(uid)


class SSE(Arrivals):
    """An account's SSE stream."""

    def __init__(self, acct):
        super().__init__()
        self.conn = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=120)
        self.conn.request("GET", "/api/accounts/%s/events" % acct,
                          headers={"Authorization": "Bearer " + TOKEN})
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, self.resp.status
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        event = None
        try:
            for line in self.resp:
                line = line.decode().rstrip("\r\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "mail.new":
                    self.note(json.loads(line[6:])["uid"])
                elif not line:
                    event = None
        except (OSError, ValueError):
            pass


class WSClient(Arrivals):
    """An account's WebSocket (its pings answered)."""

    def __init__(self, acct):
        super().__init__()
        self.ws = WS(HTTP_PORT, "/api/accounts/%s/events" % acct, token=TOKEN)
        assert self.ws.status == 101, self.ws.status
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        self.ws.sock.settimeout(None)
        try:
            while True:
                op, data = self.ws.recv_frame()
                if op == 0x9:
                    self.ws.send_frame(0xA, data)
                elif op == 0x1:
                    ev = json.loads(data)
                    if ev.get("type") == "mail.new":
                        self.note(ev["uid"])
                elif op == 0x8:
                    return
        except (OSError, ValueError, WSClosed):
            return


def latency(dovecot, acct):
    """APPEND to mail.new at an SSE and a WebSocket client, MESSAGES times."""
    sse, ws = SSE(acct), WSClient(acct)
    time.sleep(0.5)
    imap = imaplib.IMAP4("127.0.0.1", dovecot.port)
    imap.login("lat", "lat-pw")
    sse_ms, ws_ms, lost = [], [], 0
    for n in range(MESSAGES):
        t0 = time.monotonic()
        typ, data = imap.append("INBOX", None, None, message("lat", 1000 + n))
        uid = int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1))
        a = sse.wait(uid, 10)
        b = ws.wait(uid, 10)
        if a is None or b is None:
            lost += 1
        if a is not None:
            sse_ms.append((a - t0) * 1000)
        if b is not None:
            ws_ms.append((b - t0) * 1000)
    imap.logout()
    return sse_ms, ws_ms, lost


def main():
    # A SIGTERM (the wrapper's cleanup, a timeout) still ends Dovecot.
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    users = {"lat": "lat-pw"}
    users.update({"u%04d" % i: "pw%04d" % i for i in range(ACCOUNTS)})
    dovecot = BigDovecot(users, messages=1)
    dovecot.start(timeout=120)
    worker = None
    try:
        env = dict(os.environ)
        env.update({"SYNC_CONCURRENCY": "2", "IMAP_MAX_WATCHES": str(ACCOUNTS + 10),
                    "IMAP_MAX_CONNECTIONS_PER_HOST": "0", "SCHED_AUTO_TICK": "false"})
        worker = Worker(env)
        worker.start()
        lat = create_account("lat", "lat-pw", dovecot.port)
        if wait_all_idle([lat], 0, 60, worker) is None:
            raise SystemExit("bench: the latency account's watch never came up")
        sse_ms, ws_ms, lost = latency(dovecot, lat)
        print("latency_sse_p50 %.1f ms" % quantile(sse_ms, 0.5))
        print("latency_sse_p99 %.1f ms" % quantile(sse_ms, 0.99))
        print("latency_ws_p50 %.1f ms" % quantile(ws_ms, 0.5))
        print("latency_ws_p99 %.1f ms" % quantile(ws_ms, 0.99))
        print("latency_lost %d messages" % lost)
        sys.stdout.flush()

        # Many watches on one worker: created while it runs, then restarted.
        t_create = time.monotonic()
        ids = [create_account(u, users[u], dovecot.port) for u in sorted(users) if u != "lat"]
        ids.append(lat)
        # From the first account created: creating them is part of it.
        first = time.monotonic() - t_create if wait_all_idle(ids, 0, 600, worker) is not None else None
        print("watches_up_from_create %.1f s" % (first if first is not None else -1))
        up, cpu, rss = None, float("nan"), float("nan")
        if first is not None:
            worker.stop()
            t_restart = time.time()
            worker.start()
            up = wait_all_idle(ids, t_restart, 600, worker)
            print("watches_up_after_restart %.1f s" % (up if up is not None else -1))
        if up is not None:
            time.sleep(2)
            c0, w0 = worker.cpu_ticks(), time.monotonic()
            time.sleep(IDLE_SECONDS)
            c1, w1 = worker.cpu_ticks(), time.monotonic()
            cpu = 100.0 * (c1 - c0) / CLK_TCK / (w1 - w0)
            rss = worker.rss_kib() / 1024.0
        print("worker_idle_cpu %.2f %%" % cpu)
        print("worker_rss %.1f MiB" % rss)
        print("watches %d accounts" % len(ids))
        print()
        print("aims:")

        def aim(ok, text):
            print("  %-4s %s" % ("PASS" if ok else "MISS", text))
        aim(lost == 0, "no errors: every APPENDed message arrived on both clients (%d lost)" % lost)
        aim(quantile(sse_ms, 0.99) < 1000, "SSE delivery p99 < 1 s (%.0f ms)"
            % quantile(sse_ms, 0.99))
        aim(quantile(ws_ms, 0.99) < 1000, "WebSocket delivery p99 < 1 s (%.0f ms)"
            % quantile(ws_ms, 0.99))
        aim(first is not None and up is not None,
            "no errors: every watch came up, at creation and after a restart")
        aim(rss < 64, "worker RSS with %d watches < 64 MiB (%.1f)" % (len(ids), rss))
        aim(cpu < 2, "worker CPU idle with %d watches < 2%% of a core (%.2f)" % (len(ids), cpu))
    finally:
        if worker:
            worker.stop()
        dovecot.stop()


if __name__ == "__main__":
    main()
