"""The deployment files and the READMEs agree with the code:
docker-compose.yml validates (docker-compose config), every service it runs
is a binary the image builds, every variable it sets is read by the code,
every address a service dials is the address the named service listens on,
every address a service's code dials is set, deploy/.env.example names only
what the compose file uses; the settings tables of README.md and of each
service's README list exactly the settings the code declares, with their
defaults and the services that read them, and the route tables list exactly
the gateway's routes."""

import fnmatch
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


SERVICES = ("progress", "coordinator", "sync-worker", "gateway")
# A row of a settings table: {"NAME", "ALIAS" or NULL, SH_SET_..., "default" or NULL, ...
SETTING_ROW = re.compile(r'\{"([A-Z][A-Z0-9_]+)",\s*("[A-Z][A-Z0-9_]+"|NULL),\s*SH_SET_\w+,'
                         r'\s*("(?:[^"\\]|\\.)*"|NULL)')
# The addresses a service run by libshared's service loop listens on.
LISTEN_VAR = re.compile(r'\.(rpc|events)_var\s*=\s*"([A-Z][A-Z0-9_]+)",\s*'
                        r'\.\1_default\s*=\s*"([^"]*)"')


def setting_rows(text, aliases=True):
    """{name: default or None} of the settings tables in text (with aliases:
    an alias counts as a name of its own, with the same default)."""
    out = {}
    for name, alias, default in SETTING_ROW.findall(text):
        d = None if default == "NULL" else default[1:-1]
        out[name] = d
        if aliases and alias != "NULL":
            out[alias[1:-1]] = d
    return out


def declared_settings():
    """{service: {name: default or None}}: each service's own settings, plus,
    for those run by libshared's service loop, its listen addresses and the
    common settings of libshared/src/service.c."""
    common = setting_rows(code_text("libshared"))
    out = {}
    for svc in SERVICES:
        code = code_text(os.path.join("services", svc))
        own = setting_rows(code)
        listen = LISTEN_VAR.findall(code)
        for _, name, default in listen:
            own[name] = default
        if listen:
            own = dict(common, **own)
        out[svc] = own
    return out


def readme_tables(path, heading):
    """The rows ({header: cell}) of the tables under every heading of the
    Markdown file path whose text contains heading (case-insensitive)."""
    rows, inside, header, fenced = [], False, None, False
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        for line in f:
            if line.startswith("```"):
                fenced = not fenced
            if fenced:
                continue
            if line.startswith("#"):
                inside, header = heading in line.lower(), None
                continue
            if not inside or not line.startswith("|"):
                header = None
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if header is None:
                header = [c.lower() for c in cells]
            elif not set(line.strip()) <= set("|-: "):
                rows.append(dict(zip(header, cells)))
    return rows


def backticked(cell, pattern=r"[^`]+"):
    return re.findall(r"`(%s)`" % pattern, cell)


class ReadmesMatchCode(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.declared = declared_settings()
        cls.every = {}
        for svc, names in cls.declared.items():
            for n, d in names.items():
                cls.every.setdefault(n, {})[svc] = d

    def names_of(self, where, row, known):
        """The settings a row names (patterns such as RPC_BATCH_* expanded),
        each one of known."""
        out = []
        for n in backticked(row["variable"], r"[A-Z][A-Z0-9_]*\*?"):
            match = sorted(fnmatch.filter(known, n))
            self.assertTrue(match, "%s lists %s, which the code does not declare" % (where, n))
            out += match if "*" in n else [n]
        self.assertTrue(out, "%s: a row that names no setting: %r" % (where, row))
        return out

    def check_defaults(self, where, row, names, defaults_of):
        """A default the row gives (one per name, or one for all) is the
        code's."""
        given = backticked(row.get("default", ""))
        if not given:
            return
        if len(given) == 1:
            given = given * len(names)
        self.assertEqual(len(given), len(names), "%s: defaults %r for %r" % (where, given, names))
        for n, g in zip(names, given):
            code = defaults_of(n)
            self.assertIn(g, code, "%s: %s defaults to %s in the code, not %r"
                          % (where, n, " or ".join(map(repr, code)) or "nothing", g))

    def test_top_readme_lists_every_setting_with_its_users(self):
        rows = readme_tables("README.md", "settings")
        self.assertGreater(len(rows), 30)
        listed = set()
        for row in rows:
            names = self.names_of("README.md", row, self.every)
            cell = row["used by"]
            users = set(SERVICES) if cell == "all" else {
                s for s in SERVICES if re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(s), cell)}
            for n in names:
                self.assertEqual(users, set(self.every[n]),
                                 "README.md: %s is used by %s, not by %s"
                                 % (n, ", ".join(sorted(self.every[n])), cell))
            self.check_defaults("README.md", row, names,
                                lambda n: {d for d in self.every[n].values() if d is not None})
            listed.update(names)
        for n in sorted(set(self.every) - listed):
            self.fail("README.md's settings table lacks %s (declared by %s)"
                      % (n, ", ".join(sorted(self.every[n]))))

    def test_service_readmes_list_their_settings(self):
        common = setting_rows(code_text("libshared"))
        for svc in SERVICES:
            where = "services/%s/README.md" % svc
            rows = readme_tables(where, "settings")
            self.assertTrue(rows, "%s has no settings table" % where)
            mine = self.declared[svc]
            listed = set()
            for row in rows:
                names = self.names_of(where, row, mine)
                self.check_defaults(where, row, names,
                                    lambda n: {mine[n]} if mine[n] is not None else set())
                listed.update(names)
            # The common settings may be left to the top README.
            for n in sorted(set(mine) - listed):
                if svc == "gateway" or n not in common:
                    self.fail("%s does not list its setting %s" % (where, n))

    def test_route_tables_are_the_router_table(self):
        with open(os.path.join(ROOT, "services/gateway/routes_table.c"), encoding="utf-8") as f:
            routed = set(re.findall(r'\{GW_([A-Z]+), "([^"]+)", gw_route_\w+', f.read()))
        self.assertGreater(len(routed), 30)
        for path, heading in (("README.md", "http api"), ("services/gateway/README.md", "routes")):
            listed = set()
            for row in readme_tables(path, heading):
                if "route" not in row:
                    continue
                for method, route in re.findall(r"`([A-Z]+) (/[^`\[\s]*)", row["route"]):
                    self.assertNotIn((method, route), listed, "%s lists %s %s twice"
                                     % (path, method, route))
                    listed.add((method, route))
            for method, route in sorted(routed - listed):
                self.fail("%s's route table lacks %s %s" % (path, method, route))
            for method, route in sorted(listed - routed):
                self.fail("%s lists %s %s, which the gateway does not route" % (path, method, route))


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
        settings = set(setting_rows(code_text("services", "libshared"), aliases=False))
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
