"""The evaluate stage's public face: `Config` (EvalConfig), `validate`, `submit` and `run(ctx)`, the job kind "eval".

The CLI's `eval` and the Evaluate page both queue through `submit`, so both refuse a bad config with the
same sentence before a job exists. The job evaluates a train run's student on a split; it is resumable
(stored predictions are skipped).
"""

from __future__ import annotations

from typing import Any

from mirror_core import jobs
from mirror_core.errors import EvaluationError
from mirror_core.evaluation.metrics import HEADLINE, metric
from mirror_core.evaluation.runner import EvalConfig, dataset_of, evaluate, select_examples

# The headline numbers (metrics.HEADLINE) are logged and written to the metrics table. Any may be None: no
# ECE, Brier or AUROC for a student never trained to self-evaluate (issue 11.9), no AUROC when all answers
# are right or all wrong.
_LOGGED = ("ece", "brier", "auroc")  # after accuracy, in the one-line summary


def fmt(value: Any) -> str:
    """A metric for the log: three decimals, or 'n/a' for a metric that does not apply (None)."""
    return "n/a" if value is None else f"{value:.3f}"


Config = EvalConfig


def validate(conn, cfg: EvalConfig | dict[str, Any]) -> EvalConfig:
    """The config once every check that can fail before evaluating has passed: the config itself, the train
    run exists, is a train run and has not failed, and the dataset to evaluate on has the split's questions."""
    cfg = cfg if isinstance(cfg, EvalConfig) else EvalConfig.from_dict(cfg)
    train = jobs.get(conn, cfg.train_run)
    if train["kind"] != "train":
        raise EvaluationError(f"Run {cfg.train_run} is a {train['kind']} run, not a train run; "
                              "`python -m mirror_core jobs list --kind train` lists them.")
    # A queued or running train run is fine: on the same device the eval waits for it in the queue.
    if train["status"] in ("failed", "cancelled"):
        raise EvaluationError(f"Train run {cfg.train_run} is {train['status']}; resume it "
                              f"(`python -m mirror_core jobs resume {cfg.train_run}`) and evaluate it once it has succeeded.")
    select_examples(conn, dataset_of(conn, train, cfg), cfg.split, 1)  # the split has questions to evaluate
    return cfg


def submit(conn, cfg: EvalConfig | dict[str, Any], *, device: str = "cpu", name: str | None = None,
           start: bool = True) -> int:
    """Validate, then queue an eval job of the config's train run; returns the run id."""
    cfg = validate(conn, cfg)
    train = jobs.get(conn, cfg.train_run)
    return jobs.submit(conn, "eval", cfg.to_dict(), name=name or f"eval of run {cfg.train_run} on {cfg.split}",
                       snapshot_id=train["snapshot_id"], parent_run_id=cfg.train_run, device=device, start=start)


def run(ctx) -> None:
    cfg = EvalConfig.from_dict(ctx.config)
    ctx.progress(0, None, f"loading run {cfg.train_run}")
    result = evaluate(ctx.conn, ctx.run_id, cfg, progress=lambda d, t, note: ctx.progress(d, t, note),
                      log=ctx.log, check_stop=ctx.check_stop)
    # None stays None: the result JSON stores it as null, and the metrics table (value NOT NULL) simply
    # has no row for it, rather than a 0 that would read as a perfect calibration.
    ctx.set_result(result)
    ctx.metric(0, **{k: result[k] for k in HEADLINE if result.get(k) is not None})
    ctx.log(f"{metric('accuracy').label} {fmt(result.get('accuracy'))} on {result['n']} {cfg.split} examples, "
            + ", ".join(f"{metric(k).label} {fmt(result.get(k))}" for k in _LOGGED)
            + ("" if result.get("self_eval_trained", True) else " (self-evaluation not trained)"))
