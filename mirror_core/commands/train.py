"""`train`: queue a background training job on a snapshot (see mirror_core/training/)."""

from __future__ import annotations

import json

from mirror_core import jobs, store


def register(sub) -> None:
    from mirror_core.training.config import METHODS, SCHEDULES, TASKS

    p = sub.add_parser("train", help="train a student on a snapshot in the background",
                       description="Queue a training job. SPEC: smollm2 (default, offline), tiny (test model), "
                                   "t5-small/t5-base (seq2seq from a config), a hub id or a local folder.")
    p.add_argument("--snapshot", required=True, metavar="NAME", help="snapshot name or id")
    p.add_argument("--student", default="smollm2", metavar="SPEC", help="student spec (default smollm2)")
    p.add_argument("--method", choices=list(METHODS), default="mindsmirror",
                   help="task preset: mindsmirror (all four tasks), step-by-step (answer+cot), answer-only")
    p.add_argument("--tasks", metavar="LIST", help=f"comma-separated subset of {','.join(TASKS)} (overrides --method)")
    p.add_argument("--weights", metavar="T=A,..", help="α per task, e.g. answer=0.5,cot=0.5")
    p.add_argument("--schedule", choices=SCHEDULES, default="joint")
    p.add_argument("--max-steps", type=int, default=0, help="optimizer steps per stage (0: use --epochs)")
    p.add_argument("--epochs", type=float, help="passes per stage (default 3)")
    p.add_argument("--lr", type=float, help="peak learning rate (default sized to the student)")
    p.add_argument("--batch-tokens", type=int, help="tokens per micro-batch")
    p.add_argument("--seq-len", type=int, help="packed row length and longest example (default 1024)")
    p.add_argument("--grad-accum", type=int, help="micro-batches per step")
    p.add_argument("--eval-every", type=int, help="dev evaluation every N steps")
    p.add_argument("--no-packing", action="store_true", help="length-bucketed padded batches instead of packing")
    p.add_argument("--lora", action="store_true", help="train LoRA adapters instead of all weights")
    p.add_argument("--grad-checkpointing", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile the student (GPU)")
    p.add_argument("--nproc", type=int, help="DDP ranks on this machine (default: one per picked GPU)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", default="cpu", help="cpu, cuda:0 or several GPUs as cuda:0,1")
    p.add_argument("--name", help="a name for the run")
    p.add_argument("--wait", action="store_true", help="stay until the job ends (exit non-zero if it fails)")
    p.add_argument("--json", action="store_true", help="print the run id as JSON")
    p.set_defaults(func=cmd_train)


def config_from_args(args):
    from mirror_core.errors import TrainingError
    from mirror_core.training.config import TrainConfig

    kw = dict(student=args.student, method=args.method, schedule=args.schedule, max_steps=args.max_steps)
    if args.tasks:
        kw["tasks"] = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if args.weights:
        try:
            kw["weights"] = {k.strip(): float(v) for k, v in (x.split("=") for x in args.weights.split(","))}
        except ValueError as exc:
            raise TrainingError(f"--weights '{args.weights}' must look like answer=0.5,cot=0.5.") from exc
    for opt in ("epochs", "lr", "batch_tokens", "seq_len", "grad_accum", "eval_every", "nproc", "seed"):
        if getattr(args, opt) is not None:
            kw[opt] = getattr(args, opt)
    if args.no_packing:
        kw["packing"] = False
    kw.update(lora=args.lora, grad_checkpointing=args.grad_checkpointing, compile=args.compile)
    return TrainConfig(**kw)


def submit(conn, cfg, snapshot: str | int, device: str = "cpu", name: str | None = None) -> int:
    """Queue a train job for a snapshot (name or id); returns the run id. Used by the CLI and the page."""
    from mirror_core.snapshots import get_snapshot

    snap = get_snapshot(conn, snapshot)
    return jobs.submit(conn, "train", cfg.to_dict(), name=name or f"{cfg.method} {cfg.student} on {snap['name']}",
                       snapshot_id=snap["id"], device=device)


def cmd_train(args) -> int:
    conn = store.connect()
    cfg = config_from_args(args)
    run_id = submit(conn, cfg, args.snapshot, args.device, args.name)
    print(json.dumps({"run": run_id}) if args.json else f"run {run_id}: queued (train {cfg.student} on {args.snapshot})")
    if args.wait:
        from mirror_core.commands import print_wait

        return print_wait(conn, run_id)
    return 0
