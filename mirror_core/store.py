"""The project store: one SQLite database (WAL, foreign keys on), opened through `connect`.

Every write that must be all-or-nothing goes through `transaction(conn)`, which takes the write lock
up front (BEGIN IMMEDIATE) so concurrent jobs and the app queue instead of failing mid-way.
A PostgreSQL DATABASE_URL is recognised but not yet implemented: the SQL here sticks to the common
subset (no SQLite-only types) so a second backend can be added behind `connect`.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from mirror_core import config
from mirror_core.errors import ConfigError
from mirror_core.migrations import migrate as _migrate
from mirror_core.migrations import now  # noqa: F401 - `store.now()` is the one time format; the schema owns it


def _sqlite_path(url: str) -> Path:
    if not url.startswith("sqlite:///"):
        scheme = url.split(":", 1)[0]
        if scheme.startswith("postgres"):
            raise ConfigError(
                "DATABASE_URL points at PostgreSQL, which this version does not support yet. "
                "Unset DATABASE_URL to use the embedded SQLite database under MIRROR_HOME."
            )
        raise ConfigError(f"DATABASE_URL scheme '{scheme}' is not supported; use sqlite:///PATH or unset it.")
    return Path(url[len("sqlite:///"):])


def connect(home: str | os.PathLike | None = None, *, migrate: bool = True) -> sqlite3.Connection:
    """Open the project database, creating and upgrading it to the newest schema."""
    path = _sqlite_path(config.database_url(home))
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: we issue BEGIN ourselves, so a transaction spans exactly what we say.
    conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=60000")
    conn.execute("PRAGMA synchronous=NORMAL")
    if migrate:
        _migrate(conn)
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """All-or-nothing block: commits on success, rolls back on any exception."""
    if conn.in_transaction:
        # Nested use joins the outer transaction via a savepoint so an inner failure can be undone alone.
        conn.execute("SAVEPOINT nested")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK TO nested")
            conn.execute("RELEASE nested")
            raise
        conn.execute("RELEASE nested")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def dumps(value: Any) -> str | None:
    """JSON text for a column (None stays NULL); sorted keys so equal values hash equally."""
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def counts(conn: sqlite3.Connection) -> dict[str, Any]:
    """Counts of what the project holds, as `status --json` prints them."""
    out: dict[str, Any] = {}
    for table in ("datasets", "examples", "rationales", "self_evals", "teacher_calls", "snapshots",
                  "predictions", "reviews", "preferences"):
        out[table] = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    out["runs"] = {r["status"]: r["n"] for r in
                   conn.execute("SELECT status, COUNT(*) AS n FROM runs GROUP BY status")}
    return out
