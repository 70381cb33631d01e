"""Pages are thin callers (issue 12): layout and calls, the logic in mirror_core.

Each page (and app.py, the home page) stays at most PAGE_LINES lines, runs no SQL, and imports neither
torch (a page must open without loading it; test_page_imports checks what actually loads) nor
mirror_core.commands (the CLI's layer: pages and the CLI are equal callers of the stage faces). The
Streamlit helpers the pages share live in mirror_core.ui, which the rest of the library never imports:
the library must run headless, without streamlit.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "pages").glob("*.py")) + [ROOT / "app.py"]
PAGE_LINES = 150
# SQL as a page would write it: a statement keyword followed by what makes it a statement, or a cursor call
SQL = re.compile(r"\.execute(many|script)?\(|\bSELECT\b.+\bFROM\b|\bINSERT\s+(OR\s+\w+\s+)?INTO\b|\bUPDATE\s+\w+\s+SET\b"
                 r"|\bDELETE\s+FROM\b|\bPRAGMA\b")


def _imports(tree: ast.AST) -> set[str]:
    """Every module a file's import statements name (`from a import b` counts as a and a.b)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def _names(path: Path) -> set[str]:
    return _imports(ast.parse(path.read_text(), filename=str(path)))


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_is_short(page):
    n = len(page.read_text().splitlines())
    assert n <= PAGE_LINES, f"{page.name} has {n} lines (at most {PAGE_LINES}): move logic into mirror_core"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_runs_no_sql(page):
    hits = [f"{page.name}:{i}: {line.strip()}" for i, line in enumerate(page.read_text().splitlines(), 1)
            if SQL.search(line)]
    assert hits == [], "read through mirror_core functions instead:\n" + "\n".join(hits)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_imports_neither_torch_nor_the_cli_layer(page):
    bad = sorted(m for m in _names(page) if _under(m, "torch") or _under(m, "mirror_core.commands"))
    assert bad == [], f"{page.name} imports {bad}"


def test_library_never_imports_the_ui_helpers():
    bad = []
    for path in sorted((ROOT / "mirror_core").rglob("*.py")):
        if path.is_relative_to(ROOT / "mirror_core" / "ui"):
            continue
        bad += [f"{path.relative_to(ROOT)} imports {m}" for m in sorted(_names(path)) if _under(m, "mirror_core.ui")]
    assert bad == []


def test_the_checks_catch_what_they_look_for():
    """The detectors themselves: each finds the thing it guards against (else the tests above cannot fail)."""
    assert SQL.search('conn.execute("SELECT name FROM datasets ORDER BY name")')
    assert SQL.search('sql = "UPDATE runs SET status = ?"')
    assert not SQL.search('st.selectbox("Select a run", runs)')
    tree = ast.parse("import torch\nfrom mirror_core.commands.train import submit\nfrom mirror_core import ui\n")
    names = _imports(tree)
    assert {"torch", "mirror_core.commands.train", "mirror_core.ui"} <= names
