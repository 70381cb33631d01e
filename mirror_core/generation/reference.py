"""The reference evaluator: a verdict per CoT from comparing its final answer with the gold answer.

It stands in for a teacher's self-evaluation where none exists (the PaLM release has no critiques, and
the offline SmolLM2 teacher's self-evaluations are weak): the verdict is `correct` or `wrong` with
confidence 1.0 and no critique text, stored as a `self_evals` row whose evaluator is 'reference' so Review,
snapshots and the Train page can say what it is. A student trained on these verdicts learns to predict
whether its own answer matches the gold — Mind's Mirror's verdict task without the teacher's critique.
CoTs whose correctness is unknown (no parsed answer is graded wrong; a gold that does not parse is unknown)
get no verdict. Idempotent: a CoT that already has a reference verdict is skipped.
"""

from __future__ import annotations

import sqlite3

from mirror_core import store

EVALUATOR = "reference"
EVALUATORS = ("teacher", EVALUATOR)


def write_verdicts(conn: sqlite3.Connection, rationale_ids: list[int]) -> dict[str, int]:
    """Reference verdicts for these CoTs; returns {"written", "already", "unknown"} counts."""
    written = already = unknown = 0
    ts = store.now()
    with store.transaction(conn):
        for i in range(0, len(rationale_ids), 500):
            chunk = rationale_ids[i:i + 500]
            q = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT r.id, r.correct, EXISTS(SELECT 1 FROM self_evals s WHERE s.rationale_id = r.id"
                f" AND s.evaluator = ?) AS has FROM rationales r WHERE r.id IN ({q})", (EVALUATOR, *chunk)).fetchall()
            for r in rows:
                if r["has"]:
                    already += 1
                elif r["correct"] is None:
                    unknown += 1
                else:
                    conn.execute(
                        "INSERT INTO self_evals (rationale_id, evaluator, call_id, sample_index, critique, verdict,"
                        " confidence, parse_status, created_at) VALUES (?, ?, NULL, 0, '', ?, 1.0, 'ok', ?)",
                        (r["id"], EVALUATOR, "correct" if r["correct"] else "wrong", ts))
                    written += 1
    return {"written": written, "already": already, "unknown": unknown}
