"""Read helpers for pages and the CLI: data sets with split counts, and pages of examples (SQL-side paging)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from mirror_core import store
from mirror_core.errors import NotFoundError

SPLITS = ("train", "dev", "test")


@dataclass
class DatasetInfo:
    id: int
    name: str
    source: str
    task_type: str
    created_at: str
    counts: dict[str, int]
    meta: dict

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def list_datasets(conn: sqlite3.Connection) -> list[DatasetInfo]:
    """Every data set, oldest first, with its train/dev/test counts (one grouped query)."""
    counts: dict[int, dict[str, int]] = {}
    for r in conn.execute("SELECT dataset_id, split, COUNT(*) AS n FROM examples GROUP BY dataset_id, split"):
        counts.setdefault(r["dataset_id"], {s: 0 for s in SPLITS})[r["split"]] = r["n"]
    return [DatasetInfo(id=r["id"], name=r["name"], source=r["source"], task_type=r["task_type"],
                        created_at=r["created_at"], counts=counts.get(r["id"], {s: 0 for s in SPLITS}),
                        meta=store.loads(r["meta"]) or {})
            for r in conn.execute("SELECT * FROM datasets ORDER BY id")]


def dataset_names(conn: sqlite3.Connection) -> list[str]:
    """Every data set's name, A to Z: what the pickers list (one cheap query, no split counts)."""
    return [r[0] for r in conn.execute("SELECT name FROM datasets ORDER BY name")]


def get_dataset(conn: sqlite3.Connection, name: str) -> DatasetInfo:
    for ds in list_datasets(conn):
        if ds.name == name:
            return ds
    raise NotFoundError(f"no dataset named '{name}'")


def _where(dataset_id: int, split: str | None, search: str | None) -> tuple[str, list]:
    clauses, params = ["dataset_id = ?"], [dataset_id]
    if split:
        if split not in SPLITS:
            raise NotFoundError(f"no split '{split}'; use train, dev or test")
        clauses.append("split = ?")
        params.append(split)
    if search and search.strip():
        like = "%" + search.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses.append("(question LIKE ? ESCAPE '\\' OR answer LIKE ? ESCAPE '\\' OR rationale LIKE ? ESCAPE '\\'"
                       " OR ext_id LIKE ? ESCAPE '\\')")
        params += [like] * 4
    return " AND ".join(clauses), params


def count_examples(conn: sqlite3.Connection, dataset_id: int, split: str | None = None,
                   search: str | None = None) -> int:
    where, params = _where(dataset_id, split, search)
    return conn.execute(f"SELECT COUNT(*) FROM examples WHERE {where}", params).fetchone()[0]


def page_examples(conn: sqlite3.Connection, dataset_id: int, split: str | None = None, search: str | None = None,
                  limit: int = 50, offset: int = 0) -> list[dict]:
    """One page of examples (LIMIT/OFFSET in SQL), choices and meta decoded; search is a substring match
    over question, answer, rationale and id."""
    where, params = _where(dataset_id, split, search)
    rows = conn.execute(f"SELECT id, ext_id, split, question, choices, answer, rationale, task_type, meta "
                        f"FROM examples WHERE {where} ORDER BY id LIMIT ? OFFSET ?",
                        [*params, max(0, int(limit)), max(0, int(offset))])
    return [{**dict(r), "choices": store.loads(r["choices"]), "meta": store.loads(r["meta"])} for r in rows]
