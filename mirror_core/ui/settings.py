"""Last form settings per page, kept in a JSON file in the project home (MIRROR_HOME/ui_settings.json).

A file rather than a store table: these are per-project UI preferences, not data — no migration, no
history to keep, readable and deletable by hand; a new browser tab (a new Streamlit session) gets them back.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable

from mirror_core import config

FILE = "ui_settings.json"


def _path():
    return config.home() / FILE


def load(page: str) -> dict[str, Any]:
    try:
        return dict(json.loads(_path().read_text()).get(page, {}))
    except (OSError, ValueError, AttributeError):
        return {}


def save(page: str, values: dict[str, Any]) -> None:
    """Remember a page's settings (JSON-able values only), replacing the file atomically."""
    try:
        data = json.loads(_path().read_text())
    except (OSError, ValueError):
        data = {}
    data[page] = {k: v for k, v in values.items() if isinstance(v, (str, int, float, bool, list, type(None)))}
    tmp = _path().with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, _path())


def restore(state, page: str) -> None:
    """Put a page's last settings into session state once per session, before its widgets are drawn."""
    flag = f"_settings_restored_{page}"
    if state.get(flag):
        return
    state[flag] = True
    for k, v in load(page).items():
        state.setdefault(k, v)


def remember(state, page: str, keys: Iterable[str]) -> None:
    save(page, {k: state[k] for k in keys if k in state})


def train_form(cfg: dict[str, Any]) -> dict[str, Any]:
    """Train page widget values that reproduce a run's config (for "clone this run")."""
    m = cfg.get("method", "mindsmirror")
    out = {"student": cfg.get("student", "smollm2"), "method": m, "schedule": cfg.get("schedule", "joint"),
           "lr": float(cfg.get("lr") or 0.0), "max_steps": int(cfg.get("max_steps") or 0),
           "epochs": float(cfg.get("epochs") or 3.0), "eval_every": int(cfg.get("eval_every") or 0),
           "seq_len": int(cfg.get("seq_len") or 1024), "batch_tokens": int(cfg.get("batch_tokens") or 0),
           "grad_accum": int(cfg.get("grad_accum") or 1), "patience": int(cfg.get("patience") or 0),
           "packing": bool(cfg.get("packing", True)), "lora": bool(cfg.get("lora")),
           "gc": bool(cfg.get("grad_checkpointing")), "compile": bool(cfg.get("compile")),
           f"tasks_{m}": list(cfg.get("tasks") or [])}
    out.update({f"w_{m}_{t}": float(a) for t, a in (cfg.get("weights") or {}).items()})
    return out


def keep_valid(state, key: str, options: Iterable[Any]) -> None:
    """Drop a restored choice the page no longer offers (a deleted dataset, a run gone), so the widget falls
    back to its default instead of refusing a value outside its options; a list keeps its valid members."""
    if key not in state:
        return
    opts = list(options)
    v = state[key]
    if isinstance(v, list):
        state[key] = [x for x in v if x in opts]
    elif v not in opts:
        del state[key]


def eval_form(cfg: dict[str, Any]) -> dict[str, Any]:
    """Evaluate page widget values that reproduce an eval run's config (for "clone this run")."""
    return {"ev_train": cfg.get("train_run"), "ev_split": cfg.get("split", "test"),
            "ev_limit": int(cfg.get("limit") or 0), "ev_samples": int(cfg.get("samples") or 1)}
