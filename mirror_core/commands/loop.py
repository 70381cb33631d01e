"""`python -m mirror_core loop elad|mapd|critic --dataset NAME --teacher SPEC ... [--wait]`: one sub-command
per loop, whose flags are that loop's Config fields (EladConfig, MapdConfig, CriticConfig); queues through
the loop stage's `submit` (mirror_core/loops/job.py)."""

from __future__ import annotations

import argparse
import json
import sys

from mirror_core import store
from mirror_core.commands import add_config_flags, config_of_args, print_wait
from mirror_core.loops import critic
from mirror_core.loops import job as loop_job

# What each loop sub-command says in `loop --help`.
SUMMARIES = {"elad": "ELAD: the teacher revises the explanations the student is least sure of",
             "mapd": "MAPD: teachers explain the student's mistakes and peer-review each other's rationales",
             "critic": "teacher as critic: the teacher judges pairs of the student's answers, DPO on its choices"}
# The Loops page starts every loop with these; the CLI does too, so both queue the same loop when left alone
# (each Config's own defaults apply to a config written by hand or by a script through `submit`).
CLI_DEFAULTS = {"budget": 20, "rounds": 2}


def register(sub) -> None:
    p = sub.add_parser("loop", help="run a feedback loop (ELAD, MAPD peer review, teacher as critic) as a job",
                       description="Queue a feedback loop. Each loop is a sub-command; `loop LOOP --help` lists "
                                   "its settings, made from the loop's Config fields.")
    loops = p.add_subparsers(dest="loop", metavar="LOOP", required=True)
    for name in loop_job.LOOPS:
        cls = loop_job.config_class(name)
        # The loop module's docstring is its step-by-step description; kept as written (its lines are a table).
        q = loops.add_parser(name, help=SUMMARIES[name], description=sys.modules[cls.__module__].__doc__,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        add_config_flags(q, cls, names={"teachers": "--teacher"}, repeat=("teachers",), required=("teachers",),
                         defaults=CLI_DEFAULTS,
                         metavars={"dataset": "NAME", "student": "SPEC", "teachers": "SPEC", "band": "LOW,HIGH"},
                         notes={"teachers": "repeatable" + (": two or more" if name == "mapd" else ""),
                                "band": "default " + ",".join(f"{x:g}" for x in critic.DEFAULT_BAND)})
        q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="any setting above by its field name, the value as JSON (e.g. --set pool=8 "
                            "--set band=[0.8,1.2]); for scripts written before these flags, and it wins over them")
        q.add_argument("--device", default="cpu", help="cpu or cuda:N")
        q.add_argument("--wait", action="store_true", help="stay until the job ends")
        q.set_defaults(func=cmd_loop)


def cmd_loop(args) -> int:
    settings = {}
    for kv in args.set:
        k, _, v = kv.partition("=")
        try:
            settings[k.strip()] = json.loads(v)
        except ValueError:
            settings[k.strip()] = v
    conn = store.connect()
    cfg = {"loop": args.loop, **config_of_args(args, loop_job.config_class(args.loop)), **settings}
    run_id = loop_job.submit(conn, cfg, device=args.device)  # the same checks as the Loops page's
    print(f"run {run_id}: loop {args.loop} queued")
    return print_wait(conn, run_id) if args.wait else 0
