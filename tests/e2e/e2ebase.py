"""Base class of the end-to-end tests: one stack per test class, started in
setUpClass and stopped (with a clean-exit check) in tearDownClass. Importing
it makes every reply the tests receive (stack.Client and raw_request) be
checked against the API description, services/gateway/openapi.json."""

import itertools
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import unittest
import uuid

import jsonschema  # python3-jsonschema: a missing one fails every e2e module

import stack
from stack import REPO_ROOT, Service, Stack, read_tail

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
_counter = itertools.count(1)
OPENAPI_PATH = os.path.join(REPO_ROOT, "services", "gateway", "openapi.json")


class ApiDescription:
    """The routes of an OpenAPI 3.1 document; check() raises AssertionError
    when a reply is not what the document says its route answers."""

    def __init__(self, doc):
        self.doc = doc
        self.routes = []
        for tmpl, item in doc["paths"].items():
            rx = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(tmpl)) + "$")
            self.routes.append((rx, tmpl, item))
        self.validators = {}

    def operation(self, method, path):
        """(template, operation) of the route, or (template, None) when the
        path is known but not the method, or (None, None)."""
        path = path.split("?", 1)[0]
        for rx, tmpl, item in self.routes:
            if rx.match(path):
                return tmpl, item.get(method.lower())
        return None, None

    def resolve(self, obj):
        while isinstance(obj, dict) and "$ref" in obj:
            node = self.doc
            for part in obj["$ref"].lstrip("#/").split("/"):
                node = node[part]
            obj = node
        return obj

    def validator(self, schema):
        key = json.dumps(schema, sort_keys=True)
        v = self.validators.get(key)
        if v is None:
            # Local references ("#/components/...") resolve inside the
            # schema itself, so the components ride along.
            v = jsonschema.Draft202012Validator(dict(schema, components=self.doc["components"]))
            self.validators[key] = v
        return v

    def check(self, method, path, status, content_type, body):
        """body: the reply's bytes (empty for HEAD or none)."""
        where = "%s %s -> %d" % (method, path, status)
        media = (content_type or "").split(";", 1)[0].strip().lower()
        tmpl, op = self.operation("GET" if method == "HEAD" else method, path)
        if op is None:
            # An unknown path or method: the gateway's own error.
            if media != "application/json":
                raise AssertionError("%s: not JSON (%r)" % (where, content_type))
            schema = {"$ref": "#/components/schemas/Error"}
        else:
            responses = op["responses"]
            code = str(status)
            resp = responses.get(code) or responses.get(code[0] + "XX") or responses.get("default")
            if resp is None:
                raise AssertionError("%s: openapi.json describes no %d for %s %s (%s)"
                                     % (where, status, method, tmpl, body[:300]))
            content = self.resolve(resp).get("content", {})
            if method == "HEAD" or not content:
                return
            if media not in content:
                raise AssertionError("%s: Content-Type %r, openapi.json says %s"
                                     % (where, content_type, sorted(content)))
            schema = content[media].get("schema")
            if media != "application/json" or schema is None:
                return
        try:
            doc = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise AssertionError("%s: the body is not JSON: %r" % (where, body[:300]))
        err = jsonschema.exceptions.best_match(self.validator(schema).iter_errors(doc))
        if err is not None:
            raise AssertionError("%s: the reply does not match openapi.json: %s at %s\n%s"
                                 % (where, err.message, "/".join(map(str, err.absolute_path)),
                                    json.dumps(doc)[:1000]))


with open(OPENAPI_PATH, encoding="utf-8") as _f:
    API = ApiDescription(json.load(_f))


def _check_reply(method, path, resp):
    API.check(method, path, resp.status, resp.headers.get("Content-Type"), resp.raw)


stack.Client.on_reply = staticmethod(_check_reply)


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


def service_exit(test, name, env, what):
    """Start service name alone with env and return (exit code, log tail)
    once it exits; fails test when it is still running after 30 s (what:
    the reason it should not run)."""
    workdir = tempfile.mkdtemp(prefix="e2e-%s-" % name)
    try:
        svc = Service(name, env, workdir)
        svc.start()
        deadline = time.monotonic() + 30
        while svc.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        log = read_tail(svc.log_path)
        if svc.alive():
            svc.stop()
            test.fail("%s kept running %s:\n%s" % (name, what, log))
        return svc.proc.returncode, log
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def gateway_exit(test, env, what):
    """service_exit of a gateway."""
    return service_exit(test, "gateway", env, what)


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
    ctype = re.search(rb"(?im)^content-type:\s*([^\r\n]*)", head)
    API.check(method, path, status, ctype.group(1).decode() if ctype else None, rest)
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
