"""The comparison that matters: answer-only vs distilling step-by-step vs Mind's Mirror, same student and budget.

One call imports the offline data set, has a teacher write CoTs and self-evaluations for the train and
dev splits, freezes one snapshot, trains the three methods from it with the same student, steps and
seed (the training job picks best/ on dev), evaluates each on the test split and writes the table,
per-example diffs and plots to a folder. Every step is a job, so a rerun reuses what already finished.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

from mirror_core import jobs, snapshots, store
from mirror_core.errors import EvaluationError, MirrorError
from mirror_core.evaluation import compare, plots
from mirror_core.evaluation.metrics import metric

# name -> training settings; Mind's Mirror both joint and two-stage (self-evaluation first, PAPERS.md §1)
METHODS: dict[str, dict[str, Any]] = {
    "answer-only": {"method": "answer-only"},
    "step-by-step": {"method": "step-by-step"},
    "mindsmirror": {"method": "mindsmirror"},
    "mindsmirror-two-stage": {"method": "mindsmirror", "schedule": "two-stage"},
}
# The metrics the comparison shows after accuracy, in order; names and formats come from metrics.METRICS.
SHOWN_METRICS = ("ece", "brier", "auroc", "accuracy_at_80", "majority_accuracy", "weighted_accuracy")
ACC_CI = f"{metric('accuracy').label} [95% CI]"
EVAL_NAME = "experiment eval "  # run_experiment names each method's eval run "experiment eval <method>"
TABLE_COLUMNS = ("method", "train_run", "eval_run", "student", "snapshot", "n", "accuracy", "accuracy_lo",
                 "accuracy_hi", "ece", "ece_mass", "brier", "auroc", "majority_accuracy", "weighted_accuracy", "accuracy_at_80",
                 "teacher_cost_usd", "train_seconds", "eval_seconds")


def _reuse_or_submit(conn, kind: str, cfg: dict[str, Any], *, name: str, snapshot_id: int | None = None,
                     device: str = "cpu") -> int:
    """A run of this kind with exactly this config (and snapshot), else a new job through the stage's own
    `submit` — so an experiment's jobs are validated as the CLI's and the pages' are.

    The config compared is the one the stage stores (its `validate` fills defaults and, for generation,
    fixes the prompt versions), so a rerun finds the runs it made. A failed or cancelled match is resumed
    (its handler skips finished work); a queued or running one is waited for."""
    from mirror_core.evaluation import job as eval_job
    from mirror_core.generation import job as gen_job
    from mirror_core.training import job as train_job

    if kind == "generate":
        stored = gen_job.validate(conn, cfg).as_dict()
    elif kind == "train":
        stored = train_job.validate(conn, cfg, snapshot_id)[0].to_dict()
    else:
        stored = eval_job.validate(conn, cfg).to_dict()
    want = store.dumps(stored)
    for r in conn.execute("SELECT id, config, snapshot_id, status FROM runs WHERE kind = ? ORDER BY id DESC", (kind,)):
        if r["config"] == want and (kind == "generate" or r["snapshot_id"] == snapshot_id):
            if r["status"] in ("failed", "cancelled"):
                jobs.resume(conn, r["id"])
            return r["id"]
    if kind == "train":
        return train_job.submit(conn, stored, snapshot=snapshot_id, device=device, name=name)
    return (gen_job if kind == "generate" else eval_job).submit(conn, stored, device=device, name=name)


def _wait(conn, run_id: int, log: Callable[[str], None], timeout_s: float | None,
          on_poll: Callable[[Any], None] | None = None) -> dict[str, Any]:
    row = jobs.wait(conn, run_id, poll_s=1.0, timeout_s=timeout_s, on_poll=on_poll)
    if row["status"] != "succeeded":
        raise EvaluationError(f"Run {run_id} ({row['kind']}) {row['status']}: {row['error'] or jobs.log_tail(row['log_path'], 5)}")
    log(f"run {run_id} ({row['kind']} {row['name'] or ''}) succeeded")
    return store.loads(row["result"]) or {}


def check_methods(methods: list[str]) -> list[str]:
    """The methods, once each is one of METHODS (the experiment job's validate and a direct call both ask)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise EvaluationError(f"Unknown method '{unknown[0]}'; choose from {', '.join(METHODS)}.")
    return methods


def snapshot_name(dataset: str, teacher: str, train_limit: int | None, dev_limit: int, n_cots: int | None,
                  k_evals: int | None, seed: int, evaluator: str) -> str:
    """The experiment's snapshot: one per data set, teacher and teacher settings, shared by every method."""
    key = hashlib.sha256(json.dumps([dataset, teacher, train_limit, dev_limit, n_cots, k_evals, seed]
                                    + ([evaluator] if evaluator != "teacher" else [])).encode()).hexdigest()[:8]
    return f"experiment-{dataset}-{key}"


def run_experiment(*, dataset: str = "gsm8k", student: str = "smollm2", max_steps: int = 200, limit: int = 200,
                   train_limit: int | None = None, dev_limit: int = 32, teacher: str = "fake", n_cots: int | None = 2,
                   k_evals: int | None = 1, evaluator: str = "teacher", methods: list[str] | None = None,
                   max_new_tokens: int = 256, samples: int = 1, device: str = "cpu",
                   out: str | Path = "experiment", seed: int = 0, train_overrides: dict[str, Any] | None = None,
                   timeout_s: float | None = None, log: Callable[[str], None] = lambda m: None,
                   progress: Callable[[int, int, str], None] | None = None,
                   on_poll: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """Train and evaluate the methods alike; write table.csv/.json/.md, diffs and comparison.png to `out`.

    `progress(done, total, note)` hears of each finished step (2 generate runs, then a train and an eval
    run per method); `on_poll(row)` is called while waiting on a child job (the experiment job raises
    there when it is asked to stop)."""
    from mirror_core.data.importing import import_source

    methods = check_methods(list(methods or METHODS))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    conn = store.connect()
    total, done = 2 + 2 * len(methods), [0]

    def step(note: str) -> None:
        done[0] += 1
        if progress:
            progress(done[0], total, note)

    imported = import_source(conn, dataset)
    ds_name = imported.name
    log(f"dataset {ds_name}: {imported.summary()}")

    # 1. teacher CoTs + self-evaluations on train (training data) and dev (model selection); never on test
    gen_ids = []
    for split, lim in (("train", train_limit), ("dev", dev_limit)):
        cfg = {"dataset": ds_name, "teachers": [teacher], "split": split, "n_cots": n_cots, "k_evals": k_evals,
               "seed": seed, "evaluator": evaluator}
        if lim:
            cfg["limit"] = lim
        gen_ids.append(_reuse_or_submit(conn, "generate", cfg, name=f"experiment: {teacher} on {ds_name} {split}",
                                        device=device))
    for g, split in zip(gen_ids, ("train", "dev")):
        _wait(conn, g, log, timeout_s, on_poll)
        step(f"teacher CoTs on {split}: run {g}")

    # 2. one frozen snapshot shared by every method
    snap_name = snapshot_name(ds_name, teacher, train_limit, dev_limit, n_cots, k_evals, seed, evaluator)
    try:
        snap = snapshots.get_snapshot(conn, snap_name)
    except MirrorError:
        snap = snapshots.create_snapshot(conn, snap_name, "all", ds_name)
    log(f"snapshot {snap['name']}: {snap['size']} items")

    # 3. same student, steps and seed for every method
    train_ids = {}
    for method in methods:
        cfg = {"student": student, **METHODS[method], "max_steps": max_steps, "seed": seed, **(train_overrides or {})}
        train_ids[method] = _reuse_or_submit(conn, "train", cfg, name=f"experiment {method}", snapshot_id=snap["id"],
                                             device=device)
    for method, t in train_ids.items():
        _wait(conn, t, log, timeout_s, on_poll)
        step(f"trained {method}: run {t}")

    # 4. evaluate each on test
    eval_ids = {}
    for method, t in train_ids.items():
        cfg = {"train_run": t, "split": "test", "limit": limit, "samples": samples, "max_new_tokens": max_new_tokens,
               "seed": seed}
        eval_ids[method] = _reuse_or_submit(conn, "eval", cfg, name=f"{EVAL_NAME}{method}", snapshot_id=snap["id"],
                                            device=device)
    for method, e in eval_ids.items():
        _wait(conn, e, log, timeout_s, on_poll)
        step(f"evaluated {method}: run {e}")

    # 5. the table, diffs and figures
    return write_report(conn, eval_ids, out)


def write_report(conn, eval_ids: dict[str, int], out: str | Path) -> dict[str, Any]:
    """Comparison table (CSV, JSON, Markdown), per-example diffs against the baseline, and one PNG."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = {r["eval_run"]: r for r in compare.runs_table(conn)}
    results = compare.results_of(conn, list(eval_ids.values()))
    rows = _table_rows(eval_ids, table, results)
    compare.export_csv(rows, out / "table.csv")
    (out / "table.json").write_text(json.dumps(rows, indent=2))
    (out / "table.md").write_text(markdown_table(rows))
    files = ["table.csv", "table.json", "table.md"]
    diffs = {}
    base = eval_ids.get("answer-only")
    for method, e in eval_ids.items():
        if base is None or e == base:
            continue
        d = compare.example_diff(conn, base, e)
        compare.export_csv(d, out / f"diff-answer-only-vs-{method}.csv")
        files.append(f"diff-answer-only-vs-{method}.csv")
        counts = compare.diff_counts(d)
        diffs[method] = {**counts, "mcnemar_p": mcnemar_p(counts["fixed"], counts["broken"])}
    if diffs:
        (out / "diffs.md").write_text(diffs_markdown(diffs))
        files.append("diffs.md")
    by_label = {f"{m} (#{e})": results[e] for m, e in eval_ids.items()}
    losses = {f"{m} (#{e})": plots.loss_series(conn, table[e]["train_run"]) for m, e in eval_ids.items()}
    summary: dict[str, Any] = {"out": str(out), "table": rows, "diffs_vs_answer_only": diffs}
    try:
        plot_rows = [dict(table[e], method=m) for m, e in eval_ids.items()]
        path, engine = plots.save_png(out / "comparison.png", plot_rows, by_label, losses)
        files.append(path.name)
        summary["png_engine"] = engine
    except EvaluationError as exc:
        summary["png_error"] = str(exc)
    summary["files"] = files
    return summary


def _table_rows(eval_ids: dict[str, int], table: dict[int, dict[str, Any]],
                results: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """The comparison table's rows (TABLE_COLUMNS), one per method, from the runs table and eval results."""
    rows = []
    for method, e in eval_ids.items():
        r = dict(table[e])
        r["method"] = method
        r["ece_mass"] = results[e].get("ece_mass")
        r["accuracy_at_80"] = accuracy_at_coverage(results[e].get("abstention") or [], 0.8)
        rows.append({k: r.get(k) for k in TABLE_COLUMNS})
    return rows


# The training settings that follow from the method (the train stage stores them filled in: tasks and their
# weights differ per method), so they do not split one experiment's runs apart.
_BY_METHOD = ("method", "schedule", "tasks", "weights")


def _experiment_key(conn, row) -> tuple[Any, str, str]:
    """What makes eval runs one experiment: the snapshot, the training settings every method shared (all but
    those its method sets: `_BY_METHOD`) and the eval settings (all but the train run) — so a tiny-student try and a SmolLM2
    run on the same snapshot stay apart."""
    ecfg = {k: v for k, v in (store.loads(row["config"]) or {}).items() if k != "train_run"}
    t = conn.execute("SELECT config FROM runs WHERE id = ?", ((store.loads(row["config"]) or {}).get("train_run")
                                                               or row["parent_run_id"],)).fetchone()
    tcfg = {k: v for k, v in ((store.loads(t["config"]) if t else None) or {}).items() if k not in _BY_METHOD}
    return row["snapshot_id"], store.dumps(tcfg), store.dumps(ecfg)


def find_experiments(conn) -> list[dict[str, Any]]:
    """The method comparisons in the store, newest first: succeeded eval runs named "experiment eval <method>",
    grouped by snapshot and shared settings, the latest per method. Each: label, snapshot, student, eval_ids
    ({method: eval run}, in METHODS order) — what write_report takes."""
    groups: dict[tuple, dict[str, Any]] = {}
    for r in conn.execute("SELECT * FROM runs WHERE kind = 'eval' AND status = 'succeeded' AND name LIKE ?"
                          " ORDER BY id DESC", (EVAL_NAME + "%",)):
        method = r["name"][len(EVAL_NAME):]
        key = _experiment_key(conn, r)
        g = groups.setdefault(key, {"snapshot_id": r["snapshot_id"], "methods": {}, "latest": r["id"],
                                    "train": store.loads(key[1]) or {}, "eval": store.loads(key[2]) or {}})
        g["methods"].setdefault(method, r["id"])  # newest first, so the first seen is the latest
    out = []
    for g in groups.values():
        order = [m for m in METHODS if m in g["methods"]] + sorted(m for m in g["methods"] if m not in METHODS)
        snap = conn.execute("SELECT name FROM snapshots WHERE id = ?", (g["snapshot_id"],)).fetchone()
        tr, ev = g["train"], g["eval"]
        label = " · ".join(str(x) for x in (
            snap["name"] if snap else f"snapshot {g['snapshot_id']}", tr.get("student"),
            f"{tr['max_steps']} steps" if tr.get("max_steps") else None,
            f"{ev.get('split', 'test')} limit {ev['limit']}" if ev.get("limit") else ev.get("split", "test"),
            f"{len(order)} method(s)", f"latest eval run {g['latest']}") if x)
        out.append({"label": label, "snapshot": snap["name"] if snap else None, "student": tr.get("student"),
                    "latest": g["latest"], "eval_ids": {m: g["methods"][m] for m in order}})
    return sorted(out, key=lambda e: -e["latest"])


def experiment_view(conn, eval_ids: dict[str, int]) -> dict[str, Any]:
    """What the Evaluate page shows of one experiment: `rows` (the same rows as write_report's table),
    `shown` (those rows for reading: percentages, intervals, and plots.NOT_SELF_EVAL for ECE/Brier/AUROC of a
    student never trained on verdicts), and the figures' inputs (`plot_rows`, `calibration` — results of the
    self-evaluating students only — `results` and `losses`, keyed by "method (#eval run)")."""
    table = {r["eval_run"]: r for r in compare.runs_table(conn)}
    results = compare.results_of(conn, list(eval_ids.values()))
    rows = _table_rows(eval_ids, table, results)
    trained = {m: plots.self_eval_trained(conn, table[e]["train_run"], results.get(e)) for m, e in eval_ids.items()}

    def cell(key, r):  # a metric as its registry formats it; calibration of an untrained self-evaluation: why not
        m = metric(key)
        return plots.NOT_SELF_EVAL if m.calibration and trained[r["method"]] is False else m.format(r[key], "–")

    shown = [{"method": r["method"], "n": r["n"], ACC_CI: _with_ci(r),
              **{metric(k).label: cell(k, r) for k in SHOWN_METRICS},
              "train run": r["train_run"], "eval run": r["eval_run"]} for r in rows]
    by_label = {f"{m} (#{e})": results.get(e, {}) for m, e in eval_ids.items()}
    return {"rows": rows, "shown": shown,
            "plot_rows": [dict(table[e], method=m) for m, e in eval_ids.items()],
            "results": by_label,
            "calibration": {f"{m} (#{e})": by_label[f"{m} (#{e})"] for m, e in eval_ids.items() if trained[m] is not False},
            "losses": {f"{m} (#{e})": plots.loss_series(conn, table[e]["train_run"]) for m, e in eval_ids.items()
                       if table[e]["train_run"]}}


def accuracy_at_coverage(curve: list[dict[str, float]], coverage: float) -> float | None:
    """Accuracy when abstaining on the least confident questions so that at least `coverage` are answered
    (the first point of the abstention curve at or above it)."""
    for p in curve:
        if p["coverage"] >= coverage - 1e-9:
            return p["accuracy"]
    return None


def mcnemar_p(fixed: int, broken: int) -> float:
    """Exact two-sided McNemar p-value for paired right/wrong outcomes on the same questions.

    Only the discordant questions count (right under one method, wrong under the other); under the null
    each is equally likely either way, so the p-value is a two-sided binomial tail at 1/2. It is the
    test that fits "same test items for every method"; the per-method bootstrap intervals ignore the
    pairing and so overlap even where the paired difference is clear."""
    from math import comb

    n, k = fixed + broken, min(fixed, broken)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2 ** n)


def diffs_markdown(diffs: dict[str, dict[str, Any]]) -> str:
    head = ("| vs answer-only | fixed (b right, a wrong) | broken | both right | both wrong | exact McNemar p |\n"
            "|---|---|---|---|---|---|\n")
    return head + "".join(f"| {m} | {c['fixed']} | {c['broken']} | {c['both right']} | {c['both wrong']} | "
                          f"{c['mcnemar_p']:.3g} |\n" for m, c in diffs.items())


def markdown_table(rows: list[dict[str, Any]]) -> str:
    def f(v):
        return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    names = ["method", "n", ACC_CI, *(metric(k).label for k in SHOWN_METRICS), "teacher $", "train s", "eval s"]
    head = "| " + " | ".join(names) + " |\n" + "|---" * len(names) + "|\n"
    return head + "".join(
        f"| {r['method']} | {r['n']} | {_with_ci(r)} | "
        + " | ".join(metric(k).format(r.get(k), "–") for k in SHOWN_METRICS)
        + f" | {f(r['teacher_cost_usd'])} | {f(r['train_seconds'])} | {f(r.get('eval_seconds'))} |\n"
        for r in rows)


def _with_ci(r: dict[str, Any]) -> str:
    """Accuracy with its 95% bootstrap interval: "60.0% [40.0%, 80.0%]"."""
    acc = metric("accuracy")
    return f"{acc.format(r['accuracy'], '–')} [{acc.format(r['accuracy_lo'], '–')}, {acc.format(r['accuracy_hi'], '–')}]"
