"""What the CoT task trains on, and which tasks a run really trains (issue 11 items 9 and 10)."""

import json

import pytest

from mirror_core import store
from mirror_core.errors import TrainingError
from mirror_core.evaluation import runner
from mirror_core.training import data
from mirror_core.training.config import TrainConfig
from mirror_core.training.job import data_report
from training_fixtures import make_snapshot


def _item(cot, answer="42", task_type="numeric", choices=None, split="train"):
    return {"example_id": 1, "rationale_id": 1, "split": split, "question": "Q?", "answer": answer, "cot": cot,
            "self_evals": [], "choices": choices, "task_type": task_type}


def test_cot_without_final_answer_is_left_out_never_given_the_gold():
    items = [_item("The question is unanswerable as stated.\nStep 3"), _item("84 / 2 = 42.\nThe answer is 42.")]
    ex = data.build_examples(items, ["answer", "cot"], "train")
    cots = [e.target for e in ex if e.task == "cot"]
    assert cots == ["84 / 2 = 42.\nThe answer is 42."]
    assert all("unanswerable" not in t for t in cots)
    assert data.cot_report(items) == {"kept": 1, "answer_line_added": 0, "left_out": 1}


def test_cot_gets_its_own_answer_not_the_gold():
    items = [_item("So the answer is 40.\nI double-checked the sum.", answer="42")]
    (cot,) = [e.target for e in data.build_examples(items, ["cot"], "train")]
    assert cot.endswith("The answer is 40.") and "42" not in cot
    assert data.cot_report(items) == {"kept": 1, "answer_line_added": 1, "left_out": 0}


def test_palm_style_cots_are_kept_as_written():
    svamp = _item("He has 84 and halves them. The answer is (84 / 2).", answer="42")
    cqa = _item("Dishes go in a cupboard. So the answer is (b) cupboard.", answer="B", task_type="multiple_choice",
                choices=["shelf", "cupboard", "box", "floor", "sink"])
    targets = [e.target for e in data.build_examples([svamp, cqa], ["cot"], "train")]
    assert targets == [svamp["cot"], cqa["cot"]]


def test_load_items_carries_task_type(conn):
    items = data.load_items(conn, make_snapshot(conn, n_train=3, n_dev=1))
    assert {i["task_type"] for i in items} == {"numeric"}
    assert data.cot_report(items) == {"kept": 3, "answer_line_added": 0, "left_out": 0}


def _without_self_evals(conn, sid):
    """A new snapshot with the same items as `sid` but no self-evaluations (snapshots are frozen)."""
    with store.transaction(conn):
        new = conn.execute("INSERT INTO snapshots (name, policy, dataset_id, hash, size, created_at) SELECT"
                           " name || '-noeval', policy, dataset_id, 'h2', size, created_at FROM snapshots"
                           " WHERE id = ?", (sid,)).lastrowid
        conn.execute("INSERT INTO snapshot_items (snapshot_id, example_id, rationale_id, split, question, answer,"
                     " cot, self_evals) SELECT ?, example_id, rationale_id, split, question, answer, cot, '[]'"
                     " FROM snapshot_items WHERE snapshot_id = ?", (new, sid))
    return new


def test_mindsmirror_on_snapshot_without_self_evaluations_is_refused(conn):
    sid = _without_self_evals(conn, make_snapshot(conn, n_train=3, n_dev=1))
    items = data.load_items(conn, sid)
    with pytest.raises(TrainingError, match=r"no training examples for verdict, critique \(it has no "
                                            r"self-evaluations\).*step-by-step"):
        data_report(TrainConfig(student="tiny", method="mindsmirror"), items, sid)
    report = data_report(TrainConfig(student="tiny", method="step-by-step"), items, sid)
    assert report["tasks_trained"] == ["answer", "cot"] and report["train_examples"] == {"answer": 3, "cot": 3}


def test_evaluation_reports_self_eval_trained_only_when_verdicts_were_trained(conn):
    sid = make_snapshot(conn, n_train=3, n_dev=1)
    meta = {"tasks": ["answer", "cot", "verdict", "critique"]}
    recorded = {"snapshot_id": sid, "result": json.dumps({"tasks_trained": ["answer", "cot"]})}
    assert runner.self_eval_trained(conn, recorded, meta) is False
    old_run = {"snapshot_id": sid, "result": None}  # trained before tasks_trained was recorded
    assert runner.self_eval_trained(conn, old_run, meta) is True
    bare = {"snapshot_id": _without_self_evals(conn, sid), "result": None}
    assert runner.self_eval_trained(conn, bare, meta) is False
