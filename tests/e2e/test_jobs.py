"""End to end over HTTP: job records, results up to 1 MiB and the job index
of a conversation (seed 002)."""

import unittest

from e2ebase import StackTestCase

MIB = 1024 * 1024


class JobsTest(StackTestCase):
    def create_job(self, conv, **fields):
        body = {"conversationId": conv}
        body.update(fields)
        r = self.http.post("/api/jobs", body)
        self.assertStatus(r, 201)
        return r.json

    def test_create_get_update(self):
        conv = self.new_id("conv")
        job = self.create_job(conv, status="running", model="m1")
        self.assertIsInstance(job.get("jobId"), str)
        self.assertRegex(job["jobId"], r"^[A-Za-z0-9._:-]{1,128}$")
        self.assertEqual(job["conversationId"], conv)
        self.assertEqual(job["status"], "running")
        self.assertEqual(job["model"], "m1")
        self.assertIsoUtc(job["createdAt"])
        self.assertIsoUtc(job["updatedAt"])
        self.assertIsInstance(job.get("version"), int)
        v1 = job["version"]

        r = self.http.get("/api/jobs/%s" % job["jobId"])
        self.assertStatus(r, 200)
        self.assertEqual(r.json, job)

        r = self.http.put("/api/jobs/%s" % job["jobId"],
                          {"status": "done", "result": {"summary": "ok", "items": [1, 2, 3]}})
        self.assertStatus(r, 200)
        upd = r.json
        self.assertEqual(upd["status"], "done")
        self.assertEqual(upd["result"], {"summary": "ok", "items": [1, 2, 3]})
        self.assertEqual(upd["model"], "m1", "fields not given were not kept")
        self.assertEqual(upd["jobId"], job["jobId"])
        self.assertEqual(upd["conversationId"], conv)
        self.assertEqual(upd["createdAt"], job["createdAt"])
        self.assertEqual(upd["version"], v1 + 1)
        self.assertGreaterEqual(upd["updatedAt"], job["updatedAt"])
        self.assertEqual(self.http.get("/api/jobs/%s" % job["jobId"]).json, upd)

    def test_status_defaults_to_pending(self):
        job = self.create_job(self.new_id("conv"))
        self.assertEqual(job["status"], "pending")

    def test_unknown_job_is_404(self):
        r = self.http.get("/api/jobs/no-such-job")
        self.assertStatus(r, 404)
        self.assertIn("error", r.json)
        r = self.http.put("/api/jobs/no-such-job", {"status": "done"})
        self.assertStatus(r, 404)
        self.assertIn("error", r.json)
        # The PUT did not create it.
        self.assertStatus(self.http.get("/api/jobs/no-such-job"), 404)

    def test_conversation_job_lookup_newest_wins(self):
        conv = self.new_id("conv")
        r = self.http.get("/api/conversations/%s/job" % conv)
        self.assertStatus(r, 404)
        self.assertIn("error", r.json)
        first = self.create_job(conv, status="running")
        r = self.http.get("/api/conversations/%s/job" % conv)
        self.assertStatus(r, 200)
        self.assertEqual(r.json["jobId"], first["jobId"])
        second = self.create_job(conv)
        self.assertNotEqual(first["jobId"], second["jobId"])
        r = self.http.get("/api/conversations/%s/job" % conv)
        self.assertStatus(r, 200)
        self.assertEqual(r.json, second)
        # An update shows through the index.
        self.http.put("/api/jobs/%s" % second["jobId"], {"status": "done"})
        self.assertEqual(self.http.get("/api/conversations/%s/job" % conv).json["status"], "done")

    def test_one_mib_result_round_trips(self):
        job = self.create_job(self.new_id("conv"))
        # A 1 MiB result: just under 1 MiB of JSON text in all.
        chunk = "0123456789abcdef" * 64  # 1 KiB
        result = {"data": [chunk] * 1000, "tail": "z" * (MIB - 1000 * 1027 - 64)}
        r = self.http.put("/api/jobs/%s" % job["jobId"], {"status": "done", "result": result},
                          timeout=60)
        self.assertStatus(r, 200)
        self.assertEqual(r.json["result"], result)
        r = self.http.get("/api/jobs/%s" % job["jobId"], timeout=60)
        self.assertStatus(r, 200)
        self.assertEqual(r.json["result"], result)
        self.assertEqual(r.json["status"], "done")

    def test_result_over_one_mib_refused(self):
        job = self.create_job(self.new_id("conv"))
        r = self.http.put("/api/jobs/%s" % job["jobId"], {"result": "x" * (MIB + 4096)},
                          timeout=60)
        self.assertIn(r.status, (400, 413), r)
        self.assertRegex(r.error(), r"(?i)result|large|too big|limit|size|exceed")
        self.assertEqual(self.http.get("/api/jobs/%s" % job["jobId"]).json, job)

    def test_bad_input_changes_nothing(self):
        conv = self.new_id("conv")
        job = self.create_job(conv)
        path = "/api/jobs/%s" % job["jobId"]
        self.assertJsonError(self.http.post("/api/jobs", {"status": "x"}), 400, "conversationId")
        self.assertJsonError(self.http.post("/api/jobs", {"conversationId": 5}), 400,
                             "conversationId")
        self.assertJsonError(self.http.post("/api/jobs", {"conversationId": "bad id!"}), 400,
                             r"conversationId|\bid\b")
        self.assertJsonError(self.http.post("/api/jobs", b"{oops"), 400, r"json|pars|malformed")
        self.assertJsonError(self.http.post("/api/jobs", b"[1]"), 400, r"object")
        self.assertJsonError(self.http.put(path, b'{"status": '), 400, r"json|pars|malformed")
        self.assertJsonError(self.http.put(path, b'"done"'), 400, r"object")
        self.assertJsonError(self.http.put(path, {"version": 9}), 400, "version")
        self.assertJsonError(self.http.put(path, {"jobId": "other"}), 400, "jobId")
        self.assertJsonError(self.http.put(path, {"conversationId": "other"}), 400,
                             "conversationId")
        self.assertJsonError(self.http.put(path, {"createdAt": "2020-01-01T00:00:00Z"}), 400,
                             "createdAt")
        self.assertJsonError(self.http.get("/api/jobs/%s" % ("j" * 129)), 400, r"\bid\b|job")
        self.assertJsonError(self.http.get("/api/jobs/bad%24id"), 400, r"\bid\b|job")
        self.assertJsonError(self.http.get("/api/conversations/bad%24id/job"), 400,
                             r"\bid\b|conversation")
        self.assertEqual(self.http.get(path).json, job)
        self.assertEqual(self.http.get("/api/conversations/%s/job" % conv).json, job)

    def test_wrong_method_is_405(self):
        job = self.create_job(self.new_id("conv"))
        for method, path in (("DELETE", "/api/jobs/%s" % job["jobId"]),
                             ("POST", "/api/jobs/%s" % job["jobId"]),
                             ("PUT", "/api/jobs"),
                             ("POST", "/api/conversations/c1/job")):
            r = self.http.request(method, path, {"status": "x"})
            self.assertJsonError(r, 405, r"method|allowed")
        self.assertEqual(self.http.get("/api/jobs/%s" % job["jobId"]).json, job)


if __name__ == "__main__":
    unittest.main()
