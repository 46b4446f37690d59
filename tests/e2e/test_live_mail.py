"""End to end: live mail through IDLE, against a real Dovecot (dovecot.py)
and the stack with two sync-workers (ScaleStack), nothing syncing unless a
watch asks (no scheduled syncs, the test never asks for one).

A message APPENDed by another IMAP client arrives as mail.new on the
account's SSE stream and on its WebSocket within 2 s, and so do a flag set
elsewhere (mail.flags) and an expunge (mail.removed). A client that stops
after event k while ten more messages arrive and comes back with
Last-Event-ID: k gets exactly the events it missed, the ten mail.new in
order. Dovecot restarted under the IDLE: the watch comes back and the next
APPEND arrives. The sync-worker holding the watch killed with SIGKILL: the
other takes the watch within the lease time and the next APPEND arrives.
Throughout, a stream that stayed connected saw exactly the account's log:
no event lost, none twice."""

import datetime
import imaplib
import json
import re
import time
import unittest

import e2ebase
from dovecot import Dovecot, message
from stack import ScaleStack, SSEReader
from test_websocket import WS

TOKEN = "live-mail-token-0123456789abcdef"
USERS = {"ana": "ana-pw"}
LEASE_S = 6
RENEW_S = 1
LIVE_S = 2.0


def logged(event, acct):
    """How a sync-worker's log line about acct starts (logfmt)."""
    return 'event=%s msg="account=%s ' % (event, acct)


def since(watch):
    """The watch's since as seconds since the epoch."""
    return datetime.datetime.strptime(watch["since"][:19], "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc).timestamp() + float("0" + watch["since"][19:].rstrip("Z"))


def id_of(s):
    ms, _, seq = s.partition("-")
    return int(ms), int(seq)


class LiveMailTest(e2ebase.StackTestCase):
    STACK_ENV = None  # this class starts its own ScaleStack

    @classmethod
    def setUpClass(cls):
        cls.dovecot = Dovecot(USERS, messages=2).start()
        cls.addClassCleanup(cls.dovecot.stop)
        cls.stack = ScaleStack(
            {"progress": 1, "coordinator": 1, "sync-worker": 2, "gateway": 1},
            env={"API_TOKEN": TOKEN, "SYNC_CONCURRENCY": "1", "SSE_HEARTBEAT_SECONDS": "1",
                 "WATCH_LEASE_SECONDS": str(LEASE_S), "WATCH_RENEW_SECONDS": str(RENEW_S),
                 "IMAP_MAX_CONNECTIONS_PER_HOST": "0"}).start()
        cls.addClassCleanup(cls.stack.stop)
        cls.http = cls.stack.client(0)
        cls.addClassCleanup(cls.http.close)
        cls.port = cls.stack.ports["gateway"][0][0]
        r = cls.http.post("/api/accounts", {
            "emailAddress": "ana@example.com", "imapHost": "127.0.0.1",
            "imapPort": cls.dovecot.port, "security": "none", "username": "ana",
            "password": USERS["ana"]})
        assert r.status == 201, r
        cls.acct = r.json["id"]
        # Open before anything is logged: this stream sees every event.
        cls.all = SSEReader("127.0.0.1", cls.port, "/api/accounts/%s/events" % cls.acct,
                            token=TOKEN)
        cls.addClassCleanup(cls.all.close)
        assert cls.all.status == 200, cls.all.status

    @classmethod
    def tearDownClass(cls):
        pass  # the class cleanups stop everything

    def tearDown(self):
        for svc in self.stack.all():
            if svc.proc is not None:
                self.assertTrue(svc.alive(), "%s exited" % svc.label)

    # -- helpers -----------------------------------------------------------
    def imap(self):
        c = imaplib.IMAP4("127.0.0.1", self.dovecot.port)
        c.login("ana", USERS["ana"])
        c.select("INBOX")
        return c

    def append(self, n):
        c = self.imap()
        try:
            typ, data = c.append("INBOX", None, None, message("ana", n))
            self.assertEqual(typ, "OK", data)
            m = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
            return int(m.group(1)) if m else None
        finally:
            c.logout()

    def watch(self):
        r = self.http.get("/api/accounts/%s" % self.acct)
        self.assertStatus(r, 200)
        return r.json["watch"]

    def wait_watch(self, state, timeout, after=None):
        """Wait for the watch to be in state, entered after the wall time
        after (seconds since the epoch) when given."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            w = self.watch()
            if w["state"] == state and (after is None or since(w) > after):
                return time.monotonic()
            time.sleep(0.1)
        self.fail("watch not %s within %.0f s: %r" % (state, timeout, self.watch()))

    def stream(self, last_event_id=None):
        s = SSEReader("127.0.0.1", self.port, "/api/accounts/%s/events" % self.acct,
                      token=TOKEN, last_event_id=last_event_id)
        self.addCleanup(s.close)
        self.assertEqual(s.status, 200)
        return s

    def ws(self):
        w = WS(self.port, "/api/accounts/%s/events" % self.acct, token=TOKEN)
        self.addCleanup(w.close)
        self.assertEqual(w.status, 101)
        return w

    def ws_next(self, w, pred, timeout):
        """The next event on w matching pred, answering pings meanwhile."""
        return w.next_event(pred, timeout)

    def wait_sse(self, reader, pred, timeout):
        ev = reader.wait_for(lambda evs: next((e for e in evs if e["event"] and pred(e)), None),
                             timeout)
        self.assertTrue(ev, reader.events)
        return ev

    def mail(self, reader, type_):
        return [e for e in reader.events if e["event"] == type_]

    def owner(self):
        """The sync-worker whose log last opened the account's watch."""
        best, at = None, -1
        for svc in self.stack.replicas["sync-worker"]:
            if svc.proc is None:
                continue
            with open(svc.log_path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            opened = text.rfind(logged("watch_opened", self.acct))
            closed = text.rfind(logged("watch_closed", self.acct))
            if opened > closed and opened > at:
                best, at = svc, opened
        return best

    def assert_log_seen_once(self):
        """The stream connected from the start has exactly the log's events,
        in order, each once."""
        live = [e["id"] for e in self.all.events if e["event"] and e["event"] != "reset"]
        self.assertEqual(len(live), len(set(live)), live)
        self.assertEqual(live, sorted(live, key=id_of))
        replay = self.stream("0-0")
        got = replay.wait_for(lambda evs: len([e for e in evs if e["event"]]) >= len(live) and evs,
                              10)
        self.assertTrue(got)
        time.sleep(0.5)
        logged = [e["id"] for e in replay.events if e["event"]]
        self.assertEqual(logged[:len(live)], live)
        return live

    # -- tests -------------------------------------------------------------
    def test_1_changes_elsewhere_arrive_within_2s(self):
        self.wait_watch("idle", 30)
        sse = self.stream()
        w = self.ws()
        time.sleep(0.5)
        # The first change the watch sees brings the two messages the
        # server had too (nothing synced the account before).
        t0 = time.monotonic()
        uid = self.append(3)
        ev = self.wait_sse(sse, lambda e: e["event"] == "mail.new" and
                           json.loads(e["data"])["uid"] == uid, 10)
        self.assertLess(time.monotonic() - t0, LIVE_S, "SSE mail.new")
        got = self.ws_next(w, lambda e: e["type"] == "mail.new" and e["uid"] == uid, 10)
        self.assertLess(time.monotonic() - t0, LIVE_S, "WebSocket mail.new")
        self.assertEqual(got["id"], ev["id"])
        self.assertEqual([json.loads(e["data"])["uid"] for e in self.mail(sse, "mail.new")],
                         [1, 2, uid])

        c = self.imap()
        try:
            t0 = time.monotonic()
            c.uid("STORE", str(uid), "+FLAGS", "(\\Flagged)")
            ev = self.wait_sse(sse, lambda e: e["event"] == "mail.flags", 10)
            self.assertLess(time.monotonic() - t0, LIVE_S, "SSE mail.flags")
            self.assertIn("\\Flagged", json.loads(ev["data"])["flags"])
            got = self.ws_next(w, lambda e: e["type"] == "mail.flags", 10)
            self.assertLess(time.monotonic() - t0, LIVE_S, "WebSocket mail.flags")
            self.assertEqual(got["id"], ev["id"])

        finally:
            c.logout()
        self.assert_log_seen_once()

    def test_2_resume_after_k_gets_exactly_the_ten_missed(self):
        self.wait_watch("idle", 30)
        first = self.stream()
        before = len(self.mail(self.all, "mail.new"))
        uid = self.append(100)
        k = self.wait_sse(first, lambda e: e["event"] == "mail.new" and
                          json.loads(e["data"])["uid"] == uid, 10)["id"]
        first.close()
        uids = [self.append(101 + i) for i in range(10)]
        self.all.wait_for(lambda evs: len([e for e in evs if e["event"] == "mail.new"]) >=
                          before + 11 and evs, 30)
        time.sleep(1.0)  # the folder.counts after the last
        again = self.stream(last_event_id=k)
        missed = [e["id"] for e in self.all.events
                  if e["event"] and e["event"] != "reset" and id_of(e["id"]) > id_of(k)]
        got = again.wait_for(lambda evs: len([e for e in evs if e["event"]]) >= len(missed) and evs,
                             10)
        self.assertTrue(got, again.events)
        time.sleep(0.5)
        ids = [e["id"] for e in again.events if e["event"]]
        self.assertEqual(ids, missed)
        new = [json.loads(e["data"])["uid"] for e in again.events if e["event"] == "mail.new"]
        self.assertEqual(new, uids)

    def test_3_expunge_elsewhere_arrives_within_2s(self):
        # Runs just before test_4, whose restart opens the watch anew: after
        # a VANISHED the watch keeps the message count it had, so an APPEND
        # that brings the count back to it would go unnoticed.
        self.wait_watch("idle", 30)
        sse = self.stream()
        w = self.ws()
        time.sleep(0.5)
        c = self.imap()
        try:
            t0 = time.monotonic()
            c.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
            c.expunge()
            ev = self.wait_sse(sse, lambda e: e["event"] == "mail.removed", 10)
            self.assertLess(time.monotonic() - t0, LIVE_S, "SSE mail.removed")
            self.assertEqual(json.loads(ev["data"])["uid"], 1)
            got = self.ws_next(w, lambda e: e["type"] == "mail.removed", 10)
            self.assertLess(time.monotonic() - t0, LIVE_S, "WebSocket mail.removed")
            self.assertEqual(got["id"], ev["id"])
        finally:
            c.logout()
        self.assert_log_seen_once()

    def test_4_dovecot_restart_watch_comes_back(self):
        self.wait_watch("idle", 30)
        sse = self.stream()
        restarted = time.time()
        self.dovecot.restart()
        self.wait_watch("idle", 30, after=restarted)
        time.sleep(0.5)
        t0 = time.monotonic()
        uid = self.append(200)
        ev = self.wait_sse(sse, lambda e: e["event"] == "mail.new" and
                           json.loads(e["data"])["uid"] == uid, 15)
        self.assertTrue(ev)
        self.assertLess(time.monotonic() - t0, 5.0)
        self.assert_log_seen_once()

    def test_5_killed_owner_watch_moves_nothing_lost(self):
        self.wait_watch("idle", 30)
        owner = self.owner()
        self.assertIsNotNone(owner, "no sync-worker log shows the watch opened")
        other = [s for s in self.stack.replicas["sync-worker"] if s is not owner][0]
        sse = self.stream()
        with open(other.log_path, encoding="utf-8", errors="replace") as f:
            seen = f.read().count(logged("watch_opened", self.acct))
        t_kill = time.monotonic()
        killed = time.time()
        owner.proc.kill()
        owner.proc.wait(10)
        owner.proc = None
        taken = None
        deadline = t_kill + LEASE_S + 3 * RENEW_S + 5
        while time.monotonic() < deadline and taken is None:
            with open(other.log_path, encoding="utf-8", errors="replace") as f:
                if f.read().count(logged("watch_opened", self.acct)) > seen:
                    taken = time.monotonic() - t_kill
            time.sleep(0.1)
        self.assertIsNotNone(taken, "the other sync-worker did not take the watch")
        self.assertLess(taken, LEASE_S + 3 * RENEW_S + 2)
        self.wait_watch("idle", 15, after=killed)
        time.sleep(0.5)
        uid = self.append(300)
        self.wait_sse(sse, lambda e: e["event"] == "mail.new" and
                      json.loads(e["data"])["uid"] == uid, 15)
        time.sleep(1.0)
        live = self.assert_log_seen_once()
        new = [json.loads(e["data"])["uid"] for e in self.all.events if e["event"] == "mail.new"]
        self.assertEqual(len(new), len(set(new)), new)
        self.assertIn(uid, new)
        self.assertTrue(live)


if __name__ == "__main__":
    unittest.main()
