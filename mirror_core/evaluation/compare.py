"""Comparing evaluated runs: the runs table, per-example differences between two runs, CSV export.

An eval run's `result` holds its metrics; its config names the train run it evaluated, whose
checkpoint meta / config tell the method (which tasks it was trained on), the student and snapshot.
"""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path
from typing import Any

from mirror_core import snapshots, store
from mirror_core.errors import EvaluationError
from mirror_core.evaluation.runner import run_timing

_METHODS = {frozenset({"answer"}): "answer-only",
            frozenset({"answer", "cot"}): "step-by-step",
            frozenset({"answer", "cot", "verdict", "critique"}): "Mind's Mirror",
            frozenset({"answer", "cot", "verdict"}): "Mind's Mirror (no critique)"}
CATEGORIES = ("fixed", "broken", "both right", "both wrong")


def method_name(tasks: list[str] | None) -> str:
    """The method a task list stands for (answer-only, step-by-step, Mind's Mirror) or the tasks joined."""
    if not tasks:
        return "unknown"
    return _METHODS.get(frozenset(tasks), "+".join(tasks))


def teacher_cost(conn: sqlite3.Connection, snapshot_id: int | None) -> float:
    """US$ spent on the teacher calls behind a snapshot's rationales and their self-evaluations, as summed
    when it was frozen (snapshots.teacher_cost); 0 for a run with no snapshot."""
    if snapshot_id is None:
        return 0.0
    return snapshots.teacher_cost(conn, snapshot_id)


def _train_run_of(conn, eval_row) -> sqlite3.Row | None:
    cfg = store.loads(eval_row["config"]) or {}
    tid = cfg.get("train_run") or eval_row["parent_run_id"]
    return conn.execute("SELECT * FROM runs WHERE id = ?", (tid,)).fetchone() if tid else None


def runs_table(conn: sqlite3.Connection, include_unfinished: bool = True) -> list[dict[str, Any]]:
    """One row per eval run, newest first: method, student, snapshot, accuracy (+ interval), ECE, cost."""
    out = []
    costs: dict[int | None, float] = {}  # per snapshot: evals of one snapshot share it, and it scans the snapshot
    for r in conn.execute("SELECT * FROM runs WHERE kind = 'eval' ORDER BY id DESC"):
        if not include_unfinished and r["status"] != "succeeded":
            continue
        res = store.loads(r["result"]) or {}
        cfg = store.loads(r["config"]) or {}
        t = _train_run_of(conn, r)
        tcfg = store.loads(t["config"]) if t is not None else {}
        tasks = res.get("tasks") or (tcfg or {}).get("tasks") or _METHOD_TASKS.get((tcfg or {}).get("method"))
        snap_id = t["snapshot_id"] if t is not None else None
        snap = conn.execute("SELECT name FROM snapshots WHERE id = ?", (snap_id,)).fetchone() if snap_id else None
        vote = res.get("vote") or {}
        if snap_id not in costs:
            costs[snap_id] = teacher_cost(conn, snap_id)
        out.append({
            "eval_run": r["id"], "status": r["status"], "train_run": t["id"] if t is not None else None,
            "train_name": t["name"] if t is not None else None, "method": method_name(tasks),
            "student": res.get("student") or (tcfg or {}).get("student"), "snapshot": snap["name"] if snap else None,
            "split": cfg.get("split", "test"), "n": res.get("n"), "accuracy": res.get("accuracy"),
            "accuracy_lo": res.get("accuracy_lo"), "accuracy_hi": res.get("accuracy_hi"),
            "ece": res.get("ece"), "brier": res.get("brier"), "auroc": res.get("auroc"),
            "majority_accuracy": (vote.get("majority") or {}).get("accuracy"),
            "weighted_accuracy": (vote.get("weighted") or {}).get("accuracy"),
            "teacher_cost_usd": costs[snap_id],
            "train_seconds": run_timing(t) if t is not None else None,
            "eval_seconds": run_timing(r),
        })
    return out


def resolve_eval(conn: sqlite3.Connection, run_id: int) -> sqlite3.Row:
    """The eval run `run_id`, or the newest succeeded eval of train run `run_id`."""
    row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise EvaluationError(f"Run {run_id} does not exist; `python -m mirror_core jobs list --kind eval` lists evals.")
    if row["kind"] == "eval":
        return row
    if row["kind"] == "train":
        for ev in conn.execute("SELECT * FROM runs WHERE kind = 'eval' AND status = 'succeeded' ORDER BY id DESC"):
            if (store.loads(ev["config"]) or {}).get("train_run") == run_id:
                return ev
        raise EvaluationError(f"Train run {run_id} has no finished evaluation; run `python -m mirror_core eval "
                              f"--run {run_id}` first.")
    raise EvaluationError(f"Run {run_id} is a {row['kind']} run; compare eval runs or train runs.")


def _category(a: int, b: int) -> str:
    if a and b:
        return "both right"
    if not a and not b:
        return "both wrong"
    return "fixed" if b else "broken"


def example_diff(conn: sqlite3.Connection, run_a: int, run_b: int) -> list[dict[str, Any]]:
    """Per example predicted by both runs: A's and B's greedy answers and the category from A to B.

    "fixed": A wrong, B right; "broken": A right, B wrong. Each row names the teacher CoTs of that
    example that the runs' snapshots trained on (else every teacher CoT of the example) as rationale_ids.
    """
    a, b = resolve_eval(conn, run_a), resolve_eval(conn, run_b)
    snaps = [t["snapshot_id"] for t in (_train_run_of(conn, a), _train_run_of(conn, b)) if t is not None]
    rows = conn.execute(
        "SELECT e.id AS example_id, e.ext_id, e.question, e.answer AS gold, pa.answer AS a_answer,"
        " pa.correct AS a_correct, pa.confidence AS a_confidence, pa.self_verdict AS a_verdict,"
        " pb.answer AS b_answer, pb.correct AS b_correct, pb.confidence AS b_confidence,"
        " pb.self_verdict AS b_verdict"
        " FROM predictions pa JOIN predictions pb ON pb.example_id = pa.example_id AND pb.sample_index = 0"
        " JOIN examples e ON e.id = pa.example_id"
        " WHERE pa.run_id = ? AND pb.run_id = ? AND pa.sample_index = 0 ORDER BY e.id", (a["id"], b["id"])).fetchall()
    out = []
    for r in rows:
        d = dict(r)
        d["category"] = _category(int(r["a_correct"] or 0), int(r["b_correct"] or 0))
        ids = [x[0] for x in conn.execute(
            f"SELECT DISTINCT rationale_id FROM snapshot_items WHERE example_id = ? AND rationale_id IS NOT NULL"
            f" AND snapshot_id IN ({','.join('?' * len(snaps)) or 'NULL'})", (r["example_id"], *snaps))]
        if not ids:
            ids = [x[0] for x in conn.execute("SELECT id FROM rationales WHERE example_id = ? AND kind = 'cot'"
                                              " ORDER BY id", (r["example_id"],))]
        d["rationale_ids"] = ids
        out.append(d)
    if not out:
        raise EvaluationError(f"Eval runs {a['id']} and {b['id']} share no predicted examples; evaluate both on the "
                              "same split.")
    return out


def diff_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {c: sum(1 for r in rows if r["category"] == c) for c in CATEGORIES}


def export_csv(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Write rows (runs table or example diff) as CSV; lists are joined with spaces."""
    path = Path(path)
    if not rows:
        raise EvaluationError("Nothing to export: the comparison is empty.")
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = list(rows[0])
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: " ".join(map(str, v)) if isinstance(v, list) else v for k, v in r.items()})
    return path


def train_runs_ready(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Succeeded train runs that can be evaluated, newest first, with their method."""
    out = []
    for r in conn.execute("SELECT * FROM runs WHERE kind = 'train' AND status = 'succeeded' ORDER BY id DESC"):
        cfg = store.loads(r["config"]) or {}
        out.append({"id": r["id"], "name": r["name"], "snapshot_id": r["snapshot_id"],
                    "method": method_name(cfg.get("tasks") or _METHOD_TASKS.get(cfg.get("method"))),
                    "student": cfg.get("student")})
    return out


_METHOD_TASKS = {"mindsmirror": ["answer", "cot", "verdict", "critique"], "step-by-step": ["answer", "cot"],
                 "answer-only": ["answer"]}


def results_of(conn: sqlite3.Connection, eval_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The stored result JSON of each eval run that has one."""
    out = {}
    for i in eval_ids:
        row = conn.execute("SELECT result FROM runs WHERE id = ?", (i,)).fetchone()
        if row is not None and row["result"]:
            out[i] = store.loads(row["result"])
    return out
