"""A real browser against the stack: headless Chromium (browser.py) loads
pages from a second loopback origin, the one CORS_ORIGINS lists, served by a
small http.server, and from a third that is not listed; it streams progress
records across origins with minted tokens, and it opens the dashboard.
Chromium that cannot start fails these tests; they are never skipped."""

import http.server
import json
import os
import struct
import threading
import time
import unittest
from datetime import datetime

import stack
from browser import Browser
from e2ebase import StackTestCase, Service

TOKEN = "e2e-browser-token-" + "b1" * 8
SIGNING_KEY = "a7" * 32


class OriginServer:
    """An http.server on a free loopback port answering every GET with one
    blank page: pages of this origin get their scripts from the test."""

    PAGE = b"<!doctype html><meta charset=utf-8><title>origin</title><body>origin</body>"

    def __init__(self):
        page = self.PAGE

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args):
                pass

        self.port = stack.free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self):
        return "http://127.0.0.1:%d" % self.port

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# Run in a page: follow an event stream, keeping what it receives in
# window.seen ({id, version, record}), its errors and its state.
STREAM_JS = r"""
window.follow = (url) => {
  if (window.es) window.es.close();
  window.seen = window.seen || [];
  window.streamErrors = 0;
  window.opened = 0;
  const es = new EventSource(url);
  window.es = es;
  es.addEventListener("progress", (e) => {
    const rec = JSON.parse(e.data);
    window.seen.push({id: e.lastEventId, version: rec.version, record: rec});
  });
  es.onopen = () => { window.opened++; };
  es.onerror = () => { window.streamErrors++; };
  return true;
};
window.lastVersion = () => window.seen.length ? window.seen[window.seen.length - 1].version : 0;
window.statusOf = async (url, token) => {
  const headers = token ? {Authorization: "Bearer " + token} : {};
  try {
    const r = await fetch(url, {headers});
    return {status: r.status, body: await r.text()};
  } catch (e) {
    return {error: String(e)};
  }
};
true
"""


def png_size(data):
    """(width, height) of a PNG, from its IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise AssertionError("not a PNG: %r" % data[:16])
    return struct.unpack(">II", data[16:24])


class BrowserTestCase(StackTestCase):
    """One stack and one Chromium for the class; origin servers started
    first, so that CORS_ORIGINS can name the allowed one."""

    @classmethod
    def setUpClass(cls):
        cls.allowed = OriginServer()
        cls.other = OriginServer()
        cls.browser = None
        cls.STACK_ENV = {"API_TOKEN": TOKEN, "TOKEN_SIGNING_KEY": SIGNING_KEY,
                         "CORS_ORIGINS": cls.allowed.origin}
        try:
            super().setUpClass()
            cls.gw = "http://127.0.0.1:%d" % cls.stack.http_port
            cls.browser = Browser()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.browser is not None:
                cls.browser.close()
                cls.browser = None
            if cls.stack is not None:
                super().tearDownClass()
        finally:
            cls.stack = None
            cls.allowed.stop()
            cls.other.stop()

    def mint(self, scopes, ttl=60):
        r = self.http.post("/api/tokens", {"scopes": scopes, "ttlSeconds": ttl})
        self.assertStatus(r, 201)
        return r.json

    def page_at(self, origin):
        page = self.browser.new_page()
        self.addCleanup(page.close)
        page.navigate(origin + "/")
        page.evaluate(STREAM_JS)
        return page

    def stream_url(self, sid, token, last_id=None):
        url = "%s/api/progress/%s/stream?access_token=%s" % (self.gw, sid, token)
        if last_id is not None:
            url += "&lastEventId=%s" % last_id
        return url

    def restart_gateway(self):
        """Stop the gateway (its streams end) and start another on the same
        address with the same settings, as a rolling restart does."""
        self.assertEqual(self.stack.gateway.stop(), 0)
        self.http.close()
        self.stack.gateway = Service("gateway", self.stack.service_env(), self.stack.workdir,
                                     label="gateway-%d" % int(time.monotonic() * 1000))
        self.stack.gateway.start()
        self.stack.wait_ready(stack.START_TIMEOUT)


class CrossOriginStreams(BrowserTestCase):
    def test_stream_from_a_listed_origin_gets_every_update(self):
        sid = self.new_id("xo")
        self.create_record(sid)
        token = self.mint(["progress:" + sid])["token"]
        page = self.page_at(self.allowed.origin)
        page.evaluate("follow(%s)" % json.dumps(self.stream_url(sid, token)))
        page.wait_for("lastVersion() === 1", what="the snapshot (version 1)")
        for i in range(1, 201):
            r = self.http.post("/api/progress/%s" % sid, {"currentStep": i, "currentAction": "n%d" % i})
            self.assertStatus(r, 200)
        final = r.json["version"]
        self.assertEqual(final, 201)
        page.wait_for("lastVersion() === %d" % final, timeout=20, what="version %d" % final)
        seen = page.evaluate("seen.map(e => [Number(e.id), e.version, e.record.currentStep ?? 0])")
        self.assertEqual([v for _, v, _ in seen], list(range(1, 202)),
                         "the snapshot then each of the 200 updates, in order")
        self.assertTrue(all(i == v for i, v, _ in seen), "event ids are the versions")
        self.assertEqual(seen[-1][2], 200)
        self.assertEqual(page.evaluate("streamErrors"), 0)

    def test_stream_from_an_unlisted_origin_is_refused_by_cors(self):
        sid = self.new_id("xo")
        self.create_record(sid)
        token = self.mint(["progress:" + sid])["token"]
        url = self.stream_url(sid, token)
        page = self.page_at(self.other.origin)
        page.evaluate("follow(%s)" % json.dumps(url))
        # A reply the browser may not read ends an EventSource for good.
        page.wait_for("es.readyState === EventSource.CLOSED", what="the stream to fail")
        self.assertEqual(page.evaluate("seen.length"), 0)
        self.assertEqual(page.evaluate("opened"), 0)
        got = page.evaluate("statusOf(%s)" % json.dumps(self.gw + "/api/progress/" + sid
                                                        + "?access_token=" + token))
        self.assertIn("TypeError", got.get("error", ""), got)
        # The gateway did answer, with no CORS header for that origin: it is
        # the browser that refused, for want of Access-Control-Allow-Origin.
        r = self.http.get("/api/progress/%s?access_token=%s" % (sid, token), token=None,
                          headers={"Origin": self.other.origin})
        self.assertStatus(r, 200)
        self.assertIsNone(r.headers.get("Access-Control-Allow-Origin"))
        # And the listed origin reads the same URL.
        page2 = self.page_at(self.allowed.origin)
        got = page2.evaluate("statusOf(%s)" % json.dumps(self.gw + "/api/progress/" + sid
                                                         + "?access_token=" + token))
        self.assertEqual(got.get("status"), 200, got)


class ScopeAndExpiry(BrowserTestCase):
    def test_token_of_one_record_is_refused_on_another(self):
        a, b = self.new_id("sa"), self.new_id("sb")
        self.create_record(a)
        self.create_record(b)
        token = self.mint(["progress:" + a])["token"]
        page = self.page_at(self.allowed.origin)
        ok = page.evaluate("statusOf(%s, %s)" % (json.dumps("%s/api/progress/%s" % (self.gw, a)),
                                                 json.dumps(token)))
        self.assertEqual(ok.get("status"), 200, ok)
        self.assertEqual(json.loads(ok["body"])["sessionId"], a)
        no = page.evaluate("statusOf(%s, %s)" % (json.dumps("%s/api/progress/%s" % (self.gw, b)),
                                                 json.dumps(token)))
        self.assertEqual(no.get("status"), 403, no)
        self.assertIn("does not cover progress:" + b, json.loads(no["body"])["error"])
        # The stream of B is refused too, and never opens.
        page.evaluate("follow(%s)" % json.dumps(self.stream_url(b, token)))
        page.wait_for("es.readyState === EventSource.CLOSED", what="the stream of B to fail")
        self.assertEqual(page.evaluate("seen.length + opened"), 0)

    def test_expired_token_is_refused_on_reconnect_and_a_fresh_one_resumes(self):
        sid = self.new_id("ex")
        self.create_record(sid)
        minted = self.mint(["progress:" + sid], ttl=3)
        page = self.page_at(self.allowed.origin)
        url = self.stream_url(sid, minted["token"])
        page.evaluate("follow(%s)" % json.dumps(url))
        page.wait_for("lastVersion() === 1", what="the snapshot")
        for i in range(2, 6):
            self.http.post("/api/progress/%s" % sid, {"u%d" % i: i})
        page.wait_for("lastVersion() === 5", what="updates while the token is valid")
        # Let the token expire while the stream is open, then make the
        # browser reconnect: a gateway restart ends every stream.
        expires = iso_seconds(minted["expiresAt"])
        while time.time() < expires + 0.2:
            time.sleep(0.1)
        self.restart_gateway()
        missed = {}
        for i in range(6, 11):
            r = self.http.post("/api/progress/%s" % sid, {"u%d" % i: i})
            missed["u%d" % i] = i
        self.assertEqual(r.json["version"], 10)
        # EventSource reconnects by itself (retry: 2000) with the expired
        # token: 401 ends it for good.
        page.wait_for("es.readyState === EventSource.CLOSED", timeout=15,
                      what="the reconnection to be refused")
        got = page.evaluate("statusOf(%s)" % json.dumps(url))
        self.assertEqual(got.get("status"), 401, got)
        self.assertIn("token expired", json.loads(got["body"])["error"])
        self.assertEqual(page.evaluate("lastVersion()"), 5)
        # A fresh token from the last event id: the current record first
        # (every update made meanwhile merged into it), then each new one.
        fresh = self.mint(["progress:" + sid])["token"]
        last = page.evaluate("seen[seen.length - 1].id")
        self.assertEqual(last, "5")
        page.evaluate("follow(%s)" % json.dumps(self.stream_url(sid, fresh, last)))
        page.wait_for("lastVersion() === 10", what="the record as it is now")
        for i in range(11, 14):
            self.http.post("/api/progress/%s" % sid, {"u%d" % i: i})
        page.wait_for("lastVersion() === 13", what="updates after the resume")
        seen = page.evaluate("seen.map(e => [e.version, e.record])")
        self.assertEqual([v for v, _ in seen], [1, 2, 3, 4, 5, 10, 11, 12, 13],
                         "nothing sent twice, nothing after 5 skipped but what 10 holds")
        resumed = seen[5][1]
        for k, v in missed.items():
            self.assertEqual(resumed.get(k), v, "update %s is in the resumed record" % k)


DASHBOARD_DIR = os.path.join(stack.REPO_ROOT, "services", "gateway", "dashboard")
FIRST_LOAD_LIMIT = 100 * 1024


def row_js(table, key):
    """An expression: the row of key in one of the dashboard's tables."""
    return "document.querySelector('#%s-rows tr[data-key=\"' + %s + '\"]')" % (table, json.dumps(key))


class Dashboard(BrowserTestCase):
    def open_dashboard(self, width=1280, height=900):
        page = self.browser.new_page(width, height, fresh=True)
        self.addCleanup(page.close)
        page.navigate(self.gw + "/dashboard")
        page.wait_for("!document.getElementById('signin').hidden", what="the token form")
        page.evaluate("document.getElementById('token').value = %s;"
                      "document.getElementById('signin').requestSubmit(); true" % json.dumps(TOKEN))
        page.wait_for("document.body.dataset.ready === 'true'", what="the first reads")
        page.wait_for("document.getElementById('live').dataset.state === 'live'",
                      what="the event stream")
        return page

    def text_of(self, page, table, key):
        return page.evaluate("(%s || {}).innerText || null" % row_js(table, key))

    def wait_text(self, page, table, key, needle, within, what):
        """Wait until the row's text contains needle; return how long it took."""
        t0 = time.monotonic()
        page.wait_for("((%s || {}).innerText || '').includes(%s)" % (row_js(table, key),
                                                                     json.dumps(needle)),
                      timeout=within, interval=0.02, what=what)
        return time.monotonic() - t0

    def test_page_and_files_are_served_with_their_types_and_policy(self):
        names = sorted(os.listdir(DASHBOARD_DIR))
        self.assertIn("index.html", names)
        types = {".html": "text/html", ".css": "text/css", ".js": "text/javascript",
                 ".svg": "image/svg+xml"}
        for name in names:
            path = "/dashboard" if name == "index.html" else "/dashboard/" + name
            # No token is needed to load them, though the gateway has one.
            r = self.http.get(path, token=None)
            self.assertStatus(r, 200)
            with open(os.path.join(DASHBOARD_DIR, name), "rb") as f:
                self.assertEqual(r.raw, f.read(), "%s is served as it is" % name)
            ctype = r.headers.get("Content-Type", "")
            self.assertTrue(ctype.startswith(types[os.path.splitext(name)[1]]), (name, ctype))
            self.assertEqual(r.headers.get("Cache-Control"), "no-cache")
            self.assertEqual(r.headers.get("X-Content-Type-Options"), "nosniff")
            csp = r.headers.get("Content-Security-Policy", "")
            self.assertIn("default-src 'none'", csp)
            self.assertIn("script-src 'self'", csp)
            self.assertNotIn("unsafe", csp)
            head = self.http.request("HEAD", path, token=None)
            self.assertStatus(head, 200)
            self.assertEqual(head.raw, b"")
        for path in ("/dashboard/index.html", "/dashboard/nope.js", "/dashboard/..",
                     "/dashboard/CMakeLists.txt", "/dashboard/..%2Frouter.c",
                     "/dashboard/%2e%2e%2fembed.cmake", "/dashboard/dashboard/app.js",
                     "/dashboard/"):
            r = self.http.get(path, token=None)
            self.assertIn(r.status, (400, 404), "%s: %r" % (path, r))
            self.assertNotIn(b"cmake", r.raw.lower())
        r = self.http.post("/dashboard", {}, token=None)
        self.assertStatus(r, 405)

    def test_dashboard_shows_the_stack_live(self):
        # What the stack holds before the page opens: an account, a claim,
        # and a progress record another page streams.
        acc = self.http.post("/api/accounts", {
            "emailAddress": "dash@example.com", "imapHost": "imap.example.com", "imapPort": 993,
            "security": "tls", "username": "dash", "password": "pw-" + os.urandom(6).hex()})
        self.assertStatus(acc, 201)
        account = acc.json["id"]
        sq = self.new_id("sq")
        claim = self.http.post("/api/queue/claim", {"sq": sq, "botId": "BOT-DASH"})
        self.assertStatus(claim, 200)
        fencing = claim.json["claim"]["token"]
        sid = self.new_id("dash")
        self.create_record(sid, {"currentStep": 1, "currentAction": "starting", "percent": 10})
        watcher = self.page_at(self.allowed.origin)
        watcher.evaluate("follow(%s)" % json.dumps(
            self.stream_url(sid, self.mint(["progress:" + sid])["token"])))
        watcher.wait_for("lastVersion() === 1", what="the other client's stream")

        page = self.open_dashboard()
        # The current state: read at load, or pushed by the first events.
        self.wait_text(page, "accounts", account, "dash@example.com", 5, "the account")
        self.wait_text(page, "claims", sq, str(fencing), 5, "the claim with its token")
        self.assertIn("BOT-DASH", self.text_of(page, "claims", sq))
        self.wait_text(page, "streams", sid, "10%", 5, "the streamed record")
        page.wait_for("document.querySelectorAll('#services li[data-up=\"true\"]').length >= 3",
                      what="the services up")
        page.wait_for("document.getElementById('m-rate').textContent !== '–'", timeout=5,
                      what="a metrics event")
        # Time left counts down in the page, between events.
        left = page.evaluate("%s.cells[4].innerText" % row_js("claims", sq))
        page.wait_for("%s.cells[4].innerText !== %s" % (row_js("claims", sq), json.dumps(left)),
                      timeout=3, what="the claim's time left to tick")

        # Changes show within 2 s, pushed (the page polls nothing).
        r = self.http.post("/api/queue/status", {"sq": sq, "botId": "BOT-DASH",
                                                 "token": fencing, "status": "WRITING"})
        self.assertStatus(r, 200)
        self.wait_text(page, "claims", sq, "WRITING", 2, "the claim's new status")
        self.http.post("/api/progress/%s" % sid, {"percent": 42, "currentAction": "halfway"})
        self.wait_text(page, "streams", sid, "42%", 2, "the record's new percent")
        self.assertIn("halfway", self.text_of(page, "streams", sid))
        r = self.http.post("/api/accounts/%s/sync" % account)
        self.assertStatus(r, 202)
        self.wait_text(page, "accounts", account, "queued", 2, "the account queued")
        sq2 = self.new_id("sq")
        r = self.http.post("/api/queue/reserve", {"sq": sq2, "botId": "BOT-R", "rowCount": 7})
        self.assertStatus(r, 200)
        self.wait_text(page, "reservations", sq2, "BOT-R", 2, "the new reservation")
        page.wait_for("/\\d+ (s|min)/.test(%s.cells[4].innerText)" % row_js("reservations", sq2),
                      timeout=2, what="the reservation's time left")

        # Readable at 1280 and 390 px: nothing wider than the viewport.
        page.wait_for("!document.querySelector('tr.flash')", timeout=3,
                      what="the marks of changed rows to fade")
        shots = os.path.join(stack.build_dir(), "screenshots")
        for width, height in ((1280, 900), (390, 844)):
            page.set_viewport(width, height)
            page.wait_for("innerWidth === %d" % width)
            self.assertLessEqual(page.evaluate("document.documentElement.scrollWidth"), width)
            png = page.screenshot(os.path.join(shots, "dashboard-%d.png" % width))
            self.assertGreater(len(png), 5000)
            self.assertEqual(png_size(png)[0], width)
            with open(os.path.join(shots, "dashboard-%d.png" % width), "rb") as f:
                self.assertEqual(f.read(), png)
        page.set_viewport(1280, 900)
        # The page's own stream of the record is counted among the record's
        # clients: the record stays while another page streams it too, and
        # goes when only the dashboard's own stream is left.
        self.http.post("/api/progress/%s" % sid, {"percent": 55})
        self.wait_text(page, "streams", sid, "55%", 2, "the record still followed")
        watcher.evaluate("es.close(), true")
        page.wait_for("!%s" % row_js("streams", sid), timeout=3,
                      what="the record no one streams any more to go")
        r = self.http.post("/api/queue/release", {"sq": sq, "botId": "BOT-DASH", "token": fencing})
        self.assertStatus(r, 200)
        page.wait_for("!%s" % row_js("claims", sq), timeout=2, what="the released claim to go")
        self.assertEqual(page.console_errors, [])
        self.assertEqual(watcher.console_errors, [])

    def test_first_load_is_under_100_kib(self):
        page = self.open_dashboard()
        names = sorted(os.listdir(DASHBOARD_DIR))
        deadline = time.monotonic() + 5
        while (len([r for r in page.responses if "/dashboard" in r["url"]]) < len(names)
               and time.monotonic() < deadline):
            time.sleep(0.05)
        files = {r["url"].split("/dashboard", 1)[1].lstrip("/") or "index.html": r
                 for r in page.responses if "/dashboard" in r["url"]}
        self.assertEqual(sorted(files), names,
                         "the page loads each of its files once")
        for name, r in files.items():
            self.assertEqual(r["status"], 200, name)
            self.assertGreater(r["bytes"], os.path.getsize(os.path.join(DASHBOARD_DIR, name)),
                               "%s: bytes transferred count its headers" % name)
        total = sum(r["bytes"] for r in files.values())
        self.assertLess(total, FIRST_LOAD_LIMIT, "first load: %d bytes" % total)
        self.assertEqual(page.console_errors, [])


def iso_seconds(iso):
    """Seconds since the epoch of an ISO 8601 UTC time."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


if __name__ == "__main__":
    unittest.main()
