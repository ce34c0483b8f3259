#!/usr/bin/env python3
"""Fails when two modules of one crate or package import each other (an import circle).

Rust: a file's imports are its `use crate::...` / `use super::...` paths (and `crate::x::`
paths in expressions); `crate::Item` for an item that lib.rs re-exports counts as an import of
lib.rs, and lib.rs's own `pub use m::...` as its import of m. `mod` declarations are not
imports. Python: `from .m import` / `from . import m` in a package. JavaScript: `require('./m')`
and `import ... from './m'`. Run from the repository root; exits 1 listing each circle.
"""
import os
import re
import sys

ROOTS_RUST = ["core/src", "ffi/src", "cli/src", "devagent/src", "bindings/python/src",
              "bindings/node/src", "bench/src"]
ROOTS_PY = ["bindings/python/python/kepmlog"]
ROOTS_JS = ["bindings/node"]


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def rust_modules(root):
    """Maps a module path ('', 'worker', 'lint::cron') to its file."""
    mods = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, root)[:-3].replace(os.sep, "::")
            if rel in ("lib", "main"):
                rel = ""
            elif rel.endswith("::mod"):
                rel = rel[: -len("::mod")]
            elif rel.startswith("bin::"):
                continue
            mods[rel] = path
    return mods


def use_paths(text):
    """Every `use` tree flattened into paths, plus `crate::a::b` mentions outside `use`."""
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        paths.extend(expand(m.group(1).replace("\n", " ").replace(" ", "")))
    body = re.sub(r"\buse\s+[^;]+;", "", text)
    paths.extend(m.group(0) for m in re.finditer(r"\b(?:crate|super)(?:::\w+)+", body))
    return paths


def expand(tree):
    m = re.match(r"^(.*?)::\{(.*)\}$", tree)
    if not m:
        return [re.sub(r"\s+as\s+\w+$", "", tree)]
    prefix, inner = m.group(1), m.group(2)
    parts, depth, cur = [], 0, ""
    for c in inner:
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += c == "{"
        depth -= c == "}"
        cur += c
    if cur:
        parts.append(cur)
    out = []
    for p in parts:
        out.extend(expand(prefix + "::" + p) if p not in ("self",) else [prefix])
    return out


def resolve(path, here, mods, reexports):
    segs = path.split("::")
    if segs[0] == "crate":
        base = []
        segs = segs[1:]
    elif segs[0] == "super":
        base = here.split("::")[:-1] if here else []
        segs = segs[1:]
        while segs and segs[0] == "super":
            base = base[:-1]
            segs = segs[1:]
    else:
        return None
    # The longest module prefix of the path is what is imported.
    best = "::".join(base)
    for i in range(1, len(segs) + 1):
        cand = "::".join(base + segs[:i])
        if cand in mods:
            best = cand
    if best == "" and segs and segs[0] in reexports:
        return ""
    return best


def rust_edges(root):
    mods = rust_modules(root)
    lib = mods.get("")
    reexports = set()
    if lib:
        text = strip_comments(open(lib, encoding="utf-8").read())
        for m in re.finditer(r"\bpub\s+use\s+([^;]+);", text):
            for p in expand(m.group(1).replace("\n", " ").replace(" ", "")):
                name = p.split("::")[-1]
                reexports.add(name)
    edges = set()
    for mod, path in mods.items():
        text = strip_comments(open(path, encoding="utf-8").read())
        # A file's own `mod tests { use super::*; }` is inside the file: not an edge.
        text = re.sub(r"mod\s+tests\s*\{.*", "", text, flags=re.S) if mod != "" else text
        for p in use_paths(text):
            if mod == "" and not p.startswith(("crate", "super")):
                continue
            target = resolve(p, mod, mods, reexports)
            if target is not None and target != mod:
                edges.add((mod, target))
        if mod == "":
            for m in re.finditer(r"\bpub\s+use\s+(\w+)::", text):
                if m.group(1) in mods:
                    edges.add(("", m.group(1)))
    return edges


def py_edges(root):
    edges = set()
    for f in os.listdir(root):
        if not f.endswith(".py"):
            continue
        mod = f[:-3]
        text = open(os.path.join(root, f), encoding="utf-8").read()
        for m in re.finditer(r"^\s*from\s+\.(\w*)\s+import\s+([\w, ()\n]+)", text, flags=re.M):
            if m.group(1):
                edges.add((mod, m.group(1)))
            else:
                for name in re.findall(r"\w+", m.group(2)):
                    edges.add((mod, name))
    return {(a, b) for a, b in edges if a != b}


def js_edges(root):
    edges = set()
    for f in os.listdir(root):
        if not f.endswith((".js", ".mjs", ".cjs")):
            continue
        text = open(os.path.join(root, f), encoding="utf-8").read()
        for m in re.finditer(r"""(?:require\(|from\s+)['"]\./([\w.-]+)['"]""", text):
            target = re.sub(r"\.(m|c)?js$", "", m.group(1))
            edges.add((re.sub(r"\.(m|c)?js$", "", f), target))
    return {(a, b) for a, b in edges if a != b}


def main():
    circles = []
    checked = 0
    for kind, roots, fn in (("rust", ROOTS_RUST, rust_edges), ("python", ROOTS_PY, py_edges),
                            ("js", ROOTS_JS, js_edges)):
        for root in roots:
            if not os.path.isdir(root):
                continue
            checked += 1
            edges = fn(root)
            for a, b in sorted(edges):
                if (b, a) in edges and a < b:
                    circles.append(f"{root}: {a or 'lib.rs'} <-> {b or 'lib.rs'}")
    if circles:
        print("import circles (two modules importing each other):")
        for c in circles:
            print("  " + c)
        sys.exit(1)
    print(f"imports: no circles in {checked} crates and packages")


if __name__ == "__main__":
    main()
