"""The loop stage's public face: `config_class(name)` (the Config of each loop), `validate`, `submit` and
`run(ctx)`, the job kind "loop". A loop config is a dict naming its loop (`"loop": "elad" | "mapd" |
"critic"`) and that loop's settings, read by the loop's own Config class.

The CLI's `loop` and the Loops page both queue through `submit`, so both refuse a bad config with the same
sentence before a job exists. `run(ctx)` runs the loop; every step records its decision in `loop_rounds`,
so resume (`jobs resume`) re-enters the handler and skips finished steps; the summary (curve, win rates,
counts) goes to `runs.result`.
"""

from __future__ import annotations

from typing import Any

from mirror_core import jobs
from mirror_core.loops.steps import LoopError, dataset_id
from mirror_core.students import specs
from mirror_core.teachers.registry import TeacherSpec

LOOPS = ("elad", "mapd", "critic")


def config_class(name: str):
    if name == "elad":
        from mirror_core.loops.elad import EladConfig
        return EladConfig
    if name == "mapd":
        from mirror_core.loops.mapd import MapdConfig
        return MapdConfig
    if name == "critic":
        from mirror_core.loops.critic_loop import CriticConfig
        return CriticConfig
    raise LoopError(f"Unknown loop '{name}'; choose one of {', '.join(LOOPS)}.")


def validate(conn, cfg: dict[str, Any]) -> dict[str, Any]:
    """The config to store, once every check that can fail before the loop runs has passed: the loop's own
    settings, each teacher spec, the student spec loads (a hub id offline must be cached; run:N needs a
    checkpoint) and the dataset exists — so a bad value is one sentence now, not a failed run later."""
    if not isinstance(cfg, dict):
        raise LoopError(f"A loop config is a mapping of settings with its 'loop', got {type(cfg).__name__}.")
    typed = config_class(cfg.get("loop", "")).from_dict(cfg)
    for spec in typed.teachers:
        TeacherSpec.parse(spec)  # bogus:zzz or run:999 is no teacher
    out = {**cfg, "student": specs.check_student_spec(typed.student)}
    dataset_id(conn, typed.dataset)
    return out


def submit(conn, cfg: dict[str, Any], *, device: str = "cpu", name: str | None = None, start: bool = True) -> int:
    """Validate, then queue a loop job; returns the run id."""
    cfg = validate(conn, cfg)
    return jobs.submit(conn, "loop", cfg, name=name or f"{cfg['loop']} {cfg['dataset']}", device=device, start=start)


def run(ctx) -> None:
    name = ctx.config.get("loop", "")
    cfg = config_class(name).from_dict(ctx.config)
    if name == "elad":
        from mirror_core.loops import elad as mod
    elif name == "mapd":
        from mirror_core.loops import mapd as mod
    else:
        from mirror_core.loops import critic_loop as mod
    ctx.log(f"loop {name}: dataset {cfg.dataset}, student {cfg.student}, teachers {', '.join(cfg.teachers)}, "
            f"budget {cfg.budget} calls, {cfg.rounds} round(s)")
    result = mod.run(ctx, cfg)
    ctx.set_result(result)
    ctx.log(f"loop {name} finished: {result}")
