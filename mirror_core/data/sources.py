"""Sources: open a file, a Hugging Face `datasets` folder or `hf:NAME[:CONFIG]` and read its records.

A source is read as a stream of (row number, record dict) pairs (`RecordSource.records`), so memory
stays flat in the file size; a JSON *list* file is the exception, it is parsed whole. JSON Lines are
decoded with orjson; a line orjson refuses goes through the standard library, which keeps its exact
result and error messages. Readers check what they can know alone (UTF-8, JSON syntax, CSV field counts,
`MAX_LINE_BYTES`) and name the file and row; what a record means is `rows.py`'s business. A source
that carries its split (a `DatasetDict`, a JSON object of split lists) sets `mapping.SOURCE_SPLIT`.

Also here: `preview` and `save_upload`, which the Data page uses before an import, and `default_name`.
The built-in offline sources are in `builtin.py`.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator

import orjson

from mirror_core.data.mapping import SOURCE_SPLIT, ColumnMap, find_candidate
from mirror_core.data.rows import SPLIT_ALIASES
from mirror_core.errors import DataImportError

# Documented limit (docs/ARCHITECTURE.md, Data): a longer line fails fast with a DataImportError.
MAX_LINE_BYTES = 64 * 2**20


@dataclass
class RecordSource:
    """Rows to import: (row number, record dict) pairs plus how to name them in messages and the store."""

    label: str                      # shown in errors: the file or folder name
    source: str                     # stored in datasets.source
    records: Iterable[tuple[int, dict]]
    meta: dict = field(default_factory=dict)


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
            data = [dict(r, **{SOURCE_SPLIT: k}) for k, rows in lists.items() for r in rows
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
                rec[SOURCE_SPLIT] = split
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
            col = answer_column or find_candidate("answer", list(ds.column_names or []))
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
        raise DataImportError("no such file or folder", file=source)
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
    return RecordSource(label, str(path.resolve()), reader(path, label))


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



def preview(source: str, n: int = 5) -> tuple[list[str], list[dict]]:
    """(column names, first `n` rows) of a file or folder, to build a column mapping before importing."""
    src = open_source(source)
    rows = [rec for _, rec in islice(iter(src.records), n)]
    if not rows:
        raise DataImportError("there are no rows to import (the file is empty)", file=src.label)
    keys: list[str] = []
    for rec in rows:
        keys.extend(k for k in rec if k not in keys and k != SOURCE_SPLIT)
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
