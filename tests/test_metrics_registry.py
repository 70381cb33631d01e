"""The metrics registry: each reported number once, with its display name, direction and format."""

from __future__ import annotations

import io

import pytest

from mirror_core.commands.evaluate import print_result
from mirror_core.errors import EvaluationError
from mirror_core.evaluation import metrics
from mirror_core.evaluation.metrics import CALIBRATION, HEADLINE, METRICS, metric


def test_directions():
    higher = {k for k, m in METRICS.items() if m.higher_is_better}
    assert {"accuracy", "auroc", "majority_accuracy", "weighted_accuracy"} <= higher
    assert {"ece", "ece_mass", "brier"}.isdisjoint(higher)
    assert metric("ece").better(0.05, 0.10) and not metric("ece").better(0.10, 0.05)
    assert metric("auroc").better(0.9, 0.7) and not metric("auroc").better(0.7, 0.7)


def test_formats():
    assert metric("accuracy").format(0.6123) == "61.2%"
    assert metric("brier").format(0.05) == "0.050"
    assert metric("auroc").format(None) == "n/a" and metric("auroc").format(None, missing="–") == "–"
    assert metric("ece").format("not trained to self-evaluate") == "not trained to self-evaluate"
    assert (metric("ece").label, metric("auroc").label, metric("majority_accuracy").label) == \
        ("ECE", "AUROC", "majority vote")


def test_registry_covers_what_an_eval_reports():
    summary = metrics.calibration_summary([0.9, 0.2, 0.7, 0.4], [1, 0, 1, 1])
    numbers = {k for k, v in summary.items() if isinstance(v, float) or v is None} - {"mean_confidence"}
    assert numbers <= set(METRICS), numbers - set(METRICS)
    assert set(HEADLINE) <= set(METRICS)
    assert CALIBRATION == ("ece", "ece_mass", "brier", "auroc")
    assert all(m.key == k and m.help for k, m in METRICS.items())


def test_unknown_metric_is_one_sentence():
    with pytest.raises(EvaluationError, match=r"Unknown metric 'acc'; known metrics: accuracy, .*auroc"):
        metric("acc")


def test_cli_result_lines_use_the_registered_names():
    out = io.StringIO()
    print_result({"accuracy": 0.6, "accuracy_lo": 0.4, "accuracy_hi": 0.8, "n": 5, "split": "test",
                  "no_answer": 1, "ece": 0.1234, "ece_mass": None, "brier": 0.05, "auroc": None,
                  "verdicts": {}, "vote": {"samples_per_question": 3, "majority": {"accuracy": 0.5},
                                           "weighted": {"accuracy": 0.75}}}, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "accuracy 60.0% [40.0%, 80.0%] on 5 test examples (1 without an answer)"
    assert lines[1] == "self-evaluation: ECE 0.123, ECE (equal-mass) n/a, Brier 0.050, AUROC n/a, verdicts {}"
    assert lines[2] == "self-consistency over 3 samples: majority vote 50.0%, verdict-weighted vote 75.0%"


def test_reliability_legend_names_ece_from_the_registry():
    from mirror_core.evaluation import plots

    bins = [{"confidence": 0.5, "accuracy": 0.4, "count": 3}]
    fig = plots.reliability_figure({"a": {"ece": 0.0421, "reliability": bins}, "b": {"ece": None, "reliability": bins}})
    diagonal, curves = fig.layer
    assert list(diagonal.data["p"]) == [0.0, 1.0] and diagonal.mark.strokeDash == [4, 4]
    assert list(curves.data["run"].unique()) == ["a (ECE 0.042)", "b (ECE n/a)"]
    assert fig.to_dict()["layer"][1]["encoding"]["color"]["field"] == "run"


def test_experiment_table_takes_names_and_formats_from_the_registry():
    from mirror_core.evaluation import experiment

    rows = [{"method": "a", "n": 5, "accuracy": 0.6, "accuracy_lo": 0.2, "accuracy_hi": None, "ece": 0.1234,
             "brier": None, "auroc": 0.75, "accuracy_at_80": 0.5, "majority_accuracy": None,
             "weighted_accuracy": 0.66666, "teacher_cost_usd": 0.0, "train_seconds": 12.5, "eval_seconds": None}]
    assert experiment.markdown_table(rows).splitlines() == [
        "| method | n | accuracy [95% CI] | ECE | Brier | AUROC | acc. @80% coverage | majority vote |"
        " verdict-weighted vote | teacher $ | train s | eval s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        "| a | 5 | 60.0% [20.0%, –] | 0.123 | – | 0.750 | 50.0% | – | 66.7% | 0.000 | 12.500 | – |"]
