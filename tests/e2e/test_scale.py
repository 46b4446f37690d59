"""End to end over HTTP with several replicas of every service on one Redis
(2 gateways, 2 progress, 3 coordinators, 2 sync-workers): updates written
through one gateway stream from the other, the seed-003 race through both
gateways has one winner, killing a replica of each service loses no accepted
write, and stopping replicas under load answers every request.

With one real Dovecot (dovecot.py: a user per account, a few messages each),
50 accounts created through both gateways are each synced exactly once per
interval: the 3 coordinators each tick by themselves every minute
(SYNC_INTERVAL_MINUTES=1, EMAIL_SYNC_BATCH_SIZE=50) and both sync-workers
(2 threads each) take part. Each run is counted three ways, from lines
written once per run: the "synced" line in the log of the sync-worker that
ran it, the "lease" line in the log of the coordinator that handed it out,
and the login in Dovecot's log (no run logs in twice); each source, bucketed by
wall-clock minute, must give every account exactly one run in each of the two
whole minutes after the accounts were created (none before, at most one in
the minute of creation and in the one the count stops in), and each of those
minutes was queued by one tick of one coordinator with no lease running out.
Within each interval the accounts' views show it (status ok, lastSyncedAt in
the minute, nextSyncAt the start of the next), and the seed's cron trigger
(POST /api/cron/sync-emails, a forced tick) queues nothing. That test waits
for real minutes: about three."""

import collections
import datetime
import json
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

import e2ebase  # noqa: F401 (every reply the stack's clients get is checked against openapi.json)
from dovecot import Dovecot
from stack import ScaleStack, SSEReader, event_record, read_tail

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


# The schedule test: one account per Dovecot user, the real one-minute
# ticker on every coordinator, a batch that holds them all.
NACCOUNTS = 50
WINDOWS = 2  # whole intervals judged
SCHEDULE_ENV = {
    "SCHED_AUTO_TICK": "true",
    "SYNC_INTERVAL_MINUTES": "1",
    "EMAIL_SYNC_BATCH_SIZE": str(NACCOUNTS),
    "SYNC_CONCURRENCY": "2",
    "LOG_LEVEL": "info",  # the test counts the services' info lines
}
CRON_PATH = "/api/cron/sync-emails"
# ts=... level=... service=... event=... msg="..."
LOG_LINE = re.compile(r'^ts=(\S+) level=\w+ service=\S+ event=(\S+) msg="(.*)"$')
RUN_TROUBLE = ("sync_failed", "sync_abandoned", "sync_interrupted", "complete_failed",
               "renew_failed", "bad_lease", "drop_failed")


def parse_iso(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)


def minute_of(t):
    """The minute (since the epoch) a datetime falls in."""
    return int(t.timestamp()) // 60


def log_events(path):
    """(time, event, msg) of every line of a service's log."""
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = LOG_LINE.match(line.rstrip("\n"))
            if m:
                out.append((parse_iso(m.group(1)), m.group(2), m.group(3)))
    return out


def sleep_until(epoch_s):
    while time.time() < epoch_s:
        time.sleep(min(1.0, epoch_s - time.time()))


class ScheduleTest(unittest.TestCase):
    """50 accounts, each a user of one real Dovecot, synced exactly once per
    interval by the scale-out stack on its own schedule (see the module's
    docstring)."""

    @classmethod
    def setUpClass(cls):
        cls.users = {"sched%02d" % i: "sched-pw-%02d-%d" % (i, time.monotonic_ns())
                     for i in range(NACCOUNTS)}
        cls.dovecot = Dovecot(cls.users, messages=3).start()
        cls.addClassCleanup(cls.dovecot.stop)
        cls.stack = ScaleStack(COUNTS, env=SCHEDULE_ENV).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def dump(self):
        self.stack.dump_logs()
        sys.stderr.write("\n----- dovecot log -----\n%s\n" % read_tail(self.dovecot.log_path))

    def accounts(self, c):
        r = c.get("/api/accounts")
        self.assertEqual(r.status, 200, r)
        return {a["id"]: a for a in r.json["accounts"]}

    def create_accounts(self, gws):
        """Creates the accounts inside one minute, after that minute's tick
        (0.25 s past the minute): none is due before the next minute.
        Returns ({account id: user}, the minute)."""
        if not 2 <= time.time() % 60 <= 40:
            sleep_until((int(time.time()) // 60 + 1) * 60 + 2)
        m0 = int(time.time()) // 60
        ids = {}
        for i, user in enumerate(sorted(self.users)):
            r = gws[i % 2].post("/api/accounts", {
                "emailAddress": "%s@example.com" % user, "imapHost": "127.0.0.1",
                "imapPort": self.dovecot.port, "security": "none", "username": user,
                "password": self.users[user]})
            self.assertEqual(r.status, 201, r)
            ids[r.json["id"]] = user
        self.assertEqual(int(time.time()) // 60, m0, "creating the accounts took too long")
        return ids, m0

    def check_interval(self, gws, ids, minute):
        """Every account's sync of this minute is done and shows in its
        view; a cron trigger now queues nothing."""
        start = minute * 60
        c = gws[minute % 2]
        deadline = start + 50
        sleep_until(start + 1)
        while True:
            accounts = self.accounts(c)
            done = {aid for aid, a in accounts.items()
                    if a["syncStatus"] == "ok" and a["lastSyncedAt"]
                    and parse_iso(a["lastSyncedAt"]).timestamp() >= start}
            if done >= set(ids) or time.time() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual(set(accounts), set(ids))
        late = {aid: (a["syncStatus"], a["lastSyncedAt"], a["errorMessage"])
                for aid, a in accounts.items() if aid not in done}
        self.assertEqual(late, {}, "accounts not synced in the minute starting %s"
                         % datetime.datetime.fromtimestamp(start, datetime.timezone.utc))
        for aid, a in accounts.items():
            self.assertLess(parse_iso(a["lastSyncedAt"]).timestamp(), start + 60, a)
            self.assertEqual(parse_iso(a["nextSyncAt"]).timestamp(), start + 60, a)
            self.assertEqual(a["consecutiveFailures"], 0, a)
            self.assertIsNone(a["errorMessage"], a)
        # The seed's system cron triggers every minute besides the ticker:
        # in mid-interval nothing is due.
        r = gws[(minute + 1) % 2].post(CRON_PATH, None, token=None, headers={
            "Authorization": "Bearer " + self.stack.replicas["gateway"][0].env["CRON_SECRET"]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["queued"], r.json["requeued"]), ([], []), r)

    def test_50_accounts_each_synced_exactly_once_per_interval(self):
        try:
            self.check_schedule()
        except BaseException:
            self.dump()
            raise

    def check_schedule(self):
        gws = [self.stack.client(0), self.stack.client(1)]
        self.addCleanup(lambda: [c.close() for c in gws])
        ids, m0 = self.create_accounts(gws)
        for w in range(1, WINDOWS + 1):
            self.check_interval(gws, ids, m0 + w)
        end = m0 + WINDOWS + 1
        sleep_until(end * 60 + 3)

        # One "synced" line per run, in the log of the replica that ran it.
        runs = collections.Counter()
        ran_by = {}  # (minute, account) -> the sync-worker replica
        by_replica = collections.Counter()
        seconds = collections.defaultdict(list)  # minute -> seconds past it of each run's end
        trouble = []
        for svc in self.stack.replicas["sync-worker"]:
            for t, event, msg in log_events(svc.log_path):
                if event in RUN_TROUBLE:
                    trouble.append("%s %s %s: %s" % (t, svc.label, event, msg))
                elif event == "synced":
                    acct = re.match(r"account=(\S+) in \d+ ms$", msg).group(1)
                    runs[(minute_of(t), acct)] += 1
                    ran_by[(minute_of(t), acct)] = svc.label
                    seconds[minute_of(t)].append(t.timestamp() % 60)
                    if m0 < minute_of(t) < end:
                        by_replica[svc.label] += 1
        # One lease line per run (naming the worker: host-pid-thread) and
        # one tick line per queueing tick, in the log of the coordinator
        # replica that did it.
        pids = {str(svc.proc.pid): svc.label for svc in self.stack.replicas["sync-worker"]}
        leases = collections.Counter()
        leased_to = {}
        ticks = []
        for svc in self.stack.replicas["coordinator"]:
            for t, event, msg in log_events(svc.log_path):
                if event == "lease":
                    m = re.match(r"account=(\S+) worker=\S*-(\d+)-\d+$", msg)
                    leases[(minute_of(t), m.group(1))] += 1
                    leased_to[(minute_of(t), m.group(1))] = pids.get(m.group(2), m.group(2))
                elif event == "tick":
                    m = re.match(r"queued=(\d+) requeued_after_lease_expiry=(\d+) ", msg)
                    ticks.append((minute_of(t), svc.label, int(m.group(1)), int(m.group(2))))
        # One login per run on the IMAP server.
        user_id = {u: aid for aid, u in ids.items()}
        logins = collections.Counter((minute_of(t), user_id.get(u, u))
                                     for t, u in self.dovecot.logins())

        self.assertEqual(trouble, [])
        for name, counts in (("synced", runs), ("lease", leases), ("login", logins)):
            unknown = {k for k in counts if k[1] not in ids}
            self.assertEqual(unknown, set(), "%s of unknown accounts" % name)
            early = {k: n for k, n in counts.items() if k[0] < m0}
            self.assertEqual(early, {}, "%s before the accounts existed" % name)
            bad = {}
            for aid in ids:
                for m in range(m0, end + 1):
                    n = counts.get((m, aid), 0)
                    # Whole intervals: exactly one. The minute of creation
                    # and the one the test stops in: at most one.
                    whole = m0 < m < end
                    if (whole and n != 1) or n > 1:
                        bad[(ids[aid], m - m0)] = n
            self.assertEqual(bad, {}, "%s: (user, interval) -> count, not once per interval"
                             % name)
        # The lease and the run counted in a minute are the same run.
        self.assertEqual({k: v for k, v in leased_to.items() if m0 < k[0] < end},
                         {k: v for k, v in ran_by.items() if m0 < k[0] < end})
        # Each judged interval was queued by one tick of one replica.
        queuing = [(m - m0, label, q, r) for m, label, q, r in ticks if m0 < m < end]
        self.assertEqual(sorted((m, q, r) for m, _, q, r in queuing),
                         [(w, NACCOUNTS, 0) for w in range(1, WINDOWS + 1)], ticks)
        self.assertEqual([t for t in ticks if t[3]], [], "leases ran out")
        self.assertEqual(set(by_replica), {"sync-worker-1", "sync-worker-2"},
                         "both sync-workers take part: %s" % dict(by_replica))
        sys.stderr.write("\nsyncs per sync-worker: %s; queuing ticks: %s; runs ended "
                         "%s s past their minute\n"
                         % (dict(by_replica), queuing,
                            ", ".join("%.1f..%.1f" % (min(seconds[m]), max(seconds[m]))
                                      for m in range(m0 + 1, end))))


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
        # However it ends, the load stops and no replica is left running.
        try:
            time.sleep(0.5)
            for kind in ("progress", "coordinator"):
                victim = self.stack.replicas[kind].pop(0)
                t0 = time.monotonic()
                victim.proc.send_signal(signal.SIGTERM)
                try:
                    code = victim.proc.wait(15)
                except subprocess.TimeoutExpired:
                    victim.proc.kill()
                    victim.proc.wait(10)
                    self.fail("%s did not exit within 15 s of SIGTERM:\n%s"
                              % (victim.label, read_tail(victim.log_path, 4000)))
                self.assertEqual(code, 0, "%s exited with %s" % (victim.label, code))
                self.assertLess(time.monotonic() - t0, 10.0)
                time.sleep(0.5)
            time.sleep(1.0)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertGreater(len(results), 100)
        bad = [r for r in results if r != 200]
        self.assertEqual(bad, [], "requests not answered 200 while replicas stopped")


if __name__ == "__main__":
    unittest.main()
