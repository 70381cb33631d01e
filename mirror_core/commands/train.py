"""`train`: queue a background training job on a snapshot through the train stage's `submit`
(mirror_core/training/job.py); its flags are TrainConfig's fields."""

from __future__ import annotations

import json

from mirror_core import jobs, store
from mirror_core.commands import add_config_flags, config_of_args, print_wait
from mirror_core.training import job as train_job
from mirror_core.training.job import Config


def register(sub) -> None:
    p = sub.add_parser("train", help="train a student on a snapshot in the background",
                       description="Queue a training job. SPEC: smollm2 (default, offline), tiny (test model), "
                                   "t5-small/t5-base (seq2seq from a config), a hub id or a local folder. "
                                   "Every training setting is a flag below, made from TrainConfig's fields.")
    p.add_argument("--snapshot", required=True, metavar="NAME", help="snapshot name or id")
    add_config_flags(p, Config, metavars={"student": "SPEC", "tasks": "LIST", "weights": "T=A,.."})
    p.add_argument("--device", default="cpu", help="cpu, cuda:0 or several GPUs as cuda:0,1")
    p.add_argument("--name", help="a name for the run")
    p.add_argument("--wait", action="store_true", help="stay until the job ends (exit non-zero if it fails)")
    p.add_argument("--json", action="store_true", help="print the run id as JSON")
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    conn = store.connect()
    run_id = train_job.submit(conn, config_of_args(args, Config), snapshot=args.snapshot, device=args.device,
                              name=args.name)
    student = store.loads(jobs.get(conn, run_id)["config"])["student"]
    print(json.dumps({"run": run_id}) if args.json else f"run {run_id}: queued (train {student} on {args.snapshot})")
    return print_wait(conn, run_id) if args.wait else 0
