"""`python -m mirror_core loop elad|mapd|critic --dataset NAME --student SPEC --teacher SPEC ... [--wait]`:
queues through the loop stage's `submit` (mirror_core/loops/job.py)."""

from __future__ import annotations

import json

from mirror_core import store
from mirror_core.commands import number_in, print_wait
from mirror_core.loops import job as loop_job


def register(sub) -> None:
    p = sub.add_parser("loop", help="run a feedback loop (ELAD, MAPD peer review, teacher as critic) as a job")
    p.add_argument("loop", choices=["elad", "mapd", "critic"], help="which loop")
    p.add_argument("--dataset", required=True, help="dataset name")
    p.add_argument("--student", default="smollm2", help="student: smollm2, tiny, a local folder or run:N (a train run)")
    p.add_argument("--teacher", action="append", required=True, dest="teachers",
                   help="teacher spec (repeat for several; MAPD needs two or more), e.g. fake:a, openai:gpt-4o-mini")
    p.add_argument("--budget", type=number_in(int, 1), default=20, help="teacher calls the whole loop may issue (default 20)")
    p.add_argument("--rounds", type=number_in(int, 1), default=2, help="rounds (default 2)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="other loop settings (JSON values), e.g. --set pool=8 --set k=4")
    p.add_argument("--device", default="cpu", help="cpu or cuda:N")
    p.add_argument("--wait", action="store_true", help="stay until the job ends")
    p.set_defaults(func=cmd_loop)


def cmd_loop(args) -> int:
    settings = {}
    for kv in args.set:
        k, _, v = kv.partition("=")
        try:
            settings[k.strip()] = json.loads(v)
        except ValueError:
            settings[k.strip()] = v
    conn = store.connect()
    cfg = {"loop": args.loop, "dataset": args.dataset, "student": args.student, "teachers": args.teachers,
           "budget": args.budget, "rounds": args.rounds, **settings}
    run_id = loop_job.submit(conn, cfg, device=args.device)  # the same checks as the Loops page's
    print(f"run {run_id}: loop {args.loop} queued")
    return print_wait(conn, run_id) if args.wait else 0
