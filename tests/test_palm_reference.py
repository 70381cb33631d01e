"""The built-in SVAMP import, the PaLM replay teacher (vendored release CoTs) and the reference evaluator."""

from __future__ import annotations

import json

from mirror_core import snapshots
from mirror_core.data.importing import import_source
from mirror_core.generation import pipeline
from mirror_core.teachers import palm
from mirror_core.teachers.registry import TeacherSpec, display_name, make_teacher


def test_svamp_counts_split_and_equation_kept(conn):
    r = import_source(conn, "svamp")
    assert (r.name, r.task_type, r.rows) == ("svamp", "numeric", 1000)
    assert r.counts["test"] == 200 and r.counts["train"] + r.counts["dev"] == 800 and r.counts["dev"] > 50
    first = conn.execute("SELECT * FROM examples WHERE ext_id = 'svamp-train-0000'").fetchone()
    assert first["answer"] == "42" and first["question"].startswith("Luke scored 84 points")
    assert json.loads(first["meta"])["equation"] == "( 84.0 / 2.0 )"
    assert import_source(conn, "svamp").already_imported


def test_cut_completion_stops_at_invented_question():
    raw = "84 / 2 = 42. The answer is (84 / 2).\n\nQ: There are 120 students. How many?\nA: The answer is (120 / 3)."
    assert palm.cut_completion(raw) == "84 / 2 = 42. The answer is (84 / 2)."
    assert palm.cut_completion("no next question") == "no next question"


def test_palm_teacher_spec_and_outputs():
    assert (TeacherSpec.parse("palm").kind, TeacherSpec.parse("palm").model) == ("palm", None)
    t = make_teacher("palm")
    assert t.spec == "palm" and display_name("palm") == "PaLM 540B (distilling step-by-step release)"
    out = palm.palm_outputs()
    assert len(out) == 1000 + 10962  # SVAMP 800 + 200 and CommonsenseQA 9,741 + 1,221, one CoT each
    assert all(len(e["cots"]) == 1 for e in out.values())
    assert not any("\nQ:" in e["cots"][0] for e in out.values())


def test_generate_palm_with_reference_verdicts_pays_nothing(conn):
    import_source(conn, "svamp")
    cfg = pipeline.GenConfig(dataset="svamp", teachers=["palm"], split="train", limit=40, dev_limit=10,
                             evaluator="reference")
    summary = pipeline.run(conn, cfg, [make_teacher("palm")], log=lambda m: None)
    assert summary["cost_usd"] == 0 and summary["reference_verdicts"]["written"] == 50
    rows = conn.execute("SELECT r.correct, s.verdict, s.confidence, s.critique FROM rationales r"
                        " JOIN self_evals s ON s.rationale_id = r.id WHERE s.evaluator = 'reference'").fetchall()
    assert len(rows) == 50
    for r in rows:
        assert r["verdict"] == ("correct" if r["correct"] else "wrong")
        assert r["confidence"] == 1.0 and r["critique"] == ""
    n_right = sum(r["correct"] for r in rows)
    assert 25 <= n_right < 50  # PaLM is right on ~75% of SVAMP after cutting, not on all
    # idempotent: a rerun writes nothing twice
    again = pipeline.run(conn, cfg, [make_teacher("palm")], log=lambda m: None)
    assert again["reference_verdicts"] == {"written": 0, "already": 50, "unknown": 0}
    snap = snapshots.create_snapshot(conn, "palm-ref", "all", "svamp")
    items = list(snapshots.snapshot_rows(conn, snap["id"]))
    assert len(items) == 50 and all(len(i["self_evals"]) == 1 for i in items)
    assert {i["split"] for i in items} == {"train", "dev"}


def test_reference_evaluator_rejects_unknown_name():
    import pytest

    from mirror_core.errors import ConfigError

    with pytest.raises(ConfigError, match="evaluator must be"):
        pipeline.GenConfig(dataset="svamp", teachers=["palm"], evaluator="oracle")


def test_mindsmirror_on_reference_verdicts_trains_the_verdict_without_critique(conn):
    from mirror_core.training import data
    from mirror_core.training.config import TrainConfig
    from mirror_core.training.job import data_report

    import_source(conn, "svamp")
    cfg = pipeline.GenConfig(dataset="svamp", teachers=["palm"], split="train", limit=12, dev_limit=2,
                             evaluator="reference")
    pipeline.run(conn, cfg, [make_teacher("palm")], log=lambda m: None)
    sid = snapshots.create_snapshot(conn, "ref", "all", "svamp")["id"]
    tcfg = TrainConfig(student="tiny", method="mindsmirror")
    report = data_report(tcfg, data.load_items(conn, sid), sid)
    assert report["tasks_trained"] == ["answer", "cot", "verdict"] == tcfg.tasks
    assert report["train_examples"]["verdict"] == 12 and set(report["tasks_dropped"]) == {"critique"}
    assert "critique" not in tcfg.weights
