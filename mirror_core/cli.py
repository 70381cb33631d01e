"""`python -m mirror_core`: every app action as a command. Errors print one line to stderr, exit 1.

Each command module exposes `register(subparsers)`; add yours to COMMAND_MODULES.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from mirror_core import jobs, redact, store
# print_wait is imported from mirror_core.commands, where the command modules find it too; it stays
# reachable as cli.print_wait for callers written against this module.
from mirror_core.commands import number_in, print_wait
from mirror_core.errors import MirrorError

# Modules under mirror_core/commands/, each with register(subparsers). Listed, not discovered, so
# the order of `--help` is deliberate and a typo fails loudly: a name here that does not import is a
# ModuleNotFoundError from build_parser, never a command silently missing from `--help`.
COMMAND_MODULES = [
    "mirror_core.commands.data",
    "mirror_core.commands.generate",
    "mirror_core.commands.snapshot",
    "mirror_core.commands.train",
    "mirror_core.commands.evaluate",
    "mirror_core.commands.loop",
]


class _Parser(argparse.ArgumentParser):
    """An input error is one line on stderr (`error: ...` naming where --help is) and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m mirror_core",
                                     description="Mind's Mirror Studio: distil CoTs and self-evaluation into students.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("status", help="counts of what the project holds")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("jobs", help="list, stop, resume, reorder background jobs or show their logs")
    jsub = p.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)
    q = jsub.add_parser("list", help="all runs, newest first")
    q.add_argument("--json", action="store_true", help="print a JSON list")
    q.add_argument("--kind", help="only this kind (generate, train, eval, loop, experiment)")
    q.set_defaults(func=cmd_jobs_list)
    for name, fn, hlp in (("stop", cmd_jobs_stop, "stop a job (kills its process group)"),
                          ("resume", cmd_jobs_resume, "queue a failed or cancelled job again"),
                          ("logs", cmd_jobs_logs, "print the tail of a job's log"),
                          ("wait", cmd_jobs_wait, "wait for a job to end")):
        q = jsub.add_parser(name, help=hlp)
        q.add_argument("run", type=int, help="run id")
        if name == "logs":
            q.add_argument("--lines", type=number_in(int, 1), default=50)
        if name == "resume":
            q.add_argument("--wait", action="store_true", help="stay until the job ends")
        q.set_defaults(func=fn)
    q = jsub.add_parser("move", help="reorder the queue")
    q.add_argument("run", type=int)
    q.add_argument("delta", type=int, help="places to move (negative = earlier)")
    q.set_defaults(func=lambda a: jobs.move(store.connect(), a.run, a.delta) or 0)

    p = sub.add_parser("_run-job")  # internal: the detached worker; no help so --help does not list it
    p.add_argument("run", type=int)
    p.set_defaults(func=lambda a: jobs.run_job(a.run))

    for mod in COMMAND_MODULES:
        importlib.import_module(mod).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except MirrorError as exc:
        print(f"error: {redact.redact(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a path given on the command line that cannot be read or written
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {redact.redact(exc.strerror or str(exc))}{where}", file=sys.stderr)
        return 1
    except Exception:  # a bug: keep its traceback, but never with a key in it
        import traceback

        print(redact.redact(traceback.format_exc()), file=sys.stderr, end="")
        return 1
    return int(rc or 0)


# ---------------------------------------------------------------- generic commands

def cmd_status(args) -> int:
    conn = store.connect()
    jobs.reap(conn)
    c = store.counts(conn)
    if args.json:
        print(json.dumps(c))
    else:
        for k, v in c.items():
            print(f"{k:14} {v}")
    return 0


def cmd_jobs_list(args) -> int:
    conn = store.connect()
    jobs.reap(conn)
    runs = jobs.list_runs(conn, args.kind)
    if args.json:
        keep = ("id", "kind", "name", "status", "device", "progress_done", "progress_total", "cost_usd",
                "created_at", "started_at", "finished_at", "exit_code", "error", "snapshot_id", "log_path")
        print(json.dumps([{k: redact.redact(r[k]) for k in keep} for r in runs]))
        return 0
    if not runs:
        print("no runs yet")
    for r in runs:
        prog = f"{r['progress_done']}/{r['progress_total']}" if r["progress_total"] else ""
        print(f"{r['id']:>5}  {r['kind']:9} {r['status']:10} {prog:>12}  {r['name'] or ''}")
    return 0


def cmd_jobs_stop(args) -> int:
    conn = store.connect()
    jobs.stop(conn, args.run)
    print(f"run {args.run}: {jobs.get(conn, args.run)['status']}")
    return 0


def cmd_jobs_resume(args) -> int:
    conn = store.connect()
    jobs.resume(conn, args.run)
    print(f"run {args.run}: resumed")
    return print_wait(conn, args.run) if args.wait else 0


def cmd_jobs_logs(args) -> int:
    conn = store.connect()
    print(jobs.log_tail(jobs.get(conn, args.run)["log_path"], args.lines))
    return 0


def cmd_jobs_wait(args) -> int:
    return print_wait(store.connect(), args.run)
