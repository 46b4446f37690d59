"""End to end over HTTP: the queue API of seed 003 through the gateway and
the coordinator. Three bots racing for one SQ, fencing tokens, reservations,
bad input in the seed's error shape, and the coordinator going away."""

import re
import threading
import time
import unittest

from e2ebase import StackTestCase, ISO_UTC


class QueueTest(StackTestCase):
    def claim(self, sq, bot, **extra):
        body = {"sq": sq, "botId": bot}
        body.update(extra)
        return self.http.post("/api/queue/claim", body)

    def queue(self):
        r = self.http.get("/api/queue")
        self.assertStatus(r, 200)
        return r.json

    def assertSeedError(self, r, status, pattern):
        self.assertStatus(r, status)
        self.assertIs(r.json.get("success"), False, r)
        self.assertRegex(r.json.get("error", ""), re.compile(pattern, re.I))

    def test_empty_queue_has_the_seed_shape(self):
        q = self.queue()
        self.assertEqual(set(q), {"success", "sqClaims", "refundReservations", "timestamp",
                                  "kvConfigured"})
        self.assertIs(q["success"], True)
        self.assertIs(q["kvConfigured"], True)
        self.assertRegex(q["timestamp"], ISO_UTC)

    def test_three_bots_claim_one_sq_exactly_one_wins(self):
        sq = self.new_id("251019")
        barrier = threading.Barrier(3)
        replies = {}

        def bot(name):
            client = self.stack.client()
            barrier.wait()
            replies[name] = client.post("/api/queue/claim", {"sq": sq, "botId": name})
            client.close()

        threads = [threading.Thread(target=bot, args=("BOT%d" % i,)) for i in (1, 2, 3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [n for n, r in replies.items() if r.status == 200]
        self.assertEqual(len(winners), 1, replies)
        winner = winners[0]
        claim = replies[winner].json["claim"]
        self.assertEqual(set(claim), {"sq", "botId", "token", "status", "timestamp",
                                      "expiresAt"})
        self.assertEqual(claim["botId"], winner)
        self.assertEqual(claim["status"], "CLAIMING")
        self.assertIsInstance(claim["token"], int)
        for name, r in replies.items():
            if name != winner:
                self.assertSeedError(r, 409, "held by")
                self.assertEqual(r.json["heldBy"], winner)
                self.assertEqual(r.json["expiresAt"], claim["expiresAt"])
        entry = self.queue()["sqClaims"][sq]
        self.assertEqual(entry, {"botId": winner, "timestamp": claim["timestamp"],
                                 "status": "CLAIMING", "token": claim["token"],
                                 "expiresAt": claim["expiresAt"]})

    def test_token_guards_renew_status_release(self):
        sq = self.new_id("sq")
        r = self.claim(sq, "BOT1", ttlSeconds=30)
        self.assertStatus(r, 200)
        token = r.json["claim"]["token"]
        # Claiming again by the same bot keeps the token.
        self.assertEqual(self.claim(sq, "BOT1").json["claim"]["token"], token)
        for path, body in (("/api/queue/renew", {"ttlSeconds": 60}),
                           ("/api/queue/status", {"status": "WRITING"}),
                           ("/api/queue/release", {})):
            for bot, tok in (("BOT1", token + 1), ("BOT2", token)):
                bad = dict(body, sq=sq, botId=bot, token=tok)
                r = self.http.post(path, bad)
                self.assertStatus(r, 409)
                self.assertEqual(r.json["error"], "lease_lost")
                self.assertIs(r.json["success"], False)
            good = dict(body, sq=sq, botId="BOT1", token=token)
            r = self.http.post(path, good)
            self.assertStatus(r, 200)
            self.assertIs(r.json["success"], True)
            self.assertEqual(r.json["claim"]["token"], token)
            if path.endswith("status"):
                self.assertEqual(r.json["claim"]["status"], "WRITING")
        self.assertNotIn(sq, self.queue()["sqClaims"])
        # Released: another bot gets it, with a higher token.
        r = self.claim(sq, "BOT2")
        self.assertStatus(r, 200)
        self.assertGreater(r.json["claim"]["token"], token)

    def test_reservations(self):
        a, b = self.new_id("sq"), self.new_id("sq")
        r1 = self.http.post("/api/queue/reserve", {"sq": a, "botId": "BOT1", "rowCount": 5})
        self.assertStatus(r1, 200)
        res = r1.json["reservation"]
        self.assertEqual(res["status"], "WRITING")
        self.assertEqual(res["rowCount"], 5)
        r2 = self.http.post("/api/queue/reserve", {"sq": b, "botId": "BOT2", "rowCount": 3})
        self.assertStatus(r2, 200)
        self.assertEqual(r2.json["reservation"]["startRow"], res["startRow"] + 5)
        again = self.http.post("/api/queue/reserve", {"sq": a, "botId": "BOT1", "rowCount": 5})
        self.assertEqual(again.json["reservation"]["startRow"], res["startRow"])
        other = self.http.post("/api/queue/reserve", {"sq": a, "botId": "BOT3", "rowCount": 5})
        self.assertSeedError(other, 409, "reserved by")
        self.assertEqual(other.json["heldBy"], "BOT1")
        entry = self.queue()["refundReservations"][a]
        self.assertEqual(set(entry), {"botId", "startRow", "rowCount", "status", "timestamp"})
        self.assertEqual(entry["startRow"], res["startRow"])
        r = self.http.post("/api/queue/reserve/release", {"sq": a, "botId": "BOT3"})
        self.assertStatus(r, 409)
        self.assertEqual(r.json["error"], "lease_lost")
        r = self.http.post("/api/queue/reserve/release", {"sq": a, "botId": "BOT1"})
        self.assertStatus(r, 200)
        self.assertEqual(r.json, {"success": True})
        self.assertNotIn(a, self.queue()["refundReservations"])

    def test_bad_input_is_refused_and_nothing_stored(self):
        long_id = "x" * 129
        cases = [
            ("/api/queue/claim", {"botId": "B"}, r"\"sq\" is required"),
            ("/api/queue/claim", {"sq": long_id, "botId": "B"}, r"1\.\.128"),
            ("/api/queue/claim", {"sq": "bad id", "botId": "B"}, r"letters, digits"),
            ("/api/queue/claim", {"sq": 7, "botId": "B"}, r"must be a string"),
            ("/api/queue/claim", {"sq": "q1", "botId": "B", "ttlSeconds": -1}, r"ttlSeconds"),
            ("/api/queue/claim", {"sq": "q1", "botId": "B", "ttlSeconds": 10 ** 12},
             r"ttlSeconds"),
            ("/api/queue/claim", {"sq": "q1", "botId": "B", "ttlSeconds": "60"},
             r"must be an integer"),
            ("/api/queue/claim", {"sq": "q1", "botId": "B", "namespace": "Bad NS!"},
             r"namespace"),
            ("/api/queue/claim", {"sq": "q1", "botId": "B", "colour": "red"},
             r"unknown field"),
            ("/api/queue/release", {"sq": "q1", "botId": "B", "token": "1"}, r"token"),
            ("/api/queue/reserve", {"sq": "q1", "botId": "B", "rowCount": 0}, r"rowCount"),
            ("/api/queue/reserve", {"sq": "q1", "botId": "B", "rowCount": -4}, r"rowCount"),
            ("/api/queue/reserve", {"sq": "q1", "botId": "B", "rowCount": 10 ** 10},
             r"rowCount"),
            ("/api/queue/reserve", {"sq": "q1", "botId": "B", "rowCount": 1.5}, r"rowCount"),
            ("/api/queue/reserve", {"sq": "q1", "botId": "B", "rowCount": 2, "log": "../x"},
             r"log"),
        ]
        for path, body, pattern in cases:
            with self.subTest(path=path, body=body):
                self.assertSeedError(self.http.post(path, body), 400, pattern)
        r = self.http.request("POST", "/api/queue/claim", b"{not json",
                              headers={"Content-Type": "application/json"})
        self.assertSeedError(r, 400, "malformed JSON")
        r = self.http.post("/api/queue/claim", ["sq", "B"])
        self.assertSeedError(r, 400, "object")
        q = self.queue()
        self.assertNotIn("q1", q["sqClaims"])
        self.assertNotIn("q1", q["refundReservations"])


class QueueCoordinatorDownTest(StackTestCase):
    def test_coordinator_gone_then_back(self):
        self.stack.coordinator.proc.kill()
        self.stack.coordinator.proc.wait(10)
        for method, path, body in (("GET", "/api/queue", None),
                                   ("POST", "/api/queue/claim", {"sq": "s1", "botId": "B"})):
            t0 = time.monotonic()
            r = self.http.request(method, path, body, timeout=15)
            took = time.monotonic() - t0
            self.assertStatus(r, 503)
            self.assertIs(r.json["success"], False)
            self.assertRegex(r.json["error"], "coordinator")
            self.assertLess(took, 5.0)
        self.assertStatus(self.http.get("/readyz"), 503)
        self.stack.coordinator.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = self.http.post("/api/queue/claim", {"sq": "s1", "botId": "B"}, timeout=10)
            if r.status == 200:
                break
            time.sleep(0.1)
        self.assertStatus(r, 200)
        self.assertStatus(self.http.get("/readyz"), 200)

    def test_redis_gone_then_back(self):
        self.stack.redis.kill()
        r = self.http.post("/api/queue/claim", {"sq": "s2", "botId": "B"}, timeout=10)
        self.assertStatus(r, 503)
        self.assertIs(r.json["success"], False)
        self.assertRegex(r.json["error"], "Redis")
        self.stack.redis.start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            r = self.http.post("/api/queue/claim", {"sq": "s2", "botId": "B"}, timeout=10)
            if r.status == 200:
                break
            time.sleep(0.05)
        self.assertStatus(r, 200)


if __name__ == "__main__":
    unittest.main()
