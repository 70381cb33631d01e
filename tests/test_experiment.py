"""The method comparison end to end on the tiny student: import, teacher data, three trainings, evals, report."""

from __future__ import annotations

import csv
import json

import pytest
from chart_helpers import static_charts
from eval_helpers import one_thread  # noqa: F401 (autouse fixture)

from mirror_core import jobs, store
from mirror_core.evaluation import compare, experiment, experiment_job


@pytest.mark.slow
def test_experiment_trains_and_compares_three_methods_on_tiny(home, conn, tmp_path):
    """Queued as the CLI queues it: one experiment job whose generate, train and eval children each queue
    through their own stage; then a direct rerun reuses every child."""
    out = tmp_path / "exp"
    run_id = experiment_job.submit(conn, {
        "dataset": "gsm8k", "student": "tiny", "max_steps": 3, "limit": 4, "train_limit": 6, "dev_limit": 2,
        "n_cots": 1, "k_evals": 1, "max_new_tokens": 8, "out": str(out),
        "train_options": {"eval_every": 3, "dev_max_examples": 4, "batch_tokens": 1024, "seq_len": 256}})
    row = jobs.wait(conn, run_id, timeout_s=280)
    assert row["status"] == "succeeded", jobs.log_tail(row["log_path"], 20)
    summary = store.loads(row["result"])
    _evaluate_page_shows_it_as_written(conn, summary, out)
    # progress counted each child: 2 generate runs, then a train and an eval run per method
    assert (row["progress_done"], row["progress_total"]) == (2 + 2 * len(experiment.METHODS),) * 2
    rows = summary["table"]
    assert [r["method"] for r in rows] == list(experiment.METHODS)
    for r in rows:
        assert r["n"] == 4 and 0.0 <= r["accuracy"] <= 1.0
    assert all(r["ece"] is not None for r in rows if r["method"].startswith("mindsmirror"))
    # same student, same budget, same snapshot for every method
    train_cfgs = [json.loads(conn.execute("SELECT config FROM runs WHERE id = ?", (r["train_run"],)).fetchone()[0])
                  for r in rows]
    assert {c["student"] for c in train_cfgs} == {"tiny"} and {c["max_steps"] for c in train_cfgs} == {3}
    assert len({r["snapshot"] for r in rows}) == 1
    with open(out / "table.csv") as f:
        assert [r["method"] for r in csv.DictReader(f)] == list(experiment.METHODS)
    assert (out / "table.md").read_text().count("\n") == 2 + len(experiment.METHODS)
    assert (out / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    assert set(summary["diffs_vs_answer_only"]) == {"step-by-step", "mindsmirror", "mindsmirror-two-stage"}
    assert sum(summary["diffs_vs_answer_only"]["mindsmirror"][c] for c in compare.CATEGORIES) == 4
    assert 0.0 <= summary["diffs_vs_answer_only"]["mindsmirror"]["mcnemar_p"] <= 1.0
    # a rerun reuses every finished job instead of training again
    n_runs = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    again = experiment.run_experiment(
        dataset="gsm8k", student="tiny", max_steps=3, limit=4, train_limit=6, dev_limit=2, n_cots=1, k_evals=1,
        max_new_tokens=8, out=out, train_overrides={"eval_every": 3, "dev_max_examples": 4, "batch_tokens": 1024,
                                                    "seq_len": 256})
    assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == n_runs
    assert [r["accuracy"] for r in again["table"]] == [r["accuracy"] for r in rows]


def _evaluate_page_shows_it_as_written(conn, summary, out):
    """The Evaluate page's "Method comparison" finds this experiment in the store and shows the table and
    plots `experiment` wrote (checked here on the same run, rather than training a second one)."""
    from streamlit.testing.v1 import AppTest

    from mirror_core.evaluation import plots

    exps = experiment.find_experiments(conn)
    assert len(exps) == 1
    ids = exps[0]["eval_ids"]
    assert list(ids) == list(experiment.METHODS)
    assert experiment.experiment_view(conn, ids)["rows"] == summary["table"] == json.loads((out / "table.json").read_text())

    at = AppTest.from_file("../pages/5_Evaluate.py", default_timeout=60).run()
    assert not at.exception
    assert any(s.value == "Method comparison" for s in at.subheader)
    table = next(d.value for d in at.dataframe if "accuracy [95% CI]" in d.value.columns)
    rows = {r["method"]: r for r in summary["table"]}
    assert list(table["method"]) == list(experiment.METHODS)
    assert list(table["eval run"]) == [ids[m] for m in experiment.METHODS]
    assert list(table["n"]) == [4] * len(experiment.METHODS)
    assert table["AUROC"][0] == plots.NOT_SELF_EVAL and table["Brier"][0] == plots.NOT_SELF_EVAL
    assert table["Brier"][2] == f"{rows['mindsmirror']['brier']:.3f}"
    acc = rows["mindsmirror"]["accuracy"]
    assert table["accuracy [95% CI]"][2].startswith(f"{100 * acc:.1f}% [")

    # accuracy, reliability, abstention and the two loss panels of the experiment, before the runs-to-plot
    # charts; each is named for screen readers by its title
    drawn = []  # each tab draws only while open; the experiment's charts come before the runs-to-plot ones
    for tab, n in (("Accuracy and calibration", 2), ("Abstention", 1), ("Training loss", 2)):
        at.session_state["ev_exp_tab"] = tab
        at.run()
        shown = list(static_charts(at).items())[:n]  # (title, SVG): named by the title, which it draws
        drawn += [title for title, _ in shown]
        assert all(title.split(" (")[0] in svg for title, svg in shown)
    for title in ("Accuracy (95% bootstrap interval)", "Reliability of self-evaluation (dashed: perfect calibration)",
                  "Abstaining on low self-confidence", *plots.LOSS_PANELS):
        assert title in drawn
