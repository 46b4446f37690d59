"""A headless Chromium driven over the DevTools protocol, for the browser
tests. Standard library only.

Chromium is started with --remote-debugging-pipe: it reads commands on its
fd 3 and writes replies and events on its fd 4, each message one JSON
object ended by a NUL byte. The browser-level connection creates a page
(Target.createTarget) and attaches to it with flatten, so page commands
carry that page's sessionId. A Chromium that cannot start, or does not
answer, raises BrowserError: the test fails, it is never skipped.

    with Browser() as b:
        page = b.new_page()
        page.navigate("http://127.0.0.1:8080/dashboard")
        page.wait_for("document.title !== ''")
        page.set_viewport(390, 844)
        png = page.screenshot()
        assert not page.console_errors
"""

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


class BrowserError(Exception):
    """Chromium did not start, answered an error, or a wait timed out."""


class JsError(BrowserError):
    """A script evaluated in the page threw."""


def chromium_path():
    given = os.environ.get("CHROMIUM")
    if given:
        return given
    for name in CHROMIUM_CANDIDATES:
        p = shutil.which(name)
        if p:
            return p
    raise BrowserError("chromium not found (apt-get install chromium, or set CHROMIUM)")


def _high_fd(fd):
    """A copy of fd numbered 10 or above (close-on-exec), and fd closed, so
    that the child's dup2 onto 3 and 4 cannot overwrite one of them. The
    child keeps only what is inheritable (PEP 446: nothing Python opened but
    the 3 and 4 dup2 makes), so close_fds need not close anything."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


class Browser:
    """One Chromium process with a private profile directory."""

    def __init__(self, timeout=30.0, extra_args=()):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="e2e-chromium-")
        self.log_path = os.path.join(self.profile, "chromium.log")
        self.proc = None
        self._next_id = 0
        self._lock = threading.Lock()
        self._waiting = {}  # id -> [threading.Event, reply]
        self._listeners = []  # callables(message) for events
        self._closed = False
        cmd_r, cmd_w = os.pipe()  # we write commands, chromium reads fd 3
        out_r, out_w = os.pipe()  # chromium writes fd 4, we read
        cmd_r, out_w = _high_fd(cmd_r), _high_fd(out_w)

        def child_fds():
            os.dup2(cmd_r, 3)
            os.dup2(out_w, 4)

        args = [chromium_path(), "--headless=new", "--no-sandbox", "--remote-debugging-pipe",
                "--user-data-dir=" + self.profile, "--no-first-run", "--no-default-browser-check",
                "--disable-gpu", "--disable-dev-shm-usage", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--metrics-recording-only", "--mute-audio",
                "--hide-scrollbars", "--password-store=basic", "--use-mock-keychain"]
        args += list(extra_args) + ["about:blank"]
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, close_fds=False,
                                         preexec_fn=child_fds)
        except OSError as e:
            log.close()
            for fd in (cmd_r, cmd_w, out_r, out_w):
                os.close(fd)
            shutil.rmtree(self.profile, ignore_errors=True)
            raise BrowserError("cannot run chromium: %s" % e)
        log.close()
        os.close(cmd_r)
        os.close(out_w)
        self._out = os.fdopen(cmd_w, "wb", buffering=0)
        self._in = out_r
        self._reader = threading.Thread(target=self._read_loop, name="cdp-reader", daemon=True)
        self._reader.start()
        try:
            self.version = self.call("Browser.getVersion", timeout=timeout)
        except BrowserError as e:
            self.close()
            raise BrowserError("chromium did not answer on its DevTools pipe: %s\n%s"
                               % (e, self.log_tail()))

    # -- the pipe ----------------------------------------------------------
    def _read_loop(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self._in, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                try:
                    msg = json.loads(raw.decode("utf-8"))
                except ValueError:
                    continue
                self._dispatch(msg)
        # The pipe closed: wake everything waiting for a reply.
        with self._lock:
            self._closed = True
            waiting = list(self._waiting.values())
        for slot in waiting:
            slot[0].set()

    def _dispatch(self, msg):
        if "id" in msg:
            with self._lock:
                slot = self._waiting.get(msg["id"])
            if slot:
                slot[1] = msg
                slot[0].set()
            return
        for fn in list(self._listeners):
            fn(msg)

    def call(self, method, params=None, session=None, timeout=None):
        """Send one command and return its result; BrowserError on an error
        reply, a closed pipe or no reply within timeout seconds."""
        with self._lock:
            if self._closed:
                raise BrowserError("chromium is gone (%s)" % method)
            self._next_id += 1
            mid = self._next_id
            slot = [threading.Event(), None]
            self._waiting[mid] = slot
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        try:
            self._out.write(json.dumps(msg).encode("utf-8") + b"\0")
        except OSError as e:
            with self._lock:
                self._waiting.pop(mid, None)
            raise BrowserError("cannot write to chromium (%s): %s" % (method, e))
        ok = slot[0].wait(timeout or self.timeout)
        with self._lock:
            self._waiting.pop(mid, None)
        reply = slot[1]
        if not ok:
            raise BrowserError("no reply to %s within %.0f s" % (method, timeout or self.timeout))
        if reply is None:
            raise BrowserError("chromium closed its pipe before answering %s" % method)
        if "error" in reply:
            raise BrowserError("%s: %s" % (method, reply["error"].get("message", reply["error"])))
        return reply.get("result", {})

    def listen(self, fn):
        self._listeners.append(fn)

    # -- pages -------------------------------------------------------------
    def new_page(self, width=1280, height=800, fresh=False):
        """A new tab, attached, with Page, Runtime, Log and Network enabled;
        fresh: in a browser context of its own (no cache, cookies or storage
        shared with other tabs, as in a first visit)."""
        params = {"url": "about:blank"}
        if fresh:
            params["browserContextId"] = self.call("Target.createBrowserContext")["browserContextId"]
        target = self.call("Target.createTarget", params)["targetId"]
        session = self.call("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, target, session, params.get("browserContextId"))
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(domain + ".enable", session=session)
        page.set_viewport(width, height)
        return page

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def close(self):
        """Browser.close, then wait; SIGKILL if it does not exit."""
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None and not self._closed:
                self.call("Browser.close", timeout=10)
        except BrowserError:
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        try:
            self._out.close()
        except OSError:
            pass
        self._reader.join(5)
        os.close(self._in)
        self.proc = None
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Page:
    """One tab. console_errors collects console.error calls, uncaught
    exceptions and error log entries (a failed load, a refused CSP);
    responses collects {url, status, type, mime, bytes} of every finished
    request (bytes: as transferred, headers included)."""

    def __init__(self, browser, target, session, context=None):
        self.browser = browser
        self.context = context
        self.target = target
        self.session = session
        self.console_errors = []
        self.console = []
        self.responses = []
        self._pending = {}
        self._loaded = threading.Event()
        browser.listen(self._on_event)

    def _on_event(self, msg):
        if msg.get("sessionId") != self.session:
            return
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            self.console.append((p.get("type"), text))
            if p.get("type") in ("error", "assert"):
                self.console_errors.append("console.%s: %s" % (p.get("type"), text))
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            exc = d.get("exception", {})
            self.console_errors.append("uncaught: %s" % (exc.get("description") or d.get("text")))
        elif method == "Log.entryAdded":
            e = p.get("entry", {})
            if e.get("level") == "error":
                self.console_errors.append("log: %s %s" % (e.get("text"), e.get("url", "")))
        elif method == "Network.responseReceived":
            r = p.get("response", {})
            self._pending[p["requestId"]] = {"url": r.get("url"), "status": r.get("status"),
                                             "type": p.get("type"), "mime": r.get("mimeType"),
                                             "headers": r.get("headers", {})}
        elif method == "Network.loadingFinished":
            r = self._pending.pop(p.get("requestId"), None)
            if r is not None:
                r["bytes"] = int(p.get("encodedDataLength", 0))
                self.responses.append(r)
        elif method == "Page.loadEventFired":
            self._loaded.set()

    def call(self, method, params=None, timeout=None):
        return self.browser.call(method, params, session=self.session, timeout=timeout)

    def navigate(self, url, timeout=30.0):
        """Load url and wait for its load event."""
        self._loaded.clear()
        r = self.call("Page.navigate", {"url": url})
        if r.get("errorText"):
            raise BrowserError("navigating to %s: %s" % (url, r["errorText"]))
        if not self._loaded.wait(timeout):
            raise BrowserError("%s did not load within %.0f s" % (url, timeout))

    def evaluate(self, expression, timeout=30.0):
        """The value of a JavaScript expression (a promise is awaited); JsError
        when it throws."""
        r = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                           "returnByValue": True, "userGesture": True},
                      timeout=timeout)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            exc = d.get("exception", {})
            raise JsError("%s: %s" % (expression[:200], exc.get("description") or d.get("text")))
        return r.get("result", {}).get("value")

    def wait_for(self, expression, timeout=10.0, interval=0.05, what=None):
        """Evaluate expression until it is truthy; return that value.
        BrowserError naming what (or the expression) after timeout seconds."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                last = self.evaluate(expression)
            except JsError as e:
                last = e
            if last and not isinstance(last, JsError):
                return last
            if time.monotonic() > deadline:
                raise BrowserError("waited %.1f s for %s (last: %r)"
                                   % (timeout, what or expression[:300], last))
            time.sleep(interval)

    def set_viewport(self, width, height, scale=1, mobile=False):
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": scale,
                   "mobile": mobile})

    def screenshot(self, path=None, full_page=True):
        """A PNG of the page (the whole page by default); written to path if
        given; returns its bytes."""
        params = {"format": "png", "captureBeyondViewport": full_page}
        data = base64.b64decode(self.call("Page.captureScreenshot", params)["data"])
        if path:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
        return data

    def close(self):
        self.browser.call("Target.closeTarget", {"targetId": self.target})
        if self.context:
            self.browser.call("Target.disposeBrowserContext", {"browserContextId": self.context})
