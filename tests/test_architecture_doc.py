"""docs/ARCHITECTURE.md's layout tree names every module as it is: a module added without its line, or a line
left behind by a module that moved, fails here — so the tree stays true."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tree_paths() -> set[str]:
    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    tree = doc.split("## Layout", 1)[1].split("```", 2)[1]
    paths, stack = set(), []
    for line in tree.splitlines():
        m = re.match(r"^( *)(\S+)", line)
        if not m:
            continue
        depth, name = len(m.group(1)) // 2, m.group(2)
        stack[depth:] = [name]
        paths.add("".join(stack))
    return paths


def _holds_code(path: Path) -> bool:
    body = ast.parse(path.read_text()).body
    def marker(n) -> bool:  # a docstring, an import or `__version__ = ...`/`__all__ = [...]`
        return isinstance(n, (ast.Expr, ast.Import, ast.ImportFrom)) or (
            isinstance(n, ast.Assign) and all(isinstance(t, ast.Name) and t.id.startswith("__") for t in n.targets))
    return not all(marker(n) for n in body)


def _modules() -> set[str]:
    found = {"app.py"} | {f"pages/{p.name}" for p in (ROOT / "pages").glob("*.py")}
    for p in (ROOT / "mirror_core").rglob("*.py"):
        rel = p.relative_to(ROOT).as_posix()
        if "/vendor/" in rel or (p.name == "__init__.py" and not _holds_code(p)):
            continue  # a package marker (docstring, re-exports): the package's line says what it holds
        found.add(rel)
    return found


def test_every_module_has_its_line_in_the_layout_tree():
    assert sorted(_modules() - _tree_paths()) == []


def test_the_layout_tree_names_no_module_that_is_gone():
    named = {p for p in _tree_paths() if p.endswith(".py")}
    assert sorted(named - _modules()) == []
