"""SIGTERM of a gateway under load: it exits 0 within 10 s, every request that
reached it is answered in full, no connection is reset or closed after its
request was sent, responses close their connections once it is stopping,
/readyz says so, event streams (GET /api/events too) end with a "shutdown"
event, idle keep-alive connections are closed cleanly, and once it has
stopped new connections are refused.

Load comes from threads that reuse keep-alive connections and threads that
open a connection per request; every attempt is classified: answered,
refused at connect (fine only after SIGTERM), or failed (a reset, an EOF or a
timeout after the connection was made: never fine)."""

import http.client
import json
import socket
import subprocess
import sys
import threading
import time
import unittest

import e2ebase  # noqa: F401 (every reply the stack's clients get is checked against openapi.json)
from stack import Stack, SSEReader

STOP_LIMIT_S = 10.0
# Long enough for the /readyz poller below to see the answer of a stopping
# gateway before its listener closes, also under the sanitizer build.
DRAIN_MS = 1000
KEEPALIVE_THREADS = 5
FRESH_THREADS = 5
LOAD_BEFORE_S = 1.0
# Requests started this long after the signal must see a stopping gateway.
SIGNAL_SLACK_S = 0.2


def request_for(w, i):
    """The i-th request of worker w: a mix of service calls and local routes."""
    sid = "gwstop-%d" % w
    k = i % 4
    if k == 0:
        return "POST", "/api/progress/" + sid, {"currentStep": i}
    if k == 1:
        return "GET", "/api/progress/" + sid, None
    if k == 2:
        return "POST", "/api/queue/claim", {"sq": "gwstop-%d-%d" % (w, i), "botId": "B"}
    return "GET", "/healthz", None


class Load:
    """Worker threads against one gateway port; outcomes land in self.log as
    (kind, t_start, detail) with kind "ok" (detail: status, Connection header,
    method and path), "refused" or "fail" (detail: what happened)."""

    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.log = []
        self.threads = []

    def add(self, kind, t, detail=None):
        with self.lock:
            self.log.append((kind, t, detail))

    def start(self):
        for w in range(KEEPALIVE_THREADS + FRESH_THREADS):
            keep = w < KEEPALIVE_THREADS
            th = threading.Thread(target=self.run, args=(w, keep), daemon=True)
            th.start()
            self.threads.append(th)

    def join(self):
        self.stop.set()
        for th in self.threads:
            th.join(30)
            assert not th.is_alive(), "a load thread hangs"

    def run(self, w, keepalive):
        conn = None
        i = 0
        # The first request of each worker creates its record, so its GETs
        # find one.
        first = True
        while not self.stop.is_set():
            if first:
                method, path, body = request_for(w, 0)
            else:
                i += 1
                method, path, body = request_for(w, i)
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
                t = time.monotonic()
                try:
                    conn.connect()
                except ConnectionRefusedError:
                    self.add("refused", t)
                    conn = None
                    time.sleep(0.01)
                    continue
                except OSError as e:
                    self.add("fail", t, "connect: %r" % e)
                    conn = None
                    continue
            t = time.monotonic()
            stage = "sending"
            try:
                hdrs = {"Content-Type": "application/json"} if body is not None else {}
                data = json.dumps(body).encode() if body is not None else None
                conn.request(method, path, body=data, headers=hdrs)
                stage = "waiting for the response"
                resp = conn.getresponse()
                stage = "reading the body"
                raw = resp.read()
            except (OSError, http.client.HTTPException) as e:
                self.add("fail", t, "%s %s: %r while %s (%s connection)"
                         % (method, path, e, stage, "keep-alive" if keepalive else "fresh"))
                conn.close()
                conn = None
                continue
            first = False
            self.add("ok", t, (resp.status, resp.getheader("Connection", ""), method, path,
                               raw[:200]))
            if not keepalive or resp.will_close or conn.sock is None:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()


class ReadyPoller:
    """GET /readyz on a new connection every 50 ms: (t_start, status, body) or
    (t_start, "refused", None)."""

    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.log = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            t = time.monotonic()
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
            try:
                conn.request("GET", "/readyz")
                resp = conn.getresponse()
                self.log.append((t, resp.status, resp.read()))
            except ConnectionRefusedError:
                self.log.append((t, "refused", None))
            except (OSError, http.client.HTTPException) as e:
                self.log.append((t, "fail", repr(e)))
            finally:
                conn.close()
            time.sleep(0.05)


def connect_refused(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
    except ConnectionRefusedError:
        return True
    s.close()
    return False


class GatewayStopTest(unittest.TestCase):
    def setUp(self):
        self.stack = Stack(env={"GATEWAY_DRAIN_MS": str(DRAIN_MS)}).start()
        self.port = self.stack.http_port
        self.gw = self.stack.gateway

    def tearDown(self):
        if self.failed():
            self.stack.dump_logs()
        self.stack.stop()  # raises unless every service exited 0

    def run(self, result=None):
        # The logs go with the stack's directory once it stopped cleanly:
        # print them before then when the test failed.
        before = (len(result.failures) + len(result.errors)) if result else 0
        self.failed = lambda: result is not None and len(result.failures) + len(
            result.errors) > before
        return super().run(result)

    def sigterm_and_wait(self):
        """SIGTERM the gateway; returns (t_kill, t_exit) after checking that
        it exited 0 within STOP_LIMIT_S."""
        t_kill = time.monotonic()
        self.gw.proc.terminate()
        try:
            code = self.gw.proc.wait(STOP_LIMIT_S + 20)
        except subprocess.TimeoutExpired:
            self.gw.proc.kill()
            self.gw.proc.wait(10)
            self.fail("gateway did not exit within %.0f s of SIGTERM" % (STOP_LIMIT_S + 20))
        t_exit = time.monotonic()
        self.assertEqual(code, 0, "gateway exit status %s after SIGTERM" % code)
        self.assertLess(t_exit - t_kill, STOP_LIMIT_S,
                        "gateway took %.1f s to exit after SIGTERM" % (t_exit - t_kill))
        return t_kill, t_exit

    def test_sigterm_under_load_answers_every_request(self):
        # An event stream that should end with a "shutdown" event.
        c = self.stack.client()
        r = c.post("/api/progress/gwstop-sse", {"currentStep": 1})
        self.assertEqual(r.status, 200, r)
        c.close()
        stream = SSEReader("127.0.0.1", self.port, "/api/progress/gwstop-sse/stream")
        self.addCleanup(stream.close)
        self.assertEqual(stream.status, 200)
        self.assertTrue(stream.wait_for(lambda evs: any(e["event"] == "progress" for e in evs),
                                        10), "no snapshot on the stream")
        typed = SSEReader("127.0.0.1", self.port, "/api/events")
        self.addCleanup(typed.close)
        self.assertEqual(typed.status, 200)
        self.assertTrue(typed.wait_for(lambda evs: any(e["event"] == "health" for e in evs), 10),
                        "no health event on the typed stream")

        load = Load(self.port)
        ready = ReadyPoller(self.port)
        load.start()
        ready.thread.start()
        try:
            time.sleep(LOAD_BEFORE_S)
            t_kill, t_exit = self.sigterm_and_wait()
            # Keep knocking for a moment once nothing listens.
            time.sleep(0.3)
        finally:
            load.join()
            ready.stop.set()
            ready.thread.join(30)

        log = load.log
        sys.stderr.write("\n%d answered before SIGTERM, %d after; %d refused; exit %.2f s after "
                         "SIGTERM\n" % (len([e for e in log if e[0] == "ok" and e[1] < t_kill]),
                                         len([e for e in log if e[0] == "ok" and e[1] >= t_kill]),
                                         len([e for e in log if e[0] == "refused"]),
                                         t_exit - t_kill))
        fails = [e for e in log if e[0] == "fail"]
        self.assertEqual(fails, [], "%d of %d attempts failed (reset, EOF or timeout after "
                         "the connection was made), first ones: %r"
                         % (len(fails), len(log), fails[:10]))
        early_refused = [e for e in log if e[0] == "refused" and e[1] < t_kill]
        self.assertEqual(early_refused, [], "connections refused before SIGTERM")
        ok = [e for e in log if e[0] == "ok"]
        self.assertGreater(len([e for e in ok if e[1] < t_kill]), 50, "too little load")
        bad = [e for e in ok if e[2][0] != 200]
        self.assertEqual(bad, [], "answers other than 200: %r" % bad[:10])
        during = [e for e in ok if e[1] >= t_kill + SIGNAL_SLACK_S]
        self.assertGreater(len(during), 0, "no request was answered while the gateway drained")
        kept = [e for e in during if e[2][1].lower() != "close"]
        self.assertEqual(kept, [], "answers of a stopping gateway without Connection: close: "
                         "%r" % kept[:5])
        self.assertTrue([e for e in log if e[0] == "refused" and e[1] >= t_kill],
                        "no connection was refused after the stop")

        # /readyz said not ready while the gateway drained.
        after = [e for e in ready.log if e[0] >= t_kill + SIGNAL_SLACK_S]
        self.assertEqual([e for e in ready.log if e[1] == "fail"], [],
                         "/readyz attempts failed: %r" % ready.log)
        self.assertEqual([e for e in after if e[1] == 200], [],
                         "/readyz answered 200 while the gateway stopped")
        stopping = [e for e in after if e[1] == 503]
        self.assertTrue(stopping, "/readyz never answered 503 while draining: %r" % after)
        self.assertRegex(stopping[0][2].decode(), r"stopping|shutting down")

        # The stream ended cleanly with a final event.
        self.assertTrue(stream.closed, "the event stream is still open")
        self.assertIsNone(stream.error, "the event stream broke: %r" % stream.error)
        self.assertTrue([e for e in stream.events if e["event"] == "shutdown"],
                        "no shutdown event: %r" % stream.events[-3:])
        # So did the typed event stream, shutdown its last event.
        self.assertTrue(typed.wait_for(lambda evs: typed.closed, 5), "the typed stream is open")
        self.assertIsNone(typed.error, "the typed stream broke: %r" % typed.error)
        self.assertEqual(typed.events[-1]["event"], "shutdown", typed.events[-3:])

        self.assertTrue(connect_refused(self.port), "something still listens")

    def test_idle_keepalive_connection_is_closed_cleanly(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=20)
        self.addCleanup(s.close)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data = b""
        while b'{"status":"ok"}' not in data:
            chunk = s.recv(4096)
            self.assertTrue(chunk, "closed before answering")
            data += chunk
        self.assertNotIn(b"connection: close", data.lower())
        self.sigterm_and_wait()
        try:
            rest = s.recv(4096)
        except ConnectionResetError:
            self.fail("the idle keep-alive connection was reset, not closed")
        self.assertEqual(rest, b"", "unexpected bytes on an idle connection: %r" % rest)
        self.assertTrue(connect_refused(self.port), "something still listens")


if __name__ == "__main__":
    unittest.main()
