"""The layering of `mirror_core` is acyclic: no module imports, directly or through others, itself.

The graph is read statically with `ast` (no module is imported, so torch and friends never load):
every `import` / `from ... import` naming a `mirror_core` module is an edge, **wherever it sits** — at
module level or inside a function. A function-level ("lazy") import is still a dependency: it only
delays the cycle to the first call, where it shows as a half-initialised module or an ImportError, and
it hides the real question (which module owns the shared piece). Lazy imports stay fine for what they
are for — keeping torch, transformers or streamlit out of a light import — and those are not
`mirror_core` modules, so they are not edges here. Imports under `if TYPE_CHECKING:` never run and are
skipped.

A module that calls `importlib.import_module` also has an edge to every package module it names in a
string ("pkg.mod" or "pkg.mod:function"): `cli` imports its command modules that way, and that import
is as real as a written one. The one exception is NAME_TABLE_SEAMS below.

`from pkg import name` is an edge to `pkg.name` when that is a module, else to `pkg` (its `__init__`).
Importing `a.b.c` also runs `a/__init__` and `a/b/__init__`; those implicit edges are left out to keep
the report to the lines someone wrote (adding them, on the tree of this commit, finds no further cycle).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "mirror_core"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

# The job runner names each kind's entry point ("mirror_core.generation.job:run") and imports it in the
# worker process. The runner is the bottom layer every stage submits to; that name table is how it calls
# up into them without depending on them, so its by-name edges are not layering edges. Its written
# imports still count.
NAME_TABLE_SEAMS = {"mirror_core.jobs"}

# Edges that close a cycle through files other work is rewriting right now, each with its way out. They
# are taken out of the graph before the check; test_pending_edges_still_exist fails once one is gone, so
# the list can only shrink. Add nothing here: break a new cycle instead.
PENDING: dict[tuple[str, str], str] = {
}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    function: str | None  # enclosing function of a lazy import; None at module level

    def describe(self) -> str:
        if self.function == "by name":
            where = "named for importlib.import_module"
        else:
            where = f"in {self.function}()" if self.function else "module level"
        return f"{self.source} -> {self.target}  ({self.source.replace('.', '/')}.py:{self.line}, {where})"


def module_names(root: Path) -> dict[str, Path]:
    """Dotted name of every module under the package folder (packages named by their folder)."""
    out: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """(node, enclosing function name or None) for every import that can run."""
    def visit(node: ast.AST, function: str | None):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for sub in child.orelse:
                    yield from visit(sub, function)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, function
            inner = function
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = f"{function}.{child.name}" if function else child.name
            yield from visit(child, inner)
    yield from visit(tree, None)


def import_graph(root: Path = ROOT) -> dict[str, list[Edge]]:
    """Module -> the edges to the package's modules it imports."""
    modules = module_names(root)
    graph: dict[str, list[Edge]] = {name: [] for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, function in _imports(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    # Relative: level 1 is this module's package (the module itself for an __init__).
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for target in targets:
                if target in modules and target != name:
                    graph[name].append(Edge(name, target, node.lineno, function))
        if name not in NAME_TABLE_SEAMS and _calls_import_module(tree):
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    target = node.value.split(":", 1)[0]  # "pkg.mod" or the "pkg.mod:function" form
                    if target in modules and target != name:
                        graph[name].append(Edge(name, target, node.lineno, "by name"))
    return graph


def _calls_import_module(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            fn = node.func
            called = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", None)
            if called in ("import_module", "__import__"):
                return True
    return False


def strongly_connected(graph: dict[str, list[Edge]]) -> list[list[str]]:
    """Tarjan's components with more than one module, each sorted, in a stable order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def connect(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for edge in graph[v]:
            w = edge.target
            if w not in index:
                connect(w)
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return sorted(found)


def one_cycle(graph: dict[str, list[Edge]], component: list[str]) -> list[Edge]:
    """A shortest cycle through the component's first module, as the import lines that make it."""
    members = set(component)
    start = component[0]
    came_from: dict[str, Edge] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for edge in graph[v]:
                if edge.target not in members:
                    continue
                if edge.target == start:
                    path = [edge]
                    while path[0].source != start:
                        path.insert(0, came_from[path[0].source])
                    return path
                if edge.target not in came_from:
                    came_from[edge.target] = edge
                    nxt.append(edge.target)
        frontier = nxt
    raise AssertionError(f"{component} is not strongly connected")  # cannot happen for a Tarjan component


def cycle_report(graph: dict[str, list[Edge]]) -> str:
    lines = []
    for component in strongly_connected(graph):
        lines.append(f"cycle among {', '.join(component)}:")
        lines.extend(f"    {edge.describe()}" for edge in one_cycle(graph, component))
    return "\n".join(lines)


def without_pending(graph: dict[str, list[Edge]]) -> dict[str, list[Edge]]:
    return {m: [e for e in edges if (e.source, e.target) not in PENDING] for m, edges in graph.items()}


def test_mirror_core_has_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 50, "the walk found too few modules: is ROOT right?"
    report = cycle_report(without_pending(graph))
    assert not report, (
        "import cycles in mirror_core; move the piece both sides need into the module that owns it "
        "(a lazy import inside a function does not break a cycle):\n" + report)


def test_pending_edges_still_exist():
    graph = import_graph()
    present = {(e.source, e.target) for edges in graph.values() for e in edges}
    gone = [f"{a} -> {b}" for a, b in PENDING if (a, b) not in present]
    assert not gone, f"these imports are gone: delete them from PENDING in {Path(__file__).name}: {gone}"


# --- the checker itself, on a throw-away package -------------------------------------------------

def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / PACKAGE


def test_checker_finds_a_cycle_made_by_a_lazy_import(tmp_path):
    pkg = _write(tmp_path, {
        "mirror_core/__init__.py": "",
        "mirror_core/a.py": "from mirror_core import b\n",
        "mirror_core/b.py": "def f():\n    from mirror_core.a import thing\n",
        "mirror_core/c.py": "import mirror_core.a\n",
    })
    graph = import_graph(pkg)
    assert strongly_connected(graph) == [["mirror_core.a", "mirror_core.b"]]
    assert cycle_report(graph) == (
        "cycle among mirror_core.a, mirror_core.b:\n"
        "    mirror_core.a -> mirror_core.b  (mirror_core/a.py:1, module level)\n"
        "    mirror_core.b -> mirror_core.a  (mirror_core/b.py:2, in f())")


def test_checker_resolves_relative_imports_and_skips_type_checking(tmp_path):
    pkg = _write(tmp_path, {
        "mirror_core/__init__.py": "",
        "mirror_core/sub/__init__.py": "from . import leaf\n",
        "mirror_core/sub/leaf.py": "from ..top import x\n",
        "mirror_core/top.py": ("from typing import TYPE_CHECKING\n"
                               "if TYPE_CHECKING:\n    from mirror_core.sub import leaf\n"),
    })
    graph = import_graph(pkg)
    assert [e.target for e in graph["mirror_core.sub"]] == ["mirror_core.sub.leaf"]
    assert [e.target for e in graph["mirror_core.sub.leaf"]] == ["mirror_core.top"]
    assert graph["mirror_core.top"] == []
    assert strongly_connected(graph) == []


@pytest.mark.parametrize("chain", [["a", "b", "c"], ["a", "b"]])
def test_checker_reports_the_whole_ring(tmp_path, chain):
    files = {"mirror_core/__init__.py": ""}
    for here, there in zip(chain, chain[1:] + chain[:1]):
        files[f"mirror_core/{here}.py"] = f"import mirror_core.{there}\n"
    graph = import_graph(_write(tmp_path, files))
    ring = one_cycle(graph, strongly_connected(graph)[0])
    assert [e.source for e in ring] == [f"mirror_core.{m}" for m in chain]


def test_checker_counts_modules_named_for_import_module_except_the_job_runners_table(tmp_path):
    pkg = _write(tmp_path, {
        "mirror_core/__init__.py": "",
        "mirror_core/cli.py": ("import importlib\nMODS = ['mirror_core.cmd']\n"
                               "def build():\n    return [importlib.import_module(m) for m in MODS]\n"),
        "mirror_core/cmd.py": "from mirror_core import cli\n",
        "mirror_core/jobs.py": ("import importlib\nHANDLERS = {'x': 'mirror_core.stage:run'}\n"
                                "def resolve(k):\n    return importlib.import_module(HANDLERS[k].split(':')[0])\n"),
        "mirror_core/stage.py": "from mirror_core import jobs\n",
        "mirror_core/named.py": "WHERE = 'mirror_core.cmd'  # a string, but nothing here imports by name\n",
    })
    graph = import_graph(pkg)
    assert [(e.target, e.function) for e in graph["mirror_core.cli"]] == [("mirror_core.cmd", "by name")]
    assert graph["mirror_core.jobs"] == [] and graph["mirror_core.named"] == []
    assert strongly_connected(graph) == [["mirror_core.cli", "mirror_core.cmd"]]
