"""End to end: an account's mail events (GET /api/accounts/:id/events)
against a real Dovecot (dovecot.py) and the stack, the sync-worker syncing
(SYNC_CONCURRENCY=1) when asked through POST /api/accounts/:id/sync.

A message APPENDed on the server shows up as mail.new with the messages
route's fields; flags changed by another IMAP client as mail.flags; an
expunge as mail.removed. A client that stops after event k while ten more
messages arrive and comes back with Last-Event-ID: k gets exactly those ten
mail.new, in order; an id older than the log keeps (MAIL_EVENTS_MAX_LEN=30,
Redis's stream nodes cut to 5 entries so that the log is trimmed at this
size, 40 new messages) gets event: reset; an account:<id> token opens its
account's stream and not another's. An event logged but never published (a
pub/sub message dropped) still reaches a live stream and a live WebSocket,
read from the log when the next event names it as its prevId: every event
once, in order."""

import imaplib
import json
import subprocess
import time

import e2ebase
from dovecot import Dovecot, message
from stack import SSEReader
from test_websocket import WS

RW = "mail-events-rw-token-0123456789"
KEY = "4d" * 32
USERS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw", "dave": "dave-pw"}


def id_of(s):
    ms, _, seq = s.partition("-")
    return int(ms), int(seq)


def data(ev):
    return json.loads(ev["data"])


def msgpack(v):
    """The msgpack encoding of str, int (0..2^31), list and dict values: the
    sync-worker's stream entries are such maps."""
    if isinstance(v, str):
        b = v.encode()
        assert len(b) < 256
        return (bytes([0xa0 | len(b)]) if len(b) < 32 else bytes([0xd9, len(b)])) + b
    if isinstance(v, int):
        return bytes([v]) if 0 <= v < 128 else b"\xce" + v.to_bytes(4, "big")
    if isinstance(v, list):
        assert len(v) < 16
        return bytes([0x90 | len(v)]) + b"".join(msgpack(x) for x in v)
    assert isinstance(v, dict) and len(v) < 16
    return bytes([0x80 | len(v)]) + b"".join(msgpack(k) + msgpack(x) for k, x in v.items())


class MailEventsTest(e2ebase.StackTestCase):
    STACK_ENV = {"API_TOKEN": RW, "TOKEN_SIGNING_KEY": KEY, "SYNC_CONCURRENCY": "1",
                 "MAIL_EVENTS_MAX_LEN": "30", "SSE_HEARTBEAT_SECONDS": "1"}

    @classmethod
    def setUpClass(cls):
        cls.dovecot = Dovecot(USERS, messages=2).start()
        try:
            super().setUpClass()
            url = cls.stack.redis.url
            out = subprocess.run(["redis-cli", "-u", url, "CONFIG", "SET",
                                  "stream-node-max-entries", "5"],
                                 capture_output=True, text=True, timeout=10)
            assert out.stdout.strip() == "OK", out
            cls.accounts = {}
            for user in sorted(USERS):
                r = cls.http.post("/api/accounts", {
                    "emailAddress": "%s@example.com" % user, "imapHost": "127.0.0.1",
                    "imapPort": cls.dovecot.port, "security": "none", "username": user,
                    "password": USERS[user]})
                assert r.status == 201, r
                cls.accounts[user] = r.json["id"]
        except Exception:
            cls.dovecot.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.dovecot.stop()

    # -- helpers -----------------------------------------------------------
    def imap(self, user):
        c = imaplib.IMAP4("127.0.0.1", self.dovecot.port)
        c.login(user, USERS[user])
        c.select("INBOX")
        return c

    def append(self, user, n):
        c = self.imap(user)
        try:
            c.append("INBOX", None, None, message(user, n))
        finally:
            c.logout()

    def sync(self, user):
        acct = self.accounts[user]
        deadline = time.monotonic() + 20
        while True:
            r = self.http.post("/api/accounts/%s/sync" % acct)
            self.assertStatus(r, 202)
            if r.json["queued"] or time.monotonic() > deadline:
                return
            time.sleep(0.2)

    def stream(self, user, last_event_id=None, token=RW):
        return SSEReader("127.0.0.1", self.stack.http_port,
                         "/api/accounts/%s/events" % self.accounts[user], token=token,
                         last_event_id=last_event_id)

    def wait_events(self, reader, pred, timeout=30):
        return reader.wait_for(lambda evs: pred([e for e in evs if e["event"]]), timeout)

    def mint(self, scopes):
        r = self.http.post("/api/tokens", {"scopes": scopes, "ttlSeconds": 60})
        self.assertStatus(r, 201)
        return r.json["token"]

    def typed(self, events, type_):
        return [e for e in events if e["event"] == type_]

    # -- tests -------------------------------------------------------------
    def test_1_changes_arrive_live(self):
        reader = self.stream("alice")
        typed = SSEReader("127.0.0.1", self.stack.http_port, "/api/events?types=mail.*",
                          token=RW)
        try:
            self.assertEqual(typed.status, 200)
            self.assertEqual(reader.status, 200)
            self.assertEqual(reader.headers["Content-Type"], "text/event-stream")
            self.sync("alice")  # the first sync: the two generated messages
            got = self.wait_events(reader, lambda evs: len(self.typed(evs, "mail.new")) >= 2)
            self.assertTrue(got, reader.events)
            self.append("alice", 3)
            self.sync("alice")
            got = self.wait_events(reader, lambda evs: len(self.typed(evs, "mail.new")) >= 3)
            self.assertTrue(got, reader.events)
            new = data(self.typed(reader.events, "mail.new")[-1])
            self.assertEqual(new["type"], "mail.new")
            self.assertEqual(new["accountId"], self.accounts["alice"])
            self.assertEqual(new["id"], self.typed(reader.events, "mail.new")[-1]["id"])
            self.assertIsoUtc(new["createdAt"])
            # The same fields as the messages route shows.
            r = self.http.get("/api/accounts/%s/messages/%d" % (self.accounts["alice"],
                                                                new["uid"]))
            self.assertStatus(r, 200)
            for k, v in r.json.items():
                self.assertEqual(new[k], v, k)

            c = self.imap("alice")
            try:
                c.uid("STORE", "1", "+FLAGS", "(\\Flagged)")
                c.uid("STORE", "2", "+FLAGS", "(\\Deleted)")
                c.expunge()
            finally:
                c.logout()
            self.sync("alice")
            got = self.wait_events(reader, lambda evs: self.typed(evs, "mail.flags") and
                                   self.typed(evs, "mail.removed"))
            self.assertTrue(got, reader.events)
            flags = data(self.typed(reader.events, "mail.flags")[-1])
            self.assertEqual(flags["uid"], 1)
            self.assertEqual(flags["folder"], "INBOX")
            self.assertIn("\\Flagged", flags["flags"])
            removed = data(self.typed(reader.events, "mail.removed")[-1])
            self.assertEqual((removed["uid"], removed["folder"]), (2, "INBOX"))
            self.assertTrue(self.wait_events(reader, lambda evs: self.typed(evs, "folder.counts")))
            ids = [e["id"] for e in reader.events if e["event"] and e["id"]]
            self.assertEqual(len(ids), len(set(ids)))
            # GET /api/events has them too, with their log ids as eventId.
            mine = [e["id"] for e in reader.events if e["event"] in ("mail.new", "mail.flags")]
            got = typed.wait_for(lambda evs: set(mine) <= {
                data(e).get("eventId") for e in evs if e["event"] in ("mail.new", "mail.flags")}, 10)
            self.assertTrue(got, typed.events)
            one = next(data(e) for e in typed.events if e["event"] == "mail.flags")
            self.assertEqual((one["accountId"], one["uid"]), (self.accounts["alice"], 1))
        finally:
            typed.close()
            reader.close()

    def test_2_resume_after_k_gets_exactly_the_rest(self):
        reader = self.stream("bob")
        try:
            self.assertEqual(reader.status, 200)
            self.sync("bob")
            got = self.wait_events(reader, lambda evs: len(self.typed(evs, "mail.new")) >= 2)
            self.assertTrue(got, reader.events)
            k = self.typed(reader.events, "mail.new")[-1]["id"]
        finally:
            reader.close()
        # Ten more arrive, one sync each, while no one listens.
        for n in range(3, 13):
            self.append("bob", n)
            self.sync("bob")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                r = self.http.get("/api/accounts/%s/messages?limit=500" % self.accounts["bob"])
                if len(r.json["messages"]) >= n:
                    break
                time.sleep(0.2)
        # The log keeps about 10 entries: the ten mail.new stay, the older
        # ones go once a stream node fills; read from k on at once.
        back = self.stream("bob", last_event_id=k)
        try:
            self.assertEqual(back.status, 200)
            got = self.wait_events(back, lambda evs: len(self.typed(evs, "mail.new")) >= 10
                                   or self.typed(evs, "reset"), 20)
            self.assertTrue(got, back.events)
            if self.typed(back.events, "reset"):
                self.fail("a resume within the log was answered with reset: %r" % back.events)
            news = [data(e) for e in self.typed(back.events, "mail.new")]
            self.assertEqual([m["uid"] for m in news], list(range(3, 13)))
            ids = [e["id"] for e in back.events if e["event"]]
            self.assertTrue(all(id_of(i) > id_of(k) for i in ids), ids)
            time.sleep(1.5)
            self.assertEqual(len(self.typed(back.events, "mail.new")), 10)
        finally:
            back.close()

    def test_3_old_id_gets_reset(self):
        reader = self.stream("carol")
        try:
            self.sync("carol")
            got = self.wait_events(reader, lambda evs: len(self.typed(evs, "mail.new")) >= 2)
            self.assertTrue(got, reader.events)
            first = self.typed(reader.events, "mail.new")[0]["id"]
        finally:
            reader.close()
        for n in range(3, 43):
            self.append("carol", n)
        self.sync("carol")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = self.http.get("/api/accounts/%s/messages?limit=500" % self.accounts["carol"])
            if len(r.json["messages"]) >= 42:
                break
            time.sleep(0.2)
        reader = self.stream("carol", last_event_id=first)
        try:
            self.assertEqual(reader.status, 200)
            got = self.wait_events(reader, lambda evs: self.typed(evs, "reset"), 10)
            self.assertTrue(got, reader.events)
            self.assertEqual(self.typed(reader.events, "mail.new"), [])
            # The reset carries the log's newest id: resuming from it is no reset.
            last = self.typed(reader.events, "reset")[0]["id"]
            self.assertTrue(last)
        finally:
            reader.close()
        again = self.stream("carol", last_event_id=last)
        try:
            time.sleep(1.5)
            self.assertEqual([e for e in again.events if e["event"]], [])
        finally:
            again.close()
        r = self.http.get("/api/accounts/%s/events?lastEventId=nope" % self.accounts["carol"])
        self.assertJsonError(r, 400, "Last-Event-ID")

    def test_4_account_token_covers_its_stream_only(self):
        token = self.mint(["account:%s" % self.accounts["alice"]])
        mine = self.stream("alice", token=token)
        try:
            self.assertEqual(mine.status, 200)
        finally:
            mine.close()
        other = self.stream("bob", token=token)
        self.assertEqual(other.status, 403)
        every = self.stream("bob", token=self.mint(["accounts"]))
        try:
            self.assertEqual(every.status, 200)
        finally:
            every.close()

    def test_5_event_missed_live_is_read_from_the_log(self):
        acct = self.accounts["dave"]
        reader = self.stream("dave")
        ws = WS(self.stack.http_port, "/api/accounts/%s/events" % acct, token=RW)
        try:
            self.assertEqual((reader.status, ws.status), (200, 101))
            self.sync("dave")
            # The run's last event is its sync.status: after it, nothing
            # more is logged until the next sync.
            self.assertTrue(self.wait_events(
                reader, lambda evs: len(self.typed(evs, "sync.status")) >= 1), reader.events)
            first = [ws.next_event(lambda e: e["type"] == "mail.new", 10) for _ in range(2)]
            ws.next_event(lambda e: e["type"] == "sync.status", 10)
            # An event appended to the log and never published: what a
            # subscriber sees when pub/sub drops one.
            key = "mail:{%s}:events" % acct
            entry = msgpack({"type": "mail.flags", "accountId": acct,
                             "createdAt": "2026-12-01T00:00:00.000Z", "uid": 1,
                             "folder": "INBOX", "flags": ["\\Seen"]})
            out = subprocess.run(["redis-cli", "-u", self.stack.redis.url, "-x", "XADD", key,
                                  "*", "e"], input=entry, capture_output=True, timeout=10)
            missed = out.stdout.decode().strip()
            self.assertRegex(missed, r"^\d+-\d+$", out)
            time.sleep(0.5)
            self.assertEqual(self.typed(reader.events, "mail.flags"), [])
            # The next event names it as its prevId: both streams read it.
            self.append("dave", 3)
            self.sync("dave")
            got = self.wait_events(reader, lambda evs: len(self.typed(evs, "mail.new")) >= 3)
            self.assertTrue(got, reader.events)
            evs = [e for e in reader.events if e["event"] and e["event"] != "sync.status"]
            types = [e["event"] for e in evs]
            self.assertEqual(types[:5], ["mail.new", "mail.new", "folder.counts", "mail.flags",
                                         "mail.new"], types)
            self.assertEqual(evs[3]["id"], missed)
            self.assertEqual(data(evs[3])["uid"], 1)
            self.assertNotIn("prevId", data(evs[4]))
            ids = [e["id"] for e in reader.events if e["event"]]
            self.assertEqual(len(ids), len(set(ids)), ids)
            self.assertEqual(ids, sorted(ids, key=id_of))
            got = ws.next_event(lambda e: e["type"] not in ("sync.status",), 10)
            self.assertEqual((got["type"], got["id"]), ("mail.flags", missed))
            new = ws.next_event(lambda e: e["type"] not in ("sync.status",), 10)
            self.assertEqual(new["type"], "mail.new")
            self.assertEqual(new["id"], evs[4]["id"])
            self.assertNotIn(new["id"], [e["id"] for e in first])
        finally:
            ws.close()
            reader.close()

    def mail_keys(self, acct):
        out = subprocess.run(["redis-cli", "-u", self.stack.redis.url, "--scan", "--pattern",
                              "mail:{%s}:*" % acct], capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out)
        return out.stdout.split()

    def test_6_mail_of_an_account_deleted_while_no_worker_runs_is_swept(self):
        r = self.http.post("/api/accounts", {
            "emailAddress": "carol2@example.com", "imapHost": "127.0.0.1",
            "imapPort": self.dovecot.port, "security": "none", "username": "carol",
            "password": USERS["carol"]})
        self.assertStatus(r, 201)
        acct = r.json["id"]
        self.assertStatus(self.http.post("/api/accounts/%s/sync" % acct), 202)
        deadline = time.monotonic() + 20
        while not any(":m:" in k for k in self.mail_keys(acct)):
            self.assertLess(time.monotonic(), deadline, "the account's mail was never stored")
            time.sleep(0.2)
        kept = self.accounts["carol"]
        kept_keys = sorted(self.mail_keys(kept))
        worker = self.stack.sync_worker
        self.assertEqual(worker.stop(), 0)
        self.assertStatus(self.http.delete("/api/accounts/%s" % acct), 200)
        time.sleep(1)
        # Nobody heard the deletion: the mail is still there.
        self.assertTrue(self.mail_keys(acct))
        worker.start()
        deadline = time.monotonic() + 20
        while self.mail_keys(acct):
            self.assertLess(time.monotonic(), deadline, "the deleted account's mail stayed")
            time.sleep(0.2)
        # The mail of an account that still exists is left alone.
        self.assertEqual(sorted(self.mail_keys(kept)), kept_keys)
        self.assertIn("mail_swept", open(worker.log_path).read())
