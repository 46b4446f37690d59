"""End to end over HTTP: progress records and their error log (seed 001),
and every kind of bad input on those routes. No tokens are set here (the
gateway listens on loopback only), so auth is tested in test_auth_health."""

import json
import unittest

from e2ebase import StackTestCase, raw_request

SEED_FIELDS = ("currentStep", "completedSteps", "currentAction", "toolStatus", "errors",
               "phase", "complete")


class ProgressRecordTest(StackTestCase):
    def test_unknown_session_is_404_with_seed_body(self):
        r = self.http.get("/api/progress/test-session")
        self.assertStatus(r, 404)
        self.assertEqual(r.json, {"error": "Session not found"})
        self.assertIn("application/json", r.headers.get("Content-Type", ""))

    def test_create_returns_whole_record(self):
        sid = self.new_id("create")
        body = {
            "currentStep": 3,
            "completedSteps": [1, 2],
            "currentAction": "Installing git",
            "toolStatus": {"git": {"status": "installing", "version": None}},
            "errors": [{"tool": "node", "error": "missing", "step": 2}],
            "phase": "phase1",
            "complete": False,
        }
        r = self.http.post("/api/progress/%s" % sid, body)
        self.assertStatus(r, 200)
        rec = r.json
        for k, v in body.items():
            self.assertEqual(rec.get(k), v, "field %s" % k)
        self.assertEqual(rec["sessionId"], sid)
        self.assertEqual(rec["version"], 1)
        self.assertIsoUtc(rec["timestamp"])
        # GET returns the same record.
        self.assertEqual(self.get_record(sid), rec)

    def test_partial_updates_merge_and_version_grows_by_one(self):
        sid = self.new_id("merge")
        first = self.create_record(sid)
        self.assertEqual(first["version"], 1)
        r = self.http.post("/api/progress/%s" % sid, {"currentStep": 2})
        self.assertStatus(r, 200)
        rec = r.json
        self.assertEqual(rec["version"], 2)
        self.assertEqual(rec["currentStep"], 2)
        for k in SEED_FIELDS:
            if k != "currentStep":
                self.assertEqual(rec[k], first[k], "field %s was not kept" % k)
        r = self.http.post("/api/progress/%s" % sid,
                           {"completedSteps": [1, 2], "complete": True, "custom": {"a": [1, "b"]}})
        self.assertStatus(r, 200)
        rec = r.json
        self.assertEqual(rec["version"], 3)
        self.assertEqual(rec["completedSteps"], [1, 2])
        self.assertIs(rec["complete"], True)
        self.assertEqual(rec["custom"], {"a": [1, "b"]}, "extra field not kept as given")
        self.assertEqual(rec["currentStep"], 2)
        self.assertEqual(rec["currentAction"], "starting")
        self.assertEqual(rec["sessionId"], sid)
        for i in range(4, 11):
            r = self.http.post("/api/progress/%s" % sid, {"currentAction": "step %d" % i})
            self.assertStatus(r, 200)
            self.assertEqual(r.json["version"], i)
        final = self.get_record(sid)
        self.assertEqual(final["version"], 10)
        self.assertEqual(final["currentAction"], "step 10")
        self.assertEqual(final["custom"], {"a": [1, "b"]})

    def test_delete_removes_record(self):
        sid = self.new_id("del")
        self.create_record(sid)
        r = self.http.request("DELETE", "/api/progress/%s" % sid)
        self.assertStatus(r, 200)
        self.assertEqual(r.json, {"deleted": True})
        r = self.http.get("/api/progress/%s" % sid)
        self.assertStatus(r, 404)
        self.assertEqual(r.json, {"error": "Session not found"})
        r = self.http.request("DELETE", "/api/progress/%s" % sid)
        self.assertStatus(r, 200)
        self.assertEqual(r.json, {"deleted": False})
        # A new write starts over at version 1.
        self.assertEqual(self.create_record(sid)["version"], 1)

    def test_concurrent_writers_of_different_fields_lose_nothing(self):
        import threading
        from stack import Client
        sid = self.new_id("conc")
        writers, rounds = 8, 40
        errors = []

        def write(w):
            c = Client("127.0.0.1", self.stack.http_port, self.stack.token)
            try:
                for i in range(rounds):
                    r = c.post("/api/progress/%s" % sid, {"field%d" % w: i, "currentAction": "w%d" % w})
                    if r.status != 200:
                        errors.append(r)
                        return
            finally:
                c.close()
        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        rec = self.get_record(sid)
        for w in range(writers):
            self.assertEqual(rec.get("field%d" % w), rounds - 1, "writer %d's field lost" % w)
        self.assertEqual(rec["version"], writers * rounds)

    def test_timestamp_changes_with_writes(self):
        sid = self.new_id("ts")
        a = self.create_record(sid)
        self.assertIsoUtc(a["timestamp"])
        b = self.http.post("/api/progress/%s" % sid, {"currentStep": 9}).json
        self.assertIsoUtc(b["timestamp"])
        self.assertGreaterEqual(b["timestamp"], a["timestamp"])

    def test_session_id_equal_to_path_is_accepted(self):
        sid = self.new_id("same")
        r = self.http.post("/api/progress/%s" % sid, {"sessionId": sid, "currentStep": 1})
        self.assertStatus(r, 200)
        self.assertEqual(r.json["sessionId"], sid)

    def test_id_of_128_allowed_chars_is_accepted(self):
        sid = ("Az09._:-" * 16)[:128]
        self.assertEqual(len(sid), 128)
        r = self.http.post("/api/progress/%s" % sid, {"currentStep": 1})
        self.assertStatus(r, 200)
        self.assertEqual(r.json["sessionId"], sid)
        self.assertEqual(self.get_record(sid)["currentStep"], 1)

    def test_unicode_and_nested_values_round_trip(self):
        sid = self.new_id("uni")
        body = {"currentAction": "Installiere \u00e4\u00f6\u00fc \u2713 \U0001F600 \"q\" \\ \n",
                "nested": {"deep": [[1, 2.5, None, True], {"k": "v"}]},
                "big": 9007199254740993}
        r = self.http.post("/api/progress/%s" % sid, body)
        self.assertStatus(r, 200)
        rec = self.get_record(sid)
        for k, v in body.items():
            self.assertEqual(rec[k], v, "field %s" % k)


class ProgressLogTest(StackTestCase):
    STACK_ENV = {}  # default PROGRESS_LOG_CAP (100)

    def test_log_append_and_list_oldest_first(self):
        sid = self.new_id("log")
        entries = [
            {"tool": "git", "error": "not found", "suggestedFix": "apt install git", "step": 1},
            {"tool": "node", "error": "too old", "suggestedFix": "upgrade", "step": 2},
            {"tool": "python", "error": "missing pip", "suggestedFix": "get-pip", "step": 3},
        ]
        for e in entries:
            r = self.http.post("/api/progress/%s/log" % sid, e)
            self.assertStatus(r, 201)
            for k, v in e.items():
                self.assertEqual(r.json.get(k), v, "field %s" % k)
            self.assertIsoUtc(r.json.get("timestamp"))
        r = self.http.get("/api/progress/%s/log" % sid)
        self.assertStatus(r, 200)
        self.assertIsInstance(r.json, list)
        self.assertEqual(len(r.json), 3)
        for got, want in zip(r.json, entries):
            for k, v in want.items():
                self.assertEqual(got.get(k), v)
            self.assertIsoUtc(got.get("timestamp"))

    def test_log_of_unknown_id_is_empty(self):
        r = self.http.get("/api/progress/%s/log" % self.new_id("nolog"))
        self.assertStatus(r, 200)
        self.assertEqual(r.json, [])

    def test_log_cap_keeps_newest_100_in_order(self):
        sid = self.new_id("cap")
        for i in range(150):
            r = self.http.post("/api/progress/%s/log" % sid,
                               {"tool": "t", "error": "e%d" % i, "suggestedFix": "f", "step": i})
            self.assertStatus(r, 201)
        r = self.http.get("/api/progress/%s/log" % sid)
        self.assertStatus(r, 200)
        self.assertEqual(len(r.json), 100)
        self.assertEqual([e["step"] for e in r.json], list(range(50, 150)))
        self.assertEqual([e["error"] for e in r.json], ["e%d" % i for i in range(50, 150)])

    def test_log_entry_needs_error(self):
        sid = self.new_id("logbad")
        r = self.http.post("/api/progress/%s/log" % sid, {"tool": "git", "step": 1})
        self.assertJsonError(r, 400, r"error")
        self.assertEqual(self.http.get("/api/progress/%s/log" % sid).json, [])

    def test_log_entry_bad_inputs_change_nothing(self):
        sid = self.new_id("logbad2")
        ok = {"tool": "git", "error": "x", "suggestedFix": "y", "step": 1}
        self.assertStatus(self.http.post("/api/progress/%s/log" % sid, ok), 201)
        before = self.http.get("/api/progress/%s/log" % sid).json
        cases = [
            ({"tool": "git", "error": "x", "bogus": 1}, r"bogus"),
            ({"tool": "git", "error": 5}, r"error"),
            ({"tool": "git", "error": "x", "step": "one"}, r"step"),
            ({"tool": ["git"], "error": "x"}, r"tool"),
            ([ok], r"object"),
        ]
        for body, pattern in cases:
            r = self.http.post("/api/progress/%s/log" % sid, body)
            self.assertJsonError(r, 400, pattern)
        r = self.http.post("/api/progress/%s/log" % sid, b'{"error": "x",')
        self.assertJsonError(r, 400, r"json|pars|malformed")
        self.assertEqual(self.http.get("/api/progress/%s/log" % sid).json, before)


class ProgressBadInputTest(StackTestCase):
    def setUp(self):
        self.sid = self.new_id("bad")
        self.before = self.create_record(self.sid)

    def assertUnchanged(self):
        self.assertEqual(self.get_record(self.sid), self.before, "a refused request changed the record")

    def post_raw(self, body):
        return self.http.post("/api/progress/%s" % self.sid, body)

    def test_malformed_json(self):
        for raw in (b'{"currentStep": 1', b"{currentStep: 1}", b"not json", b'{"a":1}}',
                    b"\xff\xfe{}"):
            r = self.post_raw(raw)
            self.assertJsonError(r, 400, r"json|pars|malformed|utf")
        self.assertUnchanged()

    def test_body_not_an_object(self):
        for raw in (b"[1, 2]", b'"text"', b"42", b"null", b"true"):
            r = self.post_raw(raw)
            self.assertJsonError(r, 400, r"object")
        self.assertUnchanged()

    def test_empty_body(self):
        r = self.post_raw(b"")
        self.assertIn(r.status, (400,), "empty body: %r" % (r,))
        self.assertUnchanged()

    def test_wrong_types_of_seed_fields(self):
        cases = [
            ({"currentStep": "x"}, "currentStep"),
            ({"currentStep": 1.5}, "currentStep"),
            ({"complete": 1}, "complete"),
            ({"complete": "true"}, "complete"),
            ({"completedSteps": ["a"]}, "completedSteps"),
            ({"completedSteps": 3}, "completedSteps"),
            ({"currentAction": 5}, "currentAction"),
            ({"toolStatus": [1]}, "toolStatus"),
            ({"errors": {"a": 1}}, "errors"),
            ({"phase": 2}, "phase"),
        ]
        for body, field in cases:
            r = self.post_raw(body)
            self.assertJsonError(r, 400, field)
        # A bad field next to good ones refuses the whole update.
        r = self.post_raw({"currentAction": "should not land", "currentStep": "x"})
        self.assertJsonError(r, 400, "currentStep")
        self.assertUnchanged()

    def test_server_fields_refused(self):
        for body, field in (({"version": 7}, "version"), ({"createdAt": "2020-01-01T00:00:00Z"},
                                                         "createdAt"),
                            ({"sessionId": "someone-else"}, "sessionId")):
            r = self.post_raw(body)
            self.assertJsonError(r, 400, field)
        self.assertUnchanged()

    def test_bad_ids(self):
        for bad in ("bad%24id", "a%20b", "x" * 129, "%C3%A4", "semi%3Bcolon", "quote%22"):
            r = self.http.post("/api/progress/%s" % bad, {"currentStep": 1})
            self.assertJsonError(r, 400, r"\bid\b|session|identifier")
            r = self.http.get("/api/progress/%s" % bad)
            self.assertJsonError(r, 400, r"\bid\b|session|identifier")
            r = self.http.post("/api/progress/%s/log" % bad, {"error": "x"})
            self.assertJsonError(r, 400, r"\bid\b|session|identifier")
        # 129 characters were refused; nothing was created under 128 of them.
        r = self.http.get("/api/progress/%s" % ("x" * 128))
        self.assertStatus(r, 404)
        self.assertUnchanged()

    def test_body_over_cap_is_413(self):
        # 8 MiB: over the gateway's body cap (and over the 1 MiB job result).
        size = 8 * 1024 * 1024
        status, head, doc = raw_request(self.stack.http_port, "POST",
                                        "/api/progress/%s" % self.sid,
                                        b'{"currentAction": "' + b"a" * size + b'"}')
        self.assertEqual(status, 413, head)
        err = doc["error"]
        self.assertRegex(err, r"(?i)large|too big|limit|size|exceed")
        self.assertUnchanged()

    def test_update_over_256_kib_refused(self):
        # Under the HTTP body cap but over the service's 256 KiB per update.
        r = self.post_raw({"currentAction": "a" * (300 * 1024)})
        self.assertIn(r.status, (400, 413), r)
        self.assertRegex(r.error(), r"(?i)large|too big|limit|size|exceed|256")
        self.assertUnchanged()

    def test_too_many_fields_refused(self):
        r = self.post_raw({"f%d" % i: i for i in range(300)})
        self.assertIn(r.status, (400, 413), r)
        self.assertRegex(r.error(), r"(?i)field|limit|many|256")
        self.assertUnchanged()

    def test_wrong_method_is_405(self):
        for method in ("PUT", "PATCH"):
            r = self.http.request(method, "/api/progress/%s" % self.sid, {"currentStep": 5})
            self.assertJsonError(r, 405, r"method|allowed")
        for method in ("PUT", "DELETE"):
            r = self.http.request(method, "/api/progress/%s/log" % self.sid, {"error": "x"})
            self.assertJsonError(r, 405, r"method|allowed")
        self.assertUnchanged()

    def test_unknown_route_is_404(self):
        r = self.http.get("/api/nothing-here")
        self.assertStatus(r, 404)
        self.assertIsInstance(r.json, dict)
        self.assertIn("error", r.json)


if __name__ == "__main__":
    unittest.main()
