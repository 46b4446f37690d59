"""End to end over a socket: GET /api/events as a WebSocket (RFC 6455). A
small client written here (masked frames, as a browser sends) checks the
handshake and its refusals, events as text frames (a claim made through the
API arrives as claim.claimed), pings answered, the close codes of oversized
and malformed frames (that socket only: another WebSocket and an SSE stream
keep working), the close (1001) when the gateway stops, pings every
WS_PING_SECONDS and the close (1001) of a client that does not answer one
within WS_PONG_TIMEOUT_SECONDS, and an account's
mail events (GET /api/accounts/:id/events, against a real Dovecot) live
and resumed with ?lastEventId=: exactly the events after it, in order."""

import base64
import hashlib
import imaplib
import json
import os
import socket
import struct
import time
import unittest

from dovecot import Dovecot, message
from e2ebase import StackTestCase
from stack import SSEReader

TOKEN = "e2e-websocket-token-0123456789"
RO_TOKEN = "e2e-websocket-read-only-token-01"
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WAIT = 5.0

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class WSClosed(Exception):
    pass


class WS:
    """One WebSocket: the handshake (status and headers kept when it is
    refused), then frames sent masked and read whole."""

    def __init__(self, port, path="/api/events", token=TOKEN, key=None, version="13",
                 headers=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % port,
                 "Upgrade: websocket", "Connection: Upgrade"]
        if self.key:
            lines.append("Sec-WebSocket-Key: " + self.key)
        if version:
            lines.append("Sec-WebSocket-Version: " + version)
        if token:
            lines.append("Authorization: Bearer " + token)
        lines += headers or []
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise WSClosed("closed during the handshake: %r" % self.buf)
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status_line, *hlines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {}
        for h in hlines:
            k, v = h.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()
        if self.status != 101:
            n = int(self.headers.get("content-length", "0"))
            while len(self.buf) < n:
                self.buf += self.sock.recv(4096)
            self.body = json.loads(self.buf[:n])

    def close(self):
        self.sock.close()

    def send_frame(self, opcode, payload=b"", fin=True, rsv=0, mask=True):
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload)
        mbit = 0x80 if mask else 0
        if n < 126:
            hdr = struct.pack("!BB", b0, mbit | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", b0, mbit | 126, n)
        else:
            hdr = struct.pack("!BBQ", b0, mbit | 127, n)
        if mask:
            mk = os.urandom(4)
            payload = bytes(c ^ mk[i % 4] for i, c in enumerate(payload))
            hdr += mk
        self.sock.sendall(hdr + payload)

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise WSClosed("socket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self):
        """(opcode, payload) of the next frame; the server never masks."""
        b0, b1 = self._need(2)
        if b1 & 0x80:
            raise AssertionError("the server masked a frame")
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._need(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._need(8))[0]
        return b0 & 0x0F, self._need(n)

    def next_event(self, pred=lambda e: True, timeout=WAIT):
        """The next text frame's JSON that satisfies pred (pongs and pings
        skipped)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.sock.settimeout(max(0.05, end - time.monotonic()))
            op, data = self.recv_frame()
            if op == CLOSE:
                raise WSClosed("closed: %r" % data)
            if op == TEXT:
                ev = json.loads(data.decode("utf-8"))
                if pred(ev):
                    return ev
        raise AssertionError("no matching event within %.1f s" % timeout)

    def expect_close(self, timeout=WAIT):
        """The code of the close frame that comes (events before it skipped);
        the socket must then end."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.sock.settimeout(max(0.05, end - time.monotonic()))
            op, data = self.recv_frame()
            if op == CLOSE:
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
                try:
                    self.send_frame(CLOSE, data[:2])
                except OSError:
                    pass
                self.sock.settimeout(WAIT)
                try:
                    while self.sock.recv(4096):
                        pass
                except (ConnectionResetError, socket.timeout):
                    pass
                return code
        raise AssertionError("no close frame within %.1f s" % timeout)


class WebSocketTest(StackTestCase):
    STACK_ENV = {"API_TOKEN": TOKEN, "API_READ_ONLY_TOKEN": RO_TOKEN,
                 "SSE_HEARTBEAT_SECONDS": "1"}

    def ws(self, *a, **kw):
        w = WS(self.stack.http_port, *a, **kw)
        self.addCleanup(w.close)
        return w

    def test_handshake_accept_key(self):
        w = self.ws()
        self.assertEqual(w.status, 101)
        self.assertEqual(w.headers.get("upgrade", "").lower(), "websocket")
        self.assertIn("upgrade", w.headers.get("connection", "").lower())
        want = base64.b64encode(hashlib.sha1((w.key + GUID).encode()).digest()).decode()
        self.assertEqual(w.headers.get("sec-websocket-accept"), want)

    def test_claim_arrives_as_text_frame(self):
        w = self.ws("/api/events?types=claim.*,health")
        self.assertEqual(w.status, 101)
        first = w.next_event()
        self.assertEqual(first["type"], "health")
        self.assertIsInstance(first["id"], int)
        sq = "ws-%d" % int(time.time() * 1000)
        r = self.http.post("/api/queue/claim", {"sq": sq, "botId": "BOTWS", "ttlSeconds": 60})
        self.assertEqual(r.status, 200, r.json)
        ev = w.next_event(lambda e: e["type"] == "claim.claimed" and e.get("sq") == sq)
        self.assertEqual(ev["botId"], "BOTWS")
        self.assertNotIn("token", ev)
        self.assertGreater(ev["id"], first["id"])

    def test_auth_required(self):
        w = self.ws(token=None)
        self.assertEqual(w.status, 401)
        w = self.ws(token="wrong-token-0123456789")
        self.assertEqual(w.status, 401)
        w = self.ws(token=RO_TOKEN)
        self.assertEqual(w.status, 403)
        w = self.ws("/api/events?types=nope")
        self.assertEqual(w.status, 400)
        self.assertIn("nope", w.body["error"])

    def test_bad_handshake_rejected(self):
        w = self.ws(key="")
        self.assertEqual(w.status, 400)
        self.assertIn("Sec-WebSocket-Key", w.body["error"])
        w = self.ws(key="not-base64-of-16-bytes")
        self.assertEqual(w.status, 400)
        self.assertIn("Sec-WebSocket-Key", w.body["error"])
        w = self.ws(version="8")
        self.assertEqual(w.status, 426)
        self.assertEqual(w.headers.get("sec-websocket-version"), "13")
        w = self.ws(version="")
        self.assertEqual(w.status, 400)
        self.assertIn("Sec-WebSocket-Version", w.body["error"])

    def test_ping_answered(self):
        w = self.ws()
        w.send_frame(PING, b"are-you-there")
        end = time.monotonic() + WAIT
        while time.monotonic() < end:
            op, data = w.recv_frame()
            if op == PONG:
                self.assertEqual(data, b"are-you-there")
                return
        self.fail("no pong")

    def assert_closes(self, code, send):
        """send(ws) on one WebSocket closes it with code; another WebSocket
        and an SSE stream opened before still receive events."""
        other = self.ws("/api/events?types=health,metrics")
        sse = SSEReader("127.0.0.1", self.stack.http_port, "/api/events?types=metrics",
                        token=TOKEN)
        self.addCleanup(sse.close)
        self.assertEqual(sse.status, 200)
        bad = self.ws()
        bad.next_event()
        send(bad)
        self.assertEqual(bad.expect_close(), code)
        n = len(sse.events)
        other.next_event(lambda e: e["type"] == "metrics")
        other.next_event(lambda e: e["type"] == "metrics")
        self.assertTrue(sse.wait_for(lambda evs: len(evs) > n and evs or None, WAIT))
        self.assertEqual(self.http.get("/healthz").status, 200)

    def test_oversized_message_closed_1009(self):
        self.assert_closes(1009, lambda w: w.send_frame(TEXT, b"x" * 70000))

    def test_oversized_fragments_closed_1009(self):
        def send(w):
            for _ in range(3):
                w.send_frame(TEXT if _ == 0 else 0, b"y" * 2000, fin=False)
            w.send_frame(0, b"y", fin=True)
        self.assert_closes(1009, send)

    def test_unmasked_frame_closed_1002(self):
        self.assert_closes(1002, lambda w: w.send_frame(TEXT, b"hello", mask=False))

    def test_reserved_bits_closed_1002(self):
        self.assert_closes(1002, lambda w: w.send_frame(TEXT, b"hello", rsv=4))

    def test_binary_closed_1003(self):
        self.assert_closes(1003, lambda w: w.send_frame(BINARY, b"\x00\x01"))

    def test_invalid_utf8_closed_1007(self):
        self.assert_closes(1007, lambda w: w.send_frame(TEXT, b"ok \xc3\x28 no"))

    def test_small_text_ignored(self):
        w = self.ws("/api/events?types=metrics")
        w.send_frame(TEXT, "hello, gateway \u00e9".encode())
        w.next_event(lambda e: e["type"] == "metrics")
        w.next_event(lambda e: e["type"] == "metrics")

    def test_client_close_answered(self):
        w = self.ws()
        w.send_frame(CLOSE, struct.pack("!H", 1000))
        self.assertEqual(w.expect_close(), 1000)


class WebSocketStopTest(StackTestCase):
    STACK_ENV = {"API_TOKEN": TOKEN, "GATEWAY_DRAIN_MS": "100"}

    def tearDown(self):
        pass  # the gateway is stopped on purpose; tearDownClass checks every exit status

    def test_close_1001_on_gateway_stop(self):
        a = WS(self.stack.http_port)
        b = WS(self.stack.http_port, "/api/events?types=metrics")
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        a.next_event()
        b.next_event()
        gw = self.stack.gateway
        t0 = time.monotonic()
        gw.proc.terminate()
        self.assertEqual(a.expect_close(), 1001)
        self.assertEqual(b.expect_close(), 1001)
        self.assertEqual(gw.proc.wait(15), 0)
        self.assertLess(time.monotonic() - t0, 5.0)


class WebSocketLimitTest(StackTestCase):
    STACK_ENV = {"API_TOKEN": TOKEN, "GATEWAY_MAX_CONNECTIONS": "3"}

    def refused(self):
        """Whether a new HTTP request goes unanswered for a second: past
        GATEWAY_MAX_CONNECTIONS the gateway accepts no more connections (they
        wait in the listen queue) until one closes."""
        s = socket.create_connection(("127.0.0.1", self.stack.http_port), timeout=1.0)
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return not s.recv(100).startswith(b"HTTP/1.1 200")
        except (ConnectionResetError, socket.timeout):
            return True
        finally:
            s.close()

    def open_ws(self):
        """A WebSocket, once the places of the last test's are given back."""
        deadline = time.monotonic() + WAIT
        while True:
            w = WS(self.stack.http_port)
            if w.status != 503 or time.monotonic() > deadline:
                return w
            w.close()
            time.sleep(0.1)

    def test_websockets_count_against_the_limit(self):
        """Two WebSockets (GATEWAY_MAX_STREAMS, a quarter of the connections
        kept for requests) and a kept-alive request fill the three places;
        a closed WebSocket gives its place back."""
        self.http.close()  # its keep-alive connection would take a slot
        self.assertFalse(self.refused())
        socks = [self.open_ws() for _ in range(2)]
        plain = socket.create_connection(("127.0.0.1", self.stack.http_port), timeout=5.0)
        try:
            for w in socks:
                self.assertEqual(w.status, 101)
                w.next_event()
            plain.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(plain.recv(100).startswith(b"HTTP/1.1 200"))
            self.assertTrue(self.refused(), "a fourth connection was served")
            socks[0].send_frame(CLOSE, struct.pack("!H", 1000))
            self.assertEqual(socks[0].expect_close(), 1000)
            deadline = time.monotonic() + WAIT
            while self.refused() and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertFalse(self.refused(), "the closed WebSocket's slot was not freed")
        finally:
            plain.close()
            for w in socks:
                w.close()

    def test_a_third_websocket_is_past_the_stream_cap(self):
        self.http.close()
        socks = [self.open_ws() for _ in range(2)]
        try:
            for w in socks:
                self.assertEqual(w.status, 101)
            third = WS(self.stack.http_port)
            third.close()
            self.assertEqual(third.status, 503)
        finally:
            for w in socks:
                w.close()


class WebSocketMailTest(StackTestCase):
    STACK_ENV = {"API_TOKEN": TOKEN, "SYNC_CONCURRENCY": "1", "SSE_HEARTBEAT_SECONDS": "1"}
    USERS = {"dora": "dora-pw"}

    @classmethod
    def setUpClass(cls):
        cls.dovecot = Dovecot(cls.USERS, messages=2).start()
        cls.addClassCleanup(cls.dovecot.stop)  # after tearDownClass, or a failed setUpClass
        super().setUpClass()
        r = cls.http.post("/api/accounts", {
            "emailAddress": "dora@example.com", "imapHost": "127.0.0.1",
            "imapPort": cls.dovecot.port, "security": "none", "username": "dora",
            "password": cls.USERS["dora"],
            # The test syncs by hand and needs the first run's events live: no
            # IDLE watch may sync the account before the socket is open.
            "watchFolders": []})
        assert r.status == 201, r
        cls.acct = r.json["id"]

    def sync(self):
        deadline = time.monotonic() + 20
        while True:
            r = self.http.post("/api/accounts/%s/sync" % self.acct)
            self.assertEqual(r.status, 202)
            if r.json["queued"] or time.monotonic() > deadline:
                return
            time.sleep(0.2)

    def append(self, n):
        c = imaplib.IMAP4("127.0.0.1", self.dovecot.port)
        try:
            c.login("dora", "dora-pw")
            c.append("INBOX", None, None, message("dora", n))
        finally:
            c.logout()

    def path(self, query=""):
        return "/api/accounts/%s/events%s" % (self.acct, query)

    def test_live_then_resume_after_last_event_id(self):
        w = WS(self.stack.http_port, self.path())
        self.assertEqual(w.status, 101)
        try:
            self.sync()
            news = [w.next_event(lambda e: e["type"] == "mail.new", timeout=30)
                    for _ in range(2)]
            self.assertEqual(sorted(e["uid"] for e in news), [1, 2])
            self.assertTrue(all(e["accountId"] == self.acct for e in news))
            k = news[-1]["id"]
        finally:
            w.close()
        for n in range(3, 6):
            self.append(n)
        self.sync()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = self.http.get("/api/accounts/%s/messages?limit=500" % self.acct)
            if len(r.json["messages"]) >= 5:
                break
            time.sleep(0.2)
        back = WS(self.stack.http_port, self.path("?lastEventId=" + k))
        self.addCleanup(back.close)
        self.assertEqual(back.status, 101)
        got = [back.next_event(lambda e: e["type"] in ("mail.new", "reset"), timeout=20)
               for _ in range(3)]
        self.assertEqual([(e["type"], e["uid"]) for e in got],
                         [("mail.new", 3), ("mail.new", 4), ("mail.new", 5)])
        self.assertEqual(len({e["id"] for e in got}), 3)

    def test_bad_last_event_id_rejected(self):
        w = WS(self.stack.http_port, self.path("?lastEventId=yesterday"))
        self.addCleanup(w.close)
        self.assertEqual(w.status, 400)
        self.assertIn("lastEventId", w.body["error"])
        w = WS(self.stack.http_port, self.path(), token=None)
        self.addCleanup(w.close)
        self.assertEqual(w.status, 401)


class WebSocketKeepaliveTest(StackTestCase):
    """WS_PING_SECONDS and WS_PONG_TIMEOUT_SECONDS: a ping every second; a
    client that does not answer it within two is closed with 1001, one
    that answers stays."""
    STACK_ENV = {"API_TOKEN": TOKEN, "WS_PING_SECONDS": "1", "WS_PONG_TIMEOUT_SECONDS": "2"}

    def ws(self):
        w = WS(self.stack.http_port)
        self.addCleanup(w.close)
        self.assertEqual(w.status, 101)
        return w

    def test_silent_client_closed_1001(self):
        w = self.ws()
        start = time.monotonic()
        op, _ = w.recv_frame()
        while op != PING:
            op, _ = w.recv_frame()
        pinged = time.monotonic()
        self.assertLess(pinged - start, 3.0)
        code = w.expect_close(timeout=6)
        self.assertEqual(code, 1001)
        late = time.monotonic() - pinged
        self.assertGreater(late, 1.5)
        self.assertLess(late, 5.0)

    def test_answering_client_kept(self):
        w = self.ws()
        end = time.monotonic() + 6
        pings = 0
        while time.monotonic() < end:
            w.sock.settimeout(max(0.05, end - time.monotonic()))
            try:
                op, data = w.recv_frame()
            except socket.timeout:
                break
            self.assertNotEqual(op, CLOSE, data)
            if op == PING:
                pings += 1
                w.send_frame(PONG, data)
        self.assertGreaterEqual(pings, 4)
        # Still open: a claim made now arrives.
        sq = "keepalive-%d" % int(time.time() * 1000)
        r = self.http.post("/api/queue/claim", {"sq": sq, "botId": "BOTKA", "ttlSeconds": 60})
        self.assertEqual(r.status, 200, r.json)
        w.sock.settimeout(WAIT)
        while True:
            op, data = w.recv_frame()
            if op == PING:
                w.send_frame(PONG, data)
                continue
            self.assertEqual(op, TEXT)
            ev = json.loads(data)
            if ev.get("type") == "claim.claimed" and ev.get("sq") == sq:
                break


if __name__ == "__main__":
    unittest.main()
