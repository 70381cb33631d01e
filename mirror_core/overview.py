"""What the home page shows: what the project holds, what is running, and the next step to take."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from mirror_core import jobs, store

# (stage, page file, condition query returning a count, text when nothing is there yet)
_STAGES = [
    ("import", "pages/1_Data.py", "SELECT COUNT(*) FROM datasets",
     "Import a data set. The built-in GSM8K (1,319 grade-school maths problems) needs no network."),
    ("generate", "pages/2_Generate.py", "SELECT COUNT(*) FROM rationales WHERE kind = 'cot'",
     "Have a teacher write several chains of thought per question, each self-evaluated."),
    ("snapshot", "pages/3_Review.py", "SELECT COUNT(*) FROM snapshots",
     "Review the CoTs and their self-evaluations, fix or reject the flawed ones, then freeze a snapshot."),
    ("train", "pages/4_Train.py", "SELECT COUNT(*) FROM runs WHERE kind = 'train'",
     "Train a student on the snapshot in the background."),
    ("evaluate", "pages/5_Evaluate.py", "SELECT COUNT(*) FROM runs WHERE kind = 'eval'",
     "Evaluate the student: accuracy and the calibration of its own self-evaluation."),
]


@dataclass
class NextStep:
    stage: str
    page: str
    text: str


def next_step(conn: sqlite3.Connection) -> NextStep:
    """The first stage of the flow that has nothing in it yet; then the loops."""
    for stage, page, sql, text in _STAGES:
        if conn.execute(sql).fetchone()[0] == 0:
            return NextStep(stage, page, text)
    return NextStep("loops", "pages/6_Loops.py",
                    "Compare students on the Evaluate page, or close the loop: active distillation, "
                    "peer review among teachers, or the teacher as critic.")


def active_runs(conn: sqlite3.Connection) -> list[dict]:
    """Queued and running jobs, after marking dead ones failed (so a crashed job never looks alive)."""
    jobs.reap(conn)
    return [dict(r) for r in conn.execute(
        "SELECT id, kind, name, status, progress_done, progress_total, progress_note, heartbeat_at"
        " FROM runs WHERE status IN ('queued', 'running') ORDER BY id")]


def recent_failures(conn: sqlite3.Connection, limit: int = 5) -> list[dict]:
    return [dict(r) for r in conn.execute(
        "SELECT id, kind, name, error, finished_at FROM runs WHERE status = 'failed' ORDER BY id DESC LIMIT ?",
        (limit,))]


def summary(conn: sqlite3.Connection) -> dict:
    return store.counts(conn)


def quickstart_svamp(conn: sqlite3.Connection) -> tuple[str, int]:
    """The home page's one click: import the built-in SVAMP and queue a generate job that replays the PaLM
    540B CoTs of its train questions (and all dev questions, for model selection) with reference verdicts.
    No teacher call is paid; the job takes seconds. Returns (import summary, generate run id)."""
    from mirror_core.data.importing import import_source
    from mirror_core.generation import job as gen_job
    from mirror_core.generation.pipeline import GenConfig, count_split

    result = import_source(conn, "svamp")
    cfg = GenConfig(dataset=result.name, teachers=["palm"], split="train",
                    dev_limit=count_split(conn, result.name, "dev"), evaluator="reference")
    run_id = gen_job.submit(conn, cfg, name="quick start: PaLM CoTs on SVAMP")
    return result.summary(), run_id
