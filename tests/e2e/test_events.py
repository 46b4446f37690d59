"""End to end over HTTP: GET /api/events, the one stream of typed events.
Claims, renewals, releases, expiries, reservations and account changes
arrive as typed events within a second; the types filter; refusals; the
gateway's own health (a service stopped and started again), metrics (once a
second) and streams (the ids of the progress streams open) events."""

import json
import socket
import time
import unittest

import jsonschema

from e2ebase import API, StackTestCase
from stack import SSEReader, free_port
from test_accounts import account_body

TOKEN = "e2e-events-token-0123456789"
RO_TOKEN = "e2e-events-read-only-token-0123"
SOON = 1.0  # an event follows what caused it within this, plus the test's slack
SLACK = 2.0


def data(ev):
    return json.loads(ev["data"])


class EventsTestBase(StackTestCase):
    STACK_ENV = {"API_TOKEN": TOKEN, "API_READ_ONLY_TOKEN": RO_TOKEN,
                 "SSE_HEARTBEAT_SECONDS": "1"}

    def open(self, query=""):
        r = SSEReader("127.0.0.1", self.stack.http_port, "/api/events" + query, token=TOKEN)
        self.addCleanup(r.close)
        self.assertEqual(r.status, 200, getattr(r, "body", b"")[:300])
        self.assertIn("text/event-stream", r.headers.get("Content-Type", ""))
        self.assertEqual(r.headers.get("Cache-Control"), "no-cache")
        self.assertEqual(r.headers.get("X-Accel-Buffering"), "no")
        return r

    def typed(self, s, etype, pred=lambda d: True, timeout=SOON + SLACK):
        """The first event of type etype whose data satisfies pred, checked
        against the TypedEvent schema; fails when none comes in time."""
        def find(evs):
            for ev in evs:
                if ev["event"] == etype and pred(data(ev)):
                    return ev
            return None
        ev = s.wait_for(find, timeout)
        self.assertTrue(ev, "no %s event within %.1f s; got %r"
                        % (etype, timeout, [(e["event"], e["data"][:200]) for e in s.events]))
        d = data(ev)
        self.check_event(ev)
        return d

    def check_event(self, ev):
        d = data(ev)
        schema = API.validator({"$ref": "#/components/schemas/TypedEvent"})
        err = jsonschema.exceptions.best_match(schema.iter_errors(d))
        self.assertIsNone(err, "%s does not match TypedEvent: %s" % (ev["data"][:500],
                                                                    err and err.message))
        self.assertEqual(str(d["id"]), ev["id"])
        self.assertEqual(d["type"], ev["event"])
        self.assertIsoUtc(d["createdAt"])

    def ids_increase(self, s):
        ids = [int(e["id"]) for e in s.events if e["id"] is not None]
        for a, b in zip(ids, ids[1:]):
            self.assertLess(a, b, "ids not increasing: %d then %d" % (a, b))


class EventsTest(EventsTestBase):
    def test_claim_life_arrives_typed_and_in_order(self):
        s = self.open("?types=claim.*")
        sq = self.new_id("ev")
        t0 = time.monotonic()
        r = self.http.post("/api/queue/claim", {"sq": sq, "botId": "BOT1", "ttlSeconds": 60})
        self.assertStatus(r, 200)
        token = r.json["claim"]["token"]
        d = self.typed(s, "claim.claimed", lambda d: d["sq"] == sq)
        self.assertLess(time.monotonic() - t0, SOON + 0.5)
        self.assertEqual(d["botId"], "BOT1")
        self.assertEqual(d["namespace"], "sq")
        self.assertEqual(d["status"], "CLAIMING")
        self.assertNotIn("token", d, "the fencing token stays with its holder")
        body = {"sq": sq, "botId": "BOT1", "token": token}
        self.assertStatus(self.http.post("/api/queue/renew", body), 200)
        self.typed(s, "claim.renewed", lambda d: d["sq"] == sq)
        self.assertStatus(self.http.post("/api/queue/status", dict(body, status="WRITING")), 200)
        d = self.typed(s, "claim.status", lambda d: d["sq"] == sq)
        self.assertEqual(d["status"], "WRITING")
        self.assertStatus(self.http.post("/api/queue/release", body), 200)
        self.typed(s, "claim.released", lambda d: d["sq"] == sq)
        order = [e["event"] for e in s.events if data(e).get("sq") == sq]
        self.assertEqual(order, ["claim.claimed", "claim.renewed", "claim.status",
                                 "claim.released"])
        # The filter: claims only, not even the gateway's own events.
        self.assertEqual({e["event"].split(".")[0] for e in s.events}, {"claim"})
        self.ids_increase(s)

    def test_claim_and_reservation_expiry(self):
        s = self.open("?types=claim.expired,reservation.*")
        sq = self.new_id("exp")
        self.assertStatus(self.http.post("/api/queue/claim",
                                         {"sq": sq, "botId": "B", "ttlSeconds": 1}), 200)
        r = self.http.post("/api/queue/reserve", {"sq": sq, "botId": "B", "rowCount": 3,
                                                  "ttlSeconds": 1})
        self.assertStatus(r, 200)
        d = self.typed(s, "reservation.reserved", lambda d: d["sq"] == sq)
        self.assertEqual(d["rowCount"], 3)
        self.assertEqual(d["log"], "refund")
        self.assertEqual(d["startRow"], r.json["reservation"]["startRow"])
        time.sleep(1.5)
        self.assertStatus(self.http.get("/api/queue"), 200)  # the listing sweeps the expired
        d = self.typed(s, "claim.expired", lambda d: d["sq"] == sq)
        self.assertEqual(d["namespace"], "sq")
        self.typed(s, "reservation.expired", lambda d: d["sq"] == sq)
        sq2 = self.new_id("rel")
        self.assertStatus(self.http.post("/api/queue/reserve",
                                         {"sq": sq2, "botId": "B", "rowCount": 1}), 200)
        self.assertStatus(self.http.post("/api/queue/reserve/release",
                                         {"sq": sq2, "botId": "B"}), 200)
        self.typed(s, "reservation.released", lambda d: d["sq"] == sq2)
        self.assertFalse([e for e in s.events if e["event"].startswith("claim.")
                          and e["event"] != "claim.expired"], "claim.claimed was not asked for")

    def test_account_created_updated_status_deleted(self):
        s = self.open("?types=account.*")
        body = account_body(7)
        r = self.http.post("/api/accounts", body)
        self.assertStatus(r, 201)
        aid = r.json["id"]
        d = self.typed(s, "account.created", lambda d: d["accountId"] == aid)
        self.assertEqual(d["account"]["emailAddress"], body["emailAddress"])
        self.assertEqual(d["account"]["id"], aid)
        self.assertNotIn("password", json.dumps(d))
        self.assertNotIn(body["password"], json.dumps(d))
        self.assertStatus(self.http.patch("/api/accounts/%s" % aid, {"imapPort": 1993}), 200)
        d = self.typed(s, "account.updated", lambda d: d["accountId"] == aid)
        self.assertEqual(d["account"]["imapPort"], 1993)
        self.assertStatus(self.http.post("/api/accounts/%s/sync" % aid), 202)
        d = self.typed(s, "account.status", lambda d: d["accountId"] == aid)
        self.assertEqual(d["syncStatus"], "queued")
        self.assertIn("nextSyncAt", d)
        self.assertStatus(self.http.delete("/api/accounts/%s" % aid), 200)
        d = self.typed(s, "account.deleted", lambda d: d["accountId"] == aid)
        self.assertEqual(set(d), {"id", "type", "createdAt", "accountId"})
        self.ids_increase(s)

    def test_unknown_types_and_tokens_refused(self):
        for q in ("?types=claim.nope", "?types=claim.*,bogus", "?types=mail", "?types=,",
                  "?types=claims.*"):
            r = self.http.get("/api/events" + q)
            self.assertJsonError(r, 400, "unknown event type")
        self.assertJsonError(self.http.get("/api/events", token=None), 401, "token")
        self.assertJsonError(self.http.get("/api/events", token="wrong-token-0123456789"), 401,
                             "token")
        self.assertJsonError(self.http.get("/api/events", token=RO_TOKEN), 403, "full API token")
        # The read-only token still reads the other streams.
        sid = self.new_id("ro")
        self.create_record(sid)
        ro = SSEReader("127.0.0.1", self.stack.http_port, "/api/progress/%s/stream" % sid,
                       token=RO_TOKEN)
        self.addCleanup(ro.close)
        self.assertEqual(ro.status, 200)

    def test_first_events_retry_health_streams_then_heartbeats(self):
        s = self.open()
        d = self.typed(s, "health", timeout=SLACK)
        self.assertEqual(s.events[0]["event"], "health", "health comes first")
        names = {x["service"] for x in d["services"]}
        self.assertEqual(names, {"progress", "coordinator", "sync-worker"})
        self.typed(s, "streams", timeout=SLACK)
        self.assertTrue(s.wait_for(lambda ev: s.comments >= 1, 3), "no heartbeat comment")
        # On the wire: retry first, before any event.
        sock = socket.create_connection(("127.0.0.1", self.stack.http_port), timeout=5)
        self.addCleanup(sock.close)
        sock.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n")
        got = b""
        while b"event: health" not in got:
            chunk = sock.recv(65536)
            self.assertTrue(chunk, "stream closed: %r" % got)
            got += chunk
        body = got.partition(b"\r\n\r\n")[2]
        self.assertIn(b"retry: 2000\n\n", body)
        self.assertLess(body.index(b"retry: 2000"), body.index(b"event: health"))

    def test_metrics_once_a_second(self):
        s = self.open("?types=metrics")
        for _ in range(20):
            self.http.get("/healthz")
        time.sleep(3.6)
        evs = [e for e in s.events if e["event"] == "metrics"]
        self.assertGreaterEqual(len(evs), 3, evs)
        self.assertLessEqual(len(evs), 5, "more than one a second: %d" % len(evs))
        for e in evs:
            self.check_event(e)
        ds = [data(e) for e in evs]
        self.assertTrue(any(d["requestsPerSecond"] > 0 and d["latencyMs"]["count"] > 0
                            for d in ds), ds)
        self.assertGreaterEqual(ds[-1]["requests"], 20)
        self.assertGreaterEqual(ds[-1]["sseClients"], 1)
        times = [time.mktime(time.strptime(d["createdAt"][:19], "%Y-%m-%dT%H:%M:%S"))
                 + float("0." + d["createdAt"][20:23]) for d in ds]
        for a, b in zip(times, times[1:]):
            self.assertAlmostEqual(b - a, 1.0, delta=0.3)

    def test_streams_lists_an_open_progress_stream(self):
        s = self.open("?types=streams")
        sid = self.new_id("watched")
        self.create_record(sid)
        p = SSEReader("127.0.0.1", self.stack.http_port, "/api/progress/%s/stream" % sid,
                      token=TOKEN)
        self.addCleanup(p.close)
        d = self.typed(s, "streams", lambda d: sid in d["ids"])
        self.assertGreaterEqual(d["count"], 1)
        self.assertEqual(d["clients"][sid], 1)
        # A second stream on the same record is counted, and its end too.
        q = SSEReader("127.0.0.1", self.stack.http_port, "/api/progress/%s/stream" % sid,
                      token=TOKEN)
        self.addCleanup(q.close)
        self.typed(s, "streams", lambda d: d["clients"].get(sid) == 2)
        q.close()
        self.typed(s, "streams", lambda d: d["clients"].get(sid) == 1)
        p.close()
        d = self.typed(s, "streams", lambda d: sid not in d["ids"])
        self.assertNotIn(sid, d["clients"])

    def test_health_shows_a_service_down_then_up(self):
        s = self.open("?types=health")
        first = self.typed(s, "health", lambda d: d["ready"], timeout=5)
        self.assertTrue(all(x["status"] == "up" for x in first["services"]), first)
        svc = self.stack.sync_worker
        self.assertEqual(svc.stop(), 0)
        try:
            d = self.typed(s, "health", lambda d: any(
                x["service"] == "sync-worker" and x["status"] == "down" for x in d["services"]),
                timeout=5)
            self.assertFalse(d["ready"])
            others = [x for x in d["services"] if x["service"] != "sync-worker"]
            self.assertTrue(all(x["status"] == "up" for x in others), d)
        finally:
            svc.start()
        down_id = d["id"]
        d = self.typed(s, "health", lambda d: d["id"] > down_id and d["ready"], timeout=10)
        self.assertTrue(all(x["status"] == "up" for x in d["services"]), d)
        # Only on change: no health event repeats the one before it.
        ds = [data(e)["services"] for e in s.events]
        for a, b in zip(ds, ds[1:]):
            self.assertNotEqual(a, b, "health sent without a change")


class ScopedTokenEventsTest(EventsTestBase):
    """Scoped tokens (POST /api/tokens) see the families their scopes cover."""
    STACK_ENV = dict(EventsTestBase.STACK_ENV, TOKEN_SIGNING_KEY="ab" * 32)

    def mint(self, scopes):
        r = self.http.post("/api/tokens", {"scopes": scopes, "ttlSeconds": 600})
        self.assertStatus(r, 201)
        return r.json["token"]

    def open_with(self, token, query=""):
        r = SSEReader("127.0.0.1", self.stack.http_port, "/api/events" + query, token=token)
        self.addCleanup(r.close)
        self.assertEqual(r.status, 200, getattr(r, "body", b"")[:300])
        return r

    def test_queue_and_accounts_scopes(self):
        queue = self.open_with(self.mint(["queue"]))
        accounts = self.open_with(self.mint(["accounts"]))
        both = self.open_with(self.mint(["queue", "accounts"]), "?types=account.created,claim.*")
        sq = self.new_id("scoped")
        self.assertStatus(self.http.post("/api/queue/claim", {"sq": sq, "botId": "B"}), 200)
        r = self.http.post("/api/accounts", account_body(11))
        self.assertStatus(r, 201)
        aid = r.json["id"]
        for s in (queue, both):
            self.typed(s, "claim.claimed", lambda d: d["sq"] == sq)
        for s in (accounts, both):
            self.typed(s, "account.created", lambda d: d["accountId"] == aid)
        time.sleep(1.2)  # health and metrics would have come by now
        self.assertEqual({e["event"].split(".")[0] for e in queue.events}, {"claim"})
        self.assertEqual({e["event"].split(".")[0] for e in accounts.events}, {"account"})
        self.assertEqual({e["event"] for e in both.events}, {"claim.claimed", "account.created"})

    def test_events_scope_sees_everything(self):
        ev = self.open_with(self.mint(["events"]), "?types=health,streams,claim.*")
        self.typed(ev, "health", lambda d: True, timeout=5)
        self.typed(ev, "streams", lambda d: True, timeout=5)
        sq = self.new_id("dash")
        self.assertStatus(self.http.post("/api/queue/claim", {"sq": sq, "botId": "B"}), 200)
        self.typed(ev, "claim.claimed", lambda d: d["sq"] == sq)
        # It only reads: a write with it is refused.
        r = self.http.post("/api/queue/claim", {"sq": sq + "x", "botId": "B"},
                           token=self.mint(["events"]))
        self.assertEqual(r.status, 403)

    def test_other_scopes_refused(self):
        sid = self.new_id("p")
        tok = self.mint(["progress:" + sid])
        self.assertJsonError(self.http.get("/api/events", token=tok), 403, "does not cover")
        q = self.mint(["queue"])
        for types in ("health", "account.*", "metrics,streams"):
            self.assertJsonError(self.http.get("/api/events?types=" + types, token=q), 403,
                                 "does not cover")


class SyncStatusEventsTest(EventsTestBase):
    """A sync-worker that syncs: the lease and the failed run show as
    account.status events."""
    STACK_ENV = dict(EventsTestBase.STACK_ENV, SYNC_CONCURRENCY="1")

    def test_sync_status_changes_arrive(self):
        s = self.open("?types=account.status")
        # An IMAP server that is not there: the run fails at once.
        body = account_body(3, imapHost="127.0.0.1", imapPort=free_port(), security="none")
        r = self.http.post("/api/accounts", body)
        self.assertStatus(r, 201)
        aid = r.json["id"]
        self.assertStatus(self.http.post("/api/accounts/%s/sync" % aid), 202)
        mine = lambda st: (lambda d: d["accountId"] == aid and d["syncStatus"] == st)
        self.typed(s, "account.status", mine("queued"))
        self.typed(s, "account.status", mine("syncing"), timeout=10)
        d = self.typed(s, "account.status", mine("error"), timeout=30)
        self.assertTrue(d["errorMessage"], d)
        statuses = [data(e)["syncStatus"] for e in s.events if data(e)["accountId"] == aid]
        self.assertEqual(statuses[:3], ["queued", "syncing", "error"])


if __name__ == "__main__":
    unittest.main()
