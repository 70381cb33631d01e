"""The Evaluate page's comparison, read from the store: experiments grouped by snapshot and shared settings,
the same rows as the report. (The page showing a real tiny experiment is checked in tests/test_experiment.py.)"""

from __future__ import annotations

import json

from eval_helpers import make_dataset, make_train_run, one_thread  # noqa: F401 (autouse fixture)

from mirror_core import store
from mirror_core.evaluation import experiment, plots, runner


def _exp_eval(conn, train_run: int, method: str, outcomes: list[int], cfg: dict | None = None) -> int:
    """An eval run as run_experiment names it, with hand-written predictions and the runner's summary."""
    ts = store.now()
    snap = conn.execute("SELECT snapshot_id FROM runs WHERE id = ?", (train_run,)).fetchone()[0]
    rid = conn.execute("INSERT INTO runs (kind, name, status, config, snapshot_id, parent_run_id, created_at) VALUES"
                       " ('eval', ?, 'succeeded', ?, ?, ?, ?)",
                       (f"experiment eval {method}", json.dumps({"train_run": train_run, "split": "test", **(cfg or {})}),
                        snap, train_run, ts)).lastrowid
    ids = [r[0] for r in conn.execute("SELECT id FROM examples WHERE split = 'test' ORDER BY id")]
    for eid, ok in zip(ids, outcomes):
        conn.execute("INSERT INTO predictions (run_id, example_id, output, answer, correct, self_verdict, confidence,"
                     " created_at) VALUES (?, ?, 'The answer is 4.', '4', ?, 'correct', 0.7, ?)", (rid, eid, ok, ts))
    conn.execute("UPDATE runs SET result = ? WHERE id = ?", (store.dumps(runner.summarize(conn, rid)), rid))
    return rid


def test_experiments_are_grouped_by_snapshot_and_settings_latest_per_method(home, conn):
    did = make_dataset(conn)
    a = make_train_run(conn, home, did, tasks=("answer",), name="a", checkpoint=False)
    m = make_train_run(conn, home, did, name="m", checkpoint=False)
    conn.execute("UPDATE runs SET snapshot_id = (SELECT snapshot_id FROM runs WHERE id = ?) WHERE id = ?", (a, m))
    for t, method in ((a, "answer-only"), (m, "mindsmirror")):
        conn.execute("UPDATE runs SET config = ? WHERE id = ?",
                     (json.dumps({"student": "tiny", **experiment.METHODS[method], "max_steps": 3, "seed": 0}), t))
    old = _exp_eval(conn, m, "mindsmirror", [0, 0, 0, 0, 0])
    e_mm = _exp_eval(conn, m, "mindsmirror", [1, 1, 1, 0, 0])  # a rerun: the latest counts
    e_ao = _exp_eval(conn, a, "answer-only", [1, 0, 0, 0, 0])
    other = _exp_eval(conn, a, "answer-only", [1, 1, 0, 0, 0], {"limit": 2})  # other eval settings: another experiment
    conn.execute("INSERT INTO runs (kind, name, status, config, created_at) VALUES ('eval', 'eval of run 1', 'succeeded',"
                 " '{}', ?)", (store.now(),))  # not an experiment's eval
    exps = experiment.find_experiments(conn)
    assert [e["eval_ids"] for e in exps] == [{"answer-only": other}, {"answer-only": e_ao, "mindsmirror": e_mm}]
    assert old not in exps[1]["eval_ids"].values()
    assert "tiny" in exps[1]["label"] and "3 steps" in exps[1]["label"]
    view = experiment.experiment_view(conn, exps[1]["eval_ids"])
    shown = {r["method"]: r for r in view["shown"]}
    assert shown["answer-only"]["AUROC"] == plots.NOT_SELF_EVAL and shown["answer-only"]["ECE"] == plots.NOT_SELF_EVAL
    assert shown["mindsmirror"]["accuracy [95% CI]"].startswith("60.0% [")
    assert shown["mindsmirror"]["ECE"] == f"{view['rows'][1]['ece']:.3f}"
    assert list(view["calibration"]) == [f"mindsmirror (#{e_mm})"]
