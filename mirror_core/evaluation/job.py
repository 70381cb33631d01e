"""The `eval` job: evaluate a finished train run on a split; resumable (stored predictions are skipped)."""

from __future__ import annotations

from mirror_core.evaluation.runner import EvalConfig, evaluate


def run(ctx) -> None:
    cfg = EvalConfig.from_dict(ctx.config)
    ctx.progress(0, None, f"loading run {cfg.train_run}")
    result = evaluate(ctx.conn, ctx.run_id, cfg, progress=lambda d, t, note: ctx.progress(d, t, note),
                      log=ctx.log, check_stop=ctx.check_stop)
    ctx.set_result(result)
    ctx.metric(0, **{k: result[k] for k in ("accuracy", "ece", "ece_mass", "brier", "auroc")
                     if result.get(k) is not None})
    ctx.log(f"accuracy {result['accuracy']:.3f} on {result['n']} {cfg.split} examples, ECE {result['ece']:.3f}")
