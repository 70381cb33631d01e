"""Metrics on hand-computed arrays, and AUROC equal to scikit-learn's on random data."""

from __future__ import annotations

import numpy as np
import pytest

from mirror_core.evaluation import metrics as M


def test_accuracy_and_bootstrap_interval():
    assert M.accuracy([1, 0, 1, 1]) == 0.75
    assert M.accuracy([]) is None
    assert M.bootstrap_ci([1, 1, 1]) == (1.0, 1.0)
    y = np.array([1, 0] * 200)  # p = .5, n = 400: the normal interval is .5 +- 1.96 * .025
    ci = M.accuracy_ci(y, seed=3)
    assert ci["accuracy"] == 0.5 and ci["n"] == 400
    assert ci["lo"] == pytest.approx(0.451, abs=0.012) and ci["hi"] == pytest.approx(0.549, abs=0.012)
    assert M.accuracy_ci(y, seed=3) == ci  # seeded: the same interval every time


def test_reliability_bins_equal_width():
    bins = M.reliability_bins([0.1, 0.2, 0.8, 0.9, 1.0], [0, 1, 1, 1, 0], n_bins=2, strategy="width")
    assert [(b["lo"], b["hi"], b["count"]) for b in bins] == [(0.0, 0.5, 2), (0.5, 1.0, 3)]
    assert bins[0]["confidence"] == pytest.approx(0.15) and bins[0]["accuracy"] == 0.5
    assert bins[1]["confidence"] == pytest.approx(0.9) and bins[1]["accuracy"] == pytest.approx(2 / 3)


def test_ece_equal_width_and_equal_mass():
    # width, 2 bins: {.1,.2} conf .15 acc .5 -> .5*.35; {.8,.9} conf .85 acc 1 -> .5*.15; total .25
    assert M.ece([0.1, 0.2, 0.8, 0.9], [0, 1, 1, 1], n_bins=2) == pytest.approx(0.25)
    conf, y = [0.1, 0.6, 0.7, 0.9], [0, 0, 1, 1]
    # width: {.1} -> .25*.1 = .025; {.6,.7,.9} conf .7333 acc .6667 -> .75*.0667 = .05; total .075
    assert M.ece(conf, y, n_bins=2, strategy="width") == pytest.approx(0.075)
    # mass: {.1,.6} conf .35 acc 0 -> .5*.35 = .175; {.7,.9} conf .8 acc 1 -> .5*.2 = .1; total .275
    assert M.ece(conf, y, n_bins=2, strategy="mass") == pytest.approx(0.275)
    assert M.ece([1.0, 0.0], [1, 0]) == 0.0
    with pytest.raises(ValueError):
        M.ece([1.2], [1])


def test_brier():
    assert M.brier([0.1, 0.6, 0.7, 0.9], [0, 0, 1, 1]) == pytest.approx((0.01 + 0.36 + 0.09 + 0.01) / 4)
    assert M.brier([], []) is None


def test_auroc_hand_computed_with_ties():
    assert M.auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    # pairs (pos, neg): (.5 vs .5) counts 1/2, (.9 vs .5) counts 1 -> .75
    assert M.auroc([0.5, 0.5, 0.9], [0, 1, 1]) == pytest.approx(0.75)
    assert M.auroc([0.3, 0.3], [0, 1]) == 0.5
    assert M.auroc([0.2, 0.9], [1, 1]) is None


def test_auroc_equals_sklearn_on_random_data():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    for trial in range(20):
        n = int(rng.integers(5, 300))
        y = rng.integers(0, 2, n)
        if y.min() == y.max():
            continue
        # rounded scores make many ties, the case a naive sort gets wrong
        s = np.round(rng.random(n) * 0.5 + 0.4 * y, 1 if trial % 2 else 4)
        assert M.auroc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_abstention_curve_keeps_ties_together():
    pts = M.abstention_curve([0.9, 0.8, 0.8, 0.3], [1, 0, 1, 0])
    assert [(p["threshold"], p["coverage"]) for p in pts] == [(0.9, 0.25), (0.8, 0.75), (0.3, 1.0)]
    assert [p["accuracy"] for p in pts] == pytest.approx([1.0, 2 / 3, 0.5])


def test_majority_and_weighted_vote():
    assert M.majority_vote(["3", "4", "3", None, "4"]) == ("3", 0.4)
    assert M.majority_vote([None, None]) == (None, 0.0)
    # majority says 4 (two votes) but the student trusts its "3" CoT most
    ans, share = M.weighted_vote(["3", "4", "4"], [0.9, 0.3, 0.4])
    assert ans == "3" and share == pytest.approx(0.9 / 1.6)
    assert M.majority_vote(["3", "4", "4"])[0] == "4"
    with pytest.raises(ValueError):
        M.weighted_vote(["3"], [0.1, 0.2])


def test_calibration_summary_is_json_ready():
    import json

    s = M.calibration_summary([0.9, 0.2, 0.7], [1, 0, 0])
    assert s["n"] == 3 and s["auroc"] == 1.0
    json.dumps(s, allow_nan=False)
