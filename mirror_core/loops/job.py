"""Job kind "loop": `run(ctx)` runs the loop `ctx.config["loop"]` (elad | mapd | critic) with its settings.

Every step records its decision in `loop_rounds`, so resume (`jobs resume`) re-enters the handler and skips
finished steps; the summary (curve, win rates, counts) goes to `runs.result`.
"""

from __future__ import annotations

from mirror_core.loops.steps import LoopError

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


def validate(cfg: dict) -> dict:
    """Check a loop config before it is queued (raises LoopError with the fix)."""
    config_class(cfg.get("loop", ""))
    config_class(cfg["loop"]).from_dict(cfg)
    return cfg


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
