"""The generate stage's public face: `Config` (GenConfig), `validate`, `submit` and `run(ctx)`, the job kind
"generate". The CLI's `generate` and the Generate page both queue through `submit`, so both refuse a bad
config (an unknown teacher, a missing key, a dataset or split with no questions) with the same sentence.

`run(ctx)` builds the teachers and runs the pipeline, reporting progress and cost.

Keys come from the process environment (the app passes typed keys through the launched process's
environment; the CLI inherits the shell's), never from the config. Resuming runs the handler again: the
call cache answers what was answered, 'pending' rows — sent but unanswered when the process died —
are sent again (their lost attempts stay in the ledger as possibly billed, and the progress note says
"possibly billed twice: N"), and requests that failed in the earlier try are retried. A run whose work
ends with failed requests ends "finished with N failed" (status failed, exit 1), so a script notices.
"""

from __future__ import annotations

import time
from typing import Any

from mirror_core import jobs
from mirror_core.errors import IncompleteRunError
from mirror_core.generation import pipeline
from mirror_core.teachers import keys
from mirror_core.teachers.registry import make_teacher

Config = pipeline.GenConfig


def validate(conn, cfg: pipeline.GenConfig | dict[str, Any],
             keys_env: dict[str, str] | None = None) -> pipeline.GenConfig:
    """The config once every check that can fail before sending has passed: the config itself, each teacher
    spec, the questions it covers exist, and an API teacher has a key (typed ones come in `keys_env`, by
    environment variable name). The prompt template versions are fixed here, when the job is made."""
    cfg = cfg if isinstance(cfg, pipeline.GenConfig) else pipeline.GenConfig.from_dict(cfg)
    for spec in cfg.specs:  # parsed by GenConfig: an unknown teacher is refused there
        if spec.kind in keys.ENV_VARS:  # a server at --base-url may take no key
            keys.get_key(spec.kind, (keys_env or {}).get(keys.env_var(spec.kind)), required=cfg.base_url is None)
    examples = pipeline.config_examples(conn, cfg)
    if not cfg.templates:
        cfg.templates = pipeline.resolve_templates(conn, {e["task_type"] for e in examples})
    return cfg


def submit(conn, cfg: pipeline.GenConfig | dict[str, Any], *, name: str | None = None, device: str = "cpu",
           keys_env: dict[str, str] | None = None, start: bool = True) -> int:
    """Validate, then queue a generate job; API keys reach its process environment only, never the config."""
    cfg = validate(conn, cfg, keys_env)
    run_id = jobs.submit(conn, "generate", cfg.as_dict(), name=name or f"generate {cfg.dataset}/{cfg.split}",
                         device=device, start=False)
    if start:
        jobs.start_ready(conn, extra_env=keys_env or None)
    return run_id


def run(ctx) -> None:
    cfg = pipeline.GenConfig.from_dict(ctx.config)
    # A resume of a run that made requests before is asked to finish them: its failed requests go again.
    resumed = ctx.conn.execute("SELECT 1 FROM call_attempts WHERE run_id = ? LIMIT 1", (ctx.run_id,)).fetchone()
    if resumed is not None and not cfg.retry_failed:
        cfg.retry_failed = True
        ctx.log("resuming: requests that failed before are sent again")
    teachers = [make_teacher(spec, base_url=cfg.base_url, timeout_s=cfg.timeout_s) for spec in cfg.specs]
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
    # The total counts the work still owed: the self-evaluations of CoTs whose request failed.
    total = sum(summary[p]["requests"] for p in ("cots", "self_evals") if p in summary) \
        + summary.get("self_evals_owed", 0)
    failed = summary.get("failed", 0)
    twice = summary.get("possibly_billed_twice", 0)
    if summary.get("stopped"):
        note = "stopped"
    elif failed:
        note = f"finished with {failed} failed"
    else:
        note = "done" + (f", not ok: {errors}" if errors else "")
    if twice:
        note += f"; possibly billed twice: {twice}"
    ctx.progress(done, total, note, summary["cost_usd"])
    ctx.set_result(summary)
    ctx.log(f"generation {'stopped' if summary.get('stopped') else 'finished'}: {done}/{total} requests answered, "
            f"cost ${summary['cost_usd']:.4f}" + (f", possibly billed twice: {twice}" if twice else ""))
    if failed and not summary.get("stopped"):
        owed = summary.get("self_evals_owed", 0)
        raise IncompleteRunError(
            f"finished with {failed} failed of {done} requests" + (f" ({owed} self-evaluations owed)" if owed else "")
            + "; see the error table (`teacher_calls`), then resume the run to send the failed ones again.")


def resume(conn, run_id: int, keys_env: dict[str, str] | None = None) -> None:
    """`jobs.resume` for a generate run, passing typed API keys through the relaunched process's environment."""
    jobs.resume(conn, run_id, extra_env=keys_env or None)
