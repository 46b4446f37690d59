"""End to end over HTTP: the gateway as a browser on another origin uses it.
CORS (preflights allowed and refused, the headers on replies, errors and
event streams), scoped tokens (minting and its errors, what a token opens
and what it does not, writes refused, expiry, tampering, key rotation), no
access_token in the gateway's log, and an event stream resumed with a fresh
token and Last-Event-ID or lastEventId without an update missing."""

import http.client
import json
import os
import time
import unittest
import urllib.parse

from e2ebase import API, StackTestCase
from stack import Client, Service, SSEReader, event_record, event_version, free_port, read_tail

RW = "rw-token-browser-0123456789abcdef"
RO = "ro-token-browser-fedcba9876543210"
KEY = "3c" * 32
NEXT_KEY = "a7" * 32
ORIGIN = "https://app.example.com"
OTHER = "http://localhost:3000"
EVIL = "https://evil.example.com"


def raw(port, method, path, headers=None, timeout=10):
    """(status, headers, body) of one request on its own connection, the
    reply not checked against openapi.json (a 204 preflight has no JSON)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


class BrowserAccessTest(StackTestCase):
    STACK_ENV = {"API_TOKEN": RW, "API_READ_ONLY_TOKEN": RO, "TOKEN_SIGNING_KEY": KEY,
                 "CORS_ORIGINS": "%s,%s" % (ORIGIN, OTHER), "TOKEN_MAX_TTL": "600",
                 "LOG_LEVEL": "debug", "SSE_HEARTBEAT_SECONDS": "1"}

    # -- helpers -----------------------------------------------------------
    def mint(self, scopes, ttl=60, client=None):
        r = (client or self.http).post("/api/tokens", {"scopes": scopes, "ttlSeconds": ttl})
        self.assertStatus(r, 201)
        self.assertEqual(r.json["scopes"], scopes)
        self.assertIsoUtc(r.json["expiresAt"])
        return r.json["token"]

    def anon(self):
        c = Client("127.0.0.1", self.stack.http_port, None)
        self.addCleanup(c.close)
        return c

    def with_token(self, path, token):
        sep = "&" if "?" in path else "?"
        return path + sep + "access_token=" + urllib.parse.quote(token, safe="")

    def assertCors(self, headers, origin):
        if origin is None:
            for h in ("Access-Control-Allow-Origin", "Access-Control-Expose-Headers",
                      "Access-Control-Allow-Methods", "Access-Control-Max-Age"):
                self.assertIsNone(headers.get(h), "%s sent: %r" % (h, dict(headers)))
            return
        self.assertEqual(headers.get("Access-Control-Allow-Origin"), origin)
        self.assertEqual(headers.get("Vary"), "Origin")
        self.assertEqual(headers.get("Access-Control-Expose-Headers"), "X-Request-Id")

    def open_stream(self, path, last_event_id=None):
        r = SSEReader("127.0.0.1", self.stack.http_port, path, last_event_id=last_event_id)
        self.addCleanup(r.close)
        self.assertEqual(r.status, 200, getattr(r, "body", b"")[:300])
        return r

    def versions(self, events):
        return [event_version(e) for e in events
                if e["event"] == "progress" and event_version(e) is not None]

    # -- CORS --------------------------------------------------------------
    def test_preflight(self):
        port = self.stack.http_port
        sid = self.new_id("pre")
        status, h, body = raw(port, "OPTIONS", "/api/progress/%s" % sid,
                              {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                               "Access-Control-Request-Headers": "authorization,content-type"})
        self.assertEqual(status, 204, body)
        self.assertEqual(body, b"")
        self.assertCors(h, ORIGIN)
        self.assertEqual(h.get("Access-Control-Allow-Methods"), "GET, HEAD, POST, DELETE")
        self.assertEqual(h.get("Access-Control-Allow-Headers"),
                         "Authorization, Content-Type, Last-Event-ID")
        self.assertRegex(h.get("Access-Control-Max-Age", ""), r"^[1-9][0-9]*$")
        # Every route's own methods; no token asked for.
        status, h, _ = raw(port, "OPTIONS", "/api/progress/%s/stream" % sid, {"Origin": OTHER})
        self.assertEqual(status, 204)
        self.assertCors(h, OTHER)
        self.assertEqual(h.get("Access-Control-Allow-Methods"), "GET, HEAD")
        status, h, _ = raw(port, "OPTIONS", "/api/tokens", {"Origin": ORIGIN})
        self.assertEqual(status, 204)
        self.assertEqual(h.get("Access-Control-Allow-Methods"), "POST")
        # Another origin: 403 and no CORS header; an unknown path: 404.
        for origin in (EVIL, ORIGIN + ".evil.com", ORIGIN.upper(), ORIGIN + "/", "null"):
            status, h, body = raw(port, "OPTIONS", "/api/progress/%s" % sid, {"Origin": origin})
            self.assertEqual(status, 403, origin)
            self.assertCors(h, None)
            API.check("OPTIONS", "/api/progress/x", status, h.get("Content-Type"), body)
        status, h, _ = raw(port, "OPTIONS", "/api/progress/%s" % sid)
        self.assertEqual(status, 403)
        status, h, body = raw(port, "OPTIONS", "/api/nothing/here", {"Origin": ORIGIN})
        self.assertEqual(status, 404)
        self.assertIsNone(h.get("Access-Control-Allow-Methods"))

    def test_cors_headers_on_replies_errors_and_streams(self):
        sid = self.new_id("cors")
        self.create_record(sid)
        tok = self.mint(["progress:" + sid])
        c = self.anon()
        for origin in (ORIGIN, OTHER):
            r = c.get("/api/progress/%s" % sid, token=tok, headers={"Origin": origin})
            self.assertStatus(r, 200)
            self.assertCors(r.headers, origin)
        # Errors too: 401, 403, 404 and 405.
        r = c.get("/api/progress/%s" % sid, headers={"Origin": ORIGIN})
        self.assertStatus(r, 401)
        self.assertCors(r.headers, ORIGIN)
        r = c.get("/api/progress/other-%s" % sid, token=tok, headers={"Origin": ORIGIN})
        self.assertStatus(r, 403)
        self.assertCors(r.headers, ORIGIN)
        r = c.get("/api/nothing", token=tok, headers={"Origin": ORIGIN})
        self.assertStatus(r, 404)
        self.assertCors(r.headers, ORIGIN)
        r = c.put("/api/progress/%s" % sid, {}, token=RW, headers={"Origin": ORIGIN})
        self.assertStatus(r, 405)
        self.assertCors(r.headers, ORIGIN)
        # Not to another origin, nor without one.
        r = c.get("/api/progress/%s" % sid, token=tok, headers={"Origin": EVIL})
        self.assertStatus(r, 200)
        self.assertCors(r.headers, None)
        r = c.get("/api/progress/%s" % sid, token=tok)
        self.assertCors(r.headers, None)
        # The event stream, opened as EventSource does: token in the query.
        conn = http.client.HTTPConnection("127.0.0.1", self.stack.http_port, timeout=10)
        try:
            conn.request("GET", self.with_token("/api/progress/%s/stream" % sid, tok),
                         headers={"Origin": ORIGIN, "Accept": "text/event-stream"})
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            self.assertCors(resp.headers, ORIGIN)
            self.assertIn("text/event-stream", resp.headers.get("Content-Type", ""))
            self.assertEqual(resp.headers.get("Cache-Control"), "no-cache")
            self.assertEqual(resp.headers.get("X-Accel-Buffering"), "no")
            # retry comes first, then the current record.
            first = resp.readline().decode()
            self.assertRegex(first, r"^retry: [1-9][0-9]*\r?\n$")
            self.assertEqual(resp.readline().strip(), b"")
            self.assertEqual(resp.readline().strip(), b"event: progress")
        finally:
            conn.close()

    # -- minting -----------------------------------------------------------
    def test_minting_needs_the_full_token(self):
        body = {"scopes": ["queue"], "ttlSeconds": 60}
        r = self.anon().post("/api/tokens", body)
        self.assertJsonError(r, 401, "token")
        r = self.http.post("/api/tokens", body, token=RO)
        self.assertJsonError(r, 403, "read-only")
        tok = self.mint(["queue"])
        r = self.http.post("/api/tokens", body, token=tok)
        self.assertJsonError(r, 403, "scoped token")
        r = self.http.post(self.with_token("/api/tokens", tok), body, token=None)
        self.assertJsonError(r, 403, "access_token")

    def test_minting_errors_name_the_problem(self):
        cases = [
            ({"scopes": ["progress:"], "ttlSeconds": 60}, "scope \"progress:\""),
            ({"scopes": ["progres:x"], "ttlSeconds": 60}, "progres:x"),
            ({"scopes": ["admin"], "ttlSeconds": 60}, "scope \"admin\""),
            ({"scopes": ["progress:a/b"], "ttlSeconds": 60}, "malformed"),
            ({"scopes": ["queue:1"], "ttlSeconds": 60}, "queue:1"),
            ({"scopes": [1], "ttlSeconds": 60}, "not a string"),
            ({"scopes": [], "ttlSeconds": 60}, "at least one scope"),
            ({"scopes": "queue", "ttlSeconds": 60}, "array"),
            ({"scopes": ["job:j%d" % i for i in range(33)], "ttlSeconds": 60}, "at most 32"),
            ({"scopes": ["queue"], "ttlSeconds": 0}, "ttlSeconds.*1 to 600"),
            ({"scopes": ["queue"], "ttlSeconds": 601}, "ttlSeconds.*TOKEN_MAX_TTL"),
            ({"scopes": ["queue"], "ttlSeconds": "60"}, "ttlSeconds"),
            ({"scopes": ["queue"]}, "ttlSeconds"),
            ({"scopes": ["queue"], "ttlSeconds": 60, "extra": 1}, "unknown field \"extra\""),
        ]
        for body, pattern in cases:
            with self.subTest(body=body):
                self.assertJsonError(self.http.post("/api/tokens", body), 400, pattern)
        # The edges are fine.
        self.mint(["job:j%d" % i for i in range(32)], ttl=600)
        self.mint(["accounts", "queue"], ttl=1)

    # -- using tokens ------------------------------------------------------
    def test_scopes_open_what_they_name_and_no_more(self):
        sid, other = self.new_id("sc"), self.new_id("sc")
        self.create_record(sid)
        self.create_record(other)
        r = self.http.post("/api/progress/%s/log" % sid,
                           {"tool": "git", "error": "e", "suggestedFix": "f", "step": 1})
        self.assertStatus(r, 201)
        job = self.http.post("/api/jobs", {"conversationId": self.new_id("conv")})
        self.assertStatus(job, 201)
        jid = job.json["jobId"]
        tok = self.mint(["progress:" + sid, "job:" + jid])
        c = self.anon()
        # Covered, by header and by query.
        for path in ("/api/progress/%s" % sid, "/api/progress/%s/log" % sid, "/api/jobs/" + jid):
            self.assertStatus(c.get(path, token=tok), 200)
            self.assertStatus(c.get(self.with_token(path, tok), token=None), 200)
        self.assertEqual(c.get("/api/progress/%s" % sid, token=tok).json["sessionId"], sid)
        self.assertStatus(c.request("HEAD", "/api/jobs/" + jid, token=tok), 200)
        # Not covered: 403 naming what.
        for path, what in (("/api/progress/%s" % other, "progress:" + other),
                           ("/api/progress/%s/log" % other, "progress:" + other),
                           ("/api/jobs/" + sid, "job:" + sid),
                           ("/api/accounts", "accounts"),
                           ("/api/accounts/" + sid, "account:" + sid),
                           ("/metrics", "GET /metrics")):
            r = c.get(path, token=tok)
            self.assertStatus(r, 403)
            self.assertEqual(r.json, {"error": "token does not cover " + what})
        r = c.get("/api/queue", token=tok)
        self.assertStatus(r, 403)
        self.assertEqual(r.json, {"success": False, "error": "token does not cover queue"})
        # queue and accounts.
        wide = self.mint(["queue", "accounts"])
        r = c.get(self.with_token("/api/queue", wide), token=None)
        self.assertStatus(r, 200)
        self.assertTrue(r.json["success"])
        self.assertStatus(c.get("/api/accounts", token=wide), 200)
        self.assertStatus(c.get("/api/accounts/no-such-account", token=wide), 404)
        self.assertStatus(c.get("/api/progress/%s" % sid, token=wide), 403)
        # The static tokens work as before; the full one is no access_token.
        self.assertStatus(c.get("/api/progress/%s" % other, token=RO), 200)
        self.assertJsonError(c.get(self.with_token("/api/progress/%s" % sid, RW), token=None),
                             401, "invalid token")

    def test_writes_are_refused(self):
        sid = self.new_id("wr")
        before = self.create_record(sid)
        tok = self.mint(["progress:" + sid])
        c = self.anon()
        self.assertJsonError(c.post("/api/progress/%s" % sid, {"currentStep": 9}, token=tok),
                             403, "only GET and HEAD")
        self.assertJsonError(c.delete("/api/progress/%s" % sid, token=tok), 403, "only GET")
        self.assertJsonError(c.post(self.with_token("/api/progress/%s/log" % sid, tok),
                                    {"tool": "t", "error": "e"}, token=None),
                             403, "access_token")
        self.assertJsonError(c.post("/api/progress/%s" % sid, {"currentStep": 9},
                                    token=RO), 403, "read-only")
        self.assertEqual(self.get_record(sid), before)

    def test_expired_token_is_401(self):
        sid = self.new_id("exp")
        self.create_record(sid)
        tok = self.mint(["progress:" + sid], ttl=1)
        c = self.anon()
        self.assertStatus(c.get("/api/progress/%s" % sid, token=tok), 200)
        time.sleep(1.2)
        r = c.get("/api/progress/%s" % sid, token=tok)
        self.assertStatus(r, 401)
        self.assertEqual(r.json, {"error": "token expired"})
        r = c.get(self.with_token("/api/progress/%s/stream" % sid, tok), token=None)
        self.assertEqual(r.json, {"error": "token expired"})

    def test_tampered_token_is_401(self):
        sid = self.new_id("tam")
        self.create_record(sid)
        tok = self.mint(["progress:" + sid])
        payload, mac = tok.split(".")
        # Widen the scopes: the payload of another record's token with this MAC.
        other = self.mint(["progress:" + sid, "queue"]).split(".")[0]
        flip = lambda s, i: s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:]
        forged = [other + "." + mac, flip(payload, 0) + "." + mac,
                  flip(payload, len(payload) - 1) + "." + mac, payload + "." + flip(mac, 0),
                  payload + "." + flip(mac, len(mac) - 1), payload, payload + "." + mac + "A",
                  payload + "=." + mac, "x" + tok]
        c = self.anon()
        for bad in forged:
            with self.subTest(token=bad):
                r = c.get("/api/progress/%s" % sid, token=bad)
                self.assertStatus(r, 401)
                self.assertEqual(r.json, {"error": "invalid token"})
                self.assertIn("invalid_token", r.headers.get("WWW-Authenticate", ""))
        self.assertStatus(c.get("/api/progress/%s" % sid, token=tok), 200)

    def test_access_token_never_logged(self):
        sid = self.new_id("log")
        self.create_record(sid)
        tok = self.mint(["progress:" + sid])
        c = self.anon()
        self.assertStatus(c.get(self.with_token("/api/progress/%s" % sid, tok), token=None), 200)
        c.get(self.with_token("/api/progress/other-%s?x=1" % sid, tok), token=None)
        c.post(self.with_token("/api/progress/%s" % sid, tok), {"a": 1}, token=None)
        c.get(self.with_token("/api/progress/%s/stream" % sid, tok + "x"), token=None)
        # A request line MHD itself complains about.
        raw(self.stack.http_port, "GET", self.with_token("/nope", tok) + "&" + "x" * 9000)
        s = self.open_stream(self.with_token("/api/progress/%s/stream" % sid, tok))
        self.assertTrue(s.wait_for(lambda ev: len(ev) >= 1, 20))
        s.close()
        time.sleep(0.3)
        with open(self.stack.gateway.log_path, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        self.assertIn("path=/api/progress/%s" % sid, log, "LOG_LEVEL=debug logs requests")
        for part in [tok] + tok.split("."):
            self.assertNotIn(part, log, "the token is in the gateway's log")
        metrics = self.http.get("/metrics").raw.decode()
        self.assertNotIn(tok.split(".")[1], metrics)

    # -- rotation ----------------------------------------------------------
    def start_gateway(self, env):
        port = free_port()
        e = self.stack.service_env()
        e.update(env)
        e["GATEWAY_LISTEN"] = "127.0.0.1:%d" % port
        svc = Service("gateway", e, self.stack.workdir, label="gateway-%d" % port)
        svc.start()
        self.addCleanup(lambda: svc.stop())
        c = Client("127.0.0.1", port, RW)
        self.addCleanup(c.close)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if c.get("/healthz", token=None).status == 200:
                    return svc, c
            except OSError:
                pass
            if not svc.alive():
                break
            time.sleep(0.1)
        self.fail("gateway did not start:\n" + read_tail(svc.log_path))

    def test_key_rotation(self):
        sid = self.new_id("rot")
        self.create_record(sid)
        old = self.mint(["progress:" + sid])
        path = "/api/progress/%s" % sid
        # During the rotation: the new key signs, the old one still verifies.
        svc, rotating = self.start_gateway({"TOKEN_SIGNING_KEY": NEXT_KEY,
                                            "TOKEN_SIGNING_KEY_PREVIOUS": KEY})
        new = self.mint(["progress:" + sid], client=rotating)
        self.assertNotEqual(new, old)
        self.assertStatus(rotating.get(path, token=old), 200)
        self.assertStatus(rotating.get(path, token=new), 200)
        # The gateway still on the old key alone does not know the new one.
        self.assertJsonError(self.anon().get(path, token=new), 401, "invalid token")
        # After it: the old key is gone.
        svc2, after = self.start_gateway({"TOKEN_SIGNING_KEY": NEXT_KEY})
        self.assertJsonError(after.get(path, token=old), 401, "invalid token")
        self.assertStatus(after.get(path, token=new), 200)
        for s in (svc, svc2):
            self.assertEqual(s.stop(), 0, read_tail(s.log_path))

    # -- streams -----------------------------------------------------------
    def test_stream_resumed_with_a_fresh_token_misses_nothing(self):
        sid = self.new_id("res")
        first = self.create_record(sid)
        stream = "/api/progress/%s/stream" % sid
        tok = self.mint(["progress:" + sid])
        s = self.open_stream(self.with_token(stream, tok))
        for i in range(5):
            self.assertStatus(self.http.post("/api/progress/%s" % sid, {"currentStep": 10 + i}),
                              200)
        v5 = first["version"] + 5
        self.assertTrue(s.wait_for(lambda ev: v5 in self.versions(ev), 20), s.events)
        seen = self.versions(s.events)
        s.close()
        last = seen[-1]
        self.assertEqual(seen, list(range(first["version"], last + 1)))

        # While away: two updates. A fresh token and lastEventId (a new
        # EventSource) bring the newest state first, then every update.
        for i in range(2):
            self.http.post("/api/progress/%s" % sid, {"currentStep": 20 + i})
        fresh = self.mint(["progress:" + sid])
        self.assertNotEqual(fresh, tok)
        s2 = self.open_stream(self.with_token(stream + "?lastEventId=%d" % last, fresh))
        self.assertTrue(s2.wait_for(lambda ev: len(self.versions(ev)) >= 1, 20))
        head = s2.events[0]
        self.assertEqual(event_version(head), last + 2)
        self.assertEqual(event_record(head)["currentStep"], 21)
        for i in range(3):
            self.http.post("/api/progress/%s" % sid, {"currentStep": 30 + i})
        self.assertTrue(s2.wait_for(lambda ev: last + 5 in self.versions(ev), 20), s2.events)
        self.assertEqual(self.versions(s2.events), list(range(last + 2, last + 6)))
        s2.close()

        # Up to date, reconnecting as EventSource does (Last-Event-ID header)
        # with yet another token: no repeat, then the next update.
        third = self.mint(["progress:" + sid])
        s3 = self.open_stream(self.with_token(stream, third), last_event_id=last + 5)
        self.http.post("/api/progress/%s" % sid, {"currentStep": 40})
        self.assertTrue(s3.wait_for(lambda ev: last + 6 in self.versions(ev), 20), s3.events)
        self.assertEqual(self.versions(s3.events), [last + 6])
        self.assertEqual(event_record(s3.events[-1])["currentStep"], 40)


class WithoutBrowserSettingsTest(StackTestCase):
    """No CORS_ORIGINS and no TOKEN_SIGNING_KEY: as before, plus a clear 503."""

    STACK_ENV = {"API_TOKEN": RW}

    def test_no_cors_and_no_tokens(self):
        r = self.http.post("/api/tokens", {"scopes": ["queue"], "ttlSeconds": 60})
        self.assertJsonError(r, 503, "TOKEN_SIGNING_KEY is not set")
        r = self.http.get("/healthz", headers={"Origin": ORIGIN})
        self.assertIsNone(r.headers.get("Access-Control-Allow-Origin"))
        self.assertIsNone(r.headers.get("Vary"))
        status, h, body = raw(self.stack.http_port, "OPTIONS", "/api/queue", {"Origin": ORIGIN})
        self.assertEqual(status, 405)
        self.assertIsNone(h.get("Access-Control-Allow-Origin"))
        # A token signed elsewhere is refused.
        r = self.anon_get("/api/queue?access_token=MSwx.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        self.assertStatus(r, 401)

    def anon_get(self, path):
        c = Client("127.0.0.1", self.stack.http_port, None)
        self.addCleanup(c.close)
        return c.get(path)


class StartUpRefusalTest(unittest.TestCase):
    def test_bad_settings_stop_the_start(self):
        from e2ebase import gateway_exit
        base = dict(os.environ, GATEWAY_LISTEN="127.0.0.1:%d" % free_port(), API_TOKEN=RW)
        for env, pattern in (({"CORS_ORIGINS": "*"}, r"CORS_ORIGINS must list exact origins.*\*"),
                             ({"CORS_ORIGINS": "https://a.example/"}, "CORS_ORIGINS"),
                             ({"CORS_ORIGINS": "app.example.com"}, "CORS_ORIGINS"),
                             ({"TOKEN_SIGNING_KEY": "abc"}, "TOKEN_SIGNING_KEY.*64 hex"),
                             ({"TOKEN_SIGNING_KEY_PREVIOUS": KEY}, "TOKEN_SIGNING_KEY_PREVIOUS"),
                             ({"TOKEN_MAX_TTL": "0"}, "TOKEN_MAX_TTL")):
            with self.subTest(env=env):
                code, log = gateway_exit(self, dict(base, **env), "with %r" % env)
                self.assertEqual(code, 1, log)
                self.assertRegex(log, pattern)


if __name__ == "__main__":
    unittest.main()
