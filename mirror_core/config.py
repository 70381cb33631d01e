"""Where the project lives: MIRROR_HOME (default ./data) holds the SQLite database and run folders."""

from __future__ import annotations

import os
from pathlib import Path

from mirror_core.errors import ConfigError

DB_FILENAME = "mirror.sqlite3"


def home(path: str | os.PathLike | None = None) -> Path:
    """The project home: the argument, else $MIRROR_HOME, else ./data. Created if missing."""
    raw = path if path is not None else os.environ.get("MIRROR_HOME", "data")
    p = Path(raw).expanduser().resolve()
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"Cannot create the project home {p}: {exc}. Set MIRROR_HOME to a writable folder.") from exc
    return p


def database_url(path: str | os.PathLike | None = None) -> str:
    """$DATABASE_URL if set, else a SQLite file inside the project home."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{home(path) / DB_FILENAME}"


def runs_dir(path: str | os.PathLike | None = None) -> Path:
    """Folder of run folders (logs, checkpoints, outputs)."""
    d = home(path) / "runs"
    d.mkdir(parents=True, exist_ok=True)
    return d


def run_dir(run_id: int, path: str | os.PathLike | None = None) -> Path:
    d = runs_dir(path) / f"run-{run_id:05d}"
    d.mkdir(parents=True, exist_ok=True)
    return d
