#!/usr/bin/env python3
"""make layers: the include graph between moat's folders, checked.

Folders are layers, lowest first:

    proxy/lib     helpers every layer may use (bounds, log, parsers, text)
    rules         the rule language: its facts, parser and evaluator
    checks        one module per check, their registry and orchestration
    proxy/report  "moat report": reads logs, not part of the daemon; it may
                  use proxy/lib only, and only proxy/main.c (its dispatch)
                  may use it
    proxy         the daemon: listeners, sessions, backend relay, config

A file may include headers of its own layer and of the layers it stands
on (BELOW), never others. Every project include is written from the
repository root ("checks/spf.h"), so a crossing shows in the code. Prints
the folder graph (edge: number of include lines) and exits 1 on an include
of a layer not below, an include of a layer by a file it does not admit
(ONLY_FROM), a cycle between folders, or a project include that is not
written from the root.
"""

import os
import re
import sys

LAYERS = ["proxy/lib", "rules", "checks", "proxy/report", "proxy"]
BELOW = {
    "proxy/lib": [],
    "rules": ["proxy/lib"],
    "checks": ["rules", "proxy/lib"],
    "proxy/report": ["proxy/lib"],
    "proxy": ["checks", "rules", "proxy/lib", "proxy/report"],
}
ONLY_FROM = {"proxy/report": {"proxy/main.c"}}
RANK = {name: i for i, name in enumerate(LAYERS)}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(path):
    """The deepest layer folder that holds path (proxy/lib before proxy)."""
    best = None
    for name in LAYERS:
        if path.startswith(name + "/") and (best is None or len(name) > len(best)):
            best = name
    return best


def sources(root):
    for name in LAYERS:
        d = os.path.join(root, name)
        for f in sorted(os.listdir(d)):
            if f.endswith((".c", ".h")):
                yield name + "/" + f


def find_cycle(edges):
    """A cycle in the folder graph as a list of folders, or None."""
    state = {}

    def visit(n, stack):
        state[n] = 1
        stack.append(n)
        for m in sorted(edges.get(n, {})):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                c = visit(m, stack)
                if c:
                    return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(edges):
        if n not in state:
            c = visit(n, [])
            if c:
                return c
    return None


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    errors = []
    edges = {}
    for src in sources(root):
        here = layer_of(src)
        with open(os.path.join(root, src), encoding="utf-8") as f:
            text = f.read()
        for m in INCLUDE.finditer(text):
            inc = m.group(1)
            line = text.count("\n", 0, m.start()) + 1
            there = layer_of(inc)
            if there is None or not os.path.exists(os.path.join(root, inc)):
                errors.append("%s:%d: \"%s\" is not a header named from the repository root"
                              % (src, line, inc))
                continue
            if there != here:
                edges.setdefault(here, {}).setdefault(there, 0)
                edges[here][there] += 1
            if there != here and there not in BELOW[here]:
                errors.append("%s:%d: includes %s: %s may not reach %s (it stands on %s)"
                              % (src, line, inc, here, there, ", ".join(BELOW[here]) or "nothing"))
            elif there != here and there in ONLY_FROM and src not in ONLY_FROM[there]:
                errors.append("%s:%d: includes %s: only %s may use %s"
                              % (src, line, inc, ", ".join(sorted(ONLY_FROM[there])), there))
    print("layers (lowest first): proxy/lib < rules < checks < proxy; "
          "proxy/lib < proxy/report < proxy (main.c only)")
    for a in LAYERS:
        for b, n in sorted(edges.get(a, {}).items(), key=lambda kv: RANK[kv[0]]):
            print("  %-12s -> %-12s %3d include%s" % (a, b, n, "" if n == 1 else "s"))
    cycle = find_cycle(edges)
    if cycle:
        errors.append("cycle between folders: " + " -> ".join(cycle))
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print("layers: %d error%s" % (len(errors), "" if len(errors) == 1 else "s"), file=sys.stderr)
        return 1
    print("layers: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
