"""Rows: one source record checked and converted into an `examples` row, and the rules that decide it.

- Task type: given, a `task_type` column holding one value, or detected from the first `DETECT_SAMPLE`
  golds. A sample at least `MOSTLY_NUMERIC` (half) numbers is numeric, and its non-numeric golds stop the
  import, the first rows named, with the way out (`--task-type free_text`); fewer numbers is free text
  (or yes/no).
- Gold answers are stored in canonical form (`answers.normalize_gold`); choices as a JSON list of texts;
  a multiple-choice gold as its letter. A GSM8K-style solution "steps ... #### 18" in the answer column
  gives the gold "18" and, when no rationale column is mapped, the steps as the gold rationale.
- Splits: a split column may say train/dev/test (or validation, val, eval, ...). Without one, each row
  goes to train/dev/test 80/10/10 by `bucket(ext_id)` (a seeded hash, so the same id always lands in the
  same split). Which train rows a dev carve would move (`bucket < DEV_FRACTION`) is decided here, while
  converting; the import (`importing.py`) carves only if no dev row turned up.
- The content hash is order-independent: a sum of per-row hashes over id, question, choices, gold,
  rationale, task type and final split (`Converter.convert`, `final_hash`). Extra columns are kept in each
  example's `meta` but do not enter the hash.
- A batch of converted rows is written as one JSON array unpacked by SQLite (`BATCH_SQL`, `encode`).

Every bad value raises a `DataImportError` naming the file, row and column.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable, Iterator

import orjson

from mirror_core import answers
from mirror_core.data.mapping import SOURCE_SPLIT
from mirror_core.errors import AnswerParseError, DataImportError

# Split names as sources spell them -> ours.
SPLIT_ALIASES = {"train": "train", "training": "train", "dev": "dev", "validation": "dev", "valid": "dev",
                 "val": "dev", "development": "dev", "test": "test", "testing": "test", "eval": "test",
                 "evaluation": "test"}
BATCH = 20000  # rows per INSERT statement (see BATCH_SQL)
_COLS = "dataset_id, ext_id, split, question, choices, answer, rationale, task_type, meta"
DETECT_SAMPLE = 1000  # rows read ahead to resolve the columns and detect the task type
SPLIT_SEED = "mirror-split-v1"
DEV_FRACTION = 0.10
# Without a split column: bucket < 0.8 -> train, < 0.9 -> dev, else test.
DEFAULT_SPLIT = (0.8, 0.9)


def bucket(ext_id: str, seed: str = SPLIT_SEED) -> float:
    """A number in [0, 1) fixed by the example id and the seed; drives every seeded split rule here."""
    digest = hashlib.sha256(f"{seed}:{ext_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_by_bucket(ext_id: str, cut_train: float, cut_dev: float, seed: str = SPLIT_SEED) -> str:
    """train below `cut_train`, dev below `cut_dev`, else test, by the id's `bucket`."""
    b = bucket(ext_id, seed)
    return "train" if b < cut_train else ("dev" if b < cut_dev else "test")


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


class Converter:
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
        self.skip = frozenset(mapped | {SOURCE_SPLIT, "task_type"})
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

    def convert(self, row: int, rec: dict) -> tuple:
        """One `examples` row without its constant columns: (ext_id, split, question, choices, answer,
        rationale, meta); see `BATCH_SQL`."""
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

        # Fold the row into the content hash (see row_hash; repr of a tuple of str/None is unambiguous
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
        elif SOURCE_SPLIT in rec:
            raw = rec[SOURCE_SPLIT]
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


def row_hash(body: bytes, split: str) -> int:
    """A row's share of the content hash: sha256 of its fields' repr and its final split."""
    return int.from_bytes(hashlib.sha256(body + b"\x00" + split.encode()).digest(), "big")


def final_hash(acc: int, n: int) -> str:
    return hashlib.sha256(f"{n}:{acc % 2**256:064x}".encode()).hexdigest()


def has_dev(head: list[tuple[int, dict]], split_col: str | None) -> bool:
    """Whether the sample holds a dev row (a guess for `pre_carve`; never raises on bad values)."""
    for _, rec in head:
        raw = rec.get(split_col) if split_col else rec.get(SOURCE_SPLIT)
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


def numeric_gold_error(head: list[tuple[int, dict]], acol: str | None, label: str,
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


def resolve_task_type(head: list[tuple[int, dict]], cols: dict[str, str | None], given: str | None,
                      label: str) -> tuple[str, str | None]:
    """(task type, the detected one or None): `given`, else a `task_type` column holding one value, else
    detected from the sample's golds and choices; a mostly numeric sample detected as free text stops."""
    detected = None
    has_choices = False
    task_type = given
    if task_type is None:
        task_type = _task_type_column(head)
    if task_type is None:
        has_choices = bool(cols["choices"]) and any(r.get(cols["choices"]) not in (None, "", []) for _, r in head)
        try:
            task_type = detected = answers.detect_task_type([r.get(cols["answer"]) for _, r in head], has_choices)
        except ValueError as e:  # e.g. a gold of more than 4300 digits, which Python will not convert
            raise DataImportError(f"a gold answer cannot be read ({e}); fix the row, or name the task type "
                                  "with --task-type", file=label, column=cols["answer"]) from None
    # Detected as free text but at least half numbers: a numeric set with odd golds; stop and name them.
    if detected == answers.FREE_TEXT and not has_choices:
        if (err := numeric_gold_error(head, cols["answer"], label, explicit=False)) is not None:
            raise err
    return task_type, detected


# One batch of converted rows goes in as ONE statement: a JSON array (orjson) unpacked by SQLite. Per-row
# work then stays in C (no Python parameter binding per row), the statement is atomic (a duplicate id
# undoes the whole batch) and the GIL is released for the whole batch (see `fastpath.prefetched`).
BATCH_SQL = (f"INSERT INTO examples ({_COLS}) SELECT ?1, json_extract(value, '$[0]'), json_extract(value, '$[1]'),"
              " json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]'),"
              " json_extract(value, '$[5]'), ?2, json_extract(value, '$[6]') FROM json_each(?3)")


def encoded(batches: Iterator[tuple], cols: dict[str, str | None], label: str) -> Iterator[tuple]:
    """(JSON array of the rows for `BATCH_SQL`, row numbers, carve ids) per converted batch."""
    try:
        for batch, numbers, carve in batches:
            yield encode(batch, numbers, cols, label), numbers, carve
    finally:
        batches.close()


def encode(batch: list[tuple], numbers: list[int], cols: dict[str, str | None], label: str) -> bytes:
    """A converted batch as the JSON array `BATCH_SQL` reads; text orjson refuses is named by row and column."""
    try:
        return orjson.dumps(batch)
    except TypeError:
        raise _unencodable(batch, numbers, cols, label) from None


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

