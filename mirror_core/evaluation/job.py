"""The `eval` job: evaluate a finished train run on a split; resumable (stored predictions are skipped)."""

from __future__ import annotations

from typing import Any

from mirror_core.evaluation.metrics import HEADLINE, metric
from mirror_core.evaluation.runner import EvalConfig, evaluate

# The headline numbers (metrics.HEADLINE) are logged and written to the metrics table. Any may be None: no
# ECE, Brier or AUROC for a student never trained to self-evaluate (issue 11.9), no AUROC when all answers
# are right or all wrong.
_LOGGED = ("ece", "brier", "auroc")  # after accuracy, in the one-line summary


def fmt(value: Any) -> str:
    """A metric for the log: three decimals, or 'n/a' for a metric that does not apply (None)."""
    return "n/a" if value is None else f"{value:.3f}"


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
