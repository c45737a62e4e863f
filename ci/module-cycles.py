#!/usr/bin/env python3
"""Fails when a module of a workspace crate imports, directly or through others, a module
that imports it (issue: no import cycles between modules).

A module is a source file (`src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `lib.rs` and
`main.rs` are the crate root). Module A depends on module B when A names an item of B by
path: `use crate::b::Item`, `crate::b::f()`, `super::Item`, `self::b::Item`, a sibling
`b::Item` after `use super::b`... resolved to the longest known module prefix. A parent's
`mod b;` is structure, not a dependency, and so is a module naming the items of a module
that contains it (`super::X` in a child, `crate::X` anywhere): a submodule lives inside its
parent's namespace, and a `mod.rs` that keeps the types its children share and re-exports
them is one unit. Every other edge counts: between siblings, cousins, and from a parent
down to a child (`b::X`, `pub use b::X`).

    ci/module-cycles.py [CRATE_DIR ...]     # default: every member of the workspace

Prints each cycle (files, and the lines that make each edge) and exits 1 if any.
"""
import os
import re
import sys
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PATH_RE = re.compile(r"\b((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_RE = re.compile(r"\buse\s+([^;]+);", re.S)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    out = []
    for line in text.splitlines():
        # Not inside string literals' `//` (good enough for this code base: paths are
        # never written inside strings next to `//`).
        i = line.find("//")
        out.append(line if i < 0 else line[:i])
    return "\n".join(out)


def strip_tests(text):
    """Drops `#[cfg(test)] mod tests { ... }` blocks: tests may use anything."""
    out = []
    i = 0
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{", text[i:])
        if not m:
            out.append(text[i:])
            break
        start = i + m.start()
        out.append(text[i:start])
        depth = 0
        j = i + m.end() - 1
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        i = j + 1
    return "".join(out)


def modules(src):
    """{module path tuple: file} for a crate's src dir."""
    mods = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            full = os.path.join(dirpath, f)
            rel = os.path.relpath(full, src)[:-3].split(os.sep)
            if rel[-1] == "mod":
                rel = rel[:-1]
            if rel in (["lib"], ["main"]):
                rel = []
            if rel and rel[0] == "bin":
                continue  # binaries are crates of their own
            mods[tuple(rel)] = full
    return mods


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    tree = re.sub(r"\s+", "", tree)
    m = re.match(r"^(.*?)\{(.*)\}$", tree)
    if not m:
        return [re.sub(r"as\w+$", "", tree)]
    prefix, inner = m.group(1), m.group(2)
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        if p:
            out.extend(expand_use(prefix + p) if p != "self" else [prefix.rstrip(":")])
    return out


def resolve(me, path, mods):
    """The module a path names an item of, or None (outside the crate / the module itself)."""
    segs = path.split("::")
    if segs[0] == "crate":
        base, segs = [], segs[1:]
    elif segs[0] in ("super", "self"):
        base = list(me)
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                if not base:
                    return None
                base.pop()
            segs = segs[1:]
    else:
        # A child module named without prefix (2018 paths): `child::X` from its parent.
        if tuple(list(me) + segs[:1]) in mods:
            base = list(me)
        else:
            return None
    best = tuple(base)
    cur = list(base)
    for s in segs:
        cur.append(s)
        if tuple(cur) in mods:
            best = tuple(cur)
        else:
            break
    if best == tuple(me) or tuple(me[: len(best)]) == best:
        return None  # ourselves, or a module that contains us
    return best


def edges_of(mods):
    edges = {}
    for me, file in mods.items():
        text = strip_tests(strip_comments(open(file, encoding="utf-8").read()))
        found = {}
        paths = list(PATH_RE.findall(text))
        for u in USE_RE.findall(text):
            for p in expand_use(u):
                paths.append(p)
        for p in paths:
            target = resolve(me, p, mods)
            if target is not None and target in mods:
                found.setdefault(target, p)
        edges[me] = found
    return edges


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
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
    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def members():
    cargo = tomllib.load(open(os.path.join(ROOT, "Cargo.toml"), "rb"))
    return [os.path.join(ROOT, m) for m in cargo["workspace"]["members"]]


def main(argv):
    crates = argv or members()
    bad = 0
    for crate in crates:
        src = os.path.join(crate, "src")
        if not os.path.isdir(src):
            continue
        mods = modules(src)
        edges = edges_of(mods)
        for comp in cycles(edges):
            bad += 1
            name = lambda m: os.path.relpath(mods[m], ROOT)
            print(f"import cycle in {os.path.relpath(crate, ROOT)}:")
            for a in comp:
                for b, why in sorted(edges[a].items()):
                    if b in comp:
                        print(f"  {name(a)} -> {name(b)}  ({why})")
    if bad:
        print(f"{bad} import cycle(s); break each by moving the shared piece into a module of its own")
        return 1
    print(f"module-cycles: no import cycle in {len(crates)} crates")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
