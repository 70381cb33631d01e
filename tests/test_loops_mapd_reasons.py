"""A MAPD run that succeeds with steps left undone says why, in its result and on the Loops page."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from loops_helpers import context, make_dataset, use_reviewing_fakes
from mirror_core import jobs, store
from mirror_core.loops import job, mapd
from mirror_core.loops import steps as S


def test_budget_cut_rounds_and_skipped_mistakes_are_in_the_result_and_on_the_page(conn, home, monkeypatch):
    use_reviewing_fakes(monkeypatch)
    make_dataset(conn, n_train=4, n_dev=2)
    per = mapd.calls_per_mistake(2)  # 6 calls per mistake with two teachers
    cfg = {"loop": "mapd", "dataset": "arith", "student": "tiny", "teachers": ["fake:a", "fake:b"], "budget": per,
           "rounds": 2, "pool": 3, "eval_limit": 2, "max_new_tokens": 12, "train_steps": 1}
    ctx = context(conn, home, cfg)
    job.run(ctx)
    conn.execute("UPDATE runs SET status = 'succeeded' WHERE id = ?", (ctx.run_id,))
    row = jobs.get(conn, ctx.run_id)
    assert (row["progress_done"], row["progress_total"]) == (8, 15)  # round 2 never ran
    mine = S.step_record(conn, ctx.run_id, 1, "mine")
    assert mine["n_wrong"] == 3 and len(mine["mistakes"]) == 1  # a random tiny student gets all 3 wrong
    why = store.loads(row["result"])["not_done"]
    assert why[0] == f"round 1: 2 of 3 mistake(s) skipped — the budget left ({per} calls) paid for 1 ({per} calls each)"
    assert why[-1].startswith("rounds 2–2 not run: the budget left (0 of 6 calls) pays for no mistake")
    assert "pays for no mistake" in row["progress_note"]

    at = AppTest.from_file("../pages/6_Loops.py", default_timeout=60).run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "not done" in d.value.columns)
    cols = list(table.columns)
    assert cols[cols.index("progress") + 1] == "not done"
    assert table["progress"][0] == "8/15" and table["not done"][0] == "; ".join(why)


def test_no_mistake_and_failed_calls_are_named(conn, home):
    make_dataset(conn, n_train=2, n_dev=1)
    ctx = context(conn, home, {"loop": "mapd", "dataset": "arith", "teachers": ["fake:a", "fake:b"]})
    S.write_step(conn, ctx.run_id, 1, "mine", {"answered": [{"example_id": 1, "pred": "5", "correct": True}],
                                               "n_wrong": 0, "mistakes": [], "calls_per_mistake": 6, "budget_left": 6})
    S.write_step(conn, ctx.run_id, 1, "train", {"alpha": 0.5, "phases": [], "student_dir": None})
    S.write_step(conn, ctx.run_id, 2, "feedback", {"written": [
        {"example_id": 1, "author": "fake:a", "call_id": 1, "status": "ok", "rationale_id": 3},
        {"example_id": 1, "author": "fake:b", "call_id": 2, "status": "error", "rationale_id": None,
         "error": "HTTP 500 from the server"}]})
    assert mapd.not_done(conn, ctx.run_id) == [
        "round 1: skipped — the student made no mistake on 1 train question(s), so there was nothing to feed back, "
        "review or train on",
        "round 2: 1 of 2 teacher feedback call(s) gave no text — fake:b: HTTP 500 from the server"]
