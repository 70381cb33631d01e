"""Seams between stages, read statically with `ast` (nothing is imported): the loops train only through
the train stage's public face, and only `students/checkpoints.py` knows how a run lays out its checkpoints."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "mirror_core"

# The train stage's insides: a loop that imports them depends on how training works, not on what it offers.
TRAINING_INTERNALS = ("mirror_core.training.loop", "mirror_core.training.data", "mirror_core.training.loss",
                      "mirror_core.training.launch")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in a file, module level or inside a function."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


def test_loops_do_not_import_training_internals():
    bad = [f"{p.relative_to(ROOT)}:{line} imports {name}"
           for p in sorted((PKG / "loops").glob("*.py")) for line, name in _imports(p)
           if any(name == m or name.startswith(m + ".") for m in TRAINING_INTERNALS)]
    assert bad == [], "loops train through mirror_core.training.job, not its loop:\n" + "\n".join(bad)


# Names only the checkpoint module may spell: the folders of a run's checkpoints and the files inside one.
LAYOUT_NAMES = {"checkpoints", "best", "last", "mirror_meta.json", "trainer_state.pt"}
LAYOUT_OWNER = PKG / "students" / "checkpoints.py"


def test_only_students_checkpoints_knows_the_checkpoint_layout():
    files = sorted(PKG.rglob("*.py")) + sorted((ROOT / "pages").glob("*.py")) + [ROOT / "app.py"]
    bad = [f"{p.relative_to(ROOT)}:{node.lineno} spells {node.value!r}"
           for p in files if p != LAYOUT_OWNER
           for node in ast.walk(ast.parse(p.read_text(), str(p)))
           if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in LAYOUT_NAMES]
    assert bad == [], "use students.checkpoints (BEST, LAST, find, ckpt_dir, load_for_inference):\n" + "\n".join(bad)
