"""End to end over HTTP: the Server-Sent Events stream of a progress record
(seed 000): snapshot first, then every update in version order, heartbeats,
and Last-Event-ID on reconnect."""

import time
import unittest

from e2ebase import StackTestCase
from stack import SSEReader, event_record, event_version

UPDATES = 1000


class StreamTest(StackTestCase):
    STACK_ENV = {"SSE_HEARTBEAT_SECONDS": "1"}

    def open(self, sid, last_event_id=None):
        r = SSEReader("127.0.0.1", self.stack.http_port, "/api/progress/%s/stream" % sid,
                      token=self.stack.token, last_event_id=last_event_id)
        self.addCleanup(r.close)
        self.assertEqual(r.status, 200, getattr(r, "body", b"")[:300])
        self.assertIn("text/event-stream", r.headers.get("Content-Type", ""))
        return r

    def versions(self, events):
        return [event_version(e) for e in events if event_version(e) is not None]

    def test_snapshot_then_1000_updates_in_order(self):
        sid = self.new_id("sse")
        first = self.create_record(sid)
        s = self.open(sid)
        self.assertTrue(s.wait_for(lambda ev: len(ev) >= 1, 20), "no snapshot event")
        snap = s.events[0]
        self.assertEqual(event_version(snap), first["version"])
        rec = event_record(snap)
        self.assertIsInstance(rec, dict, "snapshot data is not a JSON record: %r" % snap)
        self.assertEqual(rec.get("sessionId"), sid)
        self.assertEqual(rec.get("currentStep"), first["currentStep"])

        t0 = time.monotonic()
        last = None
        for i in range(UPDATES):
            r = self.http.post("/api/progress/%s" % sid, {"currentStep": i + 2})
            self.assertStatus(r, 200)
            last = r.json["version"]
        post_s = time.monotonic() - t0
        self.assertEqual(last, first["version"] + UPDATES)
        ok = s.wait_for(lambda ev: last in self.versions(ev), 30)
        vs = self.versions(s.events)
        self.assertTrue(ok, "stream did not reach version %d (got %d events, last %r)"
                        % (last, len(vs), vs[-5:]))
        # Strictly increasing, none missing, ending at the final version.
        for a, b in zip(vs, vs[1:]):
            self.assertLess(a, b, "versions not strictly increasing: %d then %d" % (a, b))
        missing = sorted(set(range(first["version"], last + 1)) - set(vs))
        self.assertEqual(missing, [], "%d versions missing (first few %r); %d updates took %.2f s"
                         % (len(missing), missing[:10], UPDATES, post_s))
        self.assertEqual(vs[-1], last)
        final = event_record(s.events[-1])
        self.assertEqual(final.get("currentStep"), UPDATES + 1)
        self.assertEqual(final.get("currentAction"), first["currentAction"])
        self.assertIsNone(s.error)

    def test_stream_before_record_exists(self):
        # Seed 000: the browser opens the stream before the work writes.
        sid = self.new_id("early")
        s = self.open(sid)
        time.sleep(0.3)
        self.assertEqual(self.versions(s.events), [], "event before any write: %r" % s.events)
        self.create_record(sid)
        self.assertTrue(s.wait_for(lambda ev: 1 in self.versions(ev), 10),
                        "first write not streamed: %r" % s.events)
        self.assertEqual(event_record(s.events[-1]).get("sessionId"), sid)

    def test_last_event_id_current_sends_nothing_until_next_update(self):
        sid = self.new_id("leid")
        self.create_record(sid)
        cur = self.http.post("/api/progress/%s" % sid, {"currentStep": 2}).json["version"]
        s = self.open(sid, last_event_id=cur)
        time.sleep(1.5)
        self.assertEqual(self.versions(s.events), [],
                         "snapshot resent although Last-Event-ID is current: %r" % s.events)
        self.http.post("/api/progress/%s" % sid, {"currentStep": 3})
        self.assertTrue(s.wait_for(lambda ev: self.versions(ev), 10), "no event after update")
        self.assertEqual(self.versions(s.events)[0], cur + 1)
        self.assertEqual(event_record(s.events[0]).get("currentStep"), 3)

    def test_last_event_id_older_gets_current_record(self):
        sid = self.new_id("leid2")
        self.create_record(sid)
        for i in range(5):
            cur = self.http.post("/api/progress/%s" % sid, {"currentStep": 10 + i}).json
        s = self.open(sid, last_event_id=cur["version"] - 3)
        self.assertTrue(s.wait_for(lambda ev: self.versions(ev), 10), "nothing sent")
        self.assertEqual(self.versions(s.events)[-1], cur["version"])
        self.assertEqual(event_record(s.events[-1]).get("currentStep"), 14)

    def test_heartbeats_keep_idle_stream_alive(self):
        sid = self.new_id("hb")
        self.create_record(sid)
        s = self.open(sid)
        self.assertTrue(s.wait_for(lambda ev: ev, 10))
        n_events = len(s.events)
        time.sleep(3.5)
        beats = s.comments + sum(1 for e in s.events[n_events:] if event_version(e) is None)
        self.assertGreaterEqual(beats, 2, "no heartbeats in 3.5 s with SSE_HEARTBEAT_SECONDS=1")
        self.assertFalse(s.closed, "idle stream was closed")

    def test_two_streams_same_record(self):
        sid = self.new_id("two")
        self.create_record(sid)
        a, b = self.open(sid), self.open(sid)
        for i in range(20):
            last = self.http.post("/api/progress/%s" % sid, {"currentStep": i}).json["version"]
        for s in (a, b):
            self.assertTrue(s.wait_for(lambda ev: last in self.versions(ev), 10))
            self.assertEqual(self.versions(s.events), list(range(1, last + 1)))

    def test_stream_bad_id_is_400(self):
        r = self.http.get("/api/progress/bad%24id/stream")
        self.assertJsonError(r, 400, r"\bid\b|session")

    def test_sse_gauge_counts_open_streams(self):
        sid = self.new_id("gauge")
        self.create_record(sid)
        # Streams of earlier tests are closed; the gateway notices a client
        # that left at its next write (a heartbeat at the latest).
        base = self.wait_gauge(0, 10)
        self.assertEqual(base, 0, "SSE gauge not 0 with no stream open")
        s1, s2 = self.open(sid), self.open(sid)
        for s in (s1, s2):
            self.assertTrue(s.wait_for(lambda ev: ev, 10))
        self.assertEqual(sse_gauge(self.http.get("/metrics").raw.decode()), base + 2)
        s1.close()
        s2.close()
        self.assertEqual(self.wait_gauge(base, 10), base,
                         "SSE gauge did not go down after the clients left")

    def wait_gauge(self, want, timeout):
        deadline = time.monotonic() + timeout
        while True:
            got = sse_gauge(self.http.get("/metrics").raw.decode())
            if got == want or time.monotonic() > deadline:
                return got
            time.sleep(0.1)


def sse_gauge(text):
    gauges = set()
    for line in text.splitlines():
        if line.startswith("# TYPE ") and line.split()[-1] == "gauge" and "sse" in line.lower():
            gauges.add(line.split()[2])
    total = 0.0
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = line.split("{")[0].split()[0]
            if name in gauges:
                total += float(line.split()[-1])
    if not gauges:
        raise AssertionError("no SSE gauge in /metrics")
    return total


if __name__ == "__main__":
    unittest.main()
