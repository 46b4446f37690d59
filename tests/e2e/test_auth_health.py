"""End to end over HTTP: tokens (API_TOKEN, API_READ_ONLY_TOKEN), health
routes, metrics, the API description (GET /openapi.json, and the check of
every e2e reply against it), and the gateway's refusal to listen beyond
loopback without a token."""

import http.server
import os
import re
import threading
import time
import unittest

from e2ebase import (API, OPENAPI_PATH, REPO_ROOT, StackTestCase, gateway_exit, raw_request,
                     service_exit)
from stack import Client, free_port

RW = "rw-token-0123456789abcdef"
RO = "ro-token-fedcba9876543210"


class AuthTest(StackTestCase):
    STACK_ENV = {"API_TOKEN": RW, "API_READ_ONLY_TOKEN": RO}

    def setUp(self):
        self.sid = self.new_id("auth")
        self.before = self.create_record(self.sid)  # with the API token

    def assertUnchanged(self):
        self.assertEqual(self.get_record(self.sid), self.before)

    def test_missing_or_wrong_token_is_401(self):
        path = "/api/progress/%s" % self.sid
        for token, hdrs in ((None, {}), ("wrong", {}), (RW + "x", {}), (RW[:-1], {}),
                            (None, {"Authorization": "Basic " + RW}),
                            (None, {"Authorization": "Bearer"}),
                            (None, {"Authorization": RW})):
            for method, body in (("GET", None), ("POST", {"currentStep": 99})):
                r = self.http.request(method, path, body, headers=hdrs, token=token)
                self.assertJsonError(r, 401, r"token|auth|unauthori[sz]ed|credential")
        r = self.http.request("POST", "/api/progress/%s/log" % self.sid, {"error": "x"},
                              token=None)
        self.assertJsonError(r, 401, r"token|auth|unauthori[sz]ed|credential")
        r = self.http.request("POST", "/api/jobs", {"conversationId": "c"}, token="nope")
        self.assertJsonError(r, 401, r"token|auth|unauthori[sz]ed|credential")
        r = self.http.request("GET", "/api/progress/%s/stream" % self.sid, token=None)
        self.assertStatus(r, 401)
        self.assertUnchanged()
        self.assertEqual(self.http.get("/api/progress/%s/log" % self.sid).json, [])

    def test_read_only_token_reads_but_cannot_write(self):
        path = "/api/progress/%s" % self.sid
        r = self.http.get(path, token=RO)
        self.assertStatus(r, 200)
        self.assertEqual(r.json, self.before)
        self.assertStatus(self.http.get(path + "/log", token=RO), 200)
        r = self.http.post(path, {"currentStep": 42}, token=RO)
        self.assertJsonError(r, 403, r"read.only|forbidden|permission|not allowed|write")
        r = self.http.post(path + "/log", {"error": "x"}, token=RO)
        self.assertJsonError(r, 403, r"read.only|forbidden|permission|not allowed|write")
        r = self.http.request("DELETE", path, token=RO)
        self.assertJsonError(r, 403, r"read.only|forbidden|permission|not allowed|write")
        r = self.http.post("/api/jobs", {"conversationId": "c-ro"}, token=RO)
        self.assertJsonError(r, 403, r"read.only|forbidden|permission|not allowed|write")
        self.assertStatus(self.http.get("/api/conversations/c-ro/job", token=RO), 404)
        self.assertUnchanged()
        self.assertEqual(self.http.get(path + "/log").json, [])

    def test_api_token_writes(self):
        r = self.http.post("/api/progress/%s" % self.sid, {"currentStep": 2})
        self.assertStatus(r, 200)
        self.assertEqual(r.json["version"], 2)
        self.before = r.json

    def test_request_head_over_the_pool_is_431(self):
        # GATEWAY_CONNECTION_MEMORY (8192) holds heads up to about 7 KiB.
        r = self.http.request("GET", "/api/progress/%s" % self.sid,
                              headers={"X-Padding": "a" * 6000})
        self.assertIn(r.status, (200, 404), r)
        status, head, _ = raw_request(self.stack.http_port, "GET", "/healthz", b"",
                                      headers={"X-Padding": "a" * 12000})
        self.assertEqual(status, 431, head)
        # and the gateway goes on
        self.assertStatus(self.http.get("/healthz", token=None), 200)

    def test_health_without_token(self):
        for path in ("/healthz", "/readyz"):
            r = self.http.get(path, token=None)
            self.assertStatus(r, 200)

    def test_api_description_without_token_is_the_file(self):
        with open(OPENAPI_PATH, "rb") as f:
            text = f.read()
        for token in (None, RO, RW):
            r = self.http.get("/openapi.json", token=token)
            self.assertStatus(r, 200)
            self.assertEqual(r.headers.get("Content-Type"), "application/json")
            self.assertEqual(r.raw, text, "GET /openapi.json differs from openapi.json")
        r = self.http.request("HEAD", "/openapi.json", token=None)
        self.assertStatus(r, 200)
        self.assertEqual(r.raw, b"")
        r = self.http.post("/openapi.json", {}, token=None)
        self.assertJsonError(r, 405, r"method|allowed")

    def test_metrics_needs_token_and_counts(self):
        self.assertStatus(self.http.get("/metrics", token=None), 401)
        self.assertStatus(self.http.get("/metrics", token="wrong"), 401)
        # Exercise a few routes so they show up.
        self.http.get("/api/progress/%s" % self.sid)
        self.http.get("/api/progress/missing-%s" % self.sid)
        self.http.post("/api/jobs", {"conversationId": "m-" + self.sid})
        self.http.get("/api/progress/%s" % self.sid, token=None)
        r = self.http.get("/metrics")
        self.assertStatus(r, 200)
        self.assertIn("text/plain", r.headers.get("Content-Type", ""))
        text = r.raw.decode()
        samples = parse_prometheus(text)
        self.assertTrue(samples, "no samples in /metrics:\n" + text[:2000])

        def total(pred):
            return sum(v for (name, labels), v in samples.items() if pred(name, labels))

        def is_req(name):
            return "request" in name and not name.endswith(("_bucket", "_sum"))
        # Requests by route and status.
        got = total(lambda n, l: is_req(n) and "progress" in l.get("route", l.get("path", ""))
                    and l.get("status", l.get("code")) == "200")
        self.assertGreaterEqual(got, 1, "no 200 request counter for a progress route:\n" + text)
        got = total(lambda n, l: is_req(n) and l.get("status", l.get("code")) == "401")
        self.assertGreaterEqual(got, 1, "no 401 request counter:\n" + text)
        got = total(lambda n, l: is_req(n) and "job" in l.get("route", l.get("path", ""))
                    and l.get("status", l.get("code")) == "201")
        self.assertGreaterEqual(got, 1, "no 201 counter for the jobs route:\n" + text)
        # A latency histogram and the SSE clients gauge.
        self.assertTrue(any(n.endswith("_bucket") for n, _ in samples),
                        "no latency histogram:\n" + text)
        sse = [(n, v) for (n, l), v in samples.items() if "sse" in n.lower()]
        self.assertTrue(sse, "no SSE gauge:\n" + text)
        self.assertRegex(text, r"(?m)^# TYPE \S*sse\S* gauge")


class ReadyDetailsTest(StackTestCase):
    """GET /readyz needs no token, but what failed (its text names Redis's
    host and the services' errors) is shown only to the full API_TOKEN."""
    STACK_ENV = {"API_TOKEN": RW, "API_READ_ONLY_TOKEN": RO}

    def test_details_only_with_the_full_token(self):
        for token in (None, RO, "wrong-token-0123456789"):
            r = self.http.get("/readyz", token=token)
            self.assertStatus(r, 200)
            self.assertEqual(r.json, {"status": "ready"}, token)
        r = self.http.get("/readyz", token=RW)
        self.assertStatus(r, 200)
        self.assertEqual(r.json["status"], "ready")
        self.assertEqual(set(r.json["checks"]), {"progress", "coordinator", "sync-worker", "redis"})

        self.stack.redis.kill()
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                r = self.http.get("/readyz", token=RW)
                if r.status == 503:
                    break
                time.sleep(0.1)
            self.assertStatus(r, 503)
            self.assertIn("error", r.json)
            self.assertNotEqual(r.json["checks"]["redis"], "ok")
            for token in (None, RO):
                r = self.http.get("/readyz", token=token)
                self.assertStatus(r, 503)
                self.assertEqual(r.json, {"status": "unavailable"}, token)
        finally:
            self.stack.redis.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.http.get("/readyz").status != 200:
            time.sleep(0.1)
        self.assertEqual(self.http.get("/readyz", token=None).json, {"status": "ready"})


class HealthNoTokenTest(StackTestCase):
    def test_healthz_readyz(self):
        r = self.http.get("/healthz")
        self.assertStatus(r, 200)
        r = self.http.get("/readyz")
        self.assertStatus(r, 200)
        r = self.http.get("/metrics")
        self.assertStatus(r, 200)
        for method in ("POST", "PUT", "DELETE"):
            r = self.http.request(method, "/healthz", {})
            self.assertJsonError(r, 405, r"method|allowed")


class ApiDescriptionCheckTest(unittest.TestCase):
    """The check every e2e reply goes through refuses what the document
    does not allow."""

    def refused(self, method, path, status, ctype, body):
        with self.assertRaises(AssertionError):
            API.check(method, path, status, ctype, body)

    def test_replies_the_document_allows(self):
        API.check("GET", "/healthz", 200, "application/json", b'{"status":"ok"}')
        API.check("GET", "/api/progress/p1?x=1", 404, "application/json",
                  b'{"error":"Session not found"}')
        API.check("HEAD", "/api/jobs/j1", 200, "application/json", b"")
        API.check("GET", "/metrics", 200, "text/plain; version=0.0.4", b"a 1\n")
        API.check("PUT", "/healthz", 405, "application/json", b'{"error":"method PUT"}')

    def test_replies_the_document_refuses(self):
        self.refused("GET", "/healthz", 200, "application/json", b'{"status":"fine"}')
        self.refused("GET", "/healthz", 200, "text/plain", b"ok")
        self.refused("GET", "/healthz", 201, "application/json", b'{"status":"ok"}')
        self.refused("GET", "/api/progress/p1", 200, "application/json", b'{"version":1}')
        self.refused("GET", "/api/progress/p1", 404, "application/json", b'{"message":"x"}')
        # A seed route's error has the seed's shape; a reference is followed.
        self.refused("POST", "/api/queue/claim", 400, "application/json", b'{"error":"bad"}')
        self.refused("POST", "/api/queue/renew", 409, "application/json",
                     b'{"success":false,"error":"other"}')
        self.refused("GET", "/api/accounts/a1/messages", 200, "application/json",
                     b'{"messages":[{"uid":0,"folder":"INBOX","flags":[]}],"nextCursor":null}')
        self.refused("GET", "/nowhere", 404, "application/json", b"not json")

    def test_every_client_reply_is_checked(self):
        # A server that answers /healthz with what the document refuses:
        # the stack's client raises on the reply, and so does raw_request.
        class Wrong(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = b'{"status":"fine"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Wrong)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        try:
            client = Client("127.0.0.1", srv.server_address[1])
            with self.assertRaisesRegex(AssertionError, "does not match openapi.json"):
                client.get("/healthz")
            client.close()
            with self.assertRaisesRegex(AssertionError, "does not match openapi.json"):
                raw_request(srv.server_address[1], "GET", "/healthz", b"")
        finally:
            srv.shutdown()
            srv.server_close()


def lone_gateway_env(host, **settings):
    """The environment of a gateway started alone on host, without the
    caller's tokens, with settings added."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("API_TOKEN", "API_READ_ONLY_TOKEN")}
    env.update({"GATEWAY_LISTEN": "%s:%d" % (host, free_port()),
                "PROGRESS_RPC_URL": "tcp://127.0.0.1:%d" % free_port(),
                "PROGRESS_EVENTS_URL": "tcp://127.0.0.1:%d" % free_port(),
                "REDIS_URL": "redis://127.0.0.1:%d" % free_port()})
    env.update(settings)
    return env


class LoopbackOnlyWithoutTokenTest(unittest.TestCase):
    def test_refuses_public_listen_without_token(self):
        env = lone_gateway_env("0.0.0.0")
        code, log = gateway_exit(self, env, "on 0.0.0.0 without a token")
        self.assertNotEqual(code, 0, log)
        self.assertRegex(log, r"API_TOKEN|GATEWAY_LISTEN|loopback", log)


class WeakTokensRefusedTest(unittest.TestCase):
    """The gateway refuses to start with an API token under 16 characters,
    the same token for full and read-only access, or a value left as
    deploy/.env.example has it, and says which."""

    def refused(self, tokens, pattern):
        env = lone_gateway_env("127.0.0.1", **tokens)
        code, log = gateway_exit(self, env, "with %r" % tokens)
        self.assertEqual(code, 1, log)
        self.assertRegex(log, pattern)

    def test_refused(self):
        with open(os.path.join(REPO_ROOT, "deploy", ".env.example")) as f:
            example = re.search(r"(?m)^API_TOKEN=(.*)$", f.read()).group(1)
        self.refused({"API_TOKEN": example}, r"API_TOKEN is still the example value")
        self.refused({"API_TOKEN": "change-me-progress-0000"}, r"API_TOKEN is still the example")
        self.refused({"API_TOKEN": "0123456789abcde"}, r"API_TOKEN is too short")
        self.refused({"API_TOKEN": RW, "API_READ_ONLY_TOKEN": "ro-short"},
                     r"API_READ_ONLY_TOKEN is too short")
        self.refused({"API_TOKEN": RW, "API_READ_ONLY_TOKEN": RW}, r"must differ")

    def test_example_redis_password_refused(self):
        env = dict(os.environ, REDIS_URL="redis://progress:change-me-progress-0000@"
                   "127.0.0.1:%d" % free_port(),
                   PROGRESS_RPC_URL="tcp://127.0.0.1:%d" % free_port(),
                   PROGRESS_EVENTS_URL="tcp://127.0.0.1:%d" % free_port())
        code, log = service_exit(self, "progress", env, "with the example Redis password")
        self.assertEqual(code, 1, log)
        self.assertRegex(log, r"REDIS_URL: the password is still the example value")
        self.assertNotIn("change-me-progress-0000", log)


LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text):
    """{(name, frozen labels dict): value}; labels compared as dicts."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        if not m:
            raise AssertionError("bad Prometheus line: %r" % line)
        labels = dict(LABEL.findall(m.group(3) or ""))
        out[(m.group(1), Labels(labels))] = float(m.group(4))
    return out


class Labels(dict):
    def __hash__(self):
        return hash(tuple(sorted(self.items())))


if __name__ == "__main__":
    unittest.main()
