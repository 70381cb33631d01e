"""Evaluate a trained student on a split: predictions per example and sample, then the metrics.

Flow: load the run's checkpoint (best, else last) -> pick the split's examples -> for each chunk of
examples not yet predicted: greedy generation (sample 0), optionally M sampled CoTs (samples 1..M),
the student's self-evaluation of each output -> store `predictions` -> metrics over everything stored.
Stored predictions are the resume point: a rerun skips examples whose samples are all there.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from typing import Any, Callable

from mirror_core import answers, config, formats, store
from mirror_core.configs import check_options, config_from_dict, option
from mirror_core.errors import EvaluationError
from mirror_core.evaluation import metrics
from mirror_core.students import checkpoints
from mirror_core.students.generate import generate
from mirror_core.students.selfeval import self_evaluate

# A teacher's stated confidence is in its own verdict; as P(correct) it flips for "wrong".
_VERDICT_P_CORRECT = {"correct": 1.0, "wrong": 0.0, "uncertain": 0.5}


@dataclass
class EvalConfig:
    """What an eval job reads from its config: help and bounds per field (`configs.option`), unknown keys
    refused so typos fail loudly. The CLI's `eval` flags are made from these fields."""

    train_run: int = option("id of the finished train run whose student is evaluated")
    split: str = option("split to evaluate on (select models on dev, report on test)", "test",
                        choices=("train", "dev", "test"))
    limit: int | None = option("only the first N examples of the split (None: all)", None, lo=1)
    samples: int = option("sampled CoTs per question for self-consistency votes (1: greedy only)", 1, lo=1)
    max_new_tokens: int = option("longest generated answer, in tokens", 256, lo=1)
    batch_size: int = option("questions generated at once", 16, lo=1)
    chunk: int = option("examples stored per transaction (the resume granularity)", 32, lo=1)
    temperature: float = option("sampling temperature of the sampled CoTs", 0.7, lo=0)
    top_p: float = option("nucleus sampling mass of the sampled CoTs", 0.95, lo=0, hi=1)
    seed: int = option("seed of the sampled CoTs and the bootstrap interval", 0)
    mode: str = option("which prompt produces the answer: auto (cot for a student trained on CoTs), cot, answer",
                       "auto", choices=("auto", "cot", "answer"))
    dataset: str | int | None = option("dataset name or id (None: the dataset of the run's snapshot)", None)
    n_bins: int = option("bins of the reliability diagram and ECE", 10, lo=1)
    bf16: bool | None = option("bf16 autocast for generation and self-evaluation; None: where measured faster than fp32 "
                               "(device.py)",
                               None)

    def __post_init__(self) -> None:
        check_options(self, EvaluationError)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EvalConfig":
        return config_from_dict(cls, d, label="eval", error=EvaluationError)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- which examples

def dataset_of(conn: sqlite3.Connection, train_row: sqlite3.Row, cfg: EvalConfig) -> int:
    """The dataset an eval reads: the one named in the config, else the one of the train run's snapshot."""
    if cfg.dataset is not None:
        row = conn.execute("SELECT id FROM datasets WHERE name = ? OR CAST(id AS TEXT) = ?",
                           (str(cfg.dataset), str(cfg.dataset))).fetchone()
        if row is None:
            raise EvaluationError(f"Dataset '{cfg.dataset}' does not exist; `python -m mirror_core status` lists counts.")
        return row["id"]
    sid = train_row["snapshot_id"]
    if sid is None:
        raise EvaluationError(f"Train run {train_row['id']} has no snapshot; pass a dataset to evaluate on.")
    snap = conn.execute("SELECT dataset_id FROM snapshots WHERE id = ?", (sid,)).fetchone()
    if snap is not None and snap["dataset_id"] is not None:
        return snap["dataset_id"]
    ids = [r[0] for r in conn.execute(
        "SELECT DISTINCT e.dataset_id FROM snapshot_items s JOIN examples e ON e.id = s.example_id"
        " WHERE s.snapshot_id = ?", (sid,))]
    if len(ids) != 1:
        raise EvaluationError(f"Snapshot {sid} spans {len(ids)} datasets; pass the dataset to evaluate on.")
    return ids[0]


def select_examples(conn: sqlite3.Connection, dataset_id: int, split: str, limit: int | None) -> list[sqlite3.Row]:
    rows = conn.execute("SELECT * FROM examples WHERE dataset_id = ? AND split = ? ORDER BY id"
                        + (" LIMIT ?" if limit else ""),
                        (dataset_id, split, limit) if limit else (dataset_id, split)).fetchall()
    if not rows:
        name = conn.execute("SELECT name FROM datasets WHERE id = ?", (dataset_id,)).fetchone()
        raise EvaluationError(f"Dataset '{name[0] if name else dataset_id}' has no '{split}' examples to evaluate.")
    return rows


def _mode(cfg: EvalConfig, meta: dict[str, Any]) -> str:
    if cfg.mode != "auto":
        return cfg.mode
    # A student trained on CoTs answers with one; an answer-only student answers directly.
    return "cot" if "cot" in (meta.get("tasks") or ["cot"]) else "answer"


# ---------------------------------------------------------------- the evaluation itself

def evaluate(conn: sqlite3.Connection, run_id: int, cfg: EvalConfig, *,
             progress: Callable[[int, int, str], None] | None = None,
             log: Callable[[str], None] = lambda m: None,
             check_stop: Callable[[], None] = lambda: None, device: str | None = None) -> dict[str, Any]:
    """Predict the examples not yet predicted for eval run `run_id`, then return its metrics."""
    train_row = conn.execute("SELECT * FROM runs WHERE id = ?", (cfg.train_run,)).fetchone()
    if train_row is None or train_row["kind"] != "train":
        raise EvaluationError(f"Run {cfg.train_run} is not a train run; `python -m mirror_core jobs list --kind train`"
                              " lists them.")
    if train_row["status"] != "succeeded":
        raise EvaluationError(f"Train run {cfg.train_run} is {train_row['status']}; evaluate it once it has succeeded.")
    dataset_id = dataset_of(conn, train_row, cfg)
    examples = select_examples(conn, dataset_id, cfg.split, cfg.limit)
    wanted = [0] + (list(range(1, cfg.samples + 1)) if cfg.samples > 1 else [])
    have: dict[int, int] = {r[0]: r[1] for r in conn.execute(
        "SELECT example_id, COUNT(*) FROM predictions WHERE run_id = ? GROUP BY example_id", (run_id,))}
    todo = [e for e in examples if have.get(e["id"], 0) < len(wanted)]
    total = len(examples)
    done = total - len(todo)
    gen_tokens, gen_seconds = 0, 0.0
    meta: dict[str, Any] = {}
    if todo:
        model, tok, meta = checkpoints.load_for_inference(config.run_dir(cfg.train_run), device)
        arch = meta.get("arch", "causal")
        mode = _mode(cfg, meta)
        log(f"evaluating {len(todo)} of {total} {cfg.split} examples ({done} already done), mode {mode}")
        from mirror_core import device as devices

        use_bf16, bf16_note = devices.bf16_autocast(str(next(model.parameters()).device), cfg.bf16)
        log(f"bf16 autocast: {bf16_note}")
        for start in range(0, len(todo), cfg.chunk):
            check_stop()
            chunk = todo[start:start + cfg.chunk]
            with devices.autocast(str(next(model.parameters()).device), use_bf16):
                rows, toks, secs = _predict_chunk(model, tok, arch, mode, chunk, cfg, seed=cfg.seed + start)
            gen_tokens += toks
            gen_seconds += secs
            ts = store.now()
            with store.transaction(conn):
                conn.execute(f"DELETE FROM predictions WHERE run_id = ? AND example_id IN "
                             f"({','.join('?' * len(chunk))})", (run_id, *[e["id"] for e in chunk]))
                conn.executemany(
                    "INSERT INTO predictions (run_id, example_id, sample_index, output, answer, correct,"
                    " self_verdict, confidence, meta, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [(run_id, *r, ts) for r in rows])
            done += len(chunk)
            if progress:
                progress(done, total, f"{gen_tokens / gen_seconds:.0f} tok/s" if gen_seconds else "")
    else:
        meta = _meta_of(cfg.train_run)
    result = summarize(conn, run_id, [e["id"] for e in examples], n_bins=cfg.n_bins, seed=cfg.seed)
    result.update(split=cfg.split, mode=_mode(cfg, meta), samples=cfg.samples, train_run=cfg.train_run,
                  dataset_id=dataset_id, student=meta.get("student"), tasks=meta.get("tasks"),
                  self_eval_trained=self_eval_trained(conn, train_row, meta),
                  snapshot_id=train_row["snapshot_id"])
    if gen_seconds:
        result["tokens_per_s"] = gen_tokens / gen_seconds
    result["teacher"] = teacher_calibration(conn, dataset_id, train_row["snapshot_id"], n_bins=cfg.n_bins)
    return result


def self_eval_trained(conn: sqlite3.Connection, train_row: sqlite3.Row, meta: dict[str, Any]) -> bool:
    """Whether the train run actually trained the verdict task: its recorded `tasks_trained`, else (runs
    from before that was recorded) its configured tasks and whether its snapshot holds any train
    self-evaluation with a verdict."""
    result = store.loads(train_row["result"]) if train_row["result"] else {}
    if isinstance(result, dict) and "tasks_trained" in result:
        return "verdict" in (result["tasks_trained"] or [])
    if "verdict" not in (meta.get("tasks") or []):
        return False
    if train_row["snapshot_id"] is None:
        return True
    return conn.execute("SELECT 1 FROM snapshot_items WHERE snapshot_id = ? AND split = 'train' AND self_evals"
                        " IS NOT NULL AND self_evals NOT IN ('', '[]') AND self_evals LIKE '%\"verdict\"%' LIMIT 1",
                        (train_row["snapshot_id"],)).fetchone() is not None


def _meta_of(train_run: int) -> dict[str, Any]:
    ckpt = checkpoints.find(config.run_dir(train_run))
    return checkpoints.load_meta(ckpt) if ckpt is not None else {}


def _predict_chunk(model, tok, arch: str, mode: str, chunk: list[sqlite3.Row], cfg: EvalConfig, seed: int):
    """Rows (example_id, sample_index, output, answer, correct, verdict, confidence, meta) for a chunk."""
    qs = [e["question"] for e in chunk]
    chs = [store.loads(e["choices"]) for e in chunk]
    prompts = [formats.prompt(mode, q, c) for q, c in zip(qs, chs)]
    runs = [(0, generate(model, tok, prompts, arch=arch, max_new_tokens=cfg.max_new_tokens,
                         batch_size=cfg.batch_size, num_samples=1, do_sample=False))]
    if cfg.samples > 1:
        runs.append((1, generate(model, tok, prompts, arch=arch, max_new_tokens=cfg.max_new_tokens,
                                 batch_size=max(1, cfg.batch_size // cfg.samples), num_samples=cfg.samples,
                                 temperature=cfg.temperature, top_p=cfg.top_p, seed=seed)))
    flat = []  # (example index, sample index, text, new tokens)
    for first, g in runs:
        for i, (texts, counts) in enumerate(zip(g.texts, g.new_tokens)):
            for j, (t, n) in enumerate(zip(texts, counts)):
                flat.append((i, first + j, t, n))
    evals = self_evaluate(model, tok, [qs[i] for i, *_ in flat], [chs[i] for i, *_ in flat],
                          [t.strip() or "(no reasoning)" for _, _, t, _ in flat], arch=arch,
                          batch_size=cfg.batch_size)
    rows = []
    for (i, s, text, n), ev in zip(flat, evals):
        e = chunk[i]
        pred, _, ok = answers.grade(text, e["answer"], e["task_type"], chs[i])
        rows.append((e["id"], s, text, pred, ok, ev.verdict, ev.confidence,
                     store.dumps({"probs": ev.probs, "new_tokens": n, "mode": mode})))
    return rows, sum(g.tokens_total for _, g in runs), sum(g.seconds for _, g in runs)


# ---------------------------------------------------------------- metrics over stored predictions

def summarize(conn: sqlite3.Connection, run_id: int, example_ids: list[int] | None = None, *,
              n_bins: int = 10, seed: int = 0) -> dict[str, Any]:
    """Metrics of an eval run from its stored predictions (sample 0 = greedy; 1..M = sampled)."""
    rows = conn.execute("SELECT * FROM predictions WHERE run_id = ? ORDER BY example_id, sample_index",
                        (run_id,)).fetchall()
    if example_ids is not None:
        keep = set(example_ids)
        rows = [r for r in rows if r["example_id"] in keep]
    greedy = [r for r in rows if r["sample_index"] == 0]
    if not greedy:
        raise EvaluationError(f"Eval run {run_id} has no predictions yet.")
    # A prediction whose gold does not parse is ungradable (correct NULL, `answers.grade`): it is left out
    # of every metric and counted, never scored as wrong.
    graded = [r for r in greedy if r["correct"] is not None]
    conf = [r["confidence"] if r["confidence"] is not None else 0.5 for r in graded]
    correct = [int(r["correct"]) for r in graded]
    out = metrics.calibration_summary(conf, correct, n_bins, seed=seed)
    out["reliability_mass"] = metrics.reliability_bins(conf, correct, n_bins, "mass")
    out["ungradable"] = len(greedy) - len(graded)
    out["no_answer"] = sum(1 for r in greedy if r["answer"] is None)
    out["verdicts"] = {v: sum(1 for r in greedy if r["self_verdict"] == v) for v in formats.VERDICTS}
    sampled: dict[int, list[sqlite3.Row]] = {}
    for r in rows:
        if r["sample_index"] > 0:
            sampled.setdefault(r["example_id"], []).append(r)
    if sampled:
        gold = {r["example_id"]: r for r in conn.execute(
            f"SELECT id AS example_id, answer, task_type, choices FROM examples WHERE id IN "
            f"({','.join('?' * len(sampled))})", list(sampled))}
        maj, wvote, each = [], [], []
        for eid, rs in sampled.items():
            g = gold[eid]
            chs = store.loads(g["choices"])
            a_m, _ = metrics.majority_vote([r["answer"] for r in rs])
            a_w, _ = metrics.weighted_vote([r["answer"] for r in rs], [r["confidence"] or 0.0 for r in rs])
            m, w = (answers.grade_answer(a, g["answer"], g["task_type"], chs) for a in (a_m, a_w))
            if m is None:  # ungradable question (its gold does not parse): no vote counts
                continue
            maj.append(m)
            wvote.append(w)
            each.extend(int(r["correct"]) for r in rs if r["correct"] is not None)
        out["vote"] = {"n": len(maj), "samples_per_question": max(len(v) for v in sampled.values()),
                       "sampled_accuracy": metrics.accuracy(each),
                       "majority": metrics.accuracy_ci(maj, seed=seed),
                       "weighted": metrics.accuracy_ci(wvote, seed=seed)}
    return out


def teacher_calibration(conn: sqlite3.Connection, dataset_id: int, snapshot_id: int | None = None, *,
                        n_bins: int = 10) -> dict[str, Any]:
    """Calibration of each teacher's self-evaluations (verdict/confidence vs gold) on a dataset's CoTs.

    Restricted to the snapshot's rationales when it has any (the data that trained the student).
    P(correct) is the stated confidence for "correct", 1 - it for "wrong", 0.5 for "uncertain";
    without a stated confidence it is 1 / 0 / 0.5.
    """
    sql = ("SELECT se.evaluator, se.verdict, se.confidence, r.correct, r.parsed_answer, e.answer, e.task_type,"
           " e.choices FROM self_evals se JOIN rationales r ON r.id = se.rationale_id"
           " JOIN examples e ON e.id = r.example_id"
           " WHERE e.dataset_id = ? AND r.kind = 'cot' AND se.verdict IS NOT NULL")
    args: list[Any] = [dataset_id]
    if snapshot_id is not None and conn.execute(
            "SELECT 1 FROM snapshot_items WHERE snapshot_id = ? AND rationale_id IS NOT NULL LIMIT 1",
            (snapshot_id,)).fetchone():
        sql += " AND r.id IN (SELECT rationale_id FROM snapshot_items WHERE snapshot_id = ?)"
        args.append(snapshot_id)
    groups: dict[str, tuple[list[float], list[int], list[int]]] = {}
    for r in conn.execute(sql, args):
        ok = r["correct"]
        if ok is None:  # graded before grading was stored, or ungradable: grade it now
            ok = answers.grade_answer(r["parsed_answer"], r["answer"], r["task_type"], store.loads(r["choices"]))
        if ok is None:  # an unparsable gold leaves the pair out; it is not "wrong"
            continue
        ok = int(ok)
        base = _VERDICT_P_CORRECT[r["verdict"]]
        c = r["confidence"]
        if c is None or r["verdict"] == "uncertain":
            p = base
        else:
            c = min(1.0, max(0.0, float(c)))
            p = c if r["verdict"] == "correct" else 1.0 - c
        conf, cor, agree = groups.setdefault(r["evaluator"], ([], [], []))
        conf.append(p)
        cor.append(ok)
        agree.append(int((r["verdict"] == "correct") == bool(ok)) if r["verdict"] != "uncertain" else 0)
    out = {}
    for ev, (conf, cor, agree) in groups.items():
        s = metrics.calibration_summary(conf, cor, n_bins)
        s.pop("abstention")
        s["verdict_accuracy"] = metrics.accuracy(agree)
        out[ev] = s
    return out


def run_timing(train_row: sqlite3.Row) -> float | None:
    """Seconds a run took: the time its worker ran, summed over its attempts (`runs.elapsed_s`; an attempt
    killed before it could record its time is not counted), else — a run from before that column — its
    finish minus start stamps."""
    from datetime import datetime

    if "elapsed_s" in train_row.keys() and train_row["elapsed_s"] is not None:
        return float(train_row["elapsed_s"])
    if not train_row["started_at"] or not train_row["finished_at"]:
        return None
    try:
        return (datetime.fromisoformat(train_row["finished_at"]) - datetime.fromisoformat(train_row["started_at"])).total_seconds()
    except ValueError:
        return None
