"""Import a data set into the store: the entry point over every source, all or nothing.

`import_source` takes a built-in name (`builtin.py`), a file (JSONL, JSON list, CSV/TSV, Parquet), a
`datasets` `save_to_disk` folder or `hf:NAME[:CONFIG]` (`sources.py`); `import_records` imports any
`RecordSource`. The work is split by what it does:

- `sources.py` opens the source and streams its (row number, record) pairs;
- `mapping.py` resolves which column holds each field (given, or found by its usual names);
- `rows.py` detects the task type from the first `DETECT_SAMPLE` rows and converts each record into an
  `examples` row, folding it into the content hash;
- `fastpath.py` overlaps that conversion with the SQLite writes (a helper thread);
- this module writes the batches and decides the end.

Everything happens inside ONE `store.transaction`: any bad row aborts the import and the database is
unchanged. Errors are `DataImportError`s naming the file, row and column. If there is no dev row once all
rows are in, dev is carved from train: the train rows with `bucket(ext_id) < DEV_FRACTION` (at least one
row when train has two or more). The content hash is order-independent, so re-importing the same content
— from the same file, its export, or a shuffled copy — is detected and reported as "already imported"
instead of duplicated; the same name with other content is refused.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Sequence

import orjson

from mirror_core import answers, store
from mirror_core.data import builtin, fastpath, rows
from mirror_core.data.mapping import SOURCE_SPLIT, ColumnMap, resolve_columns
from mirror_core.data.sources import RecordSource, default_name, open_source
from mirror_core.errors import DataImportError

# Documented limit (docs/ARCHITECTURE.md, Data): more rows fail fast with a DataImportError.
MAX_ROWS = 20_000_000


@dataclass
class ImportResult:
    """What an import did. `already_imported` is True when identical content was found (nothing written)."""

    dataset_id: int
    name: str
    task_type: str
    rows: int
    counts: dict[str, int]
    content_hash: str
    already_imported: bool = False
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        splits = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        if self.already_imported:
            return f"already imported as '{self.name}' ({self.rows} examples: {splits}); nothing written"
        return f"imported '{self.name}': {self.rows} examples ({splits}), task type {self.task_type}"


class _AlreadyImported(Exception):
    def __init__(self, dataset_id: int):
        self.dataset_id = dataset_id


def import_records(conn: sqlite3.Connection, src: RecordSource, *, name: str,
                   columns: ColumnMap | None = None, task_type: str | None = None) -> ImportResult:
    """Import rows from `src` as dataset `name`, all or nothing; see the module docstring for the rules."""
    if not name or not name.strip():
        raise DataImportError("the dataset needs a name; pass --name NAME", file=src.label)
    if task_type is not None and task_type not in answers.TASK_TYPES:
        raise DataImportError(f"unknown task type '{task_type}'; use one of {', '.join(answers.TASK_TYPES)}",
                              file=src.label)
    it = iter(src.records)
    head = list(islice(it, rows.DETECT_SAMPLE))
    if not head:
        raise DataImportError("there are no rows to import (the file is empty)", file=src.label)
    keys: list[str] = []
    for _, rec in head[:50]:
        keys.extend(k for k in rec if k not in keys)
    cols = resolve_columns(columns, keys, src.label)
    task_type, detected = rows.resolve_task_type(head, cols, task_type, src.label)
    split_from_source = bool(cols["split"]) or any(SOURCE_SPLIT in r for _, r in head[:1])
    conv = rows.Converter(cols, task_type, src.label, split_from_source,
                          pre_carve=split_from_source and not rows.has_dev(head, cols["split"]))

    try:
        with store.transaction(conn):
            existing = conn.execute("SELECT id, content_hash FROM datasets WHERE name = ?", (name,)).fetchone()
            # Same name already taken: write under a temporary name and decide at the end (identical content
            # is "already imported"; different content is a name clash). Either way it is rolled back.
            insert_name = name if existing is None else f"__importing__{uuid.uuid4().hex}"
            ds_id = conn.execute(
                "INSERT INTO datasets (name, source, task_type, content_hash, meta, created_at) VALUES (?,?,?,?,?,?)",
                (insert_name, src.source, task_type, "", None, store.now())).lastrowid
            # Train rows that a dev carve would move (bucket < DEV_FRACTION), decided while streaming; kept on
            # disk (temp table), so the carve needs neither memory nor a second pass of hashing.
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS import_carve (ext_id TEXT PRIMARY KEY)")
            conn.execute("DELETE FROM temp.import_carve")

            def flush(blob: bytes, batch_rows: Sequence[int], carve: list[tuple[str]]) -> None:
                try:
                    conn.execute(rows.BATCH_SQL, (ds_id, task_type, blob))
                except sqlite3.IntegrityError:
                    # The failing statement was undone as a whole: examples holds exactly the earlier batches.
                    _report_duplicate(conn, ds_id, orjson.loads(blob), batch_rows, cols["id"], src.label)
                    raise
                if carve:
                    conn.executemany("INSERT INTO temp.import_carve (ext_id) VALUES (?)", carve)

            n_rows = 0
            batches = rows.encoded(conv.batches((head, it), rows.BATCH), cols, src.label)
            # A source larger than the detection sample is converted in a helper thread while this thread
            # writes the previous batch (SQLite runs without the GIL), two batches at most in flight.
            todo_cm = (fastpath.prefetched(batches) if len(head) >= rows.DETECT_SAMPLE
                       else contextlib.nullcontext(batches))
            with todo_cm as todo:
                for blob, batch_rows, carve in todo:
                    n_rows += len(batch_rows)
                    if n_rows > MAX_ROWS:
                        raise DataImportError(f"more than {MAX_ROWS:,} rows, the limit of one import; split the "
                                              "file and import the parts under different names", file=src.label)
                    flush(blob, batch_rows, carve)

            notes = list(src.meta.get("notes") or [])
            acc = conv.acc
            carved = 0
            carve_sql = ("UPDATE examples SET split = ? WHERE dataset_id = ? AND ext_id IN "
                         "(SELECT ext_id FROM temp.import_carve)")
            if conv.counts["dev"] == 0 and conv.counts["train"] >= 2:
                if conv.n_carve:
                    # Pre-carved rows were written as 'dev' already (ids are unique, so they are n_carve).
                    carved = conv.n_carve if conv.pre_carve else conn.execute(carve_sql, ("dev", ds_id)).rowcount
                    acc = conv.acc + conv.carve_delta
                else:
                    _, ext_id, d = conv.min_train
                    carved = conn.execute("UPDATE examples SET split = 'dev' WHERE dataset_id = ? AND ext_id = ?",
                                          (ds_id, ext_id)).rowcount
                    acc = conv.acc - rows.row_hash(d, "train") + rows.row_hash(d, "dev")
                notes.append(f"no dev split: moved {carved} train rows to dev "
                             f"(seeded rule bucket(id) < {rows.DEV_FRACTION})")
            elif conv.pre_carve and conv.n_carve:
                conn.execute(carve_sql, ("train", ds_id))  # a dev split after all: the pre-carved rows go back
            content_hash = rows.final_hash(acc, n_rows)
            if existing is not None and existing["content_hash"] == content_hash:
                raise _AlreadyImported(existing["id"])
            dup = conn.execute("SELECT id FROM datasets WHERE content_hash = ? AND id != ?",
                               (content_hash, ds_id)).fetchone()
            if dup:
                raise _AlreadyImported(dup["id"])
            if existing is not None:
                raise DataImportError(f"a dataset named '{name}' already exists with different content; "
                                      "import under another name with --name", file=src.label)
            meta = {"file": src.label, "rows": n_rows,
                    "columns": {f: c for f, c in cols.items() if c},
                    "task_type_detected": detected,
                    "split_rule": ("from the data" if split_from_source else
                                   f"bucket(id) < {rows.DEFAULT_SPLIT[0]} train, < {rows.DEFAULT_SPLIT[1]} dev, "
                                   "else test "
                                   f"(sha256 of '{rows.SPLIT_SEED}:id')"),
                    "dev_carved_from_train": carved, "notes": notes}
            meta.update({k: v for k, v in src.meta.items() if k != "notes"})  # the source knows its rules best
            conn.execute("UPDATE datasets SET content_hash = ?, meta = ? WHERE id = ?",
                         (content_hash, store.dumps(meta), ds_id))
    except _AlreadyImported as done:
        return _result(conn, done.dataset_id, already=True)
    except DataImportError as e:
        # A numeric import stopped at a gold (rolled back already): name the sample's other odd golds with
        # it, so one try shows them all. Only on failure, so a clean import does not parse its golds twice.
        if task_type == answers.NUMERIC and e.column == cols["answer"] and e.row is not None:
            err = rows.numeric_gold_error(head, cols["answer"], src.label, explicit=detected is None)
            if err is not None and err.row == e.row:
                raise err from None
        raise
    result = _result(conn, ds_id)
    result.notes = notes
    return result


def _report_duplicate(conn, ds_id: int, batch: list[tuple], batch_rows: list[int], id_col: str | None,
                      label: str) -> None:
    """Name the first row of a failing batch whose id was already seen (we are about to roll back)."""
    seen = conn.execute("SELECT ext_id FROM examples WHERE dataset_id = ?", (ds_id,))
    ids = {r[0] for r in seen}
    for row, r in zip(batch_rows, batch):
        if r[0] in ids:
            raise DataImportError(f"duplicate id '{r[0]}'; ids must be unique within a data set",
                                  file=label, row=row, column=id_col or "id")
        ids.add(r[0])


def _result(conn: sqlite3.Connection, ds_id: int, already: bool = False) -> ImportResult:
    ds = conn.execute("SELECT * FROM datasets WHERE id = ?", (ds_id,)).fetchone()
    counts = {s: 0 for s in ("train", "dev", "test")}
    for r in conn.execute("SELECT split, COUNT(*) AS n FROM examples WHERE dataset_id = ? GROUP BY split", (ds_id,)):
        counts[r["split"]] = r["n"]
    return ImportResult(dataset_id=ds_id, name=ds["name"], task_type=ds["task_type"], rows=sum(counts.values()),
                        counts=counts, content_hash=ds["content_hash"], already_imported=already)


def import_source(conn: sqlite3.Connection, source: str, *, name: str | None = None,
                  columns: ColumnMap | None = None, task_type: str | None = None) -> ImportResult:
    """Import a built-in name, a file, a `save_to_disk` folder or `hf:NAME[:CONFIG]` (see module doc)."""
    if source in builtin.BUILTINS:
        if columns is not None and columns.given():
            raise DataImportError("column options do not apply to built-in sources", file=source)
        src, builtin_columns, builtin_task_type = builtin.open_builtin(source)
        return import_records(conn, src, name=name or source, columns=builtin_columns,
                              task_type=task_type or builtin_task_type)
    if not source.startswith("hf:") and not Path(source).expanduser().exists():
        raise DataImportError(f"no such file or folder, and not a built-in source ({', '.join(builtin.BUILTINS)}) "
                              "or hf:NAME", file=source)
    src = open_source(source, columns)
    return import_records(conn, src, name=name or default_name(source), columns=columns, task_type=task_type)
