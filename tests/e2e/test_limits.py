"""The gateway against hostile clients: a deadline on request heads
(slowloris), connections per client address (IPv4 and IPv6), the cap on
event streams (total and per address) with its 429 and 503 refusals, and the
buffer cap of a stream whose client does not read."""

import json
import os
import re
import resource
import select
import socket
import time
import unittest

import e2ebase
from e2ebase import StackTestCase

TOKEN = "limits-test-token"
RO_TOKEN = "limits-read-only-token"


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def connect(port, src="127.0.0.1", host="127.0.0.1", family=socket.AF_INET, timeout=5.0,
            rcvbuf=None):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if src is not None:
        s.bind((src, 0))
    s.connect((host, port))
    return s


def read_head(s, timeout=5.0):
    """The status and headers of a reply on s, and the bytes after them."""
    s.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.1 (\d+)", lines[0]) if lines else None
    status = int(m.group(1)) if m else None
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest


def read_all(s, rest=b"", timeout=5.0):
    """What s reads until the server closes it (or timeout passes)."""
    s.settimeout(timeout)
    chunks = [rest]
    try:
        for chunk in iter(lambda: s.recv(65536), b""):
            chunks.append(chunk)
    except (ConnectionResetError, socket.timeout):
        pass
    return b"".join(chunks)


def stream_request(path, token, host="127.0.0.1", close=False):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
            "Accept: text/event-stream\r\n%s\r\n"
            % (path, host, token, "Connection: close\r\n" if close else "")).encode()


def websocket_request(token):
    return ("GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n" % token).encode()


def closed_by_peer(s):
    """Whether the server closed s: what it sent is read, then the end (or a
    reset) is seen rather than a socket with nothing more for now."""
    try:
        s.setblocking(False)
        while True:
            if s.recv(65536) == b"":
                return True
    except BlockingIOError:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True
    finally:
        s.setblocking(True)


def timed_get(port, path, src="127.0.0.1", token=None):
    """(status, seconds) of one GET on a new connection."""
    t0 = time.monotonic()
    s = connect(port, src=src, timeout=5.0)
    try:
        auth = "Authorization: Bearer %s\r\n" % token if token else ""
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n"
                   % (path, auth)).encode())
        status, _, _ = read_head(s)
    finally:
        s.close()
    return status, time.monotonic() - t0


class HeadDeadlineTest(StackTestCase):
    """2,000 clients sending their request heads a byte at a time: the API
    still answers at once, and every one of them is closed by the deadline."""

    HEAD_TIMEOUT = 3
    SLOW = 2000
    PER_ADDRESS = 200  # the slow clients come from 10 addresses
    STACK_ENV = {"API_TOKEN": TOKEN, "GATEWAY_HEAD_TIMEOUT": str(HEAD_TIMEOUT)}

    def test_slowloris_is_closed_by_the_head_deadline(self):
        self.assertGreater(raise_nofile(), self.SLOW + 200)
        port = self.stack.http_port
        slow = []
        try:
            t_open = time.monotonic()
            for i in range(self.SLOW):
                src = "127.0.0.%d" % (10 + i // self.PER_ADDRESS)
                s = connect(port, src=src)
                s.sendall(b"GET /healthz HTTP/1.1\r\n")
                slow.append(s)
            # While they trickle, the API answers within a second.
            sid = self.new_id("slow")
            for _ in range(3):
                for s in slow:
                    try:
                        s.sendall(b"X")
                    except OSError:
                        pass
                status, took = timed_get(port, "/healthz")
                self.assertEqual(status, 200)
                self.assertLess(took, 1.0, "/healthz took %.2f s" % took)
                t0 = time.monotonic()
                r = self.http.post("/api/progress/%s" % sid, {"phase": "slow"}, timeout=5)
                self.assertStatus(r, 200)
                self.assertLess(time.monotonic() - t0, 1.0)
            # Keep trickling past the deadline: every head is cut off.
            deadline = t_open + self.HEAD_TIMEOUT + 5
            open_ = list(slow)
            while open_ and time.monotonic() < deadline:
                still = []
                for s in open_:
                    if closed_by_peer(s):
                        continue
                    try:
                        s.sendall(b"X")
                        still.append(s)
                    except OSError:
                        pass
                open_ = still
                time.sleep(0.5)
            self.assertEqual(len(open_), 0, "%d slow heads still open %.1f s after the "
                             "deadline" % (len(open_), deadline - t_open))
            status, took = timed_get(port, "/healthz")
            self.assertEqual(status, 200)
        finally:
            for s in slow:
                s.close()

    def test_second_head_on_a_kept_connection_has_the_deadline_too(self):
        s = connect(self.stack.http_port)
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, _ = read_head(s)
            self.assertEqual(status, 200)
            t0 = time.monotonic()
            s.sendall(b"GET /healthz HTTP/1.1\r\n")
            while time.monotonic() - t0 < self.HEAD_TIMEOUT + 4:
                if closed_by_peer(s):
                    break
                try:
                    s.sendall(b"X")
                except OSError:
                    break
                time.sleep(0.5)
            took = time.monotonic() - t0
            self.assertLess(took, self.HEAD_TIMEOUT + 3, "the slow second head was not cut off")
            self.assertGreater(took, self.HEAD_TIMEOUT - 1.5)
        finally:
            s.close()

    def test_a_complete_request_is_not_cut_off(self):
        """A stream outlives the head deadline: the deadline is the head's."""
        sid = self.new_id("long")
        self.create_record(sid)
        s = connect(self.stack.http_port, timeout=10)
        try:
            s.sendall(stream_request("/api/progress/%s/stream" % sid, TOKEN))
            status, _, _ = read_head(s)
            self.assertEqual(status, 200)
            time.sleep(self.HEAD_TIMEOUT + 2)
            self.assertFalse(closed_by_peer(s), "a stream was closed by the head deadline")
        finally:
            s.close()

    def test_a_websocket_outlives_the_head_deadline(self):
        s = connect(self.stack.http_port, timeout=10)
        try:
            s.sendall(websocket_request(TOKEN))
            status, _, _ = read_head(s)
            self.assertEqual(status, 101)
            time.sleep(self.HEAD_TIMEOUT + 2)
            self.assertFalse(closed_by_peer(s), "a WebSocket was closed by the head deadline")
        finally:
            s.close()


class StreamLimitTest(StackTestCase):
    """5,000 stream attempts from one address: past the per-address cap they
    are refused with 429, and other addresses still stream."""

    PER_ADDRESS = 50
    STACK_ENV = {"API_TOKEN": TOKEN, "API_READ_ONLY_TOKEN": RO_TOKEN,
                 "GATEWAY_MAX_STREAMS_PER_ADDRESS": str(PER_ADDRESS),
                 "GATEWAY_MAX_CONNECTIONS_PER_ADDRESS": "100",
                 "GATEWAY_MAX_STREAMS": "80"}

    def open_stream(self, path, src="127.0.0.1", token=RO_TOKEN):
        s = connect(self.stack.http_port, src=src)
        s.sendall(stream_request(path, token))
        status, headers, rest = read_head(s)
        return s, status, headers, rest

    def check_refusal(self, s, status, headers, rest, want, pattern):
        self.assertEqual(status, want)
        self.assertIn("application/json", headers.get("content-type", ""))
        self.assertRegex(headers.get("retry-after", ""), r"^\d+$")
        body = read_all(s, rest)
        n = int(headers.get("content-length", len(body)))
        doc = json.loads(body[:n].decode())
        self.assertRegex(doc["error"], pattern)
        e2ebase.API.check("GET", "/api/progress/x/stream", status, headers["content-type"],
                          body[:n])

    def test_streams_per_address(self):
        self.assertGreater(raise_nofile(), 400)
        sid = self.new_id("many")
        self.create_record(sid)
        path = "/api/progress/%s/stream" % sid
        held, refused = [], 0
        try:
            for i in range(5000):
                s, status, headers, rest = self.open_stream(path)
                if status == 200:
                    held.append(s)
                    self.assertLess(len(held), self.PER_ADDRESS + 1)
                    continue
                if refused == 0 or i % 500 == 0:
                    self.check_refusal(s, status, headers, rest, 429,
                                       r"GATEWAY_MAX_STREAMS_PER_ADDRESS")
                else:
                    self.assertEqual(status, 429)
                refused += 1
                s.close()
            self.assertEqual(len(held), self.PER_ADDRESS)
            self.assertEqual(refused, 5000 - self.PER_ADDRESS)
            # Another address streams, the API answers the first.
            s, status, _, rest = self.open_stream(path, src="127.0.0.2")
            held.append(s)
            self.assertEqual(status, 200)
            s.settimeout(5)
            deadline = time.monotonic() + 5
            while b"event: progress" not in rest and time.monotonic() < deadline:
                rest += s.recv(65536)
            self.assertIn(b"event: progress", rest)
            status, took = timed_get(self.stack.http_port, "/healthz")
            self.assertEqual(status, 200)
            r = self.http.get("/api/progress/%s" % sid)
            self.assertStatus(r, 200)
            # The WebSocket form counts against the same cap.
            w = connect(self.stack.http_port)
            w.sendall(websocket_request(TOKEN))
            status, headers, _ = read_head(w)
            w.close()
            self.assertEqual(status, 429)
            # A stream that ends gives its place back.
            held.pop(0).close()
            deadline = time.monotonic() + 5
            while True:
                s, status, _, _ = self.open_stream(path)
                if status == 200 or time.monotonic() > deadline:
                    break
                s.close()
                time.sleep(0.1)
            held.append(s)
            self.assertEqual(status, 200)
        finally:
            for s in held:
                s.close()

    def test_total_streams_keep_a_reserve(self):
        """At GATEWAY_MAX_STREAMS, a new stream from a fresh address is 503,
        and /healthz and the API still answer."""
        sid = self.new_id("total")
        self.create_record(sid)
        path = "/api/progress/%s/stream" % sid
        held = []
        try:
            deadline = time.monotonic() + 10
            for src in ("127.0.1.1", "127.0.1.2"):
                for _ in range(40):
                    while True:
                        s, status, _, _ = self.open_stream(path, src=src)
                        if status == 200 or time.monotonic() > deadline:
                            break
                        s.close()  # the last test's streams are still closing
                        time.sleep(0.1)
                    self.assertEqual(status, 200)
                    held.append(s)
            s, status, headers, rest = self.open_stream(path, src="127.0.1.3")
            self.check_refusal(s, status, headers, rest, 503, r"GATEWAY_MAX_STREAMS\b")
            s.close()
            status, took = timed_get(self.stack.http_port, "/healthz", src="127.0.1.3")
            self.assertEqual(status, 200)
            self.assertLess(took, 1.0)
            r = self.http.post("/api/progress/%s" % sid, {"phase": "reserve"})
            self.assertStatus(r, 200)
        finally:
            for s in held:
                s.close()


class PerAddressChecks:
    """Helpers of the per-address connection limit (5 in these tests)."""

    HOST, FAMILY = "127.0.0.1", socket.AF_INET

    def served(self, src):
        try:
            s = connect(self.stack.http_port, src=src, host=self.HOST, family=self.FAMILY,
                        timeout=5.0)
        except OSError:
            return False
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(100).startswith(b"HTTP/1.1 200")
        except (ConnectionResetError, socket.timeout, BrokenPipeError):
            return False
        finally:
            s.close()

    def hold(self, n, src):
        """n kept-alive connections from src, each served once. A refusal
        is tried again for a while: a connection this test closed just
        before may hold its place until the gateway has seen it close."""
        socks = []
        deadline = time.monotonic() + 5
        while len(socks) < n:
            s = connect(self.stack.http_port, src=src, host=self.HOST, family=self.FAMILY)
            try:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                status = read_head(s)[0]
            except (ConnectionResetError, BrokenPipeError, socket.timeout):
                status = None
            if status == 200:
                socks.append(s)
                continue
            s.close()
            if time.monotonic() > deadline:
                for h in socks:
                    h.close()
                self.fail("connection %d of %d from %s was not served" % (len(socks) + 1, n, src))
            time.sleep(0.1)
        return socks

    def check_limit(self, src, other=None):
        self.http.close()  # its keep-alive connection would take a place
        socks = self.hold(5, src)
        try:
            self.assertFalse(self.served(src), "a sixth connection was served")
            if other:
                self.assertTrue(self.served(other), "another address was refused")
            socks.pop().close()
            # Once: a second try right after a served one could find the
            # place still held by the connection that try just closed.
            deadline = time.monotonic() + 5
            given_back = self.served(src)
            while not given_back and time.monotonic() < deadline:
                time.sleep(0.1)
                given_back = self.served(src)
            self.assertTrue(given_back, "the freed place was not given back")
        finally:
            for s in socks:
                s.close()

    def check_streams(self, src, host_header):
        socks = []
        try:
            for i in range(3):
                # A reset is the connection limit, not the stream limit: a
                # connection an earlier test closed may still hold a place.
                deadline = time.monotonic() + 5
                while True:
                    s = connect(self.stack.http_port, src=src, host=self.HOST,
                                family=self.FAMILY)
                    socks.append(s)
                    try:
                        s.sendall(stream_request("/api/events", TOKEN, host=host_header))
                        status, headers, _ = read_head(s)
                    except (ConnectionResetError, BrokenPipeError):
                        status = None
                    if status is not None or time.monotonic() > deadline:
                        break
                    socks.pop().close()
                    time.sleep(0.1)
                self.assertEqual(status, 200 if i < 2 else 429)
            self.assertRegex(headers.get("retry-after", ""), r"^\d+$")
        finally:
            for s in socks:
                s.close()


class ConnectionsPerAddressTest(PerAddressChecks, StackTestCase):
    """GATEWAY_MAX_CONNECTIONS_PER_ADDRESS on IPv4 loopback: one address at
    its limit is turned away while another is served."""

    STACK_ENV = {"API_TOKEN": TOKEN, "GATEWAY_MAX_CONNECTIONS_PER_ADDRESS": "5",
                 "GATEWAY_MAX_STREAMS_PER_ADDRESS": "2"}

    def test_ipv4_loopback(self):
        self.check_limit("127.0.0.1", "127.0.0.2")

    def test_ipv4_streams_per_address(self):
        self.check_streams("127.0.0.3", "127.0.0.1")


def ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


class ConnectionsPerAddressV6Test(PerAddressChecks, StackTestCase):
    """The same with the gateway on [::1]. ::1 is the only IPv6 loopback
    address, so the limit is shown turning it away and letting it back once
    a place is free."""

    HOST, FAMILY = "::1", socket.AF_INET6
    STACK_ENV = ConnectionsPerAddressTest.STACK_ENV

    @classmethod
    def setUpClass(cls):
        if not ipv6_loopback():
            raise AssertionError("this machine has no IPv6 loopback (::1)")
        cls.stack = e2ebase.Stack(env=cls.STACK_ENV, start_gateway=False).start()
        try:
            env = cls.stack.service_env()
            env["GATEWAY_LISTEN"] = "[::1]:%d" % cls.stack.http_port
            cls.stack.gateway = e2ebase.stack.Service("gateway", env, cls.stack.workdir)
            cls.stack.gateway.start()
            cls.http = e2ebase.stack.Client("::1", cls.stack.http_port, TOKEN)
            deadline = time.monotonic() + 30
            while True:
                try:
                    if cls.http.get("/readyz", timeout=2).status == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline or not cls.stack.gateway.alive():
                    raise AssertionError("the gateway on [::1] did not become ready")
                time.sleep(0.1)
        except BaseException:
            cls.stack.dump_logs()
            cls.stack.stop(check=False)
            cls.stack = None
            raise

    def test_ipv6_loopback(self):
        self.check_limit("::1")

    def test_ipv6_streams_per_address(self):
        self.check_streams("::1", "[::1]")


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1]) * 1024
    raise AssertionError("no VmRSS for %d" % pid)


class StreamBufferTest(StackTestCase):
    """200 streams whose clients do not read while a 200 KiB record is
    updated 500 times: the gateway's memory stays within what
    GATEWAY_STREAM_BUFFER allows, and each stream, once read, ends on the
    final record."""

    BUFFER = 262144
    STREAMS = 200
    UPDATES = 500
    RECORD = 200 * 1024
    CONN_MEMORY = 8192
    QUARANTINE_MB = 16  # the sanitizer build's memory of freed blocks
    STACK_ENV = {"API_TOKEN": TOKEN, "GATEWAY_STREAM_BUFFER": str(BUFFER),
                 "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1:quarantine_size_mb=%d"
                                 % QUARANTINE_MB,
                 "GATEWAY_MAX_STREAMS_PER_ADDRESS": "250",
                 "GATEWAY_MAX_CONNECTIONS_PER_ADDRESS": "300",
                 "GATEWAY_MAX_BODY": "1048576"}

    def test_slow_readers_are_bounded_and_get_the_final_record(self):
        raise_nofile()
        sid = self.new_id("big")
        pad = "x" * self.RECORD
        self.create_record(sid, {"phase": "start", "pad": pad, "n": 0})
        socks = []
        try:
            for _ in range(self.STREAMS):
                s = connect(self.stack.http_port, rcvbuf=4096, timeout=10)
                s.sendall(stream_request("/api/progress/%s/stream" % sid, TOKEN))
                socks.append(s)
            time.sleep(1.0)
            pid = self.stack.gateway.proc.pid
            base = rss_bytes(pid)
            # A stream holds at most its buffer and the newest record (the
            # one that did not fit), in a buffer that grows by doubling,
            # besides its connection's pool and a block of the reply.
            per_stream = 2 * (self.BUFFER + self.RECORD + 4096) + self.CONN_MEMORY + 4096
            slack = 32 * 1024 * 1024
            with open("/proc/%d/maps" % pid) as f:
                if "libasan" in f.read():
                    # Under the sanitizer: redzones and shadow on every
                    # block, and the quarantine of freed ones.
                    per_stream = per_stream * 5 // 4
                    slack += (self.QUARANTINE_MB + 64) * 1024 * 1024
            bound = base + self.STREAMS * per_stream + slack
            peak = base
            version = None
            for i in range(1, self.UPDATES + 1):
                r = self.http.post("/api/progress/%s" % sid, {"n": i, "pad": pad}, timeout=30)
                self.assertStatus(r, 200)
                version = r.json["version"]
                if i % 10 == 0:
                    peak = max(peak, rss_bytes(pid))
                    self.assertLess(peak, bound, "gateway RSS %.0f MiB over its bound %.0f MiB "
                                    "after %d updates" % (peak / 2**20, bound / 2**20, i))
            time.sleep(1.0)
            peak = max(peak, rss_bytes(pid))
            self.assertLess(peak, bound)
            note = "RSS base %.1f MiB, peak %.1f MiB, bound %.1f MiB" % (
                base / 2**20, peak / 2**20, bound / 2**20)
            print(note)
            # Every stream, read now, ends on the final record.
            want = ("id: %d\n" % version).encode()
            bufs = {s: b"" for s in socks}
            done, got = set(), set()
            deadline = time.monotonic() + 120
            for s in socks:
                s.setblocking(False)
            while len(done) < len(socks) and time.monotonic() < deadline:
                live = [s for s in socks if s not in done]
                ready, _, _ = select.select(live[:1000], [], [], 1.0)
                for s in ready:
                    try:
                        chunk = s.recv(1 << 20)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        done.add(s)
                        continue
                    b = bufs[s] + chunk
                    if want in b:
                        done.add(s)
                        got.add(s)
                    bufs[s] = b[-(len(want) + 64):]
            missing = [s for s in socks if s not in got]
            self.assertEqual(len(missing), 0, "%d of %d streams did not get version %d"
                             % (len(missing), len(socks), version))
        finally:
            for s in socks:
                s.close()


if __name__ == "__main__":
    unittest.main()
