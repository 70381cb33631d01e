"""AppTest for pages/5_Evaluate.py: runs table, background eval launch, plots and the per-example diff."""

from __future__ import annotations

import json

from chart_helpers import live_charts, static_charts
from eval_helpers import make_dataset, make_train_run, one_thread  # noqa: F401 (autouse fixture)
from streamlit.testing.v1 import AppTest

from mirror_core import jobs, store
from mirror_core.evaluation import plots, runner

PAGE = "../pages/5_Evaluate.py"


def _app():
    return AppTest.from_file(PAGE, default_timeout=60)


def _eval_run(conn, train_run: int, outcomes: list[int], confs: list[float]) -> int:
    """An eval run with hand-written predictions and the result the runner computes from them."""
    ts = store.now()
    rid = conn.execute("INSERT INTO runs (kind, status, config, parent_run_id, created_at) VALUES"
                       " ('eval', 'succeeded', ?, ?, ?)", (json.dumps({"train_run": train_run}), train_run, ts)).lastrowid
    ids = [r[0] for r in conn.execute("SELECT id FROM examples WHERE split = 'test' ORDER BY id")]
    for eid, ok, c in zip(ids, outcomes, confs):
        conn.execute("INSERT INTO predictions (run_id, example_id, output, answer, correct, self_verdict, confidence,"
                     " created_at) VALUES (?, ?, 'The answer is 4.', '4', ?, 'correct', ?, ?)", (rid, eid, ok, c, ts))
    res = runner.summarize(conn, rid)
    res["tasks"] = store.loads(conn.execute("SELECT config FROM runs WHERE id = ?", (train_run,)).fetchone()[0])["tasks"]
    conn.execute("UPDATE runs SET result = ? WHERE id = ?", (store.dumps(res), rid))
    return rid


def test_empty_project_says_what_to_do(home, conn):
    at = _app().run()
    assert not at.exception
    assert any("No finished train run" in i.value for i in at.info)


def test_table_plots_and_diff_with_review_links(home, conn):
    did = make_dataset(conn)
    t1 = make_train_run(conn, home, did, tasks=("answer",), name="base", checkpoint=False)
    t2 = make_train_run(conn, home, did, name="mm", checkpoint=False)
    conn.executemany("INSERT INTO metrics (run_id, step, key, value, created_at) VALUES (?, ?, 'loss', ?, ?)",
                     [(t2, s, 3.0 / (s + 1), store.now()) for s in range(5)])
    e1 = _eval_run(conn, t1, [1, 0, 0, 1, 0], [0.9, 0.8, 0.3, 0.6, 0.2])
    e2 = _eval_run(conn, t2, [1, 1, 1, 0, 0], [0.9, 0.7, 0.8, 0.4, 0.1])
    at = _app().run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["eval_run"]) == [e2, e1]
    assert list(table["method"]) == ["Mind's Mirror", "answer-only"]
    assert list(table["accuracy"]) == [0.6, 0.4]
    # the two default-chosen runs: accuracy beside reliability; abstention and loss wait in their tabs
    titles = lambda: list(static_charts(at))  # noqa: E731  (static drawings, named by their titles)
    assert titles() == ["Accuracy (95% bootstrap interval)", "Reliability of self-evaluation (dashed: perfect calibration)"]
    at.session_state["fig_tab"] = "Abstention"  # a click on the tab
    at.run()
    assert titles() == ["Abstaining on low self-confidence"]
    at.session_state["fig_tab"] = "Training loss"
    at.run()
    assert titles() == [plots.LOSS_PANELS[0]]  # only run "mm" logged a loss, and only the total
    assert not live_charts(at)
    at.toggle(key="fig_interactive").set_value(True).run()  # the same charts, interactive
    assert [json.loads(c.proto.spec).get("title") for c in live_charts(at)] == [plots.LOSS_PANELS[0]]
    assert not titles()
    at.session_state["fig_tab"] = "Abstention"  # the choice holds for the other tabs (and pages) too
    at.run()
    assert [c.proto.alt for c in live_charts(at)] == ["Abstaining on low self-confidence"]
    at.toggle(key="fig_interactive").set_value(False).run()
    assert titles() == ["Abstaining on low self-confidence"] and not live_charts(at)
    assert not at.metric  # the question-by-question comparison waits in its own tab
    at.session_state["fig_tab"] = "Which questions changed"
    at.run()
    assert not live_charts(at) and not titles()
    # A = e1 (answer-only), B = e2: examples 2 and 3 fixed, 4 broken
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"fixed": "2", "broken": "1", "both right": "1", "both wrong": "1"}
    diff = at.dataframe[1].value
    ids = [r[0] for r in conn.execute("SELECT id FROM examples WHERE split = 'test' ORDER BY id")]
    assert list(diff["example"]) == ids[1:3]
    assert list(diff["review"]) == [f"/Review?ex={i}" for i in ids[1:3]]
    at.radio(key="ev_show").set_value("broken").run()
    assert list(at.dataframe[1].value["example"]) == [ids[3]]


def test_launch_eval_in_background(home, conn):
    did = make_dataset(conn, n_test=3)
    train = make_train_run(conn, home, did)
    at = _app().run()
    assert not at.exception
    at.number_input(key="ev_limit").set_value(2)
    at.button(key="ev_go").click().run()
    assert not at.exception
    assert "queued" in at.success[0].value
    run_id = conn.execute("SELECT id FROM runs WHERE kind = 'eval'").fetchone()[0]
    row = jobs.wait(conn, run_id, timeout_s=240)
    assert row["status"] == "succeeded", jobs.log_tail(row["log_path"])
    assert store.loads(row["config"])["train_run"] == train
    assert conn.execute("SELECT COUNT(*) FROM predictions WHERE run_id = ?", (run_id,)).fetchone()[0] == 2
    at = _app().run()
    assert list(at.dataframe[0].value["n"]) == [2]


def test_a_launched_eval_shows_progress_then_joins_the_chart_selection(home, conn):
    did = make_dataset(conn, n_test=3)
    t1 = make_train_run(conn, home, did, tasks=("answer",), name="base", checkpoint=False)
    e1 = _eval_run(conn, t1, [1, 0, 0], [0.9, 0.8, 0.3])
    make_train_run(conn, home, did)
    at = _app().run()
    assert at.multiselect(key="ev_chosen").value == [e1]
    assert not at.number_input  # evaluations exist: the launch form is folded, as Train's is
    at.session_state["ev_form_open"] = True  # unfold it (a click in the browser)
    at.run()
    at.number_input(key="ev_limit").set_value(2)
    at.button(key="ev_go").click().run()
    new = conn.execute("SELECT MAX(id) FROM runs WHERE kind = 'eval'").fetchone()[0]
    assert any(f"Eval run {new}" == c.value for c in at.caption)  # its live status is on the page
    assert len(at.get("progress")) == 1
    row = jobs.wait(conn, new, timeout_s=240)
    assert row["status"] == "succeeded", jobs.log_tail(row["log_path"])
    at.run()
    assert at.multiselect(key="ev_chosen").value == [e1, new]
    assert not at.get("progress")


def test_unchanged_charts_are_drawn_once_for_every_session(home, conn, monkeypatch):
    """A new tab is a new session: the accuracy chart is built (Altair) and drawn (Vega) once while its data
    stays the same, and again when an evaluation joins it."""
    from mirror_core.ui import charts

    charts.DRAWINGS.clear()
    did = make_dataset(conn)
    t1 = make_train_run(conn, home, did, tasks=("answer",), name="base", checkpoint=False)
    t2 = make_train_run(conn, home, did, name="mm", checkpoint=False)
    _eval_run(conn, t1, [1, 0, 0, 1, 0], [0.9, 0.8, 0.3, 0.6, 0.2])
    built = []
    real = plots.accuracy_bars
    monkeypatch.setattr(plots, "accuracy_bars", lambda rows: built.append(len(rows)) or real(rows))
    first = _app().run()
    second = _app().run()
    assert not first.exception and not second.exception
    assert built == [1]
    assert static_charts(second)["Accuracy (95% bootstrap interval)"] == static_charts(first)[
        "Accuracy (95% bootstrap interval)"]
    _eval_run(conn, t2, [1, 1, 1, 0, 0], [0.9, 0.7, 0.8, 0.4, 0.1])
    third = _app().run()
    assert built == [1, 2]
    assert static_charts(third)["Accuracy (95% bootstrap interval)"] != static_charts(first)[
        "Accuracy (95% bootstrap interval)"]
