"""What every stage's `Config` dataclass shares: a field with its help, and `config_from_dict`.

A job's config lives in `runs.config` as JSON and comes back through `config_from_dict`, as does what a
page or a hand-written script hands over. So that one rule holds for every stage, a setting that is not
a field (a typo) and a value of the wrong type are refused here, each in one sentence naming the
setting, instead of a silent default or a `TypeError` from deep inside the job. Range checks that need
the whole config stay in each Config's `__post_init__`; a field may also name its own choices and bounds
(`choices`, `lo`, `hi`), which `check_options` applies and the CLI uses to refuse a flag at parse time.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

_NO_DEFAULT = dataclasses.MISSING


def option(help: str, default: Any = _NO_DEFAULT, *, default_factory: Any = _NO_DEFAULT,
           lo: float | None = None, hi: float | None = None, choices: tuple | None = None) -> Any:
    """A dataclass field with its help text (shown by the CLI's `--help` and the pages) and optional bounds."""
    meta = {"help": help, "lo": lo, "hi": hi, "choices": tuple(choices) if choices else None}
    if default_factory is not _NO_DEFAULT:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def help_of(cls) -> dict[str, str]:
    """Field name -> help text of a Config class."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


def field_types(cls) -> dict[str, Any]:
    """Field name -> resolved type annotation (the modules use `from __future__ import annotations`)."""
    return typing.get_type_hints(cls)


def config_from_dict(cls, d: dict[str, Any], *, label: str, error: type[Exception], ignore: tuple[str, ...] = ()):
    """Build `cls` from a plain dict, refusing unknown settings, missing ones and wrong types in one sentence.

    `label` names the stage in the sentence ("training", "eval"); `error` is the stage's typed error;
    keys in `ignore` are read by the caller itself (the loop name of a loop config)."""
    if not isinstance(d, dict):
        raise error(f"A {label} config must be a mapping of settings, got {type(d).__name__}.")
    fs = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fs) - set(ignore))
    if unknown:
        raise error(f"Unknown {label} setting(s) {', '.join(unknown)}; known: {', '.join(sorted(fs))}.")
    missing = [n for n, f in fs.items() if n not in d and f.default is _NO_DEFAULT
               and f.default_factory is _NO_DEFAULT]
    if missing:
        raise error(f"The {label} config needs " + ", ".join(
            f"{n} ({fs[n].metadata['help']})" if fs[n].metadata.get("help") else n for n in missing) + ".")
    hints = field_types(cls)
    for name, value in d.items():
        if name not in fs:
            continue
        tp = hints[name]
        if value is None and fs[name].default is None:
            continue  # a field that defaults to None takes None whatever its annotation says
        if not _accepts(tp, value):
            raise error(f"The {label} setting {name} must be {_describe(tp)}, got {value!r}.")
    return cls(**{k: v for k, v in d.items() if k in fs})


def check_options(cfg, error: type[Exception]) -> None:
    """Refuse a field outside the choices or bounds its `option(choices=, lo=, hi=)` names (None passes)."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        choices, lo, hi = f.metadata.get("choices"), f.metadata.get("lo"), f.metadata.get("hi")
        if value is None:
            continue
        if choices and value not in choices:
            raise error(f"{f.name} must be {', '.join(map(str, choices[:-1]))} or {choices[-1]}, got '{value}'.")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            want = (f"within {lo:g}..{hi:g}" if lo is not None and hi is not None
                    else f"at least {lo:g}" if lo is not None else f"at most {hi:g}")
            raise error(f"{f.name} must be {want}, got {value}.")


def _accepts(tp: Any, value: Any) -> bool:
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(a, value) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if tp is list or origin is list:
        if not isinstance(value, (list, tuple)):
            return False
        (item,) = typing.get_args(tp) or (Any,)
        return all(_accepts(item, v) for v in value)
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            return False
        _, item = typing.get_args(tp) or (Any, Any)
        return all(_accepts(item, v) for v in value.values())
    return True  # a type this check does not know is left to the Config's own checks


_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "text", type(None): "none",
          list: "a list", dict: "a mapping"}


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin is list:
        (item,) = typing.get_args(tp)
        return "a list" + {int: " of integers", float: " of numbers", str: " of strings"}.get(item, "")
    if origin is dict:
        return "a mapping"
    return _NAMES.get(tp, getattr(tp, "__name__", str(tp)))
