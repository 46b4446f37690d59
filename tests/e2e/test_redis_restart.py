"""End to end over HTTP: Redis killed and restarted mid-run. Requests answer
503 with a JSON error promptly while it is down, the services keep running,
and they recover by themselves soon after it comes back."""

import time
import unittest

from e2ebase import StackTestCase

PROMPT_S = 3.0     # a request while Redis is down must answer within this
RECOVER_S = 3.0    # requests must succeed again within this after restart


class RedisRestartTest(StackTestCase):
    def timed(self, method, path, body=None):
        t0 = time.monotonic()
        r = self.http.request(method, path, body, timeout=PROMPT_S + 7)
        return r, time.monotonic() - t0

    def test_kill_and_restart(self):
        sid = self.new_id("rr")
        self.create_record(sid)
        self.assertStatus(self.http.get("/readyz"), 200)

        self.stack.redis.kill()
        for method, path, body in (("GET", "/api/progress/%s" % sid, None),
                                   ("POST", "/api/progress/%s" % sid, {"currentStep": 5}),
                                   ("POST", "/api/progress/%s/log" % sid, {"error": "x"}),
                                   ("GET", "/api/progress/%s/log" % sid, None),
                                   ("POST", "/api/jobs", {"conversationId": "c"}),
                                   ("GET", "/api/jobs/some-job", None),
                                   ("GET", "/api/progress/%s" % sid, None)):
            r, took = self.timed(method, path, body)
            self.assertJsonError(r, 503, r"unavailable|redis|store|down|service")
            self.assertLess(took, PROMPT_S, "%s %s took %.2f s with Redis down"
                            % (method, path, took))
        r, took = self.timed("GET", "/readyz")
        self.assertEqual(r.status, 503, r)
        self.assertLess(took, PROMPT_S)
        self.assertStatus(self.http.get("/healthz"), 200)  # alive, not ready
        time.sleep(1.0)  # let any reconnect back-off grow
        self.stack.assert_alive()

        self.stack.redis.start()
        restarted = time.monotonic()
        recovered = None
        while time.monotonic() - restarted < RECOVER_S + 7:
            r = self.http.post("/api/progress/%s" % sid, {"currentStep": 6}, timeout=5)
            if r.status == 200:
                recovered = time.monotonic() - restarted
                break
            self.assertEqual(r.status, 503, r)
            time.sleep(0.05)
        self.assertIsNotNone(recovered, "no successful write within %.0f s of Redis restarting"
                             % (RECOVER_S + 7))
        self.assertLess(recovered, RECOVER_S, "recovery took %.2f s" % recovered)
        # The restarted Redis is empty (no persistence): a fresh record.
        self.assertEqual(r.json["version"], 1)
        # Every connection of every worker is back by RECOVER_S: from then on
        # all requests succeed, log and jobs included.
        time.sleep(max(0.0, RECOVER_S - (time.monotonic() - restarted)))
        self.assertStatus(self.http.get("/readyz"), 200)
        self.assertEqual(self.get_record(sid)["currentStep"], 6)
        for _ in range(40):
            self.assertStatus(self.http.get("/api/progress/%s" % sid), 200)
            self.assertStatus(self.http.post("/api/progress/%s/log" % sid, {"error": "e"}), 201)
            self.assertStatus(self.http.post("/api/jobs", {"conversationId": "c2"}), 201)
        self.stack.assert_alive()


if __name__ == "__main__":
    unittest.main()
