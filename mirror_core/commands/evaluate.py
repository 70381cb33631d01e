"""`eval`, `compare` and `experiment`: evaluate students, compare two runs, run the method comparison.

`eval` always ends with one line of JSON (accuracy, ece, brier, auroc, n, ...) so scripts can read it.
"""

from __future__ import annotations

import json
import sys

from mirror_core import jobs, store
from mirror_core.commands import add_config_flags, config_of_args, number_in, print_wait
from mirror_core.evaluation import job as eval_job
from mirror_core.evaluation.experiment_job import ExperimentConfig
from mirror_core.evaluation.job import Config as EvalConfig


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a finished train run on a split (accuracy, calibration, votes)",
                       description="Queue an eval job and follow it. Every eval setting is a flag below, made from "
                                   "EvalConfig's fields.")
    add_config_flags(p, EvalConfig, names={"train_run": "--run"}, metavars={"train_run": "ID"})
    p.add_argument("--device", default="cpu", help="cpu or cuda:N")
    p.add_argument("--wait", action="store_true", help="stay until the job ends (the default)")
    p.add_argument("--background", action="store_true", help="only queue the job; print its id as JSON")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("compare", help="compare two evaluated runs (eval or train run ids): table and per-example diff")
    p.add_argument("a", type=int)
    p.add_argument("b", type=int)
    p.add_argument("--csv", help="write the per-example diff as CSV here")
    p.add_argument("--png", help="write accuracy, reliability, abstention and loss plots as PNG here")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("experiment", help="train and evaluate answer-only, step-by-step and Mind's Mirror alike",
                       description="Queue the method comparison as one background job and follow it (its generate, "
                                   "train and eval runs queue on --device one after another). Every setting is a flag "
                                   "below, made from ExperimentConfig's fields.")
    add_config_flags(p, ExperimentConfig, names={"methods": "--method"}, metavars={"methods": "METHOD"},
                     repeat=("methods",), skip=("train_options",),
                     notes={"methods": "repeatable; default all"})
    p.add_argument("--train-option", action="append", default=[], metavar="FIELD=VALUE", type=train_option,
                   help="repeatable; any training setting, the same for every method (e.g. batch_tokens=2048, "
                        "lr=1e-4, eval_every=0); fields as in `train --help`")
    p.add_argument("--background", action="store_true", help="only queue the experiment job; print its id as JSON")
    p.set_defaults(func=cmd_experiment)


def train_option(text: str) -> tuple[str, object]:
    """'lr=1e-4' -> ('lr', 0.0001): a TrainConfig field and its value read as JSON (else the plain string)."""
    import argparse
    import dataclasses

    from mirror_core.training.config import TrainConfig

    field, sep, raw = text.partition("=")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    if not sep or field.strip() not in fields:
        raise argparse.ArgumentTypeError(f"'{text}' is not FIELD=VALUE with a training field; fields: {', '.join(sorted(fields))}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return field.strip(), value


def _named(res: dict, keys, sep: str = ", ") -> str:
    """The metrics `keys` of `res` by their registered name and format (evaluation.metrics): "ECE 0.123, Brier n/a"."""
    from mirror_core.evaluation.metrics import metric

    return sep.join(f"{metric(k).label} {metric(k).format(res.get(k))}" for k in keys)


def _with_ci(res: dict) -> str:
    from mirror_core.evaluation.metrics import metric

    acc = metric("accuracy")
    return (f"{acc.label} {acc.format(res.get('accuracy'))} [{acc.format(res.get('accuracy_lo'))}, "
            f"{acc.format(res.get('accuracy_hi'))}]")


def print_result(res: dict, out=sys.stdout) -> None:
    """The figures of one eval as lines a person reads."""
    print(f"{_with_ci(res)} on {res.get('n')} {res.get('split', '')} examples "
          f"({res.get('no_answer', 0)} without an answer)", file=out)
    print(f"self-evaluation: {_named(res, ('ece', 'ece_mass', 'brier', 'auroc'))}, verdicts {res.get('verdicts')}",
          file=out)
    if res.get("vote"):
        v = res["vote"]
        votes = {"majority_accuracy": v["majority"]["accuracy"], "weighted_accuracy": v["weighted"]["accuracy"]}
        print(f"self-consistency over {v['samples_per_question']} samples: "
              f"{_named(votes, ('majority_accuracy', 'weighted_accuracy'))}", file=out)
    for ev, t in (res.get("teacher") or {}).items():
        print(f"teacher {ev} self-evaluation on the training CoTs: n {t['n']}, "
              f"{_named(t, ('ece', 'brier', 'auroc', 'verdict_accuracy'))}", file=out)


def _summary_json(res: dict, run_id: int) -> str:
    keep = {k: v for k, v in res.items() if k not in ("abstention", "reliability_mass")}
    keep["eval_run"] = run_id
    return json.dumps(keep, allow_nan=False)


def cmd_eval(args) -> int:
    conn = store.connect()
    run_id = eval_job.submit(conn, config_of_args(args, EvalConfig), device=args.device)
    if args.background:
        print(json.dumps({"eval_run": run_id, "status": "queued"}))
        return 0
    print(f"eval run {run_id} queued", file=sys.stderr)
    rc = print_wait(conn, run_id)
    if rc:
        return rc
    res = store.loads(jobs.get(conn, run_id)["result"])
    print_result(res)
    print(_summary_json(res, run_id))
    return 0


def cmd_compare(args) -> int:
    from mirror_core.evaluation import compare, plots

    conn = store.connect()
    a, b = compare.resolve_eval(conn, args.a), compare.resolve_eval(conn, args.b)
    table = {r["eval_run"]: r for r in compare.runs_table(conn)}
    for r in (table[a["id"]], table[b["id"]]):
        print(f"eval {r['eval_run']:>4}  {r['method']:<14} student {r['student']}  snapshot {r['snapshot']}  "
              f"{_with_ci(r)}  {_named(r, ('ece', 'brier', 'auroc'), '  ')}"
              f"  teacher cost ${r['teacher_cost_usd']:.4f}")
    rows = compare.example_diff(conn, a["id"], b["id"])
    counts = compare.diff_counts(rows)
    print(f"from {a['id']} to {b['id']}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for r in rows:
        if r["category"] in ("fixed", "broken"):
            print(f"  {r['category']:<6} example {r['example_id']}: gold {r['gold']}, {a['id']} said {r['a_answer']},"
                  f" {b['id']} said {r['b_answer']}; teacher CoTs {r['rationale_ids']}")
    out = {"a": a["id"], "b": b["id"], **counts,
           "accuracy_a": table[a["id"]]["accuracy"], "accuracy_b": table[b["id"]]["accuracy"]}
    if args.csv:
        out["csv"] = str(compare.export_csv(rows, args.csv))
    if args.png:
        results = {plots.label(table[x]): store.loads(jobs.get(conn, x)["result"]) for x in (a["id"], b["id"])}
        losses = {plots.label(table[x]): plots.loss_series(conn, table[x]["train_run"]) for x in (a["id"], b["id"])
                  if table[x]["train_run"]}
        path, engine = plots.save_png(args.png, [table[a["id"]], table[b["id"]]], results, losses)
        out["png"], out["png_engine"] = str(path), engine
    print(json.dumps(out))
    return 0


def cmd_experiment(args) -> int:
    from mirror_core.evaluation import experiment_job

    conn = store.connect()
    cfg = {**config_of_args(args, ExperimentConfig), "train_options": dict(args.train_option)}
    run_id = experiment_job.submit(conn, cfg)  # the same checks whoever queues it
    if args.background:
        print(json.dumps({"experiment_run": run_id, "status": "queued"}))
        return 0
    print(f"experiment run {run_id} queued; its train and eval runs queue on {cfg.get('device', 'cpu')} as they come",
          file=sys.stderr)
    rc = print_wait(conn, run_id)
    if rc:
        return rc
    print(json.dumps(store.loads(jobs.get(conn, run_id)["result"])))
    return 0
