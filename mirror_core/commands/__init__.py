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
                     metavars: dict[str, str] | None = None, repeat: tuple[str, ...] = (),
                     required: tuple[str, ...] = (), defaults: dict[str, Any] | None = None,
                     notes: dict[str, str] | None = None, skip: tuple[str, ...] = ()) -> None:
    """One flag per field of the Config dataclass `cls` (`--max-steps` for `max_steps`, or `names[field]`),
    with the field's help, choices and bounds. A flag not given stays out of the namespace, so the
    Config's own default (or its sizing to the student) applies, as it does for the pages.

    For a command whose flags were written by hand before (a script may call them): a field in `repeat`
    is a flag given once per item (`--teacher A --teacher B`) instead of `A,B`, since an item may hold a
    comma (a file path); one in `required` must be given although the Config has a default; `defaults`
    are the values the command (and its page) use when the flag is left out, in place of the Config's;
    `notes` is what help says in parentheses in place of "(default X)" (where the default depends on other
    flags, or how to give the flag); fields in `skip` get no flag (the command writes theirs by hand)."""
    hints = configs.field_types(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        needed = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = (defaults or {}).get(f.name, f.default)
        text = f.metadata.get("help", "")
        if f.name in (notes or {}):
            text += f" ({notes[f.name]})"
        elif not needed and default is not None and default is not dataclasses.MISSING \
                and not isinstance(default, bool):
            text += f" (default {default})"
        kw: dict[str, Any] = {"dest": f"cfg_{f.name}", "help": text.replace("%", "%%"),
                              "default": (defaults or {}).get(f.name, argparse.SUPPRESS)}
        if needed or f.name in required:
            kw["required"] = True
        if (metavars or {}).get(f.name):
            kw["metavar"] = metavars[f.name]
        tp = _without_none(hints[f.name])
        lo, hi, choices = f.metadata.get("lo"), f.metadata.get("hi"), f.metadata.get("choices")
        item = (typing.get_args(tp) or (str,))[0] if typing.get_origin(tp) is list or tp is list else None
        if f.name in repeat:
            kw["action"] = "append"
            kw["type"] = _item_type(item or str)
            kw.setdefault("metavar", f.name.upper().rstrip("S"))
        elif tp is bool:
            kw["action"] = argparse.BooleanOptionalAction
            kw.pop("metavar", None)
        elif tp in (int, float):
            kw["type"] = number_in(tp, lo, hi, lo_open=bool(f.metadata.get("lo_open")))
            kw.setdefault("metavar", "N" if tp is int else "X")
        elif tp is str and not choices:
            kw.setdefault("metavar", f.name.upper())
        elif item is not None:
            kw["type"] = _comma_list(_item_type(item))
            kw.setdefault("metavar", "A,B")
        elif typing.get_origin(tp) is dict or tp is dict:
            kw["type"] = _pairs(_item_type((typing.get_args(tp) or (str, float))[-1]))
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


def _item_type(tp) -> Any:
    """The parser of one item of a list or a mapping: int, float, or the text as given."""
    return tp if tp in (int, float) else str


def _comma_list(item=str):
    """'a,b' -> ['a', 'b'] (each item read by `item`: '0.8,1.2' -> [0.8, 1.2] for a list of numbers)."""

    def parse(text: str) -> list:
        try:
            return [item(t.strip()) for t in text.split(",") if t.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' must be a comma-separated list of "
                                             f"{'numbers' if item in (int, float) else 'items'}") from None

    parse.__name__ = "list"
    return parse


def _pairs(value=float):
    """'answer=0.5,cot=0.5' -> {'answer': 0.5, 'cot': 0.5} (each value read by `value`)."""

    def parse(text: str) -> dict:
        try:
            return {k.strip(): value(v.strip()) for k, v in (x.split("=") for x in text.split(",") if x.strip())}
        except ValueError:
            example = "answer=0.5,cot=0.5" if value is float else "cot-numeric=2,self-eval=1"
            raise argparse.ArgumentTypeError(f"'{text}' must look like {example}") from None

    parse.__name__ = "mapping"
    return parse


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
