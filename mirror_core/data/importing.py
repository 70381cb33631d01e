"""Import data sets into the store: files (JSONL, JSON list, CSV/TSV, Parquet), Hugging Face `datasets`
(a hub name or a `save_to_disk` folder) and the built-in offline sources (see `builtin.py`).

How an import works, whatever the source:

- Records are streamed: the first `DETECT_SAMPLE` rows are buffered to resolve the column mapping and
  detect the task type, then rows are converted and inserted in batches of `BATCH`. Memory stays flat in
  the file size (a JSON *list* file is the exception: it is parsed whole). A plain JSON Lines file of
  `PARALLEL_MIN_BYTES` or more is converted in a worker process, fed 1 MiB blocks of lines with their row
  numbers, while this process writes to SQLite (two cores busy instead of one, a few blocks in flight);
  rows, content hash and errors are the same as converting here, which is also the fallback.
- Everything happens inside ONE `store.transaction`: any bad row aborts the import and the database is
  unchanged. Errors are `DataImportError`s naming the file, row and column.
- Task type: given (`task_type=`, a `task_type` column) or detected from the first `DETECT_SAMPLE` golds.
  A sample at least `MOSTLY_NUMERIC` (half) numbers is numeric, and its non-numeric golds stop the import,
  the first rows named, with the way out (`--task-type free_text`); fewer numbers is free text (or yes/no).
- Gold answers are stored in canonical form (`answers.normalize_gold`); choices as a JSON list of texts;
  a multiple-choice gold as its letter. A GSM8K-style solution "steps ... #### 18" in the answer column
  gives the gold "18" and, when no rationale column is mapped, the steps as the gold rationale.
- Splits: a split column may say train/dev/test (or validation, val, eval, ...). Without a split column
  each row goes to train/dev/test 80/10/10 by `bucket(ext_id)` (a seeded hash, so the same id always lands
  in the same split). If there is no dev row afterwards, dev is carved from train: the train rows with
  `bucket(ext_id) < DEV_FRACTION` (at least one row when train has two or more).
- The content hash is order-independent (a sum of per-row hashes over id, question, choices, gold,
  rationale, task type and final split), so re-importing the same content — from the same file, its
  export, or a shuffled copy — is detected and reported as "already imported" instead of duplicated.
  Extra columns are kept in each example's `meta` but do not enter the hash.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import difflib
import gzip
import hashlib
import json
import queue
import sqlite3
import sys
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import orjson

from mirror_core import answers, store
from mirror_core.errors import AnswerParseError, DataImportError

FIELDS = ("id", "question", "answer", "rationale", "choices", "split")
# Column names tried, in order, when the mapping leaves a field unset (compared case-insensitively).
CANDIDATES: dict[str, tuple[str, ...]] = {
    "id": ("id", "ext_id", "uid", "qid", "question_id", "example_id", "idx"),
    "question": ("question", "query", "problem", "input", "prompt", "body"),
    "answer": ("answer", "answerkey", "answer_key", "gold", "label", "target", "short_answer", "output",
               "final_answer", "solution"),
    "rationale": ("rationale", "explanation", "cot", "reasoning", "chain_of_thought", "steps"),
    "choices": ("choices", "options", "answer_choices", "candidates"),
    "split": ("split", "partition", "subset"),
}
SPLIT_ALIASES = {"train": "train", "training": "train", "dev": "dev", "validation": "dev", "valid": "dev",
                 "val": "dev", "development": "dev", "test": "test", "testing": "test", "eval": "test",
                 "evaluation": "test"}
BATCH = 20000
# Documented limits (docs/ARCHITECTURE.md, Data): a longer line or more rows fail fast with a DataImportError.
MAX_LINE_BYTES = 64 * 2**20
MAX_ROWS = 20_000_000
_COLS = "dataset_id, ext_id, split, question, choices, answer, rationale, task_type, meta"
DETECT_SAMPLE = 1000
SPLIT_SEED = "mirror-split-v1"
DEV_FRACTION = 0.10
# Without a split column: bucket < 0.8 -> train, < 0.9 -> dev, else test.
DEFAULT_SPLIT = (0.8, 0.9)
_INTERNAL_SPLIT = "__split__"  # set by readers whose source carries the split (DatasetDict keys)
# A plain JSONL file at least this large is converted in a worker process (a second core) while this one
# writes; smaller files would spend more on starting the process (~0.1-0.2 s) than they gain.
PARALLEL_MIN_BYTES = 5 * 2**20
CHUNK_BYTES = 1 << 20   # a block of lines handed to the worker (~5k typical rows)
IN_FLIGHT = 2           # blocks submitted ahead of the writes: memory stays a few blocks, whatever the file
START_INLINE = True     # convert blocks in this process while the worker starts (False: wait for it)


@dataclass
class ColumnMap:
    """Which source column holds each field; None means "find it by its usual names"."""

    id: str | None = None
    question: str | None = None
    answer: str | None = None
    rationale: str | None = None
    choices: str | None = None
    split: str | None = None

    def given(self) -> dict[str, str]:
        return {f: getattr(self, f) for f in FIELDS if getattr(self, f)}


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


@dataclass
class RecordSource:
    """Rows to import: (row number, record dict) pairs plus how to name them in messages and the store."""

    label: str                      # shown in errors: the file or folder name
    source: str                     # stored in datasets.source
    records: Iterable[tuple[int, dict]]
    meta: dict = field(default_factory=dict)
    # Set for a plain (uncompressed) JSON Lines file: a large one is converted in a worker process from
    # byte blocks of the file (see `_parallel_batches`); `records` is then only read for the first rows.
    jsonl_path: Path | None = None


class _AlreadyImported(Exception):
    def __init__(self, dataset_id: int):
        self.dataset_id = dataset_id


def bucket(ext_id: str, seed: str = SPLIT_SEED) -> float:
    """A number in [0, 1) fixed by the example id and the seed; drives every seeded split rule here."""
    digest = hashlib.sha256(f"{seed}:{ext_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_by_bucket(ext_id: str, cut_train: float, cut_dev: float, seed: str = SPLIT_SEED) -> str:
    b = bucket(ext_id, seed)
    return "train" if b < cut_train else ("dev" if b < cut_dev else "test")


# ------------------------------------------------------------------ readers

def _not_utf8(label: str, path: Path, exc: UnicodeDecodeError, *, header_lines: int = 0) -> DataImportError:
    """Find the first line that is not UTF-8 and name it (CSV decoding reports errors by chunk, not line)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                byte = raw[e.start:e.start + 1].hex()
                return DataImportError(
                    f"the file is not UTF-8 text (byte 0x{byte} at line {lineno}); re-save it as UTF-8 and import again",
                    file=label, row=max(lineno - header_lines, 1))
    return DataImportError(f"the file is not UTF-8 text ({exc.reason}); re-save it as UTF-8", file=label)


def _read_jsonl(path: Path, label: str) -> Iterator[tuple[int, dict]]:
    opener = gzip.open if path.suffix == ".gz" else open
    loads = orjson.loads
    with opener(path, "rb") as f:
        for lineno, raw in _limited_lines(f, label):
            if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            # Fast path: orjson decodes (and checks UTF-8 of) the line's bytes directly. Anything it
            # refuses (a blank line, bad bytes, bad JSON, but also NaN or integers beyond 64 bits, which
            # the standard library accepts) goes through the standard library to keep its exact result
            # and error messages.
            try:
                obj = loads(raw)
            except orjson.JSONDecodeError:
                pass
            else:
                if obj.__class__ is dict:
                    yield lineno, obj
                    continue
            obj = _jsonl_line_slow(raw, lineno, label)
            if obj is not None:
                yield lineno, obj


def _limited_lines(f, label: str) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of a binary file, refusing a line over MAX_LINE_BYTES before reading it all, and
    skipping runs of blank lines in bulk (a file of millions of empty lines says "no rows" in a second)."""
    lineno = 0
    readline, peek, read = f.readline, f.peek, f.read
    while True:
        raw = readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        lineno += 1
        if len(raw) > MAX_LINE_BYTES:
            raise DataImportError(f"the line is longer than the limit of {MAX_LINE_BYTES // 2**20} MiB per row; "
                                  "shorten or remove it", file=label, row=lineno)
        if raw.isspace():
            while True:  # consume whole blank lines straight from the buffer
                buf = peek(1 << 16)
                ws = len(buf) - len(buf.lstrip(b" \t\r\n"))
                cut = buf.rfind(b"\n", 0, ws) + 1
                if not cut:
                    break
                lineno += buf.count(b"\n", 0, cut)
                read(cut)
            continue
        yield lineno, raw


def _jsonl_line_slow(raw: bytes, lineno: int, label: str) -> dict | None:
    """A JSONL line (with its line end) that orjson refused or that is not an object: the standard
    library's result, None for a blank line, or the DataImportError naming the row."""
    if not raw.strip():
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataImportError(
            f"the file is not UTF-8 text (byte 0x{raw[e.start:e.start + 1].hex()}); re-save it as UTF-8",
            file=label, row=lineno) from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataImportError(f"invalid JSON ({e.msg} at character {e.pos + 1}); fix or remove this line",
                              file=label, row=lineno) from None
    except (RecursionError, ValueError) as e:
        raise _json_limit_error(e, label, lineno) from None
    if not isinstance(obj, dict):
        raise DataImportError(f"each line must be a JSON object, found {type(obj).__name__}",
                              file=label, row=lineno)
    return obj


def _json_limit_error(exc: Exception, label: str, row: int | None) -> DataImportError:
    """A JSON value past the parser's limits: nested deeper than Python's recursion allows, or an integer
    longer than Python converts (4300 digits)."""
    if isinstance(exc, RecursionError):
        return DataImportError("the JSON is nested too deeply to read (arrays or objects inside each other "
                               "about a thousand levels or more); flatten it", file=label, row=row)
    return DataImportError(f"a value cannot be read ({exc}); quote very long numbers as strings or remove them",
                           file=label, row=row)


def _read_json_list(path: Path, label: str) -> Iterator[tuple[int, dict]]:
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise _not_utf8(label, path, e) from None
    except json.JSONDecodeError as e:
        raise DataImportError(f"invalid JSON at line {e.lineno}, character {e.colno}: {e.msg}", file=label) from None
    except (RecursionError, ValueError) as e:
        raise _json_limit_error(e, label, None) from None
    if isinstance(data, dict):
        # {"data": [...]} or {"train": [...], "test": [...]}: one level of nesting is common in exports.
        lists = {k: v for k, v in data.items() if isinstance(v, list)}
        if len(lists) == 1:
            data = next(iter(lists.values()))
        elif lists and all(k.lower() in SPLIT_ALIASES for k in lists):
            data = [dict(r, **{_INTERNAL_SPLIT: k}) for k, rows in lists.items() for r in rows
                    if isinstance(r, dict)]
        else:
            raise DataImportError("expected a JSON list of objects (or JSON Lines)", file=label)
    if not isinstance(data, list):
        raise DataImportError("expected a JSON list of objects (or JSON Lines)", file=label)
    for i, obj in enumerate(data, 1):
        if not isinstance(obj, dict):
            raise DataImportError(f"expected an object, found {type(obj).__name__}", file=label, row=i)
        yield i, obj


def _read_csv(path: Path, label: str) -> Iterator[tuple[int, dict]]:
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    csv.field_size_limit(MAX_LINE_BYTES)  # long rationales exceed the 128 KiB default; the row limit is ours
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                return
            header = [h.strip() for h in header]
            width = len(header)
            for i, row in enumerate(reader, 1):
                if len(row) != width:
                    if not any(c.strip() for c in row):
                        continue
                    raise DataImportError(f"has {len(row)} fields but the header has {width}; check quoting",
                                          file=label, row=i)
                yield i, {h: (v if v != "" else None) for h, v in zip(header, row)}
    except UnicodeDecodeError as e:
        raise _not_utf8(label, path, e, header_lines=1) from None
    except csv.Error as e:
        raise DataImportError(f"malformed CSV: {e}", file=label) from None


def _read_parquet(path: Path, label: str) -> Iterator[tuple[int, dict]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises ArrowInvalid/OSError variants
        raise DataImportError(f"not a readable Parquet file: {e}", file=label) from None
    row = 0
    for batch in pf.iter_batches(batch_size=4096):
        for rec in batch.to_pylist():
            row += 1
            yield row, rec


def _iter_hf(ds, split: str | None) -> Iterator[dict]:
    for batch in ds.iter(batch_size=1000):
        keys = list(batch)
        n = len(batch[keys[0]]) if keys else 0
        for i in range(n):
            rec = {k: batch[k][i] for k in keys}
            if split is not None:
                rec[_INTERNAL_SPLIT] = split
            yield rec


def hf_records(obj, label: str, answer_column: str | None = None) -> tuple[Iterator[tuple[int, dict]], list[str]]:
    """Rows of a `datasets` Dataset or DatasetDict; a DatasetDict's keys become splits.

    Splits whose gold column is entirely empty (e.g. unlabeled hub test sets) are skipped, with a note.
    """
    import datasets

    notes: list[str] = []
    if isinstance(obj, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        parts = []
        for key, ds in obj.items():
            if key.lower() not in SPLIT_ALIASES:
                raise DataImportError(f"split '{key}' is not train/validation/test; rename it or import it alone",
                                      file=label)
            col = answer_column or _find_candidate("answer", list(ds.column_names or []))
            if col and isinstance(ds, datasets.Dataset) and col in ds.column_names and \
                    all(v in (None, "", -1) for v in ds[col]):
                notes.append(f"skipped split '{key}': it has no gold answers")
                continue
            parts.append((key, ds))
    else:
        parts = [(None, obj)]

    def gen():
        row = 0
        for key, ds in parts:
            for rec in _iter_hf(ds, key):
                row += 1
                yield row, rec

    return gen(), notes


def _is_hf_folder(path: Path) -> bool:
    return path.is_dir() and any((path / n).exists() for n in ("dataset_dict.json", "state.json", "dataset_info.json"))


def open_source(source: str, columns: ColumnMap | None = None) -> RecordSource:
    """A RecordSource for a file path, a `save_to_disk` folder or `hf:NAME[:CONFIG]`."""
    if source.startswith("hf:"):
        import datasets

        spec = source[3:]
        hub_name, _, config_name = spec.partition(":")
        try:
            obj = datasets.load_dataset(hub_name, config_name or None)
        except Exception as e:  # offline, unknown name, gated: all surface as different exception types
            raise DataImportError(
                f"could not load '{hub_name}' from the Hugging Face hub ({type(e).__name__}: {str(e)[:200]}). "
                "Offline? Load it where the hub is reachable, call save_to_disk, and import that folder.",
                file=source) from None
        records, notes = hf_records(obj, source, columns.answer if columns else None)
        return RecordSource(source, source, records, {"hub_name": hub_name, "config": config_name or None,
                                                      "notes": notes})
    path = Path(source).expanduser()
    label = path.name or source
    if not path.exists():
        from mirror_core.data.builtin import BUILTINS

        raise DataImportError(f"no such file or folder, and not a built-in source ({', '.join(BUILTINS)}) "
                              "or hf:NAME", file=source)
    if path.is_dir():
        if not _is_hf_folder(path):
            raise DataImportError("this folder is not a Hugging Face `save_to_disk` folder "
                                  "(no dataset_dict.json or state.json)", file=label)
        import datasets

        try:
            obj = datasets.load_from_disk(str(path))
        except Exception as e:
            raise DataImportError(f"could not read the `datasets` folder: {e}", file=label) from None
        records, notes = hf_records(obj, label, columns.answer if columns else None)
        return RecordSource(label, str(path.resolve()), records, {"notes": notes})
    if path.stat().st_size == 0:
        raise DataImportError("the file is empty", file=label)
    name = path.name.lower()
    stem = name[:-3] if name.endswith(".gz") else name
    if stem.endswith((".jsonl", ".ndjson")):
        reader = _read_jsonl
    elif stem.endswith(".json"):
        with (gzip.open if name.endswith(".gz") else open)(path, "rb") as f:
            head = f.read(64).lstrip(codecs.BOM_UTF8).lstrip()
        # A .json file that does not start with "[" or "{\n  ..." list wrapper is usually JSON Lines.
        reader = _read_json_list if head[:1] == b"[" or _is_single_json_document(path) else _read_jsonl
    elif stem.endswith((".csv", ".tsv", ".tab")):
        reader = _read_csv
    elif stem.endswith((".parquet", ".pq")):
        reader = _read_parquet
    else:
        raise DataImportError("unknown file type; use .jsonl, .json, .csv, .tsv or .parquet", file=label)
    plain_jsonl = reader is _read_jsonl and not name.endswith(".gz")
    return RecordSource(label, str(path.resolve()), reader(path, label), jsonl_path=path if plain_jsonl else None)


def _is_single_json_document(path: Path) -> bool:
    """True for a .json file whose first line is not itself a complete JSON object (so not JSON Lines)."""
    if path.suffix == ".gz":
        return False
    with open(path, "rb") as f:
        first = f.readline()
    try:
        json.loads(first)
        return False
    except (json.JSONDecodeError, UnicodeDecodeError):
        return True


# ------------------------------------------------------------------ columns and rows

def _find_candidate(fieldname: str, keys: Sequence[str]) -> str | None:
    lower = {k.lower(): k for k in keys}
    for cand in CANDIDATES[fieldname]:
        if cand in lower:
            return lower[cand]
    return None


def resolve_columns(columns: ColumnMap | None, keys: Sequence[str], label: str) -> dict[str, str | None]:
    """Map each field to a source column: the given name (which must exist) or the first usual name found."""
    columns = columns or ColumnMap()
    keys = [k for k in keys if k != _INTERNAL_SPLIT]
    out: dict[str, str | None] = {}
    for f in FIELDS:
        want = getattr(columns, f)
        if want:
            if want not in keys:
                close = [k for k in keys if k.lower() == want.lower()] or \
                    difflib.get_close_matches(want, keys, n=3, cutoff=0.5) or \
                    [k for k in keys if k.lower().startswith(want.lower()) or want.lower() in k.lower()][:3]
                hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "."
                raise DataImportError(f"column '{want}' (given for {f}) is not in the data{hint} "
                                      f"Columns found: {', '.join(keys)}", file=label, column=want)
            out[f] = want
        else:
            out[f] = _find_candidate(f, keys)
    for f in ("question", "answer"):
        if out[f] is None:
            guesses = difflib.get_close_matches(f, keys, n=2, cutoff=0.4)
            hint = f" Did you mean {' or '.join(repr(g) for g in guesses)}?" if guesses else ""
            raise DataImportError(f"no {f} column found (looked for {', '.join(CANDIDATES[f][:5])}). "
                                  f"Columns found: {', '.join(keys) or 'none'}.{hint} Name it with --{f} COLUMN.",
                                  file=label, column=f)
    return out


def parse_choices(value: Any) -> tuple[list[str] | None, list[str] | None]:
    """(choice texts, choice labels or None) from a list, a {"label": [...], "text": [...]} dict,
    a JSON-list string or a "|"-separated string."""
    if value is None:
        return None, None
    if isinstance(value, dict):
        texts = value.get("text") or value.get("texts")
        labels = value.get("label") or value.get("labels")
        if texts is None:
            raise ValueError("a choices object needs a 'text' list")
        return [str(t) for t in texts], ([str(x) for x in labels] if labels else None)
    if isinstance(value, str):
        s = value.strip()
        if not s:
            return None, None
        if s.startswith("[") or s.startswith("{"):
            return parse_choices(json.loads(s))
        return [p.strip() for p in s.split("|")], None
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value], None
    if hasattr(value, "tolist"):  # numpy arrays from Parquet
        return parse_choices(value.tolist())
    raise ValueError(f"cannot read choices from a {type(value).__name__}")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return str(obj)


class _Converter:
    """Turns source records into `examples` rows and folds each into the order-independent content hash.

    This is the import's inner loop, so the common case is kept cheap: plain `str` values skip
    conversions, gold answers and split names are memoised (bounded dicts), a row whose columns are all
    mapped skips building `meta`, and the row hashes use precomputed byte suffixes. Results are exactly
    those of the straightforward code (the content hash of a data set does not change).
    """

    _MEMO = 1 << 16  # bound on the gold memo (a few MB at most), so memory stays flat however many golds

    def __init__(self, cols: dict[str, str | None], task_type: str, label: str, split_from_source: bool,
                 pre_carve: bool = False):
        self.cols, self.task_type, self.label = cols, task_type, label
        self.split_from_source = split_from_source
        # Write the train rows a dev carve would move as 'dev' right away (the import puts them back if a
        # dev row turns up after all): spares an UPDATE of a tenth of train in the usual no-dev file.
        self.pre_carve = pre_carve
        mapped = {c for c in cols.values() if c}
        self.skip = frozenset(mapped | {_INTERNAL_SPLIT, "task_type"})
        self.counts = {"train": 0, "dev": 0, "test": 0}
        self.acc = 0            # sum of row hashes with the splits as given
        self.carve_delta = 0    # acc + carve_delta = the sum had dev been carved from train by bucket
        self.n_carve = 0
        self.carve_ids: list[tuple[str]] = []  # handed on with each batch, to temp.import_carve
        self.min_train: tuple[float, str, bytes] | None = None  # fallback carve for tiny train sets
        self._numeric = task_type == answers.NUMERIC
        self._golds: dict[Any, str] = {}   # raw gold (str or int, no choices) -> canonical gold

    def _err(self, row: int, column: str | None, msg: str) -> DataImportError:
        return DataImportError(msg, file=self.label, row=row, column=column)

    def take_totals(self) -> tuple:
        """This converter's hash and split totals since the last call (then reset), for `add_totals`."""
        out = (self.acc, self.carve_delta, self.n_carve, self.counts, self.min_train)
        self.acc = self.carve_delta = self.n_carve = 0
        self.counts = {"train": 0, "dev": 0, "test": 0}
        self.min_train = None
        return out

    def add_totals(self, totals: tuple) -> None:
        """Fold in the totals of rows that come after all rows seen so far (a worker's block)."""
        acc, carve_delta, n_carve, counts, min_train = totals
        self.acc += acc
        self.carve_delta += carve_delta
        self.n_carve += n_carve
        for k, v in counts.items():
            self.counts[k] += v
        if min_train is not None and (self.min_train is None or min_train[0] < self.min_train[0]):
            self.min_train = min_train  # strict: the earliest row wins ties, as when converting in order

    def convert(self, row: int, rec: dict) -> tuple:
        """One `examples` row without its constant columns: (ext_id, split, question, choices, answer,
        rationale, meta); see `_BATCH_SQL`."""
        c = self.cols
        qcol, acol = c["question"], c["answer"]
        question = rec.get(qcol, _MISSING)
        if question.__class__ is not str:
            if question is _MISSING:
                raise self._err(row, qcol, "this row has no question column; every row needs one")
            question = "" if question is None else str(question)
        if not question or question.isspace():
            raise self._err(row, qcol, "the question is empty")
        idcol = c["id"]
        if idcol:
            ext_id = rec.get(idcol)
            if ext_id.__class__ is not str:
                ext_id = "" if ext_id is None else str(ext_id)
            if not ext_id or ext_id.isspace():
                raise self._err(row, idcol, "the id is empty")
        else:
            ext_id = str(row)
        choices = labels = None
        if c["choices"]:
            try:
                choices, labels = parse_choices(rec.get(c["choices"]))
            except (ValueError, json.JSONDecodeError) as e:
                raise self._err(row, c["choices"], f"choices are not a list: {e}") from None
        gold_raw = rec.get(acol)
        rationale = rec.get(c["rationale"]) if c["rationale"] else None
        if self._numeric and gold_raw.__class__ is str and "####" in gold_raw:
            steps, gold_raw = answers.split_solution(gold_raw)
            if rationale is None:
                rationale = steps
        if labels and gold_raw is not None and str(gold_raw) in labels:
            gold_raw = labels.index(str(gold_raw))  # e.g. ARC's "1".."4" labels
        memo = choices is None and (gold_raw.__class__ is str or gold_raw.__class__ is int)
        gold = self._golds.get(gold_raw) if memo else None
        if gold is None:
            try:
                gold = answers.normalize_gold(gold_raw, self.task_type, choices)
            except ValueError as e:  # e.g. a number of more than 4300 digits, which Python will not convert
                raise self._err(row, acol, f"the gold answer cannot be read as {self.task_type} ({e}); fix the "
                                           "row, or pick another task type with --task-type") from None
            except AnswerParseError as e:
                raise self._err(row, acol, f"the gold answer does not parse as {self.task_type}: {e}. Fix the "
                                           "row, or pick another task type with --task-type") from None
            if memo:
                if len(self._golds) >= self._MEMO:
                    self._golds.clear()
                self._golds[gold_raw] = gold
        if rationale is not None and rationale.__class__ is not str:
            rationale = str(rationale)
        split = self._split(row, rec, ext_id)
        if rec.keys() <= self.skip:
            meta = None
        else:
            extras = {k: v for k, v in rec.items() if k not in self.skip}
            inner = extras.pop("meta", None)
            if isinstance(inner, str) and inner.startswith("{"):
                try:
                    inner = json.loads(inner)
                except json.JSONDecodeError:
                    pass
            if isinstance(inner, dict):
                extras = {**inner, **extras}
            elif inner is not None:
                extras["meta"] = inner
            meta = json.dumps(extras, ensure_ascii=False, default=_json_default, sort_keys=True) if extras else None
        choices_json = json.dumps(choices, ensure_ascii=False) if choices is not None else None

        # Fold the row into the content hash (see _row_hash; repr of a tuple of str/None is unambiguous
        # and about twice as fast as json.dumps here).
        body = repr((ext_id, question, choices_json, gold, rationale, self.task_type)).encode()
        h = _from_bytes(_sha256(body + _SPLIT_SUFFIX[split]).digest(), "big")
        self.acc += h
        self.counts[split] += 1
        if split == "train":
            b = _from_bytes(_sha256(_BUCKET_PREFIX + ext_id.encode()).digest()[:8], "big") / _TWO_64  # bucket()
            if b < DEV_FRACTION:
                # Had dev to be carved from train, this row would move: remember the difference.
                self.carve_delta += _from_bytes(_sha256(body + _SPLIT_SUFFIX["dev"]).digest(), "big") - h
                self.n_carve += 1
                self.carve_ids.append((ext_id,))
                if self.pre_carve:
                    return (ext_id, "dev", question, choices_json, gold, rationale, meta)
            if self.min_train is None or b < self.min_train[0]:
                self.min_train = (b, ext_id, body)
        return (ext_id, split, question, choices_json, gold, rationale, meta)

    def batches(self, sources: Iterable[Iterable[tuple[int, dict]]], size: int) -> Iterator[tuple]:
        """(rows, their source row numbers, the carve ids they added) per `size` converted rows."""
        batch: list[tuple] = []
        numbers: list[int] = []
        convert = self.convert
        for source in sources:
            for row, rec in source:
                batch.append(convert(row, rec))
                numbers.append(row)
                if len(batch) >= size:
                    carve, self.carve_ids = self.carve_ids, []
                    yield batch, numbers, carve
                    batch, numbers = [], []
        if batch:
            carve, self.carve_ids = self.carve_ids, []
            yield batch, numbers, carve

    def _split(self, row: int, rec: dict, ext_id: str) -> str:
        col = self.cols["split"]
        if col:
            raw = rec.get(col)
        elif _INTERNAL_SPLIT in rec:
            raw = rec[_INTERNAL_SPLIT]
        else:
            return split_by_bucket(ext_id, *DEFAULT_SPLIT)
        split = SPLIT_ALIASES.get(raw) if raw.__class__ is str else None  # "train", "test": no normalizing
        if split is None:
            split = SPLIT_ALIASES.get(str(raw).strip().lower()) if raw is not None else None
        if split is None:
            raise self._err(row, col or "split", f"split '{raw}' is not one of train, dev (validation), test")
        return split


_MISSING = object()
_sha256 = hashlib.sha256
_from_bytes = int.from_bytes
_TWO_64 = 2.0**64
_BUCKET_PREFIX = f"{SPLIT_SEED}:".encode()
_SPLIT_SUFFIX = {s: b"\x00" + s.encode() for s in ("train", "dev", "test")}


def _row_hash(body: bytes, split: str) -> int:
    """A row's share of the content hash: sha256 of its fields' repr and its final split."""
    return int.from_bytes(hashlib.sha256(body + b"\x00" + split.encode()).digest(), "big")


def _final_hash(acc: int, n: int) -> str:
    return hashlib.sha256(f"{n}:{acc % 2**256:064x}".encode()).hexdigest()


def _has_dev(head: list[tuple[int, dict]], split_col: str | None) -> bool:
    """Whether the sample holds a dev row (a guess for `pre_carve`; never raises on bad values)."""
    for _, rec in head:
        raw = rec.get(split_col) if split_col else rec.get(_INTERNAL_SPLIT)
        if raw is not None and SPLIT_ALIASES.get(str(raw).strip().lower()) == "dev":
            return True
    return False


# A sample whose golds are at least this share numbers is a numeric data set: its non-numeric golds are
# named and the import stops, rather than the whole set silently becoming free text (issue 11.11). Below it
# (most golds are words) the set is free text, as a QA set with a few numeric answers should be.
MOSTLY_NUMERIC = 0.5
_NAMED_ROWS = 3  # offending rows named in the error; the rest are counted


def _non_numeric_golds(head: list[tuple[int, dict]], acol: str | None) -> tuple[list[tuple[int, Any]], int]:
    """(row, gold) of each non-empty gold in the sample that is not a number, and the number of non-empty golds.

    Empty golds and numbers Python will not convert are left to the converter, which names them itself."""
    bad, n = [], 0
    for row, rec in head:
        gold = rec.get(acol) if acol else None
        if gold is None or (gold.__class__ is str and not gold.strip()):
            continue
        n += 1
        if gold.__class__ is str and not any(ch.isdigit() for ch in gold):
            bad.append((row, gold))  # no digit, no number: spares a free-text sample the full parse
            continue
        try:
            answers.normalize_gold(gold, answers.NUMERIC, None)
        except AnswerParseError:
            bad.append((row, gold))
        except ValueError:
            pass
    return bad, n


def _numeric_gold_error(head: list[tuple[int, dict]], acol: str | None, label: str,
                        explicit: bool) -> DataImportError | None:
    """The error that stops a (mostly) numeric import at its non-numeric golds, naming the first rows of the
    sample and the way out; None when the sample has none (or, detected, is mostly words: free text)."""
    bad, n = _non_numeric_golds(head, acol)
    if not bad or (not explicit and (n - len(bad)) < MOSTLY_NUMERIC * n):
        return None

    def show(v: Any) -> str:
        text = repr(v) if isinstance(v, str) else repr(str(v))
        return text if len(text) <= 40 else text[:37] + "...'"

    (row, first), rest = bad[0], bad[1:]
    more = ", ".join(f"row {r} {show(v)}" for r, v in rest[:_NAMED_ROWS - 1])
    if len(rest) > _NAMED_ROWS - 1:
        more += f" and {len(rest) - (_NAMED_ROWS - 1)} more"
    why = ("the task type is numeric" if explicit else
           f"{n - len(bad)} of the first {n} golds are numbers, so this looks like a numeric data set")
    return DataImportError(
        f"the gold answer does not parse as numeric: {show(first)}" + (f" (also {more})" if more else "")
        + f"; {why}. Fix the rows, or import the golds as text with --task-type free_text "
        "(Data page: Task type 'free_text')", file=label, row=row, column=acol)


def _task_type_column(head: list[tuple[int, dict]]) -> str | None:
    values = {str(r.get("task_type")) for _, r in head if r.get("task_type") is not None}
    if len(values) == 1 and (v := values.pop()) in answers.TASK_TYPES:
        return v
    return None


# ------------------------------------------------------------------ the import

def import_records(conn: sqlite3.Connection, src: RecordSource, *, name: str,
                   columns: ColumnMap | None = None, task_type: str | None = None) -> ImportResult:
    """Import rows from `src` as dataset `name`, all or nothing; see the module docstring for the rules."""
    if not name or not name.strip():
        raise DataImportError("the dataset needs a name; pass --name NAME", file=src.label)
    if task_type is not None and task_type not in answers.TASK_TYPES:
        raise DataImportError(f"unknown task type '{task_type}'; use one of {', '.join(answers.TASK_TYPES)}",
                              file=src.label)
    it = iter(src.records)
    head = list(islice(it, DETECT_SAMPLE))
    if not head:
        raise DataImportError("there are no rows to import (the file is empty)", file=src.label)
    keys: list[str] = []
    for _, rec in head[:50]:
        keys.extend(k for k in rec if k not in keys)
    cols = resolve_columns(columns, keys, src.label)
    detected = None
    has_choices = False
    if task_type is None:
        task_type = _task_type_column(head)
    if task_type is None:
        has_choices = bool(cols["choices"]) and any(r.get(cols["choices"]) not in (None, "", []) for _, r in head)
        try:
            task_type = detected = answers.detect_task_type([r.get(cols["answer"]) for _, r in head], has_choices)
        except ValueError as e:  # e.g. a gold of more than 4300 digits, which Python will not convert
            raise DataImportError(f"a gold answer cannot be read ({e}); fix the row, or name the task type "
                                  "with --task-type", file=src.label, column=cols["answer"]) from None
    # Detected as free text but at least half numbers: a numeric set with odd golds; stop and name them.
    if detected == answers.FREE_TEXT and not has_choices:
        if (err := _numeric_gold_error(head, cols["answer"], src.label, explicit=False)) is not None:
            raise err
    split_from_source = bool(cols["split"]) or any(_INTERNAL_SPLIT in r for _, r in head[:1])
    conv = _Converter(cols, task_type, src.label, split_from_source,
                      pre_carve=split_from_source and not _has_dev(head, cols["split"]))
    parallel = (src.jsonl_path is not None and len(head) >= DETECT_SAMPLE
                and src.jsonl_path.stat().st_size >= PARALLEL_MIN_BYTES)
    if parallel:
        close = getattr(it, "close", None)
        if close is not None:
            close()  # the worker reads the rest of the file; release this reader's handle now

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
                    conn.execute(_BATCH_SQL, (ds_id, task_type, blob))
                except sqlite3.IntegrityError:
                    # The failing statement was undone as a whole: examples holds exactly the earlier batches.
                    _report_duplicate(conn, ds_id, orjson.loads(blob), batch_rows, cols["id"], src.label)
                    raise
                if carve:
                    conn.executemany("INSERT INTO temp.import_carve (ext_id) VALUES (?)", carve)

            rows = 0
            if parallel:
                # A large JSON Lines file: the rest of the file is converted in a worker process, block by
                # block, while this process writes (two blocks at most in flight).
                todo_cm = contextlib.closing(_parallel_batches(conv, head, src.jsonl_path))
            else:
                batches = _encoded(conv.batches((head, it), BATCH), cols, src.label)
                # A source larger than the detection sample is converted in a helper thread while this thread
                # writes the previous batch (SQLite runs without the GIL), two batches at most in flight.
                todo_cm = _prefetched(batches) if len(head) >= DETECT_SAMPLE else contextlib.nullcontext(batches)
            with todo_cm as todo:
                for blob, batch_rows, carve in todo:
                    rows += len(batch_rows)
                    if rows > MAX_ROWS:
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
                    acc = conv.acc - _row_hash(d, "train") + _row_hash(d, "dev")
                notes.append(f"no dev split: moved {carved} train rows to dev (seeded rule bucket(id) < {DEV_FRACTION})")
            elif conv.pre_carve and conv.n_carve:
                conn.execute(carve_sql, ("train", ds_id))  # a dev split after all: the pre-carved rows go back
            content_hash = _final_hash(acc, rows)
            if existing is not None and existing["content_hash"] == content_hash:
                raise _AlreadyImported(existing["id"])
            dup = conn.execute("SELECT id FROM datasets WHERE content_hash = ? AND id != ?",
                               (content_hash, ds_id)).fetchone()
            if dup:
                raise _AlreadyImported(dup["id"])
            if existing is not None:
                raise DataImportError(f"a dataset named '{name}' already exists with different content; "
                                      "import under another name with --name", file=src.label)
            meta = {"file": src.label, "rows": rows,
                    "columns": {f: c for f, c in cols.items() if c},
                    "task_type_detected": detected,
                    "split_rule": ("from the data" if split_from_source else
                                   f"bucket(id) < {DEFAULT_SPLIT[0]} train, < {DEFAULT_SPLIT[1]} dev, else test "
                                   f"(sha256 of '{SPLIT_SEED}:id')"),
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
            err = _numeric_gold_error(head, cols["answer"], src.label, explicit=detected is None)
            if err is not None and err.row == e.row:
                raise err from None
        raise
    result = _result(conn, ds_id)
    result.notes = notes
    return result


# One batch of converted rows goes in as ONE statement: a JSON array (orjson) unpacked by SQLite. Per-row
# work then stays in C (no Python parameter binding per row), the statement is atomic (a duplicate id
# undoes the whole batch) and the GIL is released for the whole batch (see `_prefetched`).
_BATCH_SQL = (f"INSERT INTO examples ({_COLS}) SELECT ?1, json_extract(value, '$[0]'), json_extract(value, '$[1]'),"
              " json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]'),"
              " json_extract(value, '$[5]'), ?2, json_extract(value, '$[6]') FROM json_each(?3)")


def _encoded(batches: Iterator[tuple], cols: dict[str, str | None], label: str) -> Iterator[tuple]:
    """(JSON array of the rows for `_BATCH_SQL`, row numbers, carve ids) per converted batch."""
    try:
        for batch, numbers, carve in batches:
            yield _encode(batch, numbers, cols, label), numbers, carve
    finally:
        batches.close()


def _encode(batch: list[tuple], numbers: list[int], cols: dict[str, str | None], label: str) -> bytes:
    try:
        return orjson.dumps(batch)
    except TypeError:
        raise _unencodable(batch, numbers, cols, label) from None


# ------------------------------------------------------------------ converting in a worker process

# The worker is a plain `python -c` child speaking pickle over its stdin/stdout, not a multiprocessing
# pool: it never imports the caller's __main__ (the app, a user's script without a __main__ guard), needs
# no fork server, semaphores or resource tracker, and is reaped (and its CPU time accounted) like any child.
_WORKER_CODE = ("import os, sys; out = os.fdopen(os.dup(1), 'wb'); os.dup2(2, 1); "  # stray prints go to stderr
                "from mirror_core.data.importing import _worker_main; _worker_main(sys.stdin.buffer, out)")
_DEAD = object()


def _worker_main(inp, out) -> None:
    """The worker process: answer each (spec, block, first_row) with `_convert_chunk`'s result, in order."""
    import pickle
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle; it ends this process
    pickle.dump("ready", out, protocol=5)
    out.flush()
    while True:
        try:
            msg = pickle.load(inp)
        except EOFError:
            return
        pickle.dump(_convert_chunk(*msg), out, protocol=5)
        out.flush()


class _Worker:
    """A conversion worker process: `send` blocks to it, `get` their results in the same order.

    A writer and a reader thread move the bytes, so the caller never blocks on a pipe (it would
    otherwise wait for the worker to finish a block before it could hand over the next one)."""

    def __init__(self) -> None:
        import os
        import subprocess

        root = str(Path(__file__).resolve().parents[2])  # where `mirror_core` is importable from
        env = dict(os.environ)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen([sys.executable, "-c", _WORKER_CODE], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env)
        self.ready = threading.Event()
        self._out: queue.Queue = queue.Queue()
        self._results: queue.Queue = queue.Queue()
        self._dead = False
        self._threads = [threading.Thread(target=self._write, name="mirror-import-send", daemon=True),
                         threading.Thread(target=self._read, name="mirror-import-recv", daemon=True)]
        for t in self._threads:
            t.start()

    def _write(self) -> None:
        import pickle

        stdin = self.proc.stdin
        try:
            while (msg := self._out.get()) is not None:
                pickle.dump(msg, stdin, protocol=5)
                stdin.flush()
        except (OSError, ValueError):  # the worker is gone; the reader reports it
            pass
        finally:
            with contextlib.suppress(OSError, ValueError):
                stdin.close()

    def _read(self) -> None:
        import pickle

        stdout = self.proc.stdout
        try:
            if pickle.load(stdout) == "ready":
                self.ready.set()
                while True:
                    self._results.put(pickle.load(stdout))
        except Exception:  # EOF (it exited or was killed), or a broken frame
            pass
        finally:
            self.ready.set()
            self._results.put(_DEAD)

    def send(self, spec: tuple, block: tuple[bytes, int]) -> None:
        self._out.put((spec, *block))

    def get(self):
        """The next result, or None once the worker has died (the caller converts that block itself)."""
        if self._dead:
            return None
        out = self._results.get()
        if out is _DEAD:
            self._dead = True
            return None
        return out

    @property
    def alive(self) -> bool:
        return not self._dead and self.proc.poll() is None

    def close(self, *, kill: bool) -> None:
        self._out.put(None)  # the writer closes stdin: the worker exits when it has nothing left
        if kill:
            self.proc.kill()
        try:
            self.proc.wait(timeout=30)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        for t in self._threads:
            t.join()
        self.proc.stdout.close()


def _start_worker() -> _Worker | None:
    """A conversion worker process, or None where none can be started."""
    try:
        return _Worker()
    except (OSError, ValueError, RuntimeError):
        return None


def _line_blocks(path: Path, skip_lines: int, size: int) -> Iterator[tuple[bytes, int]]:
    """(block of whole lines, its first line number) for the file after its first `skip_lines` lines.

    Lines are split on b"\\n" exactly as iterating the file in binary mode does; a block ends after a
    newline, except the file's last one when the file does not end with a newline."""
    with open(path, "rb") as f:
        for _ in range(skip_lines):
            f.readline()
        row = skip_lines + 1
        parts: list[bytes] = []  # the start of a line that has no newline yet
        while True:
            data = f.read(size)
            if not data:
                break
            cut = data.rfind(b"\n") + 1
            if cut == 0:  # a line longer than `size`: read on (joined once, so long lines stay linear)
                parts.append(data)
                if sum(map(len, parts)) > MAX_LINE_BYTES:
                    raise DataImportError(f"the line is longer than the limit of {MAX_LINE_BYTES // 2**20} MiB "
                                          "per row; shorten or remove it", file=path.name, row=row)
                continue
            head = data if cut == len(data) else data[:cut]
            block = b"".join((*parts, head)) if parts else head
            parts = [data[cut:]] if cut < len(data) else []
            yield block, row
            row += block.count(b"\n")
        if parts:
            yield b"".join(parts), row


_WORKER_CONVERTERS: dict[tuple, _Converter] = {}


def _convert_chunk(spec: tuple, block: bytes, first_row: int, conv: _Converter | None = None) -> tuple:
    """Parse and convert one block of JSONL lines (in the worker; here with `conv` when it is not up).

    Returns ((rows as a JSON array for `_BATCH_SQL`, their row numbers, carve ids, the converter's
    totals), None), or (None, (message, file, row, column)) for the first bad row: the same
    DataImportError the in-process path raises, rebuilt by the caller (it does not pickle as itself)."""
    if conv is None:
        conv = _WORKER_CONVERTERS.get(spec)
    if conv is None:  # in the worker: one converter per import (it keeps the gold memo between blocks)
        cols, task_type, label, split_from_source, pre_carve = spec
        _WORKER_CONVERTERS.clear()  # one import at a time per worker; keep the memo of the current one
        conv = _WORKER_CONVERTERS[spec] = _Converter(dict(cols), task_type, label, split_from_source, pre_carve)
    label = conv.label
    lines = block.split(b"\n")
    if block.endswith(b"\n"):
        lines.pop()
    last_has_nl = block.endswith(b"\n")
    n = len(lines)
    batch: list[tuple] = []
    numbers: list[int] = []
    append, number, convert, loads = batch.append, numbers.append, conv.convert, orjson.loads
    conv.carve_ids = []
    conv.take_totals()
    try:
        row = first_row
        for raw in lines:
            try:
                obj = loads(raw)
            except orjson.JSONDecodeError:
                obj = None
            if obj.__class__ is not dict:
                # The in-process reader sees each line with its newline (JSON error positions count it).
                full = raw + b"\n" if (row - first_row < n - 1 or last_has_nl) else raw
                obj = _jsonl_line_slow(full, row, label)
                if obj is None:
                    row += 1
                    continue
            append(convert(row, obj))
            number(row)
            row += 1
        blob = _encode(batch, numbers, conv.cols, label)
        if len(numbers) == n:  # no blank lines: send the row numbers as a range (cheaper to pass back)
            numbers = range(first_row, first_row + n)
    except DataImportError as e:
        return None, (str(e), e.file, e.row, e.column)
    return (blob, numbers, conv.carve_ids, conv.take_totals()), None


def _rebuilt_error(message: str, file: str | None, row: int | None, column: str | None) -> DataImportError:
    err = DataImportError(message)
    err.args = (message,)  # `message` already holds the "file ..., row ...: " prefix
    err.file, err.row, err.column = file, row, column
    return err


def _parallel_batches(conv: _Converter, head: list[tuple[int, dict]], path: Path) -> Iterator[tuple]:
    """(JSON rows, row numbers, carve ids) in file order: the detection sample converted here, then the
    rest of `path` converted in a worker process, `IN_FLIGHT` blocks ahead of the caller's writes.

    Until the worker is up (a tenth of a second or so) blocks are converted here, so its start costs
    little. Where no worker can be started (or it dies), the remaining blocks are converted here too:
    same rows, same hash, same errors. Every block's hash and split totals are folded into `conv` before
    its rows are handed out."""
    spec = (tuple(conv.cols.items()), conv.task_type, conv.label, conv.split_from_source, conv.pre_carve)
    local = _Converter(conv.cols, conv.task_type, conv.label, conv.split_from_source, conv.pre_carve)  # done here
    blocks = _line_blocks(path, head[-1][0], CHUNK_BYTES)
    worker = _start_worker()
    pending: deque = deque()  # (block, sent to the worker?), in file order
    finished = False
    try:
        for batch, numbers, carve in conv.batches((head,), BATCH):
            yield _encode(batch, numbers, conv.cols, conv.label), numbers, carve
        if worker is not None and not START_INLINE:
            worker.ready.wait()
        while True:
            if worker is not None and worker.ready.is_set() and worker.alive:
                while len(pending) < IN_FLIGHT and (block := next(blocks, None)) is not None:
                    worker.send(spec, block)
                    pending.append((block, True))
            if pending:
                block, sent = pending.popleft()
            else:
                block, sent = next(blocks, None), False
                if block is None:
                    break
            out = worker.get() if sent else None
            if out is None:  # not sent, or the worker died (killed, out of memory): convert it here
                out = _convert_chunk(spec, *block, conv=local)
            done, error = out
            if error is not None:
                raise _rebuilt_error(*error)
            blob, numbers, carve, totals = done
            conv.add_totals(totals)
            yield blob, numbers, carve
        finished = True
    finally:
        blocks.close()
        if worker is not None:
            worker.close(kill=not finished)


def _unencodable(batch: list[tuple], batch_rows: list[int], cols: dict[str, str | None],
                 label: str) -> DataImportError:
    """The error for a batch orjson would not encode: name the first row and column with such text."""
    fields = ("id", "split", "question", "choices", "answer", "rationale", None)  # converted row order
    for row, r in zip(batch_rows, batch):
        for name, value in zip(fields, r):
            try:
                orjson.dumps(value)
            except TypeError:
                column = (cols.get(name) or name) if name else "meta"
                return DataImportError("the text is not valid Unicode (it holds a lone surrogate such as "
                                       "\\ud800); fix or remove this value", file=label, row=row, column=column)
    return DataImportError("a row could not be encoded for the database", file=label)


@contextlib.contextmanager
def _prefetched(items: Iterator, depth: int = 2) -> Iterator[Iterator]:
    """Iterate `items` in a helper thread, `depth` items ahead; yields an iterator over them.

    Exceptions raised while producing are re-raised in the caller's thread. Leaving the block early
    (e.g. the caller failed) stops the helper and closes `items` (so its file is closed).
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(msg) -> bool:
        while not stop.is_set():
            try:
                q.put(msg, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((False, None))
        except BaseException as exc:  # handed to the consumer
            put((False, exc))
        finally:
            items.close()

    def consume() -> Iterator:
        while True:
            ok, value = q.get()
            if ok:
                yield value
            elif value is None:
                return
            else:
                raise value

    worker = threading.Thread(target=produce, name="mirror-import-convert", daemon=True)
    worker.start()
    try:
        yield consume()
    finally:
        stop.set()
        while worker.is_alive():
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()


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


def default_name(source: str) -> str:
    """The dataset name when none is given: the built-in's name, the file's stem, or the hub name."""
    if source.startswith("hf:"):
        return source[3:].replace("/", "_").replace(":", "_")
    p = Path(source)
    name = p.name
    for suffix in (".gz", ".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".tab", ".parquet", ".pq"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name or source


def import_source(conn: sqlite3.Connection, source: str, *, name: str | None = None,
                  columns: ColumnMap | None = None, task_type: str | None = None) -> ImportResult:
    """Import a built-in name, a file, a `save_to_disk` folder or `hf:NAME[:CONFIG]` (see module doc)."""
    from mirror_core.data import builtin

    if source in builtin.BUILTINS:
        if columns is not None and columns.given():
            raise DataImportError("column options do not apply to built-in sources", file=source)
        return builtin.import_builtin(conn, source, name=name, task_type=task_type)
    src = open_source(source, columns)
    return import_records(conn, src, name=name or default_name(source), columns=columns, task_type=task_type)


# ------------------------------------------------------------------ helpers for the Data page

def suggest_columns(keys: Sequence[str]) -> dict[str, str | None]:
    """The column the importer would pick for each field when none is named (None where none fits)."""
    keys = [k for k in keys if k != _INTERNAL_SPLIT]
    return {f: _find_candidate(f, keys) for f in FIELDS}


def preview(source: str, n: int = 5) -> tuple[list[str], list[dict]]:
    """(column names, first `n` rows) of a file or folder, to build a column mapping before importing."""
    src = open_source(source)
    rows = [rec for _, rec in islice(iter(src.records), n)]
    if not rows:
        raise DataImportError("there are no rows to import (the file is empty)", file=src.label)
    keys: list[str] = []
    for rec in rows:
        keys.extend(k for k in rec if k not in keys and k != _INTERNAL_SPLIT)
    return keys, rows


def save_upload(filename: str, data: bytes, home: str | None = None) -> Path:
    """Keep an uploaded file under MIRROR_HOME/uploads (streamed imports need a path); returns the path."""
    from mirror_core import config

    # Named by content hash, not by the uploaded name: a name over 255 bytes, two different files with one
    # name, or "....jsonl" cannot clash or lose the extension the reader is picked by.
    lower = Path(filename).name.lower()
    ext = next((e for e in UPLOAD_EXTENSIONS if lower.endswith(e)), "")
    folder = config.home(home) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()}{ext}"
    if not path.exists():
        tmp = path.with_name(path.name + f".{uuid.uuid4().hex}.part")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


UPLOAD_EXTENSIONS = tuple(sorted({b + g for b in (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".tab", ".parquet",
                                                  ".pq") for g in ("", ".gz")}, key=len, reverse=True))
