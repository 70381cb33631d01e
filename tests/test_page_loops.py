"""The Loops page headless: launch (and its errors), each loop's rounds and decisions, the ELAD plot."""

from __future__ import annotations

import html
import json

from chart_helpers import static_charts
from loops_helpers import make_dataset
from streamlit.testing.v1 import AppTest

from mirror_core import jobs, store
from mirror_core.loops import mapd, uncertainty as U
from mirror_core.loops import steps as S

PAGE = "../pages/6_Loops.py"


def _app():
    return AppTest.from_file(PAGE, default_timeout=60)


def _run(conn, cfg, result=None):
    rid = jobs.submit(conn, "loop", cfg, start=False)
    conn.execute("UPDATE runs SET status = 'succeeded', result = ? WHERE id = ?", (store.dumps(result), rid))
    return rid


def test_empty_project(home, conn):
    at = _app().run()
    assert not at.exception
    # Every tab says both: no data set to launch with (in New run), and no run of its loop yet.
    assert any("Import a dataset" in i.value for i in at.info)
    assert any("No run" in i.value for i in at.info)


def test_launch_refuses_one_teacher_for_mapd_then_queues(home, conn):
    make_dataset(conn)
    at = _app().run()
    at.text_input(key="mapd_teachers").set_value("fake:a")
    at.button(key="mapd_go").click().run()
    assert any("two or more" in e.value for e in at.error)
    assert not jobs.list_runs(conn, "loop")
    at.text_input(key="mapd_teachers").set_value("fake:a, fake:b")
    at.text_input(key="mapd_student").set_value("tiny")
    at.button(key="mapd_go").click().run()
    assert not at.exception
    runs = jobs.list_runs(conn, "loop")
    assert len(runs) == 1 and json.loads(runs[0]["config"])["teachers"] == ["fake:a", "fake:b"]
    jobs.stop(conn, runs[0]["id"], grace_s=0.5)  # the real job is not what this test is about


def test_each_loop_shows_its_decisions(home, conn):
    make_dataset(conn, n_train=3, n_dev=1)
    ex = S.examples(conn, 1, "train")
    # ELAD: a select step from real scores, and a curve
    elad = _run(conn, {"loop": "elad", "dataset": "arith", "teachers": ["fake"]},
                {"curve": {"uncertainty": [{"round": 0, "calls": 0, "accuracy": 0.1}, {"round": 1, "calls": 2, "accuracy": 0.3}],
                           "random": [{"round": 0, "calls": 0, "accuracy": 0.1}, {"round": 1, "calls": 2, "accuracy": 0.2}]}})
    scores = [U.score_question(e.id, [[1.0 + i], [0.5]], ["5", str(i)], 100) for i, e in enumerate(ex)]
    sel = {"arm": "uncertainty", "b": 1, "budget_left": 2, "scores": [s.as_dict() for s in scores],
           "selected": [s.as_dict() for s in U.select_top(scores, 1)]}
    S.write_step(conn, elad, 1, "uncertainty/select", sel)
    # MAPD: a rationale reviewed by two peers, decided by the real accept step
    mapd_run = _run(conn, {"loop": "mapd", "dataset": "arith", "teachers": ["fake:a", "fake:b", "fake:c"]})
    rid = S.insert_rationale(conn, example=ex[0], kind="cot", author="fake:a", text="The answer is 5.", run_id=mapd_run)
    for reviewer, score in (("fake:b", 2), ("fake:c", None)):
        conn.execute("INSERT INTO reviews (rationale_id, reviewer, score, text, created_at) VALUES (?,?,?,?,?)",
                     (rid, reviewer, score, "meh", store.now()))
    mapd._accept(conn, mapd_run, [{"example_id": ex[0].id, "author": "fake:a", "rationale_id": rid, "status": "ok"}],
                 mapd.MapdConfig(dataset="arith", teachers=["fake:a", "fake:b"]), 1)
    # critic: one preference with both orders, one win-rate step
    crit = _run(conn, {"loop": "critic", "dataset": "arith", "teachers": ["fake"]})
    conn.execute("INSERT INTO preferences (example_id, run_id, judge, chosen, rejected, consistent, detail, created_at)"
                 " VALUES (?, ?, 'fake', 'long answer text', 'short', 1, ?, ?)",
                 (ex[0].id, crit, json.dumps({"choice_ab": 1, "choice_ba": 2, "winner": "a",
                                              "order_ab": {"reply": "[1] fuller"}, "order_ba": {"reply": "[2] fuller"}}),
                  store.now()))
    S.write_step(conn, crit, 1, "winrate", {"split": "dev", "n": 2, "wins": 1, "ties": 1, "losses": 0,
                                            "win_rate": 0.5, "win_tie_rate": 1.0, "per_example": []})

    at = _app().run()
    assert not at.exception
    values = [df.value for df in at.dataframe]
    # ELAD: the selection table marks the top-scored question; the plot is drawn
    sel_df = next(v for v in values if "disagreement" in v.columns)
    assert sel_df.loc[sel_df["selected"], "example_id"].tolist() == [max(scores, key=lambda s: s.score).example_id]
    assert list(static_charts(at)) == ["Accuracy against teacher calls"]
    # MAPD: the score matrix with the reason for rejection
    matrix = next(v for v in values if "why" in v.columns)
    row = matrix.iloc[0]
    assert row["by fake:b"] == 2 and not row["accepted"]
    assert "mean peer score 2.00 is not above 3" in row["why"]
    # critic: both orders and the win rate
    prefs = next(v for v in values if "choice (a first)" in v.columns)
    assert prefs.iloc[0]["choice (a first)"] == 1 and prefs.iloc[0]["choice (b first)"] == 2
    wr = next(v for v in values if "win rate" in v.columns)
    assert wr.iloc[0]["win rate"] == 0.5
    steps = [v for v in values if "decided" in v.columns]
    assert any("selected 1 of 3" in s for v in steps for s in v["decided"])
    assert any("0 accepted, 1 rejected" in s for v in steps for s in v["decided"])


def test_bad_teacher_and_student_are_refused_on_submit_in_field_words(home, conn):
    make_dataset(conn)
    at = _app().run()
    at.text_input(key="elad_teachers").set_value("bogus:zzz")
    at.text_input(key="elad_student").set_value("tiny")
    at.button(key="elad_go").click().run()
    assert any("Unknown teacher 'bogus:zzz'" in e.value for e in at.error)
    at.text_input(key="elad_teachers").set_value("fake")
    at.text_input(key="elad_student").set_value("run:999")
    at.button(key="elad_go").click().run()
    assert any("run 999 has no checkpoint" in e.value for e in at.error)
    at.text_input(key="mapd_teachers").set_value("fake:a")
    at.text_input(key="mapd_student").set_value("tiny")
    at.button(key="mapd_go").click().run()
    assert any("two or more" in e.value and "--teacher" not in e.value for e in at.error)
    assert not jobs.list_runs(conn, "loop")


def test_a_run_shows_live_status_and_its_log(home, conn):
    make_dataset(conn)
    rid = _run(conn, {"loop": "mapd", "dataset": "arith", "teachers": ["fake:a", "fake:b"]})
    conn.execute("UPDATE runs SET progress_done = 8, progress_total = 15 WHERE id = ?", (rid,))
    log = home / "runs" / f"run-{rid:05d}" / "job.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("loop mapd finished: ok\n")
    at = _app().run()
    assert not at.exception
    assert any("succeeded: 8/15" in p.text for p in at.progress)  # the bar's text; its value is 0-100
    assert any("loop mapd finished" in html.unescape(h.value) for h in at.html)  # the log block


def test_clone_fills_the_form_and_settings_survive_a_new_tab(home, conn):
    make_dataset(conn)
    rid = _run(conn, {"loop": "mapd", "dataset": "arith", "student": "tiny", "teachers": ["fake:a", "fake:c"],
                      "budget": 7, "rounds": 3})
    at = _app().run()
    at.button(key=f"mapd_clone_{rid}").click().run()
    assert at.text_input(key="mapd_teachers").value == "fake:a, fake:c"
    assert at.number_input(key="mapd_budget").value == 7
    at.button(key="mapd_go").click().run()
    assert not at.error, [e.value for e in at.error]
    new = jobs.list_runs(conn, "loop")[0]
    jobs.stop(conn, new["id"], grace_s=0.5)
    assert json.loads(new["config"])["rounds"] == 3
    fresh = _app().run()
    assert fresh.text_input(key="mapd_teachers").value == "fake:a, fake:c"
