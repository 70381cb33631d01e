"""CLI command modules; each exposes register(subparsers).

What the command modules share lives here, below them and below `cli` (which imports them all), so no
command module imports `cli` back: the argparse `type=` helpers, which refuse an out-of-range number at
parse time, so a bad flag is one line (`error: argument --temperature: ...`) and exit status 2, never a
traceback from deeper down; `print_wait`, which follows a queued job in the foreground (`--wait`); and
`add_config_flags` / `config_of_args`, which make a stage command's flags from its Config's fields and
help, so a field added to a Config appears in `--help` with no second list to keep in step.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from typing import Any

from mirror_core import configs, jobs, redact


def number_in(kind: type, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False):
    """An argparse type: `kind` (int or float) within [lo, hi] (lo excluded when `lo_open`)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not {'an integer' if kind is int else 'a number'}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
        too_low = lo is not None and (value <= lo if lo_open else value < lo)
        too_high = hi is not None and value > hi
        if too_low or too_high:
            if lo is not None and hi is not None:
                want = f"within {lo:g}..{hi:g}"
            elif lo is not None:
                want = f"more than {lo:g}" if lo_open else f"at least {lo:g}"
            else:
                want = f"at most {hi:g}"
            raise argparse.ArgumentTypeError(f"must be {want}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def add_config_flags(parser: argparse.ArgumentParser, cls, *, names: dict[str, str] | None = None,
                     metavars: dict[str, str] | None = None) -> None:
    """One flag per field of the Config dataclass `cls` (`--max-steps` for `max_steps`, or `names[field]`),
    with the field's help, choices and bounds. A flag not given stays out of the namespace, so the
    Config's own default (or its sizing to the student) applies, as it does for the pages."""
    hints = configs.field_types(cls)
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        text = f.metadata.get("help", "")
        if not required and f.default is not None and not isinstance(f.default, bool):
            text += f" (default {f.default})"
        kw: dict[str, Any] = {"dest": f"cfg_{f.name}", "default": argparse.SUPPRESS, "help": text.replace("%", "%%")}
        if required:
            kw["required"] = True
        if (metavars or {}).get(f.name):
            kw["metavar"] = metavars[f.name]
        tp = _without_none(hints[f.name])
        lo, hi, choices = f.metadata.get("lo"), f.metadata.get("hi"), f.metadata.get("choices")
        if tp is bool:
            kw["action"] = argparse.BooleanOptionalAction
            kw.pop("metavar", None)
        elif tp in (int, float):
            kw["type"] = number_in(tp, lo, hi)
            kw.setdefault("metavar", "N" if tp is int else "X")
        elif tp is str and not choices:
            kw.setdefault("metavar", f.name.upper())
        elif typing.get_origin(tp) is list:
            kw["type"] = _comma_list
            kw.setdefault("metavar", "A,B")
        elif typing.get_origin(tp) is dict:
            kw["type"] = _pairs
            kw.setdefault("metavar", "K=V,..")
        if choices:
            kw["choices"] = list(choices)
        parser.add_argument((names or {}).get(f.name, "--" + f.name.replace("_", "-")), **kw)


def config_of_args(args: argparse.Namespace, cls) -> dict[str, Any]:
    """The Config fields given as flags (see add_config_flags), as the dict `cls.from_dict` reads."""
    return {f.name: getattr(args, f"cfg_{f.name}") for f in dataclasses.fields(cls) if hasattr(args, f"cfg_{f.name}")}


def _without_none(tp):
    """`int` of `int | None`: the type a flag parses (None is the flag left out)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return tp


def _comma_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _pairs(text: str) -> dict[str, float]:
    """'answer=0.5,cot=0.5' -> {'answer': 0.5, 'cot': 0.5}."""
    try:
        return {k.strip(): float(v) for k, v in (x.split("=") for x in text.split(",") if x.strip())}
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' must look like answer=0.5,cot=0.5") from None


def print_wait(conn, run_id: int) -> int:
    """Follow a job in the foreground: progress lines on stderr; non-zero exit if it did not succeed."""
    last = [None]

    def show(row):
        line = f"run {run_id}: {row['status']} {row['progress_done']}/{row['progress_total']}" \
               + (f" {row['progress_note']}" if row["progress_note"] else "")
        if line != last[0]:
            print(line, file=sys.stderr, flush=True)
            last[0] = line

    row = jobs.wait(conn, run_id, on_poll=show)
    if row["status"] != "succeeded":
        detail = row["error"] or jobs.log_tail(row["log_path"], 5)
        print(f"error: run {run_id} {row['status']}: {redact.redact(detail)}", file=sys.stderr)
        return 1
    return 0
