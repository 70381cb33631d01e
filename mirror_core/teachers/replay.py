"""Replay: teacher outputs made elsewhere, imported from a JSON or JSON Lines file (optionally gzipped), so
they can be reviewed and trained on like any other teacher's — and used by the loops (MAPD's feedback and
peer review).

Accepted layouts (question ids are the dataset's `ext_id`); the format is read from the content, not from
the file name (a JSON Lines file named `.json` is fine):
- JSON object  {"<id>": ["cot 1", "cot 2"], ...}  or  {"<id>": {"cots": [...], "self_evals": [[...], ...]}}
- JSON list / JSONL rows  {"id": "<id>", "cots": [...], "self_evals": [[...], ...]}  (also "question_id",
  "ext_id", "qid"; "cot"/"text" for a single CoT per row; rows with the same id add up)
- a wrapper {"teacher": "PaLM 540B", "outputs": <one of the above>}; rows may also carry "teacher".
A CoT is a string or {"text": ..., "self_evals": [...]}; a self-evaluation a string or
{"text"|"critique": ..., "verdict": "correct|wrong|uncertain", "confidence": 0.8} — the verdict and
confidence of an object are stored as given, the critique as written. A row may also hold what a
mistake-aware loop asks for: "feedback" (text, or a list: the teacher's explanation of a student's
mistake on that question) and "reviews" ({"<other teacher>": 4 or {"score": 4, "text": ...}}: the scores
this teacher gave the other teachers' rationales for the question).

The teacher's name (`teacher`) becomes its author ("replay:NAME"); without one the file path does.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

from mirror_core.errors import DataImportError
from mirror_core.teachers.base import Completion, Teacher, TeacherRequest

ID_FIELDS = ("id", "question_id", "ext_id", "qid")
VERDICTS = ("correct", "wrong", "uncertain")
PURPOSES = ("cot", "self_eval", "feedback", "review")


def _read_rows(path: Path) -> Any:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            raw = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataImportError(f"cannot read the replay file ({exc})", file=str(path)) from exc
    lines_by_name = path.name.endswith((".jsonl", ".jsonl.gz"))
    try:
        if not lines_by_name:
            return json.loads(raw)
    except json.JSONDecodeError as whole:
        if whole.msg != "Extra data":  # not several JSON values one after another: not JSON Lines either
            raise DataImportError(f"not valid JSON ({whole.msg} at line {whole.lineno})", file=str(path)) from whole
    rows = []
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DataImportError(f"not valid JSON Lines ({exc.msg})", file=str(path), row=n) from exc
    return rows


def _eval(e: Any, where: dict) -> dict:
    """A self-evaluation as {"text", "verdict", "confidence"} (verdict/confidence None when not given)."""
    if isinstance(e, str):
        return {"text": e, "verdict": None, "confidence": None}
    if not isinstance(e, dict):
        raise DataImportError(f"a self-evaluation must be text or an object, not {json.dumps(e)[:40]}", **where,
                              column="self_evals")
    text = e.get("text", e.get("critique"))
    verdict = e.get("verdict")
    if verdict is not None:
        verdict = str(verdict).strip().lower()
        verdict = "wrong" if verdict == "incorrect" else verdict
        if verdict not in VERDICTS:
            raise DataImportError(f"verdict '{e['verdict']}' is not one of {', '.join(VERDICTS)}", **where,
                                  column="verdict")
    conf = e.get("confidence")
    if conf is not None:
        try:
            conf = float(conf)
        except (TypeError, ValueError):
            conf = None
        if conf is None or not 0.0 <= conf <= 1.0:
            raise DataImportError(f"confidence {e['confidence']!r} is not a number within 0..1", **where,
                                  column="confidence")
    if text is None and verdict is None:
        raise DataImportError("a self-evaluation object needs a 'critique' (or 'text') or a 'verdict'", **where,
                              column="self_evals")
    return {"text": str(text or ""), "verdict": verdict, "confidence": conf}


def _review(v: Any, where: dict) -> dict:
    if isinstance(v, dict):
        score, text = v.get("score"), v.get("text")
    elif isinstance(v, str):
        score, text = None, v
    else:
        score, text = v, None
    if score is not None:
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 1 <= score <= 5:
            raise DataImportError(f"review score {score!r} is not a number from 1 to 5", **where, column="reviews")
        score = int(round(score))
    return {"text": "" if text is None else str(text), "score": score}


def parse_replay(rows: Any, file: str | None = None) -> tuple[str | None, dict[str, dict]]:
    """(teacher name or None, {question id: entry}) from parsed replay content. An entry holds "cots"
    [text], "self_evals" [[{text, verdict, confidence}] per CoT], "feedback" [text] and "reviews"
    {teacher: [{text, score}]}."""
    name = None
    if isinstance(rows, dict) and "outputs" in rows and set(rows) <= {"teacher", "outputs", "meta"}:
        name = rows.get("teacher")
        rows = rows["outputs"]
    if isinstance(rows, dict) and any(f in rows for f in ID_FIELDS) and \
            any(k in rows for k in ("cots", "cot", "text", "feedback", "reviews")):
        rows = [rows]  # one row (a JSON Lines file of one line)
    if isinstance(rows, dict):
        rows = [{"id": k, **(v if isinstance(v, dict) else {"cots": v})} for k, v in rows.items()]
    if not isinstance(rows, list):
        raise DataImportError("a replay file holds an object or a list of rows", file=file)
    out: dict[str, dict] = {}
    for n, row in enumerate(rows, 1):
        where = {"file": file, "row": n}
        if not isinstance(row, dict):
            raise DataImportError("each entry must be an object", **where)
        qid = next((row[f] for f in ID_FIELDS if f in row and row[f] is not None), None)
        if qid is None:
            raise DataImportError(f"no question id (one of {', '.join(ID_FIELDS)})", **where)
        if row.get("teacher") is not None:
            if name is not None and str(row["teacher"]) != str(name):
                raise DataImportError(f"teacher '{row['teacher']}' differs from '{name}' earlier in the file; "
                                      "one replay file holds one teacher", **where, column="teacher")
            name = str(row["teacher"])
        entry = out.setdefault(str(qid), {"cots": [], "self_evals": [], "feedback": [], "reviews": {}})
        cots = row.get("cots")
        if cots is None and ("cot" in row or "text" in row):
            cots = [row.get("cot", row.get("text"))]
        if isinstance(cots, str):
            cots = [cots]
        if cots is None:
            cots = []
        if not cots and "feedback" not in row and "reviews" not in row:
            raise DataImportError("no 'cots' list, no 'cot' text, no 'feedback' and no 'reviews'", **where,
                                  column="cots")
        if not isinstance(cots, list):
            raise DataImportError("'cots' must be a list of texts", **where, column="cots")
        evals = row.get("self_evals") or []
        for i, c in enumerate(cots):
            text = c.get("text") if isinstance(c, dict) else c
            if not isinstance(text, str):
                raise DataImportError(f"CoT #{i + 1} of question '{qid}' is {json.dumps(text)[:40]}, not text; "
                                      "give its text or leave it out", **where, column="cots")
            own = list(c.get("self_evals") or []) if isinstance(c, dict) else []
            if not own and i < len(evals):
                own = evals[i] if isinstance(evals[i], list) else [evals[i]]
            entry["cots"].append(text)
            entry["self_evals"].append([_eval(e, where) for e in own])
        fb = row.get("feedback")
        for f in ([] if fb is None else fb if isinstance(fb, list) else [fb]):
            text = f.get("text", f.get("feedback")) if isinstance(f, dict) else f
            if not isinstance(text, str):
                raise DataImportError(f"feedback of question '{qid}' must be text", **where, column="feedback")
            entry["feedback"].append(text)
        reviews = row.get("reviews") or {}
        if not isinstance(reviews, dict):
            raise DataImportError("'reviews' must map a teacher's name to a score", **where, column="reviews")
        for who, v in reviews.items():
            entry["reviews"].setdefault(str(who), []).extend(
                _review(x, where) for x in (v if isinstance(v, list) else [v]))
    return (str(name) if name is not None else None), out


def read_replay(path: str | Path) -> tuple[str | None, dict[str, dict]]:
    """(teacher name, entries) of a replay file; see `parse_replay`."""
    path = Path(path)
    if not path.exists():
        raise DataImportError("the replay file does not exist", file=str(path))
    return parse_replay(_read_rows(path), file=str(path))


def load_replay(path: str | Path) -> dict[str, dict]:
    """{question id: entry} of a replay file (see `parse_replay`)."""
    return read_replay(path)[1]


def _normalise(data: dict[str, dict]) -> dict[str, dict]:
    """Entries given in memory may use plain texts for self-evaluations and omit the loop fields."""
    out = {}
    for qid, e in data.items():
        cots = list(e.get("cots") or [])
        evals = [[x if isinstance(x, dict) and "text" in x and "verdict" in x else _eval(x, {"row": None})
                  for x in (se or [])] for se in (e.get("self_evals") or [])]
        evals += [[] for _ in range(len(cots) - len(evals))]
        out[str(qid)] = {"cots": cots, "self_evals": evals, "feedback": list(e.get("feedback") or []),
                         "reviews": dict(e.get("reviews") or {})}
    return out


class ReplayTeacher(Teacher):
    """Answers from stored outputs. `data` (entries as `parse_replay` makes them) may be given instead of
    a path; `name` is the teacher's display name (its author is then 'replay:NAME')."""

    provider = "replay"
    max_in_flight = 1
    batch_size = 1024

    def __init__(self, path: str | None = None, *, data: dict[str, dict] | None = None, name: str | None = None):
        if path is None and data is None:
            raise DataImportError("a replay teacher needs a file or its loaded outputs")
        file_name = None
        if data is None:
            file_name, data = read_replay(path)
        self.path = None if path is None else str(path)
        self.name = name or file_name
        self.model = self.name or self.path
        self.data = _normalise(data)

    @property
    def spec(self) -> str:
        return f"replay:{self.model}"

    @property
    def cache_id(self) -> str:
        # Not the file's hash: each request's key carries the output it gets (`content_key`), so an edited
        # file changes the edited outputs only.
        return self.model

    def ids(self) -> list[str]:
        return list(self.data)

    def _names(self, author: str | None) -> list[str]:
        """The ways a file may name the author of a reviewed rationale: its spec, or the spec's name part."""
        if not author:
            return []
        out = [author]
        if ":" in author:
            out.append(author.split(":", 1)[1])
            out.append(Path(author.split(":", 1)[1]).stem)
        return out

    def _lookup(self, meta: dict[str, Any], i: int) -> Any:
        """What the file holds for a request, or raises LookupError saying what is missing."""
        qid = str(meta.get("ext_id"))
        entry = self.data.get(qid)
        if entry is None:
            raise LookupError(f"question '{qid}' is not in the replay file of {self.spec}")
        purpose = meta.get("purpose") or "cot"
        if purpose == "self_eval":
            c = meta.get("cot_index", 0)
            evals = entry["self_evals"][c] if c < len(entry["self_evals"]) else []
            if i >= len(evals):
                raise LookupError(f"{self.spec} has no self-evaluation #{i + 1} of CoT #{c + 1} for question '{qid}'")
            return evals[i]
        if purpose == "feedback":
            if i >= len(entry["feedback"]):
                raise LookupError(f"{self.spec} has no feedback for question '{qid}'")
            return entry["feedback"][i]
        if purpose == "review":
            for n in self._names(meta.get("author")):
                got = entry["reviews"].get(n)
                if got:
                    return got[min(i, len(got) - 1)]
            raise LookupError(f"{self.spec} has no review of {meta.get('author')}'s rationale for question '{qid}'")
        if i >= len(entry["cots"]):
            raise LookupError(f"{self.spec} has no CoT #{i + 1} for question '{qid}'")
        return entry["cots"][i]

    @staticmethod
    def _index(req: TeacherRequest) -> int:
        i = req.params.sample_index
        if (req.meta or {}).get("purpose") == "self_eval":
            i %= 1000  # the pipeline folds the CoT's index into a self-evaluation's sample index
        return i

    def content_key(self, req: TeacherRequest) -> str:
        """A digest of the output this request gets: part of its cache key (see calls.request_hash)."""
        try:
            value = self._lookup(req.meta or {}, self._index(req))
        except LookupError:
            value = None
        return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]

    def samples_available(self, meta: dict[str, Any]) -> int | None:
        entry = self.data.get(str(meta.get("ext_id")))
        if entry is None:
            return 0
        purpose = meta.get("purpose") or "cot"
        if purpose == "self_eval":
            i = meta.get("cot_index", 0)
            return len(entry["self_evals"][i]) if i < len(entry["self_evals"]) else 0
        if purpose == "feedback":
            return len(entry["feedback"])
        if purpose == "review":
            return 1 if any(entry["reviews"].get(n) for n in self._names(meta.get("author"))) else 0
        return len(entry["cots"])

    def complete(self, requests: list[TeacherRequest]) -> list[Completion]:
        return [self._one(r) for r in requests]

    def _one(self, req: TeacherRequest) -> Completion:
        meta = req.meta or {}
        try:
            value = self._lookup(meta, self._index(req))
        except LookupError as exc:
            return Completion(status="error", error=str(exc), latency_s=0.0)
        raw: dict[str, Any] = {"replay": self.spec}
        if isinstance(value, dict) and "verdict" in value:
            text = value["text"]
            raw["self_eval"] = {"verdict": value["verdict"], "confidence": value["confidence"]}
        elif isinstance(value, dict) and "score" in value:
            text = value["text"]
            raw["review"] = {"score": value["score"]}
        else:
            text = value
        return Completion(text=text, status="ok", finish_reason="replay", latency_s=0.0,
                          input_tokens=0, output_tokens=len(text.split()), raw=raw)
