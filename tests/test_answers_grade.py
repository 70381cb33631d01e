"""The one grading rule (`answers.grade` / `grade_answer`) and the places that store its verdict.

Every stored `correct` comes from this rule, so the tests check the rule itself and then that a CoT edit,
a loop rationale and an eval summary follow it for a gold that does not parse (ungradable, never wrong).
"""

from __future__ import annotations

import pytest

from mirror_core import answers, store
from mirror_core.answers import Graded, grade, grade_answer
from mirror_core.evaluation import runner
from mirror_core.loops import steps
from mirror_core.review import curation
from review_helpers import cots, seeded


def _run(conn, kind: str) -> int:
    """A runs row to hang rows on (no job is started)."""
    return conn.execute("INSERT INTO runs (kind, name, status, config, created_at) VALUES (?, 'test', 'running', '{}', ?)",
                        (kind, store.now())).lastrowid


@pytest.mark.parametrize("text, gold, task_type, choices, expected", [
    # the last final-answer phrase wins: teachers correct themselves
    ("The answer is 5.\nWait, I made an error. The answer is 7.", "7", "numeric", None, ("7", "ok", 1)),
    ("The answer is 7.\nHmm, no. The answer is 5.", "7", "numeric", None, ("5", "ok", 0)),
    # numbers compare by value
    ("So the answer is $1,200.00", "1200", "numeric", None, ("1200", "ok", 1)),
    # no answer stated: wrong, with parse_error
    ("I am not sure how to finish this.", "7", "numeric", None, (None, "parse_error", 0)),
    ("", "7", "numeric", None, (None, "parse_error", 0)),
    (None, "B", "multiple_choice", ["x", "y"], (None, "parse_error", 0)),
    # a gold that does not parse: ungradable (None) whether or not the output states an answer
    ("The answer is 12.", "twelve-ish", "numeric", None, ("12", "ok", None)),
    ("I am not sure.", "twelve-ish", "numeric", None, (None, "parse_error", None)),
    ("The answer is (B).", "Z", "multiple_choice", ["x", "y"], ("B", "ok", None)),
    ("The answer is 12.", "", "numeric", None, ("12", "ok", None)),
    ("The answer is yes.", "maybe", "yes_no", None, ("yes", "ok", None)),
    # other task types
    ("The answer is (B).", "B", "multiple_choice", ["x", "y"], ("B", "ok", 1)),
    ("The answer is y.", "B", "multiple_choice", ["x", "y"], ("B", "ok", 1)),
    ("Final answer: no", "yes", "yes_no", None, ("no", "ok", 0)),
])
def test_grade_rule(text, gold, task_type, choices, expected):
    g = grade(text, gold, task_type, choices)
    assert isinstance(g, Graded)
    assert tuple(g) == expected


def test_grade_answer_is_the_rule_for_extracted_answers():
    assert grade_answer("18", "18.0", "numeric") == 1
    assert grade_answer("18.0000000001", "18", "numeric") == 1  # within is_correct's tolerance
    assert grade_answer("17", "18", "numeric") == 0
    assert grade_answer(None, "18", "numeric") == 0
    assert grade_answer(None, "NaN", "numeric") is None
    assert grade_answer("18", "NaN", "numeric") is None
    with pytest.raises(answers.AnswerParseError, match="unknown task type"):
        grade_answer("18", "18", "numbers")


def test_edit_with_a_gold_that_does_not_parse_is_ungraded_not_wrong(conn):
    seeded(conn, questions=2)
    r = cots(conn)[0]
    conn.execute("UPDATE examples SET answer = 'about a dozen' WHERE id = ?", (r["example_id"],))
    row = curation.edit_cot(conn, r["id"], "I am not sure.", expected_revision=0)
    assert (row["parsed_answer"], row["parse_status"], row["correct"]) == (None, "parse_error", None)
    row = curation.edit_cot(conn, r["id"], "The answer is 12.", expected_revision=1)
    assert (row["parsed_answer"], row["parse_status"], row["correct"]) == ("12", "ok", None)


def test_loop_rationale_follows_the_rule(conn):
    ts = store.now()
    ds = conn.execute("INSERT INTO datasets (name, source, task_type, content_hash, created_at)"
                      " VALUES ('d', 'test', 'numeric', 'h', ?)", (ts,)).lastrowid
    ids = [conn.execute("INSERT INTO examples (dataset_id, ext_id, split, question, answer, task_type)"
                        " VALUES (?, ?, 'train', 'q', ?, 'numeric')", (ds, f"q{i}", gold)).lastrowid
           for i, gold in enumerate(["12", "about a dozen"])]
    run_id = _run(conn, "loop")
    good, odd = steps.examples(conn, ds, "train")
    assert [good.grade("12"), good.grade("13"), good.grade(None)] == [1, 0, 0]
    assert [odd.grade("12"), odd.grade(None)] == [None, None]
    for ex, text in ((good, "I cannot say."), (odd, "The answer is 12.")):
        steps.insert_rationale(conn, example=ex, kind="student", author="run:1", text=text, run_id=run_id)
    stored = [tuple(r) for r in conn.execute(
        "SELECT example_id, parsed_answer, parse_status, correct FROM rationales ORDER BY example_id")]
    assert stored == [(ids[0], None, "parse_error", 0), (ids[1], "12", "ok", None)]


def test_eval_summary_leaves_ungradable_predictions_out(conn):
    ts = store.now()
    ds = conn.execute("INSERT INTO datasets (name, source, task_type, content_hash, created_at)"
                      " VALUES ('d', 'test', 'numeric', 'h', ?)", (ts,)).lastrowid
    ex = [conn.execute("INSERT INTO examples (dataset_id, ext_id, split, question, answer, task_type)"
                       " VALUES (?, ?, 'test', 'q', '4', 'numeric')", (ds, f"t{i}")).lastrowid for i in range(3)]
    run_id = _run(conn, "eval")
    for eid, correct in zip(ex, (1, 0, None)):
        conn.execute("INSERT INTO predictions (run_id, example_id, sample_index, output, answer, correct,"
                     " confidence, created_at) VALUES (?, ?, 0, 'x', '4', ?, 0.9, ?)", (run_id, eid, correct, ts))
    out = runner.summarize(conn, run_id)
    assert (out["n"], out["accuracy"], out["ungradable"]) == (2, 0.5, 1)


def test_mapd_pays_to_fix_graded_mistakes_only(conn, home, monkeypatch):
    from loops_helpers import context, make_dataset, use_reviewing_fakes
    from mirror_core.loops import job, mapd

    use_reviewing_fakes(monkeypatch)
    ds = make_dataset(conn, n_train=4, n_dev=2)
    odd = conn.execute("SELECT id FROM examples WHERE dataset_id = ? AND split = 'train' ORDER BY id LIMIT 1",
                       (ds,)).fetchone()[0]
    conn.execute("UPDATE examples SET answer = 'about a dozen' WHERE id = ?", (odd,))
    cfg = {"loop": "mapd", "dataset": "arith", "student": "tiny", "teachers": ["fake:a", "fake:b"],
           "budget": mapd.calls_per_mistake(2), "rounds": 1, "pool": 4, "eval_limit": 2, "max_new_tokens": 12,
           "train_steps": 1}
    ctx = context(conn, home, cfg)
    job.run(ctx)
    mine = steps.step_record(conn, ctx.run_id, 1, "mine")
    by_id = {a["example_id"]: a["correct"] for a in mine["answered"]}
    assert len(by_id) == 4 and by_id[odd] is None
    assert mine["n_wrong"] == sum(1 for c in by_id.values() if c == 0)  # the ungradable one is no mistake
    assert odd not in {m["example_id"] for m in mine["mistakes"]}
