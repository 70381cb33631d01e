"""The train stage's public face: `Config` (TrainConfig), `validate`, `submit` and `run(ctx)`, the job kind "train".

The CLI's `train` and the Train page both queue through `submit`, so both refuse a bad config with the
same sentence before a job exists. `run(ctx)` trains the run's snapshot with `ctx.config` (a TrainConfig dict).

Idempotent as the runner requires: when `checkpoints/last/` exists the loop resumes from it (same step,
optimizer, scheduler and RNG), and a finished run returns at once. With several ranks (several picked
GPUs, or `nproc` > 1) the job process runs `torchrun` in its own process group, so `jobs.stop` reaches
every rank; rank 0 reports to the store.
"""

from __future__ import annotations

import copy
import signal
import subprocess
from typing import Any

from mirror_core import jobs
from mirror_core.errors import TrainingError
from mirror_core.snapshots import get_snapshot
from mirror_core.students import specs
from mirror_core.training import launch
from mirror_core.training.config import TrainConfig

Config = TrainConfig


def validate(conn, cfg: TrainConfig | dict[str, Any], snapshot: str | int):
    """(config, snapshot row) once every check that can fail before training has passed: the config itself,
    the student spec loads (`students.specs.check_student_spec`), the snapshot exists and has training examples
    for the config's tasks. Raises the stage's typed error with the fix."""
    from mirror_core.training import data

    cfg = cfg if isinstance(cfg, TrainConfig) else TrainConfig.from_dict(cfg)
    cfg.student = specs.check_student_spec(cfg.student)
    snap = get_snapshot(conn, snapshot)
    # On a copy: require_data drops an untrainable critique task, which the job itself reports in its result.
    copy.copy(cfg).require_data(data.task_counts(data.load_items(conn, snap["id"]), cfg.tasks, "train"),
                                f"snapshot {snap['name']}")
    return cfg, snap


def submit(conn, cfg: TrainConfig | dict[str, Any], *, snapshot: str | int, device: str = "cpu",
           name: str | None = None, start: bool = True) -> int:
    """Validate, then queue a train job on the snapshot (name or id); returns the run id."""
    cfg, snap = validate(conn, cfg, snapshot)
    return jobs.submit(conn, "train", cfg.to_dict(), name=name or f"{cfg.method} {cfg.student} on {snap['name']}",
                       snapshot_id=snap["id"], device=device, start=start)


def run(ctx) -> None:
    cfg = TrainConfig.from_dict(ctx.config)
    row = ctx.conn.execute("SELECT snapshot_id, device FROM runs WHERE id = ?", (ctx.run_id,)).fetchone()
    if row["snapshot_id"] is None:
        raise TrainingError(f"Run {ctx.run_id} has no snapshot; submit it with --snapshot NAME.")
    from mirror_core.training import data

    items = data.load_items(ctx.conn, row["snapshot_id"])
    report = data_report(cfg, items, row["snapshot_id"])
    ctx.log(f"snapshot {row['snapshot_id']}: {len(items)} items; training tasks {report['tasks_trained']} "
            f"with {report['train_examples']} examples; CoTs {report['cots']} (left_out: no final answer of "
            f"their own, never given the gold)")
    nproc = launch.nproc_for(cfg, row["device"])
    if nproc > 1:
        _run_distributed(ctx, nproc)
        _add_to_result(ctx, report)
        return
    from mirror_core.training import loop

    ctx.log(f"config {cfg.to_dict()}")
    summary = loop.train(cfg, items, ctx, ctx.run_dir, snapshot_id=row["snapshot_id"])
    ctx.set_result({**loop.result_of(summary), **report})


def train_in_process(cfg: TrainConfig, items: list[dict[str, Any]], reporter, out_dir, *,
                     device: str | None = None) -> dict[str, Any]:
    """Train `items` (rows shaped like snapshot_items) into `out_dir` inside this process; the way in for a
    stage that trains within its own job (the loops). Resumes from out_dir's last checkpoint; `reporter`
    has log, progress, metric and should_stop. Returns the trainer's summary."""
    from mirror_core.training import loop

    return loop.train(cfg, items, reporter, out_dir, device=device)


def data_report(cfg: TrainConfig, items: list[dict[str, Any]], snapshot_id: int) -> dict[str, Any]:
    """Which tasks train on how many examples, and what became of the CoTs; refuses (TrainingError) when
    a task of the config has no training examples."""
    from mirror_core.training import data

    counts = data.task_counts(items, cfg.tasks, "train")
    cfg.require_data(counts, f"snapshot {snapshot_id}")
    dropped = getattr(cfg, "dropped_tasks", [])
    return {"tasks_trained": [t for t in cfg.tasks if counts[t]], "train_examples": counts,
            **({"tasks_dropped": {t: "no critique text in the snapshot (verdicts only)" for t in dropped}}
               if dropped else {}),
            "cots": data.cot_report(items, "train")}


def _add_to_result(ctx, extra: dict[str, Any]) -> None:
    from mirror_core import store

    row = ctx.conn.execute("SELECT result FROM runs WHERE id = ?", (ctx.run_id,)).fetchone()
    result = store.loads(row["result"]) if row and row["result"] else {}
    if result:
        ctx.set_result({**result, **extra})


def _run_distributed(ctx, nproc: int) -> None:
    cmd = launch.command(ctx.run_id, nproc)
    ctx.log(f"launching {nproc} ranks: {' '.join(cmd)}")
    # Same process group as this job (no new session): jobs.stop's killpg reaches torchrun and every rank.
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env=launch.env_for(ctx.home))
    previous = signal.signal(signal.SIGTERM, lambda *_: (ctx._stop.set(), proc.send_signal(signal.SIGTERM)))
    try:
        code = proc.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    if ctx.should_stop():
        return
    if code != 0:
        raise TrainingError(f"torchrun exited with code {code}; the log above shows the failing rank.")
