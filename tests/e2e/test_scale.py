"""End to end over HTTP with several replicas of every service on one Redis
(2 gateways, 2 progress, 3 coordinators, 2 sync-workers): updates written
through one gateway stream from the other, the seed-003 race through both
gateways has one winner, killing a replica of each service loses no accepted
write, and stopping replicas under load answers every request."""

import json
import signal
import threading
import time
import unittest

from stack import ScaleStack, SSEReader, event_record

COUNTS = {"progress": 2, "coordinator": 3, "sync-worker": 2, "gateway": 2}


class ScaleOutTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = ScaleStack(COUNTS).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def test_update_through_one_gateway_streams_from_the_other(self):
        sid = "scale-sse-%d" % time.monotonic_ns()
        reader = SSEReader("127.0.0.1", self.stack.ports["gateway"][1][0],
                           "/api/progress/%s/stream" % sid)
        try:
            self.assertEqual(reader.status, 200)
            g1 = self.stack.client(0)
            for step in range(1, 21):
                r = g1.post("/api/progress/%s" % sid, {"currentStep": step})
                self.assertEqual(r.status, 200, r)
            g1.close()

            def got_all(events):
                steps = [event_record(e).get("currentStep") for e in events
                         if e["event"] == "progress" and event_record(e)]
                return steps and steps[-1] == 20 and steps

            steps = reader.wait_for(got_all, 10)
            self.assertTrue(steps, "gateway 2 did not stream the updates written through 1")
            self.assertEqual(steps, sorted(steps))
        finally:
            reader.close()

    def test_seed_race_through_both_gateways_has_one_winner(self):
        for n in range(10):
            sq = "scale-race-%d-%d" % (n, time.monotonic_ns())
            barrier = threading.Barrier(3)
            replies = {}

            def bot(i):
                c = self.stack.client(i % 2)
                barrier.wait()
                replies[i] = c.post("/api/queue/claim", {"sq": sq, "botId": "BOT%d" % i})
                c.close()

            threads = [threading.Thread(target=bot, args=(i,)) for i in (1, 2, 3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            codes = sorted(r.status for r in replies.values())
            self.assertEqual(codes, [200, 409, 409], replies)
            qc = self.stack.client(n % 2)
            q = qc.get("/api/queue").json
            qc.close()
            winner = [r.json["claim"]["botId"] for r in replies.values() if r.status == 200][0]
            self.assertEqual(q["sqClaims"][sq]["botId"], winner)

    def test_zz_killing_one_replica_of_each_loses_no_accepted_write(self):
        accepted = {}
        stop = threading.Event()
        errors = []

        def writer(w):
            c = self.stack.client(1)  # gateway 2 survives
            step = 0
            while not stop.is_set():
                step += 1
                try:
                    r = c.post("/api/progress/scale-kill-%d" % w, {"currentStep": step},
                               timeout=10)
                except OSError as e:
                    errors.append(e)
                    c.close()
                    c = self.stack.client(1)
                    continue
                if r.status == 200:
                    accepted[w] = step
                time.sleep(0.005)
            c.close()

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        for kind in ("progress", "coordinator", "sync-worker", "gateway"):
            victim = self.stack.replicas[kind].pop(0)
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait(10)
        time.sleep(2.0)
        stop.set()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(accepted), 4)
        c = self.stack.client(1)
        for w, step in accepted.items():
            r = c.get("/api/progress/scale-kill-%d" % w)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["currentStep"], step)
        # The survivors keep serving: claims, the queue and readiness.
        r = c.post("/api/queue/claim", {"sq": "after-kill", "botId": "B"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(c.get("/readyz").status, 200)
        c.close()


class JoinTest(unittest.TestCase):
    """Clients dial every listed address and redial the ones that do not
    answer yet: a replica started later on a listed address joins without
    restarting anything."""

    @classmethod
    def setUpClass(cls):
        cls.stack = ScaleStack({"progress": 1, "coordinator": 1, "sync-worker": 1,
                                "gateway": 1}, spare={"progress": 1, "coordinator": 1}).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def test_a_new_replica_joins_and_takes_over(self):
        c = self.stack.client(0)
        self.assertEqual(c.post("/api/progress/join-1", {"currentStep": 1}).status, 200)
        for kind in ("progress", "coordinator"):
            self.stack.start_spare(kind)
        time.sleep(1.5)  # the clients' redial period is at most 0.5 s
        for kind in ("progress", "coordinator"):
            first = self.stack.replicas[kind].pop(0)
            first.proc.send_signal(signal.SIGTERM)
            self.assertEqual(first.proc.wait(15), 0)
        # Only the replicas started later remain: they serve everything.
        for step in range(2, 12):
            r = c.post("/api/progress/join-1", {"currentStep": step})
            self.assertEqual(r.status, 200, r)
        self.assertEqual(c.get("/api/progress/join-1").json["currentStep"], 11)
        r = c.post("/api/queue/claim", {"sq": "join-sq", "botId": "B"})
        self.assertEqual(r.status, 200, r)
        c.close()


class StopUnderLoadTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = ScaleStack({"progress": 2, "coordinator": 2, "sync-worker": 1,
                                "gateway": 1}).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def test_sigterm_of_backend_replicas_under_load(self):
        results = []
        stop = threading.Event()

        def load(w):
            c = self.stack.client(0)
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    if i % 2:
                        r = c.post("/api/progress/stop-load-%d" % w, {"currentStep": i},
                                   timeout=15)
                    else:
                        r = c.post("/api/queue/claim",
                                   {"sq": "stop-%d-%d" % (w, i), "botId": "B"}, timeout=15)
                    results.append(r.status)
                except OSError as e:
                    results.append(repr(e))
                    c.close()
                    c = self.stack.client(0)
            c.close()

        threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        for kind in ("progress", "coordinator"):
            victim = self.stack.replicas[kind].pop(0)
            t0 = time.monotonic()
            victim.proc.send_signal(signal.SIGTERM)
            code = victim.proc.wait(15)
            self.assertEqual(code, 0, "%s exited with %s" % (victim.label, code))
            self.assertLess(time.monotonic() - t0, 10.0)
            time.sleep(0.5)
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join()
        self.assertGreater(len(results), 100)
        bad = [r for r in results if r != 200]
        self.assertEqual(bad, [], "requests not answered 200 while replicas stopped")


if __name__ == "__main__":
    unittest.main()
