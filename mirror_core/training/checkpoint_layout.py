"""Where a train run keeps its checkpoints (`checkpoints/best/`, `checkpoints/last/`) and how to find one.

Plain paths and JSON, no torch and no model code, so that `models` (which checks that `run:N` has a
checkpoint before a job is queued) can read the layout without importing `checkpoints`, which builds
models and so imports `models` itself. `checkpoints` re-exports every name here: it stays the one
public face of the layout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

META = "mirror_meta.json"
STATE = "trainer_state.pt"


def ckpt_dir(run_dir: Path | str, name: str) -> Path:
    return Path(run_dir) / "checkpoints" / name


def existing(path: Path) -> Path | None:
    """The checkpoint at `path`, or the previous one when a save was cut between its two renames."""
    path = Path(path)
    if (path / META).exists():
        return path
    old = path.with_name(f".{path.name}.old")
    return old if (old / META).exists() else None


def load_meta(path: Path) -> dict[str, Any]:
    return json.loads((Path(path) / META).read_text())
