"""Evaluating a tiny saved run through the job runner: predictions, resume, metrics, CLI, compare."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from eval_helpers import make_dataset, make_train_run, one_thread  # noqa: F401 (autouse fixture)

from mirror_core import formats, jobs, store
from mirror_core.errors import EvaluationError
from mirror_core.evaluation import compare, runner
from mirror_core.students import generate, loading, selfeval


@pytest.fixture
def trained(conn, home):
    did = make_dataset(conn)
    return did, make_train_run(conn, home, did)


def test_batched_generation_equals_one_at_a_time():
    tok = loading.load_tokenizer("tiny")
    model = loading.tiny_causal_lm(tok)
    prompts = [formats.prompt("cot", "What is " + " plus ".join(["1"] * k) + "?") for k in range(1, 8)]
    batched = generate.generate(model, tok, prompts, max_new_tokens=12, batch_size=8)
    single = generate.generate(model, tok, prompts, max_new_tokens=12, batch_size=1)
    assert batched.texts == single.texts  # left padding + sorting change nothing but speed
    assert batched.batches == 1 and single.batches == 7
    sampled = generate.generate(model, tok, prompts[:2], max_new_tokens=6, num_samples=3, seed=1)
    assert [len(t) for t in sampled.texts] == [3, 3]
    again = generate.generate(model, tok, prompts[:2], max_new_tokens=6, num_samples=3, seed=1)
    assert sampled.texts == again.texts  # seeded sampling is reproducible (resume gives the same)


def test_self_eval_confidence_is_renormalised_verdict_probability():
    import torch

    tok = loading.load_tokenizer("tiny")
    model = loading.tiny_causal_lm(tok)
    out = selfeval.self_evaluate(model, tok, ["What is 2 + 2?", "Pick one"], [None, ["x", "y"]],
                                 ["2 + 2 = 4. The answer is 4.", "x"])
    ids = selfeval.verdict_token_ids(tok)
    enc = tok(formats.prompt("verdict", "What is 2 + 2?", None, "2 + 2 = 4. The answer is 4."), return_tensors="pt")
    with torch.no_grad():
        p = torch.softmax(model(**enc).logits[0, -1], -1)
    want = p[ids["correct"]] / (p[ids["correct"]] + p[ids["wrong"]] + p[ids["uncertain"]])
    assert out[0].confidence == pytest.approx(float(want), rel=1e-4)
    assert sum(out[1].probs.values()) == pytest.approx(1.0)
    assert out[1].verdict == max(out[1].probs, key=out[1].probs.get)


def test_eval_job_stores_predictions_and_resumes(conn, home, trained):
    did, train_run = trained
    cfg = {"train_run": train_run, "split": "test", "limit": 4, "samples": 2, "max_new_tokens": 12, "chunk": 2}
    run_id = jobs.submit(conn, "eval", cfg, parent_run_id=train_run, home=home)
    row = jobs.wait(conn, run_id, timeout_s=240)
    assert row["status"] == "succeeded", jobs.log_tail(row["log_path"])
    preds = conn.execute("SELECT * FROM predictions WHERE run_id = ? ORDER BY example_id, sample_index",
                         (run_id,)).fetchall()
    assert len(preds) == 4 * 3  # greedy + 2 samples for each of the first 4 test examples
    gold = {r["id"]: r["answer"] for r in conn.execute("SELECT id, answer FROM examples WHERE split = 'test'")}
    for p in preds:
        assert p["self_verdict"] in formats.VERDICTS and 0.0 <= p["confidence"] <= 1.0
        assert p["correct"] == int(p["answer"] is not None and p["answer"] == gold[p["example_id"]])
    res = store.loads(row["result"])
    greedy = [p for p in preds if p["sample_index"] == 0]
    assert res["n"] == 4 and res["accuracy"] == pytest.approx(sum(p["correct"] for p in greedy) / 4)
    # the tiny model was taught to always answer 4: right on the three questions whose gold is 4
    assert res["accuracy"] == 0.75
    assert res["vote"]["samples_per_question"] == 2
    assert res["teacher"]["fake"]["n"] == 1 and res["teacher"]["fake"]["brier"] == pytest.approx(0.01)
    # make_train_run lists verdict in its tasks but its snapshot holds no self-evaluations: never trained.
    assert res["self_eval_trained"] is False and res["mode"] == "cot"

    # Resume: drop one example's predictions and mark the run failed; the rerun redoes only that one.
    first = greedy[0]["example_id"]
    kept = {p["id"] for p in preds if p["example_id"] != first}
    conn.execute("DELETE FROM predictions WHERE run_id = ? AND example_id = ?", (run_id, first))
    conn.execute("UPDATE runs SET status = 'failed' WHERE id = ?", (run_id,))
    jobs.resume(conn, run_id, home=home)
    row = jobs.wait(conn, run_id, timeout_s=240)
    assert row["status"] == "succeeded"
    after = conn.execute("SELECT id, example_id FROM predictions WHERE run_id = ?", (run_id,)).fetchall()
    assert len(after) == 12
    assert {r["id"] for r in after if r["example_id"] != first} == kept  # untouched, not recomputed
    assert store.loads(row["result"])["accuracy"] == 0.75


def test_eval_refuses_unfinished_or_unknown(conn, home, trained):
    _, train_run = trained
    with pytest.raises(EvaluationError, match="Unknown eval setting"):
        runner.EvalConfig.from_dict({"train_run": train_run, "splt": "test"})
    conn.execute("UPDATE runs SET status = 'running' WHERE id = ?", (train_run,))
    with pytest.raises(EvaluationError, match="once it has succeeded"):
        runner.evaluate(conn, train_run, runner.EvalConfig(train_run=train_run))


def _cli(home, *args):
    import os

    env = dict(os.environ, MIRROR_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "mirror_core", *args], capture_output=True, text=True, env=env,
                          timeout=280, cwd=str(Path(runner.__file__).resolve().parents[2]))


def test_cli_eval_last_line_is_json_and_compare_exports(conn, home, trained, tmp_path):
    did, run_a = trained
    run_b = make_train_run(conn, home, did, tasks=("answer",), name="answer-only")
    out = _cli(home, "eval", "--run", str(run_a), "--split", "test", "--limit", "5", "--max-new-tokens", "12", "--wait")
    assert out.returncode == 0, out.stderr
    last = json.loads(out.stdout.strip().splitlines()[-1])
    for k in ("accuracy", "ece", "brier", "auroc", "n"):
        assert k in last
    assert last["n"] == 5 and last["accuracy"] == 0.6
    assert "accuracy 60.0%" in out.stdout
    out_b = _cli(home, "eval", "--run", str(run_b), "--limit", "5", "--max-new-tokens", "12")
    assert out_b.returncode == 0, out_b.stderr
    eval_b = json.loads(out_b.stdout.strip().splitlines()[-1])["eval_run"]
    assert json.loads(out_b.stdout.strip().splitlines()[-1])["mode"] == "answer"

    # compare by train run ids (resolved to their evals): CSV of the diff and a PNG
    csv_path, png_path = tmp_path / "diff.csv", tmp_path / "cmp.png"
    out = _cli(home, "compare", str(run_a), str(eval_b), "--csv", str(csv_path), "--png", str(png_path))
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert sum(summary[c] for c in compare.CATEGORIES) == 5
    assert csv_path.read_text().splitlines()[0].startswith("example_id,")
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = compare.runs_table(conn)
    assert {r["method"] for r in table} == {"Mind's Mirror", "answer-only"}
    assert _cli(home, "eval", "--run", "999").returncode == 1


def test_example_diff_categories(conn, home, trained):
    did, train_run = trained
    ts = store.now()
    ids = [r[0] for r in conn.execute("SELECT id FROM examples WHERE split = 'test' ORDER BY id LIMIT 4")]
    evals = []
    for outcome in ([1, 1, 0, 0], [1, 0, 1, 0]):
        rid = conn.execute("INSERT INTO runs (kind, status, config, created_at) VALUES ('eval', 'succeeded', ?, ?)",
                           (json.dumps({"train_run": train_run}), ts)).lastrowid
        for eid, ok in zip(ids, outcome):
            conn.execute("INSERT INTO predictions (run_id, example_id, output, answer, correct, created_at)"
                         " VALUES (?, ?, 'x', 'y', ?, ?)", (rid, eid, ok, ts))
        evals.append(rid)
    rows = compare.example_diff(conn, *evals)
    assert [r["category"] for r in rows] == ["both right", "broken", "fixed", "both wrong"]
    assert compare.diff_counts(rows) == {"fixed": 1, "broken": 1, "both right": 1, "both wrong": 1}
