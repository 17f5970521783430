#!/usr/bin/env python3
"""Import circles among a crate's modules.

Reads every `.rs` file under a crate's `src/`, maps each file to its module
path (`src/backend/cpu/mod.rs` -> `backend::cpu`), collects the modules each
one names through `crate::…`, `super::…` or `self::…` paths (in `use` items
and in expressions), and prints the strongly connected components of more
than one module: each is a set of files that import each other in a circle.
A parent module that only declares its children (`mod x;`) does not count as
importing them; naming a child's items does. A path through a re-export
(`pub use error::Error;` in lib.rs) counts as naming the module that defines
the item, so a facade crate root does not put every module in one circle.

Usage: scripts/module_cycles.py CRATE_DIR [CRATE_DIR ...]
Prints, per crate: files, lines, the largest files, and the circles.
Exit status 0 always: this measures, it does not judge.
"""

import os
import re
import sys

PATH_RE = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP_RE = re.compile(r"\buse\s+(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\};", re.S)


def module_of(src, path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


def strip_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def resolve(current, is_mod_file, root, segments, modules):
    """The longest known module that a path names."""
    if root == "crate":
        base = ()
    elif root == "self":
        base = current
    else:  # super: the parent of this module
        base = current[:-1]
    path = base + tuple(segments)
    for end in range(len(path), 0, -1):
        if path[:end] in modules:
            return path[:end]
    return () if () in modules else None


def test_module_spans(text):
    """Byte ranges of `#[cfg(test)] mod … { … }` blocks (unit tests import their parent)."""
    spans = []
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{", text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        spans.append((m.start(), i))
    return spans


REEXPORT_RE = re.compile(
    r"\bpub(?:\([^)]*\))?\s+use\s+(crate|super|self)?((?:(?:^|::)?[A-Za-z_][A-Za-z0-9_]*)*?)::(\{[^;]*\}|[A-Za-z_][A-Za-z0-9_]*(?:\s+as\s+[A-Za-z_][A-Za-z0-9_]*)?);"
)


def reexports(text):
    """name -> (root, segments) for `pub use path::{name, …};` items."""
    out = {}
    for m in REEXPORT_RE.finditer(text):
        root = m.group(1) or "self"
        prefix = [s for s in m.group(2).split("::") if s]
        items = m.group(3).strip("{}")
        for item in items.split(","):
            item = item.strip()
            if not item or "::" in item or item in ("self", "*"):
                continue
            parts = item.split()
            original, alias = parts[0], parts[-1]
            out[alias] = (root, prefix + [original])
    return out


def graph(crate):
    src = os.path.join(crate, "src")
    files = {}
    for dirpath, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(dirpath, name)
                files[module_of(src, path)] = path
    modules = set(files)
    edges = {m: set() for m in modules}
    texts = {m: strip_comments(open(p, encoding="utf-8").read()) for m, p in files.items()}
    exported = {m: reexports(t) for m, t in texts.items()}

    def through_reexports(target, segments, root, current, depth=0):
        """Follows `module::Item` to where a re-exported Item is defined."""
        base = () if root == "crate" else (current if root == "self" else current[:-1])
        full = base + tuple(segments)
        rest = full[len(target):]
        if depth < 8 and rest and rest[0] in exported.get(target, {}):
            r_root, r_segments = exported[target][rest[0]]
            found = resolve(target, False, r_root, r_segments, modules)
            if found is not None and found != target:
                return through_reexports(found, r_segments, r_root, target, depth + 1)
        return target

    for module, path in files.items():
        text = texts[module]
        for start, end in reversed(test_module_spans(text)):
            text = text[:start] + text[end:]
        is_mod_file = os.path.basename(path) in ("mod.rs", "lib.rs", "main.rs")
        current = module
        targets = []
        for m in USE_GROUP_RE.finditer(text):
            prefix = [s for s in m.group(2).split("::") if s]
            for item in re.split(r"[,{}\s]+", m.group(3)):
                head = item.split("::")[0]
                if head and head not in ("self", "*"):
                    targets.append((m.group(1), prefix + [head]))
        for m in PATH_RE.finditer(text):
            targets.append((m.group(1), [s for s in m.group(2).split("::") if s]))
        # Paths that start at a child module this file declares (`mod x;`, then
        # `x::run(...)` or `use x::Y;`).
        for child in re.findall(r"\bmod\s+([A-Za-z_][A-Za-z0-9_]*)\s*;", text):
            for m in re.finditer(r"(?<![:\w])" + child + r"((?:::[A-Za-z_][A-Za-z0-9_]*)+)", text):
                targets.append(("self", [child] + [x for x in m.group(1).split("::") if x]))
            for m in re.finditer(r"\buse\s+" + child + r"::\{([^;]*)\};", text):
                for item in re.split(r"[,{}\s]+", m.group(1)):
                    head = item.split("::")[0]
                    if head and head not in ("self", "*"):
                        targets.append(("self", [child, head]))
        for root, segments in targets:
            target = resolve(current, is_mod_file, root, segments, modules)
            if target is not None:
                target = through_reexports(target, segments, root, current)
            if target is not None and target != module:
                edges[module].add(target)
    # A parent naming `child::item` is the parent using its child: keep it.
    return files, edges


def cycles(edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
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
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def name(module):
    return "::".join(module) or "(crate root)"


def main():
    for crate in sys.argv[1:]:
        files, edges = graph(crate)
        sizes = sorted(
            ((sum(1 for _ in open(p, encoding="utf-8")), os.path.relpath(p, crate)) for p in files.values()),
            reverse=True,
        )
        print(f"## {crate}: {len(files)} files, {sum(s for s, _ in sizes)} lines")
        print("largest: " + ", ".join(f"{p} {s}" for s, p in sizes[:5]))
        found = cycles(edges)
        if not found:
            print("import circles: none")
        for comp in found:
            print(f"import circle of {len(comp)}: " + ", ".join(name(m) for m in comp))
        print()


if __name__ == "__main__":
    main()
