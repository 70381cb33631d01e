"""The experiment stage's public face: `Config` (ExperimentConfig), `validate`, `submit` and `run(ctx)`, the job
kind "experiment" — the method comparison of `evaluation.experiment` as one background job.

The CLI's `experiment` queues through `submit` like every other stage, so a bad method, training option,
student or teacher is one sentence before anything runs, not a failure an hour in. The job holds no device
itself (it is not in `jobs.DEVICE_KINDS`): it coordinates. Its generate, train and eval runs go through those
stages' own `submit` and queue on the experiment's device one at a time, as any other job would, so the
Jobs view shows each. Stopping the experiment stops the child job it is waiting on; resuming it reuses every
child that finished and resumes the stopped one (`experiment._reuse_or_submit`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mirror_core import jobs
from mirror_core.configs import check_options, config_from_dict, option
from mirror_core.errors import EvaluationError
from mirror_core.evaluation.experiment import METHODS, check_methods


@dataclass
class ExperimentConfig:
    """What an experiment job reads from its config; the CLI's `experiment` flags are made from these fields."""

    out: str = option("folder for the table (CSV, JSON, Markdown), per-example diffs and plots")
    dataset: str = option("data set to import and compare on: a built-in name, a file or hf:NAME", "gsm8k")
    student: str = option("student every method trains: smollm2, tiny, t5-small, a hub id or a local folder",
                          "smollm2")
    teacher: str = option("teacher spec that writes the CoTs and self-evaluations (fake, palm, local, openai:MODEL, ..)",
                          "fake")
    n_cots: int | None = option("CoTs per question (None: all a replay teacher holds)", 2, lo=1)
    k_evals: int | None = option("self-evaluations per CoT (None: all a replay teacher holds)", 1, lo=0)
    evaluator: str = option("who judges each teacher CoT: its teacher's self-evaluations, or 'reference' "
                            "(the CoT's answer vs the gold)", "teacher", choices=("teacher", "reference"))
    methods: list[str] = option("methods to compare: " + ", ".join(METHODS),
                                default_factory=lambda: list(METHODS))
    max_steps: int = option("optimizer steps of every method (two-stage: this many per stage)", 200, lo=0)
    train_limit: int | None = option("training questions the teacher answers (None: the whole train split)", None,
                                     lo=1)
    dev_limit: int = option("dev questions the teacher answers, for model selection", 32, lo=0)
    limit: int = option("test questions each student is evaluated on", 200, lo=1)
    samples: int = option("CoTs sampled per test question for the votes (1: greedy only)", 1, lo=1)
    max_new_tokens: int = option("longest generated answer at evaluation, in tokens", 256, lo=1)
    seed: int = option("seed of teacher sampling, training and evaluation, the same for every method", 0)
    device: str = option("device every child job runs on: cpu, cuda:N", "cpu")
    train_options: dict[str, Any] = option("any other training setting, the same for every method "
                                           "(fields as in `train --help`), e.g. {\"lr\": 1e-4}",
                                           default_factory=dict)

    def __post_init__(self) -> None:
        check_options(self, EvaluationError)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ExperimentConfig":
        return config_from_dict(cls, d, label="experiment", error=EvaluationError)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Config = ExperimentConfig


def validate(conn, cfg: ExperimentConfig | dict[str, Any]) -> ExperimentConfig:
    """The config once every check that can fail before the first child job has passed: the methods are known,
    each method's training config is valid with the shared options, the student loads, the teacher spec parses,
    the data set can be imported and the output folder can be written."""
    from mirror_core.data import builtin
    from mirror_core.students import specs
    from mirror_core.teachers.registry import TeacherSpec
    from mirror_core.training.config import TrainConfig

    cfg = cfg if isinstance(cfg, ExperimentConfig) else ExperimentConfig.from_dict(cfg)
    if not cfg.methods:
        raise EvaluationError(f"An experiment needs at least one method; choose from {', '.join(METHODS)}.")
    check_methods(cfg.methods)
    shared = {"method", "schedule", "student", "max_steps", "seed"} & set(cfg.train_options)
    if shared:
        raise EvaluationError(f"Training option(s) {', '.join(sorted(shared))} are the experiment's own settings "
                              "(method, student, steps, seed); set them as such, not as training options.")
    for method in cfg.methods:  # a typo in a training option fails here, naming the field
        TrainConfig.from_dict({"student": cfg.student, **METHODS[method], "max_steps": cfg.max_steps,
                               "seed": cfg.seed, **cfg.train_options})
    cfg.student = specs.check_student_spec(cfg.student)
    TeacherSpec.parse(cfg.teacher)
    if not (cfg.dataset in builtin.BUILTINS or cfg.dataset.startswith("hf:") or Path(cfg.dataset).expanduser().exists()):
        raise EvaluationError(f"Data set '{cfg.dataset}' is neither a built-in ({', '.join(builtin.BUILTINS)}), "
                              "a file or folder, nor hf:NAME.")
    try:
        Path(cfg.out).expanduser().mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EvaluationError(f"Cannot write the experiment's folder {cfg.out}: {exc.strerror}; pick another --out.") from None
    return cfg


def submit(conn, cfg: ExperimentConfig | dict[str, Any], *, name: str | None = None, start: bool = True) -> int:
    """Validate, then queue the experiment job; returns its run id. Its children run on `cfg.device`."""
    cfg = validate(conn, cfg)
    cfg.out = str(Path(cfg.out).expanduser().resolve())  # the job process may start elsewhere
    return jobs.submit(conn, "experiment", cfg.to_dict(), name=name or f"experiment {cfg.dataset} {cfg.student}",
                       device=cfg.device, start=start)


def run(ctx) -> None:
    from mirror_core.evaluation.experiment import run_experiment

    cfg = ExperimentConfig.from_dict(ctx.config)
    waiting_on: list[int] = []

    def on_poll(row) -> None:
        # The experiment is asked to stop: stop the child it waits on (it is resumed on the experiment's resume).
        if ctx.should_stop():
            if row["status"] not in jobs.TERMINAL:
                jobs.stop(ctx.conn, row["id"])
            ctx.check_stop()
        if not waiting_on or waiting_on[-1] != row["id"]:
            waiting_on.append(row["id"])
            ctx.log(f"waiting on run {row['id']} ({row['kind']} {row['name'] or ''})")

    fields = {f.name for f in dataclasses.fields(ExperimentConfig)} - {"train_options"}
    summary = run_experiment(**{k: getattr(cfg, k) for k in fields}, train_overrides=cfg.train_options or None,
                             log=ctx.log, progress=lambda d, t, note: ctx.progress(d, t, note), on_poll=on_poll)
    ctx.set_result(summary)
    ctx.log(f"experiment written to {cfg.out}: " + ", ".join(
        f"{r['method']} {r['accuracy']:.3f}" for r in summary["table"] if r.get("accuracy") is not None))
