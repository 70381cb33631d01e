"""The eval job lets metrics that do not apply (None) through: stored as null, logged as 'n/a' (issue 11.9)."""

from __future__ import annotations

import json

from mirror_core import config, jobs, store
from mirror_core.evaluation import job


def _eval_run(conn, home) -> jobs.JobContext:
    cfg = {"train_run": 1, "split": "test"}
    rid = conn.execute("INSERT INTO runs (kind, name, status, config, created_at) VALUES ('eval', 'e', 'running', ?, ?)",
                       (json.dumps(cfg), store.now())).lastrowid
    return jobs.JobContext(run_id=rid, kind="eval", config=cfg, home=home, conn=conn,
                           run_dir=config.run_dir(rid, home))


def _result(**calibration):
    # The shape `runner.evaluate` returns for a student never trained to self-evaluate (issue 11.9).
    return {"n": 4, "accuracy": 0.75, "ece": None, "ece_mass": None, "brier": None, "auroc": None,
            "mean_confidence": None, "reliability": None, "split": "test", "self_eval_trained": False,
            **calibration}


def test_none_metrics_are_stored_as_null_and_logged_as_na(conn, home, monkeypatch, capsys):
    ctx = _eval_run(conn, home)
    monkeypatch.setattr(job, "evaluate", lambda *a, **k: _result())
    job.run(ctx)
    row = conn.execute("SELECT result FROM runs WHERE id = ?", (ctx.run_id,)).fetchone()
    stored = json.loads(row["result"])
    assert stored["accuracy"] == 0.75
    assert {k: stored[k] for k in ("ece", "ece_mass", "brier", "auroc")} == dict.fromkeys(
        ("ece", "ece_mass", "brier", "auroc"))
    keys = {r[0]: r[1] for r in conn.execute("SELECT key, value FROM metrics WHERE run_id = ?", (ctx.run_id,))}
    assert keys == {"accuracy": 0.75}  # no 0 standing in for a calibration that was never measured
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.endswith("accuracy 0.750 on 4 test examples, ECE n/a, Brier n/a, AUROC n/a "
                         "(self-evaluation not trained)")


def test_measured_metrics_are_stored_and_logged_with_three_decimals(conn, home, monkeypatch, capsys):
    ctx = _eval_run(conn, home)
    monkeypatch.setattr(job, "evaluate", lambda *a, **k: _result(ece=0.1234, ece_mass=0.2, brier=0.05,
                                                                 auroc=None, self_eval_trained=True))
    job.run(ctx)
    keys = {r[0]: r[1] for r in conn.execute("SELECT key, value FROM metrics WHERE run_id = ?", (ctx.run_id,))}
    assert keys == {"accuracy": 0.75, "ece": 0.1234, "ece_mass": 0.2, "brier": 0.05}
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.endswith("accuracy 0.750 on 4 test examples, ECE 0.123, Brier 0.050, AUROC n/a")
    assert job.fmt(None) == "n/a" and job.fmt(0.0) == "0.000"
