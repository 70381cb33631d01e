"""The Train page headless: launch a run from the form, see runs with curves and the log tail, stop."""

import html
from pathlib import Path

from streamlit.testing.v1 import AppTest

from mirror_core import jobs, store
from mirror_core.training.config import TrainConfig
from chart_helpers import live_charts, static_charts
from training_fixtures import make_snapshot

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "4_Train.py")


def test_launch_from_the_form_queues_a_train_job(conn, home):
    make_snapshot(conn, "snap", n_train=4, n_dev=1)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    at.text_input(key="student").set_value("tiny")
    at.selectbox(key="method").set_value("step-by-step").run()
    assert at.multiselect(key="tasks_step-by-step").value == ["answer", "cot"]
    at.number_input(key="max_steps").set_value(2)
    at.number_input(key="seq_len").set_value(256)
    at.button(key="launch").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    run = jobs.list_runs(conn, "train")[0]
    cfg = store.loads(run["config"])
    assert cfg["student"] == "tiny" and cfg["tasks"] == ["answer", "cot"] and cfg["max_steps"] == 2
    assert any(f"Run {run['id']} queued" in s.value for s in at.success)
    jobs.stop(conn, run["id"], grace_s=0.5)  # the real job is not what this test is about


def test_runs_show_curves_log_and_stop(conn, home):
    sid = make_snapshot(conn, "snap", n_train=2, n_dev=0)
    done = jobs.submit(conn, "train", TrainConfig(student="tiny").to_dict(), snapshot_id=sid, start=False)
    conn.execute("UPDATE runs SET status = 'succeeded', progress_done = 2, progress_total = 2,"
                 " progress_note = 'stage 1/1 step 2/2 · ETA 0m00s' WHERE id = ?", (done,))
    for step in (1, 2):
        conn.execute("INSERT INTO metrics VALUES (?, ?, 'loss/answer', ?, ?)", (done, step, 3.0 / step, store.now()))
    (home / "runs" / f"run-{done:05d}" / "job.log").write_text("step 2: dev loss 1.2345 (best)\n")
    queued = jobs.submit(conn, "train", TrainConfig(student="tiny").to_dict(), snapshot_id=sid, start=False)

    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert list(at.dataframe[0].value["id"]) == [queued, done]
    at.selectbox(key="run_pick").set_value(done).run()
    assert any("dev loss 1.2345" in html.unescape(h.value) for h in at.html)  # the log block
    drawn = static_charts(at)  # opens on static drawings; the toggle brings the interactive chart
    assert list(drawn) == ["Per-task loss"] and "<svg" in drawn["Per-task loss"] and not live_charts(at)
    at.toggle(key="loss_interactive").set_value(True).run()
    assert len(live_charts(at)) == 1 and not static_charts(at)
    at.selectbox(key="run_pick").set_value(queued).run()
    at.button(key=f"stop_{queued}").click().run()
    assert jobs.get(conn, queued)["status"] == "cancelled"


def test_unknown_student_is_refused_on_submit_and_no_resume_without_checkpoint(conn, home, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sid = make_snapshot(conn, "snap", n_train=2, n_dev=1)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.text_input(key="student").set_value("no-such/model-xyz")
    at.button(key="launch").click().run()
    assert any("no-such/model-xyz" in e.value and "Student" in e.value for e in at.error)
    assert not jobs.list_runs(conn, "train")
    failed = jobs.submit(conn, "train", TrainConfig(student="tiny").to_dict(), snapshot_id=sid, start=False)
    conn.execute("UPDATE runs SET status = 'failed', error = 'boom' WHERE id = ?", (failed,))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert not [b for b in at.button if b.key == f"resume_{failed}"]
    assert any("No checkpoint to resume from" in c.value for c in at.caption)


def test_a_snapshot_without_dev_items_is_warned_about(conn, home):
    make_snapshot(conn, "with-dev", n_train=2, n_dev=1)
    make_snapshot(conn, "no-dev", n_train=2, n_dev=0, seed=1)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.selectbox(key="snapshot").set_value("with-dev").run()
    assert not at.exception and not any("no dev items" in w.value for w in at.warning)
    at.selectbox(key="snapshot").set_value("no-dev").run()
    assert any("no dev items" in w.value for w in at.warning)


def test_default_smollm2_on_cpu_warns_it_takes_long(conn, home):
    make_snapshot(conn, "snap", n_train=40, n_dev=1)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert at.text_input(key="student").value == "smollm2"
    assert any("on this CPU" in w.value for w in at.warning)
    at.text_input(key="student").set_value("tiny").run()
    assert not any("on this CPU" in w.value for w in at.warning)


def test_settings_survive_a_new_tab_and_clone_fills_the_form(conn, home):
    sid = make_snapshot(conn, "snap", n_train=4, n_dev=1)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.text_input(key="student").set_value("tiny")
    at.number_input(key="max_steps").set_value(2)
    at.number_input(key="seq_len").set_value(256)
    at.button(key="launch").click().run()
    assert not at.error, [e.value for e in at.error]
    at.run()  # now a run exists, but this session's form stays unfolded for the next launch
    assert at.text_input(key="student").value == "tiny"
    jobs.stop(conn, jobs.list_runs(conn, "train")[0]["id"], grace_s=0.5)
    other = jobs.submit(conn, "train", TrainConfig(student="tiny", method="answer-only", seq_len=128, epochs=1.0).to_dict(),
                        snapshot_id=sid, start=False)
    fresh = AppTest.from_file(PAGE, default_timeout=60).run()  # a new session, as a new tab gets
    assert not fresh.text_input  # with runs to follow, the form is folded away and not drawn
    fresh.session_state["train_form_open"] = True  # unfold it (a click in the browser)
    fresh.run()
    assert fresh.text_input(key="student").value == "tiny"
    assert fresh.number_input(key="seq_len").value == 256
    fresh.number_input(key="seq_len").set_value(512).run()
    fresh.session_state["train_form_open"] = False
    fresh.run()
    assert not fresh.number_input
    fresh.session_state["train_form_open"] = True
    fresh.run()
    assert fresh.number_input(key="seq_len").value == 512  # what was typed survives folding
    fresh.session_state["train_form_open"] = False
    fresh.selectbox(key="run_pick").set_value(other).run()
    fresh.button(key=f"clone_{other}").click().run()
    assert fresh.selectbox(key="method").value == "answer-only"  # clone unfolds the form it filled
    assert fresh.number_input(key="seq_len").value == 128
    assert fresh.number_input(key="epochs").value == 1.0
    assert not fresh.exception
