"""End to end over HTTP: a Redis failover. The services start with a two-host
REDIS_URL (primary, replica); while a client writes progress records through
the gateway without pause, the replica is promoted (REPLICAOF NO ONE) and the
old primary demoted to its replica (REPLICAOF). The services follow within
5 s, and every write the gateway acknowledged is on the new primary."""

import sys
import threading
import time
import unittest

from e2ebase import StackTestCase
from stack import Redis, Stack

FOLLOW_S = 5.0


class FailoverTest(StackTestCase):
    @classmethod
    def setUpClass(cls):
        stack = Stack(env={})
        cls.replica = Redis(stack.workdir)
        stack.extra_env["REDIS_URL"] = "redis://127.0.0.1:%d,127.0.0.1:%d" % (
            stack.redis.port, cls.replica.port)
        cls.stack = stack.start()
        cls.http = cls.stack.client()
        cls.replica.start()
        cls.replica.command("REPLICAOF", "127.0.0.1", str(stack.redis.port))

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.replica.stop()

    def wait_synced(self, primary, replica, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = replica.command("INFO", "replication")
            if "master_link_status:up" in info:
                want = int(primary.command("INFO", "replication")
                           .split("master_repl_offset:")[1].split()[0])
                got = int(info.split("slave_repl_offset:")[1].split()[0])
                if got >= want:
                    return
            time.sleep(0.02)
        self.fail("the replica did not catch up within %.0f s" % timeout)

    def test_services_follow_a_failover(self):
        primary, replica = self.stack.redis, self.replica
        self.wait_synced(primary, replica)
        acked = []  # (id, monotonic time of the answer)
        failed = []
        stop = threading.Event()
        prefix = self.new_id("fo")

        def writer():
            client = self.stack.client()
            n = 0
            while not stop.is_set():
                sid = "%s-%d" % (prefix, n)
                n += 1
                try:
                    r = client.post("/api/progress/%s" % sid, {"currentStep": n}, timeout=10)
                except OSError as e:
                    failed.append((sid, str(e), time.monotonic()))
                    continue
                if r.status == 200:
                    acked.append((sid, time.monotonic()))
                else:
                    failed.append((sid, r.status, time.monotonic()))
                    time.sleep(0.01)
            client.close()

        t = threading.Thread(target=writer)
        t.start()
        try:
            time.sleep(1.0)
            self.assertTrue(acked, "no write succeeded before the failover: %r" % failed[:5])
            # A manual failover: writes held on the old primary while the
            # replica catches up, then the roles swap.
            primary.command("CLIENT", "PAUSE", "2000", "WRITE")
            self.wait_synced(primary, replica)
            replica.command("REPLICAOF", "NO", "ONE")
            primary.command("REPLICAOF", "127.0.0.1", str(replica.port))
            primary.command("CLIENT", "UNPAUSE")
            switched = time.monotonic()
            time.sleep(FOLLOW_S + 1.0)
        finally:
            stop.set()
            t.join(30)
        after = [when for _, when in acked if when > switched]
        sys.stderr.write("\nfailover: %d writes acknowledged (%d after the switch), %d refused; "
                         "first write after the switch in %.3f s\n"
                         % (len(acked), len(after), len(failed),
                            (after[0] - switched) if after else -1))
        self.assertTrue(after, "no write acknowledged after the failover: %r" % failed[-5:])
        self.assertLess(after[0] - switched, FOLLOW_S,
                        "the first write after the failover took %.2f s" % (after[0] - switched))
        # From FOLLOW_S on, every write goes through.
        late = [f for f in failed if f[2] > switched + FOLLOW_S]
        self.assertEqual(late, [], "writes refused %.0f s after the failover" % FOLLOW_S)
        self.assertTrue([w for w in after if w > switched + FOLLOW_S],
                        "writes stopped succeeding after the failover")
        # Nothing acknowledged is missing on the new primary.
        missing = [sid for sid, _ in acked
                   if replica.command("EXISTS", "progress:{%s}" % sid) != 1]
        self.assertEqual(missing, [], "%d of %d acknowledged writes lost (after the switch: %d)"
                         % (len(missing), len(acked), len(after)))
        self.assertEqual(replica.command("ROLE")[0], "master")
        self.assertEqual(primary.command("ROLE")[0], "slave")
        # A read and a write through every service path still work.
        sid = "%s-final" % prefix
        self.assertStatus(self.http.post("/api/progress/%s" % sid, {"currentStep": 1}), 200)
        self.assertStatus(self.http.get("/api/progress/%s" % sid), 200)
        self.assertStatus(self.http.post("/api/jobs", {"conversationId": "fo"}), 201)
        self.assertStatus(self.http.get("/readyz"), 200)


if __name__ == "__main__":
    unittest.main()
