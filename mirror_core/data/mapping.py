"""Column mapping: which source column holds each field of an example, given or guessed by its usual names.

A mapping names at most one column per field (`FIELDS`); a field left unset is looked up among
`CANDIDATES`, case-insensitively, so most files need no mapping at all. A named column that is missing,
or no question/answer column at all, stops the import with the columns found and the likeliest match.
The Data page offers `suggest_columns` as the starting mapping for an upload.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Sequence

from mirror_core.errors import DataImportError

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
# The key a reader adds to each record when the source itself carries the split (a DatasetDict's keys, a
# JSON object of {"train": [...], "test": [...]}): never a user column, so never offered or mapped.
SOURCE_SPLIT = "__split__"


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


def find_candidate(fieldname: str, keys: Sequence[str]) -> str | None:
    """The first of the field's usual names (`CANDIDATES`) among `keys`, matched case-insensitively."""
    lower = {k.lower(): k for k in keys}
    for cand in CANDIDATES[fieldname]:
        if cand in lower:
            return lower[cand]
    return None


def resolve_columns(columns: ColumnMap | None, keys: Sequence[str], label: str) -> dict[str, str | None]:
    """Map each field to a source column: the given name (which must exist) or the first usual name found."""
    columns = columns or ColumnMap()
    keys = [k for k in keys if k != SOURCE_SPLIT]
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
            out[f] = find_candidate(f, keys)
    for f in ("question", "answer"):
        if out[f] is None:
            guesses = difflib.get_close_matches(f, keys, n=2, cutoff=0.4)
            hint = f" Did you mean {' or '.join(repr(g) for g in guesses)}?" if guesses else ""
            raise DataImportError(f"no {f} column found (looked for {', '.join(CANDIDATES[f][:5])}). "
                                  f"Columns found: {', '.join(keys) or 'none'}.{hint} Name it with --{f} COLUMN.",
                                  file=label, column=f)
    return out


def suggest_columns(keys: Sequence[str]) -> dict[str, str | None]:
    """The column the importer would pick for each field when none is named (None where none fits)."""
    keys = [k for k in keys if k != SOURCE_SPLIT]
    return {f: find_candidate(f, keys) for f in FIELDS}

