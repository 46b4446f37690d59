"""Base class of the end-to-end tests: one stack per test class, started in
setUpClass and stopped (with a clean-exit check) in tearDownClass."""

import itertools
import json
import os
import re
import socket
import sys
import unittest
import uuid

from stack import Stack

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
_counter = itertools.count(1)


class StackTestCase(unittest.TestCase):
    STACK_ENV = {}
    stack = None

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(env=cls.STACK_ENV).start()
        cls.http = cls.stack.client()

    @classmethod
    def tearDownClass(cls):
        if cls.stack is not None:
            cls.http.close()
            cls.stack.stop()  # raises unless every service exited 0

    def run(self, result=None):
        # Print the services' logs next to any failure of this test.
        before = (len(result.failures) + len(result.errors)) if result else 0
        out = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            if self.stack is not None:
                sys.stderr.write("\n===== logs after failure of %s =====\n" % self.id())
                self.stack.dump_logs()
        return out

    def tearDown(self):
        if self.stack is not None:
            self.stack.assert_alive()

    # -- helpers -----------------------------------------------------------
    def new_id(self, prefix="t"):
        return "%s-%d-%s" % (prefix, next(_counter), uuid.uuid4().hex[:8])

    def assertStatus(self, resp, status, msg=None):
        self.assertEqual(resp.status, status, msg or ("unexpected reply %r" % (resp,)))

    def assertJsonError(self, resp, status, pattern):
        """resp has the status, a JSON body with an "error" naming the problem
        (pattern: a case-insensitive regex the message must match)."""
        self.assertStatus(resp, status)
        self.assertIsInstance(resp.json, dict, "error body is not a JSON object: %r" % (resp,))
        self.assertIn("error", resp.json, "no \"error\" in %r" % (resp,))
        err = resp.error()
        self.assertTrue(err, "empty error message in %r" % (resp,))
        self.assertRegex(err, re.compile(pattern, re.I),
                         "error message does not name the problem: %r" % (resp,))
        ctype = resp.headers.get("Content-Type", "")
        self.assertIn("application/json", ctype, "error Content-Type %r" % ctype)

    def assertIsoUtc(self, value):
        self.assertIsInstance(value, str)
        self.assertRegex(value, ISO_UTC)

    def create_record(self, sid, fields=None):
        body = fields if fields is not None else {
            "currentStep": 1,
            "completedSteps": [],
            "currentAction": "starting",
            "toolStatus": {"git": {"status": "pending"}},
            "errors": [],
            "phase": "phase1",
            "complete": False,
        }
        r = self.http.post("/api/progress/%s" % sid, body)
        self.assertStatus(r, 200)
        return r.json

    def get_record(self, sid):
        r = self.http.get("/api/progress/%s" % sid)
        self.assertStatus(r, 200)
        return r.json


def env_flag(name):
    return os.environ.get(name, "") not in ("", "0", "no", "false")


def raw_request(port, method, path, body, headers=None, timeout=30):
    """Send a request with a Content-Length body on a raw socket and return
    (status, headers text, parsed JSON body or None). The server may answer
    and close before reading all of a large body, so send errors are
    tolerated."""
    hdrs = {"Host": "127.0.0.1", "Content-Type": "application/json",
            "Content-Length": str(len(body)), "Connection": "close"}
    hdrs.update(headers or {})
    head = "%s %s HTTP/1.1\r\n%s\r\n" % (
        method, path, "".join("%s: %s\r\n" % kv for kv in hdrs.items()))
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    data = b""
    try:
        try:
            s.sendall(head.encode())
            view = memoryview(body)
            for off in range(0, len(body), 65536):
                s.sendall(view[off:off + 65536])
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
    finally:
        s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    if not head:
        raise AssertionError("no HTTP reply to %s %s with a %d-byte body"
                             % (method, path, len(body)))
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        rest = dechunk(rest)
    try:
        doc = json.loads(rest.decode()) if rest else None
    except ValueError:
        doc = None
    return status, head.decode("latin-1"), doc


def dechunk(data):
    """The body of a chunked transfer encoding."""
    out = b""
    while data:
        line, _, data = data.partition(b"\r\n")
        n = int(line.split(b";")[0] or b"0", 16)
        if n == 0:
            break
        out += data[:n]
        data = data[n + 2:]
    return out
