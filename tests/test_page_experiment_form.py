"""Evaluate's "Run a method comparison": the page queues the experiment through the stage's `submit`, so a bad
field is the CLI's sentence on the page and nothing is queued; a good one is one experiment job, followed live,
which stops (with the child it waits on) when asked."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from mirror_core import jobs, store
from mirror_core.errors import MirrorError
from mirror_core.evaluation import experiment_job

PAGE = "../pages/5_Evaluate.py"


def _fill(at: AppTest, tmp_path, **fields) -> AppTest:
    assert not at.text_input  # folded away, the form is not drawn
    at.session_state["ev_exp_form_open"] = True  # unfold it (a click in the browser)
    at.run()
    values = {"exp_dataset": "svamp", "exp_teacher": "palm", "exp_student": "tiny", "exp_out": str(tmp_path / "exp"),
              **fields}
    for key, value in values.items():
        at.text_input(key=key).set_value(value)
    at.multiselect(key="exp_methods").set_value(["step-by-step"])
    at.number_input(key="exp_steps").set_value(1)
    return at


def test_a_bad_teacher_is_the_stage_sentence_on_the_page_and_queues_nothing(home, conn, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    at = _fill(AppTest.from_file(PAGE, default_timeout=60).run(), tmp_path, exp_teacher="bogus:zzz")
    at.button(key="exp_go").click().run()
    assert not at.exception
    with pytest.raises(MirrorError) as err:
        experiment_job.submit(conn, {"dataset": "svamp", "teacher": "bogus:zzz", "student": "tiny",
                                     "methods": ["step-by-step"], "out": str(tmp_path / "exp")}, start=False)
    assert [e.value for e in at.error] == [str(err.value)]
    assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


@pytest.mark.timeout(300)
def test_launch_queues_one_experiment_job_and_stop_ends_it(home, conn, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    at = _fill(AppTest.from_file(PAGE, default_timeout=60).run(), tmp_path)
    at.button(key="exp_go").click().run()
    assert not at.exception and not at.error
    runs = jobs.list_runs(conn, "experiment")
    assert len(runs) == 1 and any(f"Experiment run {runs[0]['id']} queued" in s.value for s in at.success)
    cfg = store.loads(runs[0]["config"])
    assert (cfg["dataset"], cfg["teacher"], cfg["student"], cfg["methods"], cfg["max_steps"]) == \
        ("svamp", "palm", "tiny", ["step-by-step"], 1)
    jobs.stop(conn, runs[0]["id"])
    row = jobs.wait(conn, runs[0]["id"], timeout_s=240)
    assert row["status"] == "cancelled", jobs.log_tail(row["log_path"], 20)
    # nothing it started is left running
    assert [r["id"] for r in jobs.list_runs(conn) if r["status"] == "running"] == []
