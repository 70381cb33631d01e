"""The experiment stage's face: a bad method, training option, student, teacher or data set is one sentence
before any job exists — from `submit` and from the CLI alike — and a good config queues one "experiment"
job that holds no device (its children do)."""

from __future__ import annotations

import pytest

from mirror_core import cli, jobs, store
from mirror_core.errors import EvaluationError, MirrorError
from mirror_core.evaluation import experiment_job


def _runs(conn) -> int:
    return conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


@pytest.mark.parametrize("bad, said", [
    ({"methods": ["answer-only", "mind-mirror"]}, "Unknown method 'mind-mirror'; choose from answer-only"),
    ({"methods": []}, "at least one method"),
    ({"train_options": {"learning_rate": 1e-4}}, "Unknown training setting(s) learning_rate"),
    ({"train_options": {"student": "tiny"}}, "Training option(s) student are the experiment's own settings"),
    ({"train_options": {"lr": "fast"}}, "lr must be"),
    ({"teacher": "bogus:zzz"}, "bogus"),
    ({"student": "no-such/model-xyz"}, "not in the local Hugging Face cache"),
    ({"dataset": "no-such-data"}, "Data set 'no-such-data' is neither a built-in"),
    ({"evaluator": "oracle"}, "evaluator must be teacher or reference"),
    ({"max_steps": -1}, "max_steps"),
    ({"stepz": 3}, "Unknown experiment setting(s) stepz"),
])
def test_submit_refuses_a_bad_config_in_one_sentence_and_queues_nothing(conn, home, tmp_path, monkeypatch, bad, said):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = {"out": str(tmp_path / "exp"), "student": "tiny", **bad}
    with pytest.raises(MirrorError) as err:
        experiment_job.submit(conn, cfg, start=False)
    assert said in str(err.value)
    assert _runs(conn) == 0


def test_cli_refuses_what_submit_refuses_with_the_same_sentence(conn, home, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EvaluationError) as err:
        experiment_job.submit(conn, {"out": str(tmp_path / "e"), "student": "tiny", "methods": ["nope"]}, start=False)
    capsys.readouterr()
    assert cli.main(["experiment", "--out", str(tmp_path / "e"), "--student", "tiny", "--method", "nope"]) == 1
    assert capsys.readouterr().err.strip() == f"error: {err.value}"
    assert _runs(conn) == 0


def test_submit_queues_one_experiment_job_that_holds_no_device(conn, home, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    run_id = experiment_job.submit(conn, {"out": "rel/exp", "student": "tiny", "methods": ["step-by-step"],
                                          "train_options": {"lr": 1e-4}}, start=False)
    row = jobs.get(conn, run_id)
    assert row["kind"] == "experiment" and row["status"] == "queued" and "experiment" not in jobs.DEVICE_KINDS
    cfg = store.loads(row["config"])
    # stored as the job reads it back: absolute out (the job runs from the project root), every field
    assert cfg["out"] == str(tmp_path / "rel" / "exp") and (tmp_path / "rel" / "exp").is_dir()
    assert experiment_job.ExperimentConfig.from_dict(cfg).methods == ["step-by-step"]
    assert cfg["train_options"] == {"lr": 1e-4} and cfg["device"] == "cpu"
    assert jobs.HANDLERS["experiment"] == "mirror_core.evaluation.experiment_job:run"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_stop_stops_the_child_it_waits_on_and_resume_reuses_what_finished(conn, home, tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run_id = experiment_job.submit(conn, {
        "dataset": "svamp", "teacher": "palm", "evaluator": "reference", "student": "tiny", "n_cots": 1, "k_evals": 1,
        "methods": ["answer-only"], "max_steps": 2, "train_limit": 6, "dev_limit": 2, "limit": 2, "max_new_tokens": 8,
        "out": str(tmp_path / "exp"), "train_options": {"eval_every": 0, "batch_tokens": 512, "seq_len": 128}})
    deadline = time.time() + 240
    while not jobs.list_runs(conn, "train") and time.time() < deadline:
        time.sleep(0.5)
    [train] = jobs.list_runs(conn, "train")
    jobs.stop(conn, run_id)
    assert jobs.wait(conn, run_id, timeout_s=240)["status"] == "cancelled"
    child = jobs.get(conn, train["id"])
    assert child["status"] in ("cancelled", "succeeded", "failed") and child["status"] != "running"
    gens = [r["id"] for r in jobs.list_runs(conn, "generate")]
    assert len(gens) == 2 and all(jobs.get(conn, g)["status"] == "succeeded" for g in gens)
    # resumed: the generate runs and the train run are reused, not made again; then it finishes
    jobs.resume(conn, run_id)
    row = jobs.wait(conn, run_id, timeout_s=300)
    assert row["status"] == "succeeded", jobs.log_tail(row["log_path"], 20)
    assert sorted(r["id"] for r in jobs.list_runs(conn, "generate")) == sorted(gens)
    assert [r["id"] for r in jobs.list_runs(conn, "train")] == [train["id"]]
    assert store.loads(row["result"])["table"][0]["method"] == "answer-only"
