"""Which student specs there are, and whether one can load — checked before a job is queued, so a typo
fails on the form or the command line with its fix instead of minutes later in a job's log.

A spec is a built-in name, a local folder, `run:N` (the checkpoint of train run N, found by `checkpoints`)
or a hub id. Nothing here loads a model."""

from __future__ import annotations

import os
from pathlib import Path

from mirror_core.errors import TrainingError
from mirror_core.students import checkpoints

BUILTIN_SPECS = ("smollm2", "local", "tiny", "t5-tiny", "t5-small", "t5-base")


def check_student_spec(spec: str | None, field: str = "Student") -> str:
    """Refuse a student spec that cannot load, before a job is queued; returns the stripped spec.

    Known: the built-in specs, an existing local folder, `run:N` of a train run with a checkpoint, or a
    hub id — which offline (HF_HUB_OFFLINE=1) must already be in the local Hugging Face cache."""
    s = (spec or "").strip()
    if not s:
        raise TrainingError(f"{field} is empty: use smollm2, tiny, a local folder or a hub id.")
    if s in BUILTIN_SPECS:
        return s
    if s.startswith("run:"):
        from mirror_core import config

        num = s[4:]
        if not num.isdigit():
            raise TrainingError(f"{field} '{s}': after run: comes a train run number, e.g. run:3.")
        rd = config.run_dir(int(num))
        if checkpoints.find(rd) is None:
            raise TrainingError(f"{field} '{s}': train run {num} has no checkpoint; pick a run that finished "
                                "training (the Train page lists them).")
        return s
    p = Path(s).expanduser()
    if p.exists():
        if not (p / "config.json").exists():
            raise TrainingError(f"{field} '{s}' is a folder without config.json; point it at a saved model folder.")
        return s
    if s.count("/") == 1 and not s.startswith((".", "/", "~")):
        if os.environ.get("HF_HUB_OFFLINE", "") in ("1", "true", "True"):
            from huggingface_hub import try_to_load_from_cache

            if not isinstance(try_to_load_from_cache(s, "config.json"), str):
                raise TrainingError(f"{field} '{s}' is not in the local Hugging Face cache and the hub is offline; "
                                    "use smollm2, tiny or a local folder.")
        return s
    raise TrainingError(f"{field} '{s}' is neither a built-in student ({', '.join(BUILTIN_SPECS)}), an existing "
                        "folder, run:N, nor a hub id like org/name.")
