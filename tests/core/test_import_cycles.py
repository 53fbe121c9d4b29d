"""No import circles inside ``src/microbat``.

The modules of the package and their imports are read from the source (AST, no
import), every import counted wherever it stands (module level or inside a function)
except in ``if TYPE_CHECKING:`` blocks. Edges to a module's own enclosing packages
are left out (a package is always initialised before its submodules), as are edges
to the package root, which get their own test: nothing the root imports when it
loads may import the root back (``from microbat import __version__`` in
``core.results`` was such a circle).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import microbat

PACKAGE = "microbat"
PACKAGE_DIR = Path(microbat.__file__).resolve().parent


def _modules(pkg_dir: Path, pkg: str) -> dict[str, Path]:
    mods = {}
    for f in sorted(pkg_dir.rglob("*.py")):
        parts = [pkg, *f.relative_to(pkg_dir).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = f
    return mods


def _resolve(name: str, mods: dict[str, Path]) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Import statements outside ``if TYPE_CHECKING:`` bodies."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for b in node.body for n in ast.walk(b))
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in skip
    ]


def _targets(
    node: ast.Import | ast.ImportFrom, module: str, is_pkg: bool
) -> tuple[list[str], list[str]]:
    """Dotted names an import statement loads, and the names it takes from them."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names], []
    base = node.module or ""
    if node.level:
        parts = module.split(".") if is_pkg else module.split(".")[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join(parts + ([base] if base else []))
    names = [a.name for a in node.names]
    return [f"{base}.{n}" for n in names] + [base], [base, *names]


def import_graph(pkg_dir: Path, pkg: str) -> dict[str, set[str]]:
    """Module -> modules of the package it imports (see the module docstring)."""
    mods = _modules(pkg_dir, pkg)
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        is_pkg = f.name == "__init__.py"
        for node in _runtime_imports(ast.parse(f.read_text(encoding="utf-8"))):
            for t in _targets(node, m, is_pkg)[0]:
                r = _resolve(t, mods)
                if r and r != m and r != pkg and not m.startswith(r + "."):
                    edges[m].add(r)
    return edges


def root_imports(pkg_dir: Path, pkg: str) -> dict[str, list[str]]:
    """Module -> the imports in it that take something from the package root itself.

    ``import microbat`` and ``from microbat import name`` where ``name`` is not a
    submodule (``__version__``, ``Microstructure``, ...): these need the root's
    namespace, which is not complete while the root is still loading.
    """
    mods = _modules(pkg_dir, pkg)
    out: dict[str, list[str]] = {}
    for m, f in mods.items():
        if m == pkg:
            continue
        is_pkg = f.name == "__init__.py"
        for node in _runtime_imports(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                hits = [a.name for a in node.names if a.name == pkg]
            else:
                base, *names = _targets(node, m, is_pkg)[1]
                hits = [f"{pkg}.{n}" for n in names if base == pkg and f"{pkg}.{n}" not in mods]
            if hits:
                out.setdefault(m, []).extend(hits)
    return out


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected sets of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
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

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(edges) + 100))
    try:
        for v in sorted(edges):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(out)


def _reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for w in edges[todo.pop()]:
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def test_no_import_cycles_in_microbat():
    found = cycles(import_graph(PACKAGE_DIR, PACKAGE))
    assert not found, "import cycles in src/microbat:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_core_results_does_not_import_the_package_root():
    assert "microbat.core.results" not in root_imports(PACKAGE_DIR, PACKAGE)


def test_nothing_the_root_loads_imports_the_root():
    edges = import_graph(PACKAGE_DIR, PACKAGE)
    back = root_imports(PACKAGE_DIR, PACKAGE)
    loaded = _reachable(edges, PACKAGE)
    assert "microbat.core.errors" in loaded  # the root loads microbat.core's errors
    # and, on first access, the core modules of its lazy re-exports (Microstructure)
    for mod in ("microbat.core.microstructure", "microbat.core.phases", "microbat.core.results"):
        loaded |= _reachable(edges, mod)
    bad = {m: back[m] for m in sorted(loaded & set(back))}
    assert not bad, f"modules loaded by `import microbat` import the root back: {bad}"


def test_the_checker_finds_a_circle(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from pkg import a\n")
    (pkg / "a.py").write_text("def f():\n    from pkg.sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from .. import c\n"
        "if TYPE_CHECKING:\n    from pkg import d\n"
    )
    (pkg / "c.py").write_text("import pkg.a\nfrom pkg import __version__\n")
    (pkg / "d.py").write_text("from pkg.sub.b import x\n")
    edges = import_graph(pkg, "pkg")
    assert edges["pkg.sub.b"] == {"pkg.c"}  # the TYPE_CHECKING import is not counted
    assert cycles(edges) == [["pkg.a", "pkg.c", "pkg.sub.b"]]
    assert root_imports(pkg, "pkg") == {"pkg.c": ["pkg.__version__"]}
