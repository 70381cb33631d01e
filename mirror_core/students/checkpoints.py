"""Checkpoints of a train run: `checkpoints/best/` (chosen on dev) and `checkpoints/last/` (for resume).

Each is a `save_pretrained` folder (model + tokenizer; with LoRA the adapter only) plus
`mirror_meta.json` = {"student", "arch", "format_version", "tasks", "snapshot_id", "step", ...}; `last/`
also holds `trainer_state.pt` (optimizer, scheduler, RNG, step). A folder is written next to its final
place and renamed into it, so a job killed mid-save leaves the previous checkpoint intact.

This is the one module that knows the layout: training writes through it, evaluation, the loops and the
pages find and load checkpoints through it. The layout functions need no torch; building a model
(`load_model`) imports torch and transformers inside the call.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

from mirror_core.errors import TrainingError
from mirror_core.students.loading import base_model

META = "mirror_meta.json"
STATE = "trainer_state.pt"
BEST = "best"  # the lowest dev loss of the final stage: what evaluation and the loops load by default
LAST = "last"  # the newest, with the trainer state: where a resume starts


def ckpt_dir(run_dir: Path | str, name: str) -> Path:
    return Path(run_dir) / "checkpoints" / name


def existing(path: Path) -> Path | None:
    """The checkpoint at `path`, or the previous one when a save was cut between its two renames."""
    path = Path(path)
    if (path / META).exists():
        return path
    old = path.with_name(f".{path.name}.old")
    return old if (old / META).exists() else None


def load_meta(path: Path) -> dict[str, Any]:
    return json.loads((Path(path) / META).read_text())


def find(run_dir: Path | str, which: str | None = None) -> Path | None:
    """The checkpoint a train run offers: `best/` if present, else `last/` (only `which` when given)."""
    for name in [which] if which else [BEST, LAST]:
        path = existing(ckpt_dir(run_dir, name))
        if path is not None:
            return path
    return None


def unwrap(model):
    """The plain model under DDP and torch.compile wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def save(path: Path, model, tokenizer, meta: dict[str, Any], trainer_state: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint folder atomically (tmp folder, then rename)."""
    import torch

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    unwrap(model).save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / META).write_text(json.dumps(meta, indent=2))
    if trainer_state is not None:
        torch.save(trainer_state, tmp / STATE)
    old = path.with_name(f".{path.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)
    return path


def load_trainer_state(path: Path) -> dict[str, Any] | None:
    import torch

    f = Path(path) / STATE
    # Our own file, written by save(); it holds RNG states and python objects, hence weights_only=False.
    return torch.load(f, map_location="cpu", weights_only=False) if f.exists() else None


def load_model(path: Path, meta: dict[str, Any], device: str | None = None, trainable: bool = False):
    """The model saved at `path` (a LoRA checkpoint is its base with the adapter applied)."""
    import torch

    path = Path(path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if (path / "adapter_config.json").exists():
        from peft import PeftModel

        base = base_model(meta["student"], meta["arch"], "cpu", seed=meta.get("init_seed", 0))
        model = PeftModel.from_pretrained(base, path, is_trainable=trainable)
        if not trainable:
            model = model.merge_and_unload()
        return model.to(device)
    if meta.get("arch") == "seq2seq":
        from transformers import AutoModelForSeq2SeqLM as Auto
    else:
        from transformers import AutoModelForCausalLM as Auto
    return Auto.from_pretrained(path, dtype=torch.float32).to(device)


def load_for_inference(run_dir: Path | str, device: str | None = None, which: str | None = None):
    """(model in eval mode, tokenizer, meta) from `best/` if present, else `last/` (or `which`)."""
    from transformers import AutoTokenizer

    names = [which] if which else [BEST, LAST]
    for name in names:
        path = existing(ckpt_dir(run_dir, name))
        if path is not None:
            meta = load_meta(path)
            model = load_model(path, meta, device).eval()
            tok = AutoTokenizer.from_pretrained(path)
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            meta["checkpoint"] = name
            return model, tok, meta
    raise TrainingError(f"No checkpoint under {Path(run_dir) / 'checkpoints'} ({' or '.join(names)}); "
                        "train the run first or resume it.")


def rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])
