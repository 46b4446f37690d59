"""The deployment files agree with the code: docker-compose.yml validates
(docker-compose config), every service it runs is a binary the image
builds, every variable it sets is read by the code, every address a
service dials is the address the named service listens on, every address a
service's code dials is set, and deploy/.env.example names only what the
compose file uses."""

import os
import re
import shutil
import subprocess
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def parse_yaml(text):
    """The subset of YAML docker-compose config prints: maps, lists of
    scalars, scalars (quoted or not), two-space indents."""
    root = {}
    stack = [(-1, root)]
    raw = [l for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    # Folded scalars continue on deeper-indented lines: join them back.
    lines = []
    for l in raw:
        if lines:
            prev = lines[-1]
            pind = len(prev) - len(prev.lstrip(" "))
            ind = len(l) - len(l.lstrip(" "))
            pbody = prev.strip()
            prev_scalar = pbody.startswith("- ") or (":" in pbody and pbody.partition(":")[2].strip())
            if ind > pind and prev_scalar and not l.strip().startswith("- "):
                lines[-1] = prev + " " + l.strip()
                continue
        lines.append(l)
    for i, line in enumerate(lines):
        indent = len(line) - len(line.lstrip(" "))
        body = line.strip()
        item = body.startswith("- ")
        # A list's items may stand at its key's own indent.
        while len(stack) > 1 and (stack[-1][0] > indent or
                                  (stack[-1][0] == indent and not item)):
            stack.pop()
        parent = stack[-1][1]
        if item:
            parent.append(unquote(body[2:]))
            continue
        key, _, value = body.partition(":")
        value = value.strip()
        if value:
            parent[key] = unquote(value)
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        child = [] if nxt.strip().startswith("- ") else {}
        parent[key] = child
        stack.append((indent, child))
    return root


def unquote(v):
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
        return v[1:-1]
    return v


def code_text(*dirs):
    out = []
    for d in dirs:
        for base, _, files in os.walk(os.path.join(ROOT, d)):
            for f in files:
                if f.endswith((".c", ".h")):
                    with open(os.path.join(base, f), encoding="utf-8") as fh:
                        out.append(fh.read())
    return "\n".join(out)


class ComposeMatchesCode(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        exe = shutil.which("docker-compose")
        if not exe:
            raise AssertionError("docker-compose not found (apt-get install docker-compose)")
        out = subprocess.run([exe, "--env-file", os.path.join(ROOT, "deploy/.env.example"),
                              "-f", os.path.join(ROOT, "docker-compose.yml"), "config"],
                             cwd=ROOT, capture_output=True, text=True)
        if out.returncode != 0:
            raise AssertionError("docker-compose config failed:\n" + out.stderr)
        cls.config = parse_yaml(out.stdout)
        cls.services = {k: v for k, v in cls.config["services"].items() if k != "redis"}
        with open(os.path.join(ROOT, "deploy/Dockerfile")) as f:
            cls.dockerfile = f.read()

    def test_every_service_is_a_built_binary(self):
        self.assertEqual(set(self.services),
                         {"progress", "coordinator", "sync-worker", "gateway"})
        for name, svc in self.services.items():
            self.assertEqual(svc["command"], [name])
            self.assertTrue(os.path.isdir(os.path.join(ROOT, "services", name)), name)
            self.assertIn("/build/services/%s/%s" % (name, name), self.dockerfile)
            self.assertRegex(self.dockerfile, r"--target[^\n]*\b%s\b" % re.escape(name))

    def test_every_variable_is_read_by_the_code(self):
        code = code_text("services", "libshared")
        for name, svc in self.services.items():
            for var in svc["environment"]:
                self.assertIn('"%s"' % var, code, "%s sets %s, which no code reads" % (name, var))

    def test_dialed_addresses_are_where_services_listen(self):
        listen = {}
        for name, svc in self.services.items():
            for var, val in svc["environment"].items():
                m = re.match(r"tcp://0\.0\.0\.0:(\d+)$", str(val))
                if m:
                    listen[(name, var)] = m.group(1)
        self.assertGreaterEqual(len(listen), 6)
        for name, svc in self.services.items():
            for var, val in svc["environment"].items():
                m = re.match(r"tcp://([a-z-]+):(\d+)$", str(val))
                if not m:
                    continue
                host, port = m.groups()
                self.assertIn(host, self.services, "%s: %s names no service" % (name, var))
                self.assertEqual(listen.get((host, var)), port,
                                 "%s dials %s=%s, but %s listens elsewhere" % (name, var, val, host))

    def test_every_address_a_service_dials_is_set(self):
        for name, svc in self.services.items():
            code = code_text(os.path.join("services", name))
            for var in set(re.findall(r'"([A-Z_]+_(?:RPC|EVENTS)_URL)"', code)):
                self.assertIn(var, svc["environment"], "%s reads %s; compose leaves it unset"
                              % (name, var))
                self.assertNotRegex(str(svc["environment"][var]), r"127\.0\.0\.1|localhost",
                                    "%s: %s points at the container itself" % (name, var))

    def test_gateway_port_and_listen_agree(self):
        gw = self.services["gateway"]
        port = gw["environment"]["GATEWAY_LISTEN"].rsplit(":", 1)[1]
        targets = [str(p).split("/")[0].rsplit(":", 1)[-1] for p in gw.get("ports", [])]
        self.assertIn(port, targets, gw.get("ports"))
        for p in gw["ports"]:
            self.assertTrue(str(p).startswith("127.0.0.1:"),
                            "the gateway is published beyond loopback: %s" % p)

    def test_env_example_names_only_what_compose_uses(self):
        with open(os.path.join(ROOT, "docker-compose.yml")) as f:
            compose = f.read()
        with open(os.path.join(ROOT, "deploy/.env.example")) as f:
            names = re.findall(r"^#?([A-Z][A-Z0-9_]+)=", f.read(), re.M)
        self.assertGreater(len(names), 10)
        for n in names:
            self.assertIn("${%s" % n, compose, ".env.example names %s, which compose ignores" % n)

    def test_env_example_names_every_setting(self):
        # Every setting of a service's table, but the addresses compose wires.
        code = code_text("services", "libshared")
        settings = set(re.findall(r'\{"([A-Z][A-Z0-9_]+)", [^,]+, SH_SET_', code))
        self.assertGreater(len(settings), 20)
        wired = {"REDIS_URL", "GATEWAY_LISTEN"}
        with open(os.path.join(ROOT, "deploy/.env.example")) as f:
            names = set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", f.read(), re.M))
        for n in sorted(settings):
            if n in wired or n.endswith(("_RPC_URL", "_EVENTS_URL")):
                continue
            self.assertIn(n, names, "deploy/.env.example does not name the setting %s" % n)


if __name__ == "__main__":
    unittest.main()
