"""End to end over HTTP: creates and log appends while Redis stalls
(DEBUG SLEEP 3, past the services' 2 s command timeout). A create retried
with the same Idempotency-Key answers 201 with the job (or account) the first
attempt made, and exactly one exists; the same key with another body answers
409; a malformed key 400. A log append in a stall is stored once."""

import threading
import time
import unittest
import uuid

from e2ebase import StackTestCase

STALL_S = 3


class StallTest(StackTestCase):
    def stall(self):
        """Start DEBUG SLEEP on a connection of its own; returns the thread,
        once Redis is asleep."""
        t = threading.Thread(target=self.stack.redis.command,
                             args=("DEBUG", "SLEEP", str(STALL_S)),
                             kwargs={"timeout": STALL_S + 10})
        t.start()
        time.sleep(0.2)
        return t

    def keys(self, pattern):
        out, cursor = [], "0"
        while True:
            cursor, batch = self.stack.redis.command("SCAN", cursor, "MATCH", pattern,
                                                     "COUNT", "1000")
            out.extend(batch)
            if cursor == "0":
                return out

    def job_keys(self):
        return set(self.keys("job:{*}"))

    def post_lost(self, path, body, headers):
        """POST whose answer the client gives up on after 1 s, as a client
        whose connection dropped would: the request has reached the server."""
        client = self.stack.client()
        try:
            r = client.post(path, body, headers=headers, timeout=1.0)
        except OSError:
            r = None  # timed out: the outcome is unknown to the client
        finally:
            client.close()
        return r

    def test_job_create_retried_with_its_key(self):
        before = self.job_keys()
        key = str(uuid.uuid4())
        body = {"conversationId": self.new_id("conv"), "status": "pending", "step": 1}
        t = self.stall()
        first = self.post_lost("/api/jobs", body, {"Idempotency-Key": key})
        # The client retries at once; the stall is still on.
        r = self.http.post("/api/jobs", body, headers={"Idempotency-Key": key}, timeout=20)
        t.join()
        if r.status == 503:  # the retry itself was answered during the stall
            self.assertRegex(r.error(), "outcome unknown|unavailable|timed out")
            r = self.http.post("/api/jobs", body, headers={"Idempotency-Key": key})
        self.assertStatus(r, 201)
        job = r.json
        if first is not None and first.status == 201:
            self.assertEqual(first.json["jobId"], job["jobId"])
        # And again once Redis is well: the same job, still one.
        again = self.http.post("/api/jobs", body, headers={"Idempotency-Key": key})
        self.assertStatus(again, 201)
        self.assertEqual(again.json["jobId"], job["jobId"])
        self.assertEqual(again.json["version"], job["version"])
        new = self.job_keys() - before
        self.assertEqual(new, {"job:{%s}" % job["jobId"]},
                         "one create with one key made %d jobs" % len(new))
        got = self.http.get("/api/jobs/%s" % job["jobId"])
        self.assertStatus(got, 200)
        self.assertEqual(got.json["conversationId"], body["conversationId"])

        # The same key with another body is refused and creates nothing.
        other = dict(body, step=2)
        r = self.http.post("/api/jobs", other, headers={"Idempotency-Key": key})
        self.assertJsonError(r, 409, "Idempotency-Key.*different request body")
        self.assertEqual(self.job_keys() - before, new)

    def test_job_create_in_a_stall_without_a_key(self):
        """The service's own request id: the store's resend after the lost
        reply finds the job it made, so a stall never makes two."""
        before = self.job_keys()
        body = {"conversationId": self.new_id("conv")}
        t = self.stall()
        r = self.http.post("/api/jobs", body, timeout=20)
        t.join()
        self.assertIn(r.status, (201, 503), r)
        time.sleep(0.3)
        new = self.job_keys() - before
        self.assertEqual(len(new), 1, "a create in a stall made %d jobs" % len(new))
        if r.status == 201:
            self.assertEqual(new, {"job:{%s}" % r.json["jobId"]})
        else:
            self.assertRegex(r.error(), "outcome unknown|unavailable|timed out")

    def test_bad_idempotency_keys(self):
        before = self.job_keys()
        for key, words in (("x" * 129, "1 to 128"), ("a b", "letters, digits"),
                           ("ü", "letters, digits"), ("a/b", "letters, digits")):
            r = self.http.post("/api/jobs", {"conversationId": "c"},
                               headers={"Idempotency-Key": key})
            self.assertJsonError(r, 400, "Idempotency-Key.*" + words)
        self.assertEqual(self.job_keys(), before)

    def test_log_append_in_a_stall_is_stored_once(self):
        sid = self.new_id("stall")
        self.create_record(sid)
        for n in range(2):
            t = self.stall()
            r = self.http.post("/api/progress/%s/log" % sid,
                               {"tool": "t", "error": "e%d" % n}, timeout=20)
            t.join()
            self.assertIn(r.status, (201, 503), r)
            time.sleep(0.3)
            log = self.http.get("/api/progress/%s/log" % sid)
            self.assertStatus(log, 200)
            self.assertEqual([e["error"] for e in log.json], ["e%d" % i for i in range(n + 1)])
        self.assertEqual(self.stack.redis.command("LLEN", "progress:{%s}:log" % sid), 2)

    def account_body(self, email):
        return {"emailAddress": email, "imapHost": "127.0.0.1", "imapPort": 1143,
                "security": "none", "username": "u", "password": "p"}

    def account_ids(self):
        r = self.http.get("/api/accounts")
        self.assertStatus(r, 200)
        items = r.json if isinstance(r.json, list) else r.json.get("accounts", [])
        return {a["id"] for a in items}

    def test_account_create_retried_with_its_key(self):
        before = self.account_ids()
        key = str(uuid.uuid4())
        body = self.account_body("%s@example.com" % self.new_id("acct"))
        t = self.stall()
        first = self.post_lost("/api/accounts", body, {"Idempotency-Key": key})
        r = self.http.post("/api/accounts", body, headers={"Idempotency-Key": key}, timeout=20)
        t.join()
        if r.status == 503:
            self.assertRegex(r.error(), "outcome unknown|unavailable|timed out")
            r = self.http.post("/api/accounts", body, headers={"Idempotency-Key": key})
        self.assertStatus(r, 201)
        acct = r.json
        self.assertNotIn("password", acct)
        if first is not None and first.status == 201:
            self.assertEqual(first.json["id"], acct["id"])
        again = self.http.post("/api/accounts", body, headers={"Idempotency-Key": key})
        self.assertStatus(again, 201)
        self.assertEqual(again.json["id"], acct["id"])
        self.assertEqual(self.account_ids() - before, {acct["id"]})
        other = dict(body, username="someone-else")
        r = self.http.post("/api/accounts", other, headers={"Idempotency-Key": key})
        self.assertJsonError(r, 409, "Idempotency-Key.*different request body")
        self.assertEqual(self.account_ids() - before, {acct["id"]})


if __name__ == "__main__":
    unittest.main()
