"""The product code is layered: no file of libshared or of a service calls
a function of another file that calls it back, directly or round a longer
loop, and no header includes one that includes it back.

Calls are read from the object files of the build tree with nm: file A
depends on file B when A uses a symbol B defines (a function called, or its
address taken for a table). Includes are read from the sources."""
import os
import re
import subprocess
import sys
import unittest

from stack import build_dir

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PARTS = ("libshared", "services")


def components(graph):
    """The strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def objects():
    """{object path: source path relative to the root} for product code."""
    found = {}
    for part in PARTS:
        top = os.path.join(build_dir(), part)
        for root, _, files in os.walk(top):
            if "/CMakeFiles/" not in root + "/":
                continue
            rel = os.path.relpath(root.split("/CMakeFiles/")[0], build_dir())
            for f in files:
                if f.endswith(".c.o"):
                    src = os.path.join(rel, f[:-2])
                    if os.path.exists(os.path.join(ROOT, src)):
                        found[os.path.join(root, f)] = src
    return found


def unit_of(src):
    """libshared, or services/<name>: calls are compared within one unit."""
    p = src.split("/")
    return p[0] if p[0] == "libshared" else "/".join(p[:2])


class Layout(unittest.TestCase):
    def test_no_file_calls_back_into_a_caller(self):
        objs = objects()
        self.assertGreater(len(objs), 40, "no object files found under %s" % build_dir())
        defined, used = {}, {}
        for obj, src in objs.items():
            out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
            for line in out.splitlines():
                f = line.split()
                if len(f) == 3 and f[1] in "TDBR":
                    defined.setdefault(f[2], set()).add(src)
                elif len(f) == 2 and f[0] == "U":
                    used.setdefault(src, set()).add(f[1])
        graph, why = {src: set() for src in objs.values()}, {}
        for a, syms in used.items():
            for s in syms:
                for b in defined.get(s, ()):
                    if b != a and unit_of(a) == unit_of(b):
                        graph[a].add(b)
                        why.setdefault((a, b), set()).add(s)
        loops = components(graph)
        lines = []
        for comp in loops:
            lines.append("a loop: " + ", ".join(comp))
            for a in comp:
                for b in comp:
                    if (a, b) in why:
                        lines.append("  %s uses %s: %s" % (a, b, ", ".join(sorted(why[(a, b)])[:4])))
        self.assertEqual(loops, [], "\n".join(lines))

    def test_no_header_includes_itself_back(self):
        graph, byname = {}, {}
        for part in PARTS:
            for root, _, files in os.walk(os.path.join(ROOT, part)):
                for f in files:
                    if f.endswith(".h"):
                        p = os.path.relpath(os.path.join(root, f), ROOT)
                        byname.setdefault((os.path.dirname(p), f), p)
                        m = re.search(r"/include/(shared/[^/]+)$", p)
                        if m:
                            byname.setdefault(("", m.group(1)), p)
        for (d, _), p in byname.items():
            if not d:
                continue
            with open(os.path.join(ROOT, p), errors="replace") as fh:
                names = re.findall(r'^#include\s+"([^"]+)"', fh.read(), re.M)
            graph[p] = {byname.get((d, n)) or byname.get(("", n)) for n in names} - {None}
        self.assertGreater(len(graph), 30)
        self.assertEqual(components(graph), [])


if __name__ == "__main__":
    unittest.main()
