"""Export a data set to JSON Lines or a Hugging Face `datasets` folder; both import back to the same content.

Each row carries id, split, question, choices (list or null), answer (the canonical gold), rationale,
task_type and meta (an object, or null). Importing the export finds the same content hash, so importing
it into the project it came from reports "already imported".
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Iterator

from mirror_core import store
from mirror_core.errors import DataImportError, NotFoundError

FORMATS = ("jsonl", "datasets")
SPLITS = ("train", "dev", "test")


def _dataset(conn: sqlite3.Connection, name: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM datasets WHERE name = ?", (name,)).fetchone()
    if row is None:
        names = [r[0] for r in conn.execute("SELECT name FROM datasets ORDER BY name")]
        raise NotFoundError(f"no dataset named '{name}'; datasets: {', '.join(names) or 'none (import one first)'}")
    return row


def iter_rows(conn: sqlite3.Connection, dataset_id: int, split: str | None = None) -> Iterator[dict]:
    """Export rows of one data set in insertion order, read lazily (bounded memory)."""
    sql = ("SELECT ext_id, split, question, choices, answer, rationale, task_type, meta FROM examples "
           "WHERE dataset_id = ?" + (" AND split = ?" if split else "") + " ORDER BY id")
    for r in conn.execute(sql, (dataset_id, split) if split else (dataset_id,)):
        yield {"id": r["ext_id"], "split": r["split"], "question": r["question"],
               "choices": store.loads(r["choices"]), "answer": r["answer"], "rationale": r["rationale"],
               "task_type": r["task_type"], "meta": store.loads(r["meta"])}


def export_jsonl(conn: sqlite3.Connection, name: str, out: str | Path) -> int:
    """Write dataset `name` as JSON Lines to `out`; returns the number of rows."""
    ds = _dataset(conn, name)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    tmp = out.with_name(out.name + ".part")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in iter_rows(conn, ds["id"]):
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(out)  # a half-written export never masquerades as a complete one
    return n


def export_datasets(conn: sqlite3.Connection, name: str, out: str | Path) -> int:
    """Write dataset `name` as a `datasets.DatasetDict` (one split per key) with `save_to_disk`."""
    import datasets

    datasets.disable_progress_bars()  # CLI output stays one line per command
    ds = _dataset(conn, name)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DataImportError(f"{out} exists and is not empty; choose a new folder for the export")
    features = datasets.Features({
        "id": datasets.Value("string"), "question": datasets.Value("string"),
        "choices": datasets.List(datasets.Value("string")), "answer": datasets.Value("string"),
        "rationale": datasets.Value("string"), "task_type": datasets.Value("string"),
        "meta": datasets.Value("string"),
    })
    parts = {}
    n = 0
    for split in SPLITS:
        cols: dict[str, list] = {k: [] for k in features}
        for row in iter_rows(conn, ds["id"], split):
            # meta is free-form JSON: kept as text so that every row fits one Arrow schema.
            row["meta"] = json.dumps(row["meta"], ensure_ascii=False, sort_keys=True) if row["meta"] else None
            for k in features:
                cols[k].append(row[k])
        if cols["id"]:
            # One split at a time in memory: save_to_disk needs a materialised Arrow table per split.
            parts[split] = datasets.Dataset.from_dict(cols, features=features)
            n += len(cols["id"])
    datasets.DatasetDict(parts).save_to_disk(str(out))
    return n


def export(conn: sqlite3.Connection, name: str, fmt: str, out: str | Path) -> int:
    """Export in `fmt` ("jsonl" or "datasets"); returns the number of rows written."""
    if fmt == "jsonl":
        return export_jsonl(conn, name, out)
    if fmt == "datasets":
        return export_datasets(conn, name, out)
    raise DataImportError(f"unknown export format '{fmt}'; use one of {', '.join(FORMATS)}")
