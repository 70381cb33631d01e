"""`python -m mirror_core loop elad|mapd|critic --dataset NAME --student SPEC --teacher SPEC ... [--wait]`."""

from __future__ import annotations

import json

from mirror_core import cli, jobs, store
from mirror_core.commands import number_in


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


def submit(conn, loop: str, *, dataset: str, student: str, teachers: list[str], budget: int, rounds: int,
           device: str = "cpu", **settings) -> int:
    """Check a loop's settings and queue it as a background job (the CLI and the Loops page both use this).

    Every check that can fail runs here, before the job exists: the loop's own settings, each teacher spec
    and the student spec — so a bad value is one sentence now, not a failed run in the background."""
    from mirror_core import models
    from mirror_core.loops.job import validate
    from mirror_core.loops.steps import dataset_id
    from mirror_core.teachers.registry import TeacherSpec

    cfg = {"loop": loop, "dataset": dataset, "student": student, "teachers": list(teachers), "budget": budget,
           "rounds": rounds, **settings}
    validate(cfg)
    for spec in cfg["teachers"]:
        TeacherSpec.parse(spec)  # bogus:zzz or run:999 is no teacher
    cfg["student"] = models.check_student_spec(student)  # a hub id not in the offline cache, run:N without a checkpoint
    dataset_id(conn, dataset)  # fail now, not in the background, when the dataset does not exist
    return jobs.submit(conn, "loop", cfg, name=f"{loop} {dataset}", device=device)


def cmd_loop(args) -> int:
    settings = {}
    for kv in args.set:
        k, _, v = kv.partition("=")
        try:
            settings[k.strip()] = json.loads(v)
        except ValueError:
            settings[k.strip()] = v
    conn = store.connect()
    run_id = submit(conn, args.loop, dataset=args.dataset, student=args.student, teachers=args.teachers,
                    budget=args.budget, rounds=args.rounds, device=args.device, **settings)
    print(f"run {run_id}: loop {args.loop} queued")
    return cli.print_wait(conn, run_id) if args.wait else 0
