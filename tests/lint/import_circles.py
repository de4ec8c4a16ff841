#!/usr/bin/env python3
"""Fails when modules of a crate import each other in a circle.

Data in Shoal flows one way (HTTP -> auth -> route -> admission -> blob log
-> raft -> response), and the module graph should show it: a circle means
two modules cannot be understood, tested or changed apart. This check reads
every crate's `src/`, finds which modules each file names (`crate::x`,
`super::x`, `self::x` and the crate's own `shoal_*` name), and reports every
strongly connected group of two or more modules.

It checks two levels:
- the crate's top-level modules (`src/a.rs` or `src/a/`), and
- the sibling modules inside each module directory (`src/a/b.rs` against
  `src/a/c.rs`); a directory's `mod.rs` declares its children and may name
  them, so it is a node of its own that siblings may import but that
  importing a child back from is no circle by itself.

Usage: tests/lint/import_circles.py [crate-dir ...] (default: every
workspace crate). Exit status 1 when a circle exists.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CRATES = {".": "shoal", "shard": "shoal_shard", "proto": "shoal_proto",
          "bench": "shoal_bench", "tools": "shoal_tools"}

COMMENT = re.compile(r"//[^\n]*")
ROOTS = re.compile(r"\b(crate|super|self|shoal_[a-z_]+)(?=::)")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def module_path(src: Path, file: Path) -> list:
    """`src/a/b.rs` -> ['a', 'b']; `src/a/mod.rs` -> ['a']; lib/main -> []."""
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts and parts[-1] == "mod":
        parts.pop()
    if parts in (["lib"], ["main"]):
        return []
    return parts


def use_tree(text: str, at: int, prefix: list, out: list) -> int:
    """Reads `::a::b`, `::{a, b::{c, d}}` from `at`; appends every full
    path (prefix + segments) to `out`; returns where it stopped."""
    path = list(prefix)
    while text.startswith("::", at):
        at += 2
        while at < len(text) and text[at].isspace():
            at += 1
        if at < len(text) and text[at] == "{":
            at += 1
            while True:
                while at < len(text) and text[at] in " \t\n,":
                    at += 1
                if at >= len(text) or text[at] == "}":
                    return at + 1
                m = IDENT.match(text, at)
                if not m:
                    at += 1
                    continue
                at = use_tree(text, m.end(), path + [m.group(0)], out)
        m = IDENT.match(text, at)
        if not m:
            break
        path.append(m.group(0))
        at = m.end()
    out.append(path)
    return at


def references(src: Path, crate_name: str):
    """Yields (importer module path, named path) pairs."""
    for file in sorted(src.rglob("*.rs")):
        me = module_path(src, file)
        text = COMMENT.sub("", file.read_text())
        for m in ROOTS.finditer(text):
            root = m.group(1)
            paths = []
            use_tree(text, m.end(), [], paths)
            for path in paths:
                if root in ("crate", crate_name):
                    base = []
                elif root == "super":
                    base = me[:-1]
                elif root == "self":
                    base = list(me)
                else:
                    continue  # another crate
                while path and path[0] == "super":
                    base, path = base[:-1], path[1:]
                if path and path[0] == "self":
                    path = path[1:]
                yield me, base + path


def strongly_connected(graph: dict) -> list:
    """Tarjan's algorithm; returns the components with two or more nodes."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def circles(crate_dir: Path, crate_name: str) -> list:
    src = crate_dir / "src"
    modules = {tuple(module_path(src, f)) for f in src.rglob("*.rs")}
    # level -> graph: () is the crate's top level, ('raft',) the siblings
    # inside raft/, and so on.
    graphs = {}
    for importer, target in references(src, crate_name):
        # Find the longest existing module the target names.
        while target and tuple(target) not in modules:
            target = target[:-1]
        if not target or not importer:
            continue
        # The deepest level both share, and the child of it on each side.
        common = 0
        while (common < len(importer) and common < len(target)
               and importer[common] == target[common]):
            common += 1
        if common == len(importer) or common == len(target):
            continue  # a module and its own parent or child
        level = tuple(importer[:common])
        a, b = importer[common], target[common]
        graphs.setdefault(level, {}).setdefault(a, set()).add(b)
    found = []
    for level, graph in sorted(graphs.items()):
        for component in strongly_connected(graph):
            found.append(("::".join(level) or "(crate)", component, graph))
    return found


def main(argv: list) -> int:
    dirs = argv or list(CRATES)
    failed = False
    for d in dirs:
        crate_dir = (ROOT / d).resolve()
        name = CRATES.get(d, crate_dir.name.replace("-", "_"))
        for level, component, graph in circles(crate_dir, name):
            failed = True
            edges = [f"{a} -> {b}" for a in component for b in sorted(graph[a])
                     if b in component]
            print(f"{d}: import circle in {level}: {', '.join(component)}")
            for e in edges:
                print(f"    {e}")
    if not failed:
        print("no import circles")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
