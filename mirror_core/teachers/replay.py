"""Replay: teacher outputs made elsewhere, imported from a JSON or JSONL file, so they can be reviewed
and trained on like any other teacher's.

Accepted layouts (question ids are the dataset's `ext_id`):
- JSON object  {"<id>": ["cot 1", "cot 2"], ...}  or  {"<id>": {"cots": [...], "self_evals": [[...], ...]}}
- JSON list / JSONL rows  {"id": "<id>", "cots": [...], "self_evals": [[...], ...]}  (also "question_id",
  "ext_id"; "cot"/"text" for a single CoT per row, rows with the same id add up)
A CoT may be a string or {"text": ..., "self_evals": [...]}; a self-evaluation a string or
{"text"|"critique": ..., "verdict": "correct|wrong|uncertain", "confidence": 0.8}.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mirror_core.errors import DataImportError
from mirror_core.teachers.base import Completion, Teacher, TeacherRequest

ID_FIELDS = ("id", "question_id", "ext_id", "qid")


def _eval_text(e: Any) -> str:
    if isinstance(e, str):
        return e
    text = str(e.get("text") or e.get("critique") or "").strip()
    verdict = e.get("verdict")
    if verdict and "evaluation result" not in text.lower():
        text += f"\nEvaluation result: the given answer is {verdict}"
    if e.get("confidence") is not None and "confidence:" not in text.lower():
        text += f"\nConfidence: {float(e['confidence']):.2f}"
    return text.strip()


def load_replay(path: str | Path) -> dict[str, dict[str, list]]:
    """{question id: {"cots": [text], "self_evals": [[text per eval] per CoT]}} from a replay file."""
    path = Path(path)
    if not path.exists():
        raise DataImportError("the replay file does not exist", file=str(path))
    raw = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in raw.splitlines() if line.strip()]
        else:
            rows = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DataImportError(f"not valid JSON ({exc.msg} at line {exc.lineno})", file=str(path)) from exc
    if isinstance(rows, dict):
        rows = [{"id": k, **(v if isinstance(v, dict) else {"cots": v})} for k, v in rows.items()]
    out: dict[str, dict[str, list]] = {}
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise DataImportError("each entry must be an object", file=str(path), row=n)
        qid = next((row[f] for f in ID_FIELDS if f in row), None)
        if qid is None:
            raise DataImportError(f"no question id (one of {', '.join(ID_FIELDS)})", file=str(path), row=n)
        cots = row.get("cots")
        if cots is None:
            single = row.get("cot", row.get("text"))
            if single is None:
                raise DataImportError("no 'cots' list and no 'cot' text", file=str(path), row=n, column="cots")
            cots = [single]
        if isinstance(cots, str):
            cots = [cots]
        entry = out.setdefault(str(qid), {"cots": [], "self_evals": []})
        evals = row.get("self_evals") or []
        for i, c in enumerate(cots):
            text = c if isinstance(c, str) else str(c.get("text", ""))
            own = [] if isinstance(c, str) else list(c.get("self_evals") or [])
            if not own and i < len(evals):
                own = evals[i] if isinstance(evals[i], list) else [evals[i]]
            entry["cots"].append(text)
            entry["self_evals"].append([_eval_text(e) for e in own])
    return out


class ReplayTeacher(Teacher):
    provider = "replay"
    max_in_flight = 1
    batch_size = 1024

    def __init__(self, path: str):
        self.model = str(path)
        self.data = load_replay(path)
        self._hash = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]

    @property
    def spec(self) -> str:
        return f"replay:{self.model}"

    @property
    def cache_id(self) -> str:
        return f"{self.model}#{self._hash}"  # an edited file is a different teacher to the cache

    def samples_available(self, meta: dict[str, Any]) -> int | None:
        entry = self.data.get(str(meta.get("ext_id")))
        if entry is None:
            return 0
        if meta.get("purpose") == "self_eval":
            i = meta.get("cot_index", 0)
            return len(entry["self_evals"][i]) if i < len(entry["self_evals"]) else 0
        return len(entry["cots"])

    def complete(self, requests: list[TeacherRequest]) -> list[Completion]:
        return [self._one(r) for r in requests]

    def _one(self, req: TeacherRequest) -> Completion:
        meta = req.meta or {}
        qid = str(meta.get("ext_id"))
        entry = self.data.get(qid)
        i = req.params.sample_index
        if meta.get("purpose") == "self_eval":
            i %= 1000  # the pipeline folds the CoT's index into a self-evaluation's sample index
        try:
            if entry is None:
                raise LookupError(f"question '{qid}' is not in the replay file {self.model}")
            if meta.get("purpose") == "self_eval":
                c = meta.get("cot_index", 0)
                text = entry["self_evals"][c][i]
            else:
                text = entry["cots"][i]
        except (LookupError, TypeError) as exc:
            msg = str(exc) if isinstance(exc, LookupError) and "replay" in str(exc) else \
                f"the replay file {self.model} has no sample #{i} for question '{qid}'"
            return Completion(status="error", error=msg, latency_s=0.0)
        return Completion(text=text, status="ok", finish_reason="replay", latency_s=0.0,
                          input_tokens=0, output_tokens=len(text.split()), raw={"replay": self.model})
