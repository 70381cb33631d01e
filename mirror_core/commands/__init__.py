"""CLI command modules; each exposes register(subparsers).

What the command modules share lives here, below them and below `cli` (which imports them all), so no
command module imports `cli` back: the argparse `type=` helpers, which refuse an out-of-range number at
parse time, so a bad flag is one line (`error: argument --temperature: ...`) and exit status 2, never a
traceback from deeper down; and `print_wait`, which follows a queued job in the foreground (`--wait`).
"""

from __future__ import annotations

import argparse
import sys

from mirror_core import jobs, redact


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
