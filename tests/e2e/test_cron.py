"""End to end over HTTP: the cron endpoint of seed 004. Only
`Authorization: Bearer $CRON_SECRET` opens it (not the API token, which it
does not need either); refused callers and bad batch sizes queue nothing; the
status has the seed's shape and counts; a trigger queues only accounts that
are due, at most a batch. The stack's scheduler does not tick by itself
(SCHED_AUTO_TICK=false), so every change of state here is the test's."""

import datetime
import os
import re
import unittest

from e2ebase import StackTestCase, gateway_exit, raw_request
from stack import TEST_CRON_SECRET, free_port

API_TOKEN = "e2e-cron-api-token-0123456789"
PATH = "/api/cron/sync-emails"
SEED_STATUS_KEYS = {"success", "timestamp", "totalAccounts", "pendingSync", "errorAccounts",
                    "syncInterval"}
NACCOUNTS = 12


def parse_iso(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


class CronTestBase(StackTestCase):
    def cron(self, method, path=PATH, secret="default", headers=None):
        if secret == "default":
            secret = self.stack.cron_secret
        hdrs = dict(headers or {})
        if secret is not None:
            hdrs["Authorization"] = "Bearer " + secret
        return self.http.request(method, path, headers=hdrs, token=None)

    def assertSeedError(self, r, status, pattern):
        self.assertStatus(r, status)
        self.assertIsInstance(r.json, dict, r)
        self.assertIs(r.json.get("success"), False, r)
        self.assertRegex(r.json.get("error", ""), re.compile(pattern, re.I))
        self.assertIn("application/json", r.headers.get("Content-Type", ""))


class CronTest(CronTestBase):
    STACK_ENV = {"API_TOKEN": API_TOKEN}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ids = []
        for i in range(NACCOUNTS):
            r = cls.http.post("/api/accounts", {
                "emailAddress": "cron%d@example.com" % i, "imapHost": "imap.example.com",
                "imapPort": 993, "security": "tls", "username": "cron%d" % i,
                "password": "cron-password-%d" % i})
            if r.status != 201:
                cls.tearDownClass()
                raise AssertionError("cannot create an account: %r" % (r,))
            cls.ids.append(r.json["id"])

    def accounts(self):
        r = self.http.get("/api/accounts")
        self.assertStatus(r, 200)
        return {a["id"]: a for a in r.json["accounts"]}

    def status(self):
        r = self.cron("GET")
        self.assertStatus(r, 200)
        return r.json

    def queued_ids(self):
        return {aid for aid, a in self.accounts().items() if a["syncStatus"] == "queued"}

    def snapshot(self):
        """What a refused request must leave as it is."""
        st = self.status()
        return ({k: st[k] for k in ("totalAccounts", "pendingSync", "errorAccounts")},
                self.queued_ids())

    def test_refused_callers_queue_nothing(self):
        before = self.snapshot()
        for method in ("POST", "GET"):
            r = self.cron(method, secret=None)
            self.assertSeedError(r, 401, r"bearer|secret|token")
            self.assertEqual(r.headers.get("WWW-Authenticate", "")[:6], "Bearer")
            for secret in ("wrong", TEST_CRON_SECRET + "x", TEST_CRON_SECRET[:-1],
                           TEST_CRON_SECRET.upper(), API_TOKEN, ""):
                with self.subTest(method=method, secret=secret):
                    r = self.cron(method, secret=secret)
                    self.assertSeedError(r, 401, r"bearer|secret|token")
                    self.assertTrue(r.headers.get("WWW-Authenticate", "").startswith("Bearer"))
            for hdr in ("Basic " + TEST_CRON_SECRET, TEST_CRON_SECRET, "Bearer"):
                with self.subTest(method=method, authorization=hdr):
                    r = self.cron(method, secret=None, headers={"Authorization": hdr})
                    self.assertSeedError(r, 401, r"bearer|secret|token")
            # The API token, the way API routes take it, opens nothing here.
            r = self.http.request(method, PATH, token=API_TOKEN)
            self.assertSeedError(r, 401, r"secret")
        r = self.cron("POST", PATH + "?batchSize=5", secret="wrong")
        self.assertSeedError(r, 401, r"secret")
        self.assertEqual(self.snapshot(), before)

    def test_auth_comes_before_the_body(self):
        before = self.snapshot()
        data = b"x" * (10 * 1024 * 1024)
        status, head, doc = raw_request(self.stack.http_port, "POST", PATH, data)
        self.assertEqual(status, 401, (head, doc))
        self.assertIs(doc["success"], False)
        status, head, doc = raw_request(self.stack.http_port, "POST", PATH, data,
                                        headers={"Authorization": "Bearer " + API_TOKEN})
        self.assertEqual(status, 401, (head, doc))
        status, head, doc = raw_request(
            self.stack.http_port, "POST", PATH, data,
            headers={"Authorization": "Bearer " + self.stack.cron_secret})
        self.assertEqual(status, 413, (head, doc))
        self.assertIs(doc["success"], False)
        self.assertEqual(self.snapshot(), before)

    def test_bad_batch_size_is_400_and_queues_nothing(self):
        before = self.snapshot()
        for bad in ("0", "-1", "1001", "abc", "", "1.5", "10abc", "+5", "%205", "0x10",
                    "99999999999999999999"):
            with self.subTest(batchSize=bad):
                r = self.cron("POST", PATH + "?batchSize=" + bad)
                self.assertStatus(r, 400)
                self.assertEqual(r.json, {
                    "success": False,
                    "error": "batchSize must be an integer between 1 and 1000"})
        self.assertEqual(self.snapshot(), before)

    def test_status_has_the_seed_shape_and_counts(self):
        t0 = now_utc()
        st = self.status()
        t1 = now_utc()
        self.assertTrue(SEED_STATUS_KEYS <= set(st), st)
        self.assertIs(st["success"], True)
        self.assertIsoUtc(st["timestamp"])
        ts = parse_iso(st["timestamp"])
        self.assertGreaterEqual(ts, t0 - datetime.timedelta(seconds=1))
        self.assertLessEqual(ts, t1 + datetime.timedelta(seconds=1))
        self.assertEqual(st["totalAccounts"], NACCOUNTS)
        self.assertEqual(st["errorAccounts"], 0)
        self.assertEqual(st["syncInterval"], 15)
        self.assertIsInstance(st["pendingSync"], int)
        self.assertGreaterEqual(st["pendingSync"], 0)
        self.assertLessEqual(st["pendingSync"], NACCOUNTS)
        self.assertEqual(st["batchSize"], 5)
        # 12 accounts fit 5 a minute over 15 minutes: the interval holds.
        self.assertEqual(st["effectiveIntervalMinutes"], 15)
        self.assertIsInstance(st["recommendedBatchSize"], int)
        self.assertGreaterEqual(st["recommendedBatchSize"], 1)
        self.assertLessEqual(st["recommendedBatchSize"], 5)
        for k in SEED_STATUS_KEYS - {"success", "timestamp"}:
            self.assertIsInstance(st[k], int, k)
        # HEAD answers too, without a body.
        r = self.cron("HEAD")
        self.assertStatus(r, 200)
        self.assertEqual(r.raw, b"")

    def test_trigger_queues_due_accounts_only(self):
        seen = set()
        for query, batch in (("?batchSize=2", 2), ("", 5), ("?batchSize=1000", 1000)):
            accounts = self.accounts()
            t0 = now_utc()
            r = self.cron("POST", PATH + query)
            t1 = now_utc()
            self.assertStatus(r, 200)
            body = r.json
            self.assertIs(body["success"], True)
            self.assertIsoUtc(body["timestamp"])
            self.assertIsInstance(body["queued"], list)
            self.assertIsInstance(body["requeued"], list)
            self.assertEqual(body["count"], len(body["queued"]))
            self.assertLessEqual(body["count"], batch)
            self.assertEqual(len(set(body["queued"])), len(body["queued"]))
            self.assertIsInstance(body["effectiveIntervalMinutes"], int)
            self.assertIsInstance(body["recommendedBatchSize"], int)
            # Due: idle accounts whose next sync time has come.
            waiting = {aid: parse_iso(a["nextSyncAt"]) for aid, a in accounts.items()
                       if a["syncStatus"] == "idle" and a["nextSyncAt"]}
            due_before = {aid for aid, t in waiting.items() if t <= t0}
            due_by_end = {aid for aid, t in waiting.items()
                          if t <= t1 + datetime.timedelta(seconds=1)}
            queued = set(body["queued"])
            self.assertTrue(queued <= due_by_end,
                            "queued accounts that were not due: %s" % (queued - due_by_end))
            self.assertGreaterEqual(body["count"], min(len(due_before), batch), body)
            self.assertFalse(queued & seen, "queued twice: %s" % (queued & seen))
            seen |= queued
            after = self.accounts()
            for aid in queued:
                self.assertEqual(after[aid]["syncStatus"], "queued")
        # Nothing here syncs them, so they stay queued; none is queued twice.
        self.assertEqual(self.queued_ids() & seen, seen)


class CronLoopbackOnlyTest(CronTestBase):
    STACK_ENV = {"CRON_LOOPBACK_ONLY": "true", "API_TOKEN": API_TOKEN}

    def test_loopback_callers_still_served(self):
        r = self.cron("GET")
        self.assertStatus(r, 200)
        self.assertIs(r.json["success"], True)
        self.assertEqual(r.json["totalAccounts"], 0)
        r = self.cron("POST")
        self.assertStatus(r, 200)
        self.assertEqual(r.json["queued"], [])
        self.assertEqual(r.json["count"], 0)
        # The secret is still required.
        self.assertSeedError(self.cron("GET", secret=None), 401, r"bearer|secret|token")
        self.assertSeedError(self.cron("POST", secret="wrong"), 401, r"secret")


class CronDisabledTest(CronTestBase):
    STACK_ENV = {"CRON_SECRET": ""}

    def test_without_cron_secret_the_routes_are_503(self):
        self.assertIsNone(self.stack.cron_secret)
        for method in ("GET", "POST"):
            for secret in (None, "", "anything-at-all-0123456789", TEST_CRON_SECRET):
                r = self.cron(method, secret=secret)
                self.assertStatus(r, 503)
                self.assertEqual(r.json, {
                    "success": False,
                    "error": "CRON_SECRET is not set: cron routes are disabled"})
        # The rest of the API is not affected.
        r = self.http.get("/api/accounts")
        self.assertStatus(r, 200)


class CronBadSettingsTest(unittest.TestCase):
    def test_bad_cron_settings_stop_the_gateway(self):
        for name, value in (("CRON_SECRET", "s3cr3t-x9"), ("CRON_LOOPBACK_ONLY", "maybe")):
            with self.subTest(name=name):
                env = {k: v for k, v in os.environ.items() if not k.startswith("CRON_")}
                env.update({"GATEWAY_LISTEN": "127.0.0.1:%d" % free_port(),
                            "PROGRESS_RPC_URL": "tcp://127.0.0.1:%d" % free_port(),
                            "PROGRESS_EVENTS_URL": "tcp://127.0.0.1:%d" % free_port(),
                            "COORDINATOR_RPC_URL": "tcp://127.0.0.1:%d" % free_port(),
                            name: value})
                code, log = gateway_exit(self, env, "with %s=%s" % (name, value))
                self.assertEqual(code, 1, log)
                self.assertIn(name, log)
                if name == "CRON_SECRET":
                    # The message names the setting, never its value.
                    self.assertRegex(log, r"CRON_SECRET is too short")
                    self.assertNotIn(value, log)


if __name__ == "__main__":
    unittest.main()
