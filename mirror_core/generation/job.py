"""The "generate" job handler: builds the teachers and runs the pipeline, reporting progress and cost.

Keys come from the process environment (the app passes typed keys through the launched process's
environment; the CLI inherits the shell's), never from the config. Resuming runs the handler again: the
call cache answers what was answered, and 'pending' rows — sent but unanswered when the process died —
are sent again, so every request ends with exactly one recorded answer.
"""

from __future__ import annotations

import time

from mirror_core.generation import pipeline
from mirror_core.teachers.registry import make_teacher


def run(ctx) -> None:
    cfg = pipeline.GenConfig.from_dict(ctx.config)
    teachers = [make_teacher(spec, base_url=cfg.base_url, timeout_s=cfg.timeout_s) for spec in cfg.teachers]
    last = [0.0]

    def progress(done: int, total: int, note: str, cost: float) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.25 or done >= total:  # at most a few writes a second
            last[0] = now
            ctx.progress(done, total, note, cost)

    try:
        summary = pipeline.run(ctx.conn, cfg, teachers, run_id=ctx.run_id, should_stop=ctx.should_stop,
                               progress=progress, log=ctx.log)
    finally:
        for t in teachers:
            t.close()
    errors: dict[str, int] = {}
    for part in ("cots", "self_evals"):
        for k, v in summary.get(part, {}).get("by_status", {}).items():
            if k != "ok":
                errors[k] = errors.get(k, 0) + v
    done = sum(summary[p]["cached"] + summary[p]["sent"] for p in ("cots", "self_evals") if p in summary)
    total = sum(summary[p]["requests"] for p in ("cots", "self_evals") if p in summary)
    ctx.progress(done, total, "stopped" if summary.get("stopped") else
                 ("done" + (f", not ok: {errors}" if errors else "")), summary["cost_usd"])
    ctx.set_result(summary)
    ctx.log(f"generation {'stopped' if summary.get('stopped') else 'finished'}: {done}/{total} requests answered, "
            f"cost ${summary['cost_usd']:.4f}")


def launch(conn, cfg: dict, *, name: str | None = None, device: str = "cpu",
           keys_env: dict[str, str] | None = None) -> int:
    """Queue a generate job and start it with API keys in its process environment only (never the config)."""
    from mirror_core import jobs

    run_id = jobs.submit(conn, "generate", cfg, name=name, device=device, start=False)
    jobs.start_ready(conn, extra_env=keys_env or None)
    return run_id


def resume(conn, run_id: int, keys_env: dict[str, str] | None = None) -> None:
    """`jobs.resume` for a generate run, passing typed API keys through the relaunched process's environment."""
    from mirror_core import jobs

    jobs.resume(conn, run_id, extra_env=keys_env or None)
