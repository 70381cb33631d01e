"""Evaluation metrics as plain functions over arrays: accuracy, calibration, abstention and voting — and
`METRICS`, the one registry of the numbers an eval reports (key, display name, direction, format).

`conf` is a confidence in [0, 1] that a prediction is right (the student's P(" correct") or a teacher's
stated confidence); `correct` is 0/1. Functions return plain floats, lists and dicts so results go
straight into `runs.result` JSON. Undefined values (AUROC with one class, metrics of nothing) are None,
never NaN: NaN is not JSON.

Every table, log line and plot that names a metric takes its name, direction and format from `METRICS`
(via `metric(key)`), so a metric is added or renamed in one place.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Hashable, Sequence

import numpy as np

from mirror_core.errors import EvaluationError


@dataclass(frozen=True)
class Metric:
    """One reported number: its key in results and the metrics table, how people read it, and which way is better."""

    key: str
    label: str                 # display name in tables, logs and plots
    higher_is_better: bool
    percent: bool              # shown as a percentage (a share of questions) rather than as a score
    calibration: bool          # grades P(correct) itself: not applicable to a student never trained on verdicts
    help: str

    def format(self, value: Any, missing: str = "n/a") -> str:
        """The value as shown: "61.2%" or "0.123"; `missing` for None; a text (a reason it is absent) as is."""
        if value is None:
            return missing
        if isinstance(value, str):
            return value
        return f"{100 * value:.1f}%" if self.percent else f"{value:.3f}"

    def better(self, a: float, b: float) -> bool:
        """Whether value `a` is strictly better than value `b` for this metric."""
        return a > b if self.higher_is_better else a < b


METRICS: dict[str, Metric] = {m.key: m for m in (
    Metric("accuracy", "accuracy", True, True, False, "share of questions whose greedy answer matches the gold"),
    Metric("accuracy_lo", "accuracy 95% CI low", True, True, False, "lower end of the bootstrap interval of accuracy"),
    Metric("accuracy_hi", "accuracy 95% CI high", True, True, False, "upper end of the bootstrap interval of accuracy"),
    Metric("ece", "ECE", False, False, True,
           "expected calibration error of P(correct), equal-width bins: 0 is perfectly calibrated"),
    Metric("ece_mass", "ECE (equal-mass)", False, False, True, "expected calibration error over equal-count bins"),
    Metric("brier", "Brier", False, False, True, "mean squared error of P(correct) against the 0/1 outcome"),
    Metric("auroc", "AUROC", True, False, True,
           "how well P(correct) separates right from wrong answers: 0.5 is chance, 1 perfect"),
    Metric("accuracy_at_80", "acc. @80% coverage", True, True, False,
           "accuracy when abstaining on the 20% least confident questions"),
    Metric("majority_accuracy", "majority vote", True, True, False, "accuracy of the majority of the sampled answers"),
    Metric("weighted_accuracy", "verdict-weighted vote", True, True, False,
           "accuracy of the sampled answers weighted by the student's own P(correct)"),
    Metric("verdict_accuracy", "verdict accuracy", True, True, False,
           "share of decided verdicts (correct/wrong) that match the truth against the gold"),
)}

# The headline numbers an eval job logs and writes to the metrics table.
HEADLINE = ("accuracy", "ece", "ece_mass", "brier", "auroc")
# The numbers that grade P(correct): shown as "not applicable" for a student never trained on verdicts.
CALIBRATION = tuple(k for k, m in METRICS.items() if m.calibration)


def metric(key: str) -> Metric:
    """The registered metric `key`; an EvaluationError naming the known keys for any other."""
    try:
        return METRICS[key]
    except KeyError:
        raise EvaluationError(f"Unknown metric '{key}'; known metrics: {', '.join(METRICS)}.") from None


def _arrays(conf: Sequence[float], correct: Sequence[int | bool]) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(conf, dtype=float).reshape(-1)
    y = np.asarray(correct, dtype=float).reshape(-1)
    if c.shape != y.shape:
        raise ValueError(f"confidences ({c.size}) and correctness ({y.size}) differ in length")
    if c.size and (np.any(c < 0) or np.any(c > 1) or np.any(np.isnan(c))):
        raise ValueError("confidences must lie in [0, 1]")
    return c, y


def accuracy(correct: Sequence[int | bool]) -> float | None:
    """Share of correct predictions; None for no predictions."""
    y = np.asarray(correct, dtype=float)
    return float(y.mean()) if y.size else None


def bootstrap_ci(values: Sequence[float], *, n_boot: int = 2000, alpha: float = 0.05,
                 seed: int = 0) -> tuple[float, float] | tuple[None, None]:
    """Percentile bootstrap interval of the mean: resample with replacement `n_boot` times."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return None, None
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def accuracy_ci(correct: Sequence[int | bool], *, n_boot: int = 2000, alpha: float = 0.05,
                seed: int = 0) -> dict[str, Any]:
    """Accuracy with a (1 - alpha) bootstrap interval: {accuracy, lo, hi, n}."""
    lo, hi = bootstrap_ci(correct, n_boot=n_boot, alpha=alpha, seed=seed)
    return {"accuracy": accuracy(correct), "lo": lo, "hi": hi, "n": int(np.asarray(correct).size)}


def _bin_index(c: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    if strategy == "width":
        # Bin i holds [i/n, (i+1)/n); the last bin also holds 1.0.
        return np.minimum((c * n_bins).astype(int), n_bins - 1)
    if strategy == "mass":
        # Sort by confidence and cut into n_bins chunks of (nearly) equal count.
        idx = np.empty(c.size, dtype=int)
        order = np.argsort(c, kind="stable")
        for b, chunk in enumerate(np.array_split(order, n_bins)):
            idx[chunk] = b
        return idx
    raise ValueError(f"strategy must be 'width' or 'mass', got {strategy!r}")


def reliability_bins(conf: Sequence[float], correct: Sequence[int | bool], n_bins: int = 10,
                     strategy: str = "width") -> list[dict[str, Any]]:
    """The reliability diagram: per non-empty bin its range, count, mean confidence and accuracy."""
    c, y = _arrays(conf, correct)
    if c.size == 0:
        return []
    idx = _bin_index(c, n_bins, strategy)
    bins = []
    for b in range(n_bins):
        m = idx == b
        if not m.any():
            continue
        lo, hi = (b / n_bins, (b + 1) / n_bins) if strategy == "width" else (float(c[m].min()), float(c[m].max()))
        bins.append({"bin": b, "lo": lo, "hi": hi, "count": int(m.sum()),
                     "confidence": float(c[m].mean()), "accuracy": float(y[m].mean())})
    return bins


def ece(conf: Sequence[float], correct: Sequence[int | bool], n_bins: int = 10,
        strategy: str = "width") -> float | None:
    """Expected calibration error: sum over bins of (bin share) * |accuracy - mean confidence|."""
    c, _ = _arrays(conf, correct)
    if c.size == 0:
        return None
    return float(sum(b["count"] / c.size * abs(b["accuracy"] - b["confidence"])
                     for b in reliability_bins(conf, correct, n_bins, strategy)))


def brier(conf: Sequence[float], correct: Sequence[int | bool]) -> float | None:
    """Mean squared error between confidence and the 0/1 outcome."""
    c, y = _arrays(conf, correct)
    return float(np.mean((c - y) ** 2)) if c.size else None


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given the mean of the ranks they span."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(x.size, dtype=float)
    i = 0
    while i < x.size:
        j = i
        while j + 1 < x.size and xs[j + 1] == xs[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def auroc(scores: Sequence[float], labels: Sequence[int | bool]) -> float | None:
    """Area under the ROC curve of `scores` separating labels 1 from 0 (Mann-Whitney U, ties count 1/2).

    None when only one class is present (the area is undefined).
    """
    s = np.asarray(scores, dtype=float).reshape(-1)
    y = np.asarray(labels, dtype=bool).reshape(-1)
    if s.shape != y.shape:
        raise ValueError(f"scores ({s.size}) and labels ({y.size}) differ in length")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    r = _average_ranks(s)
    return float((r[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def abstention_curve(conf: Sequence[float], correct: Sequence[int | bool]) -> list[dict[str, float]]:
    """Accuracy against coverage when answering only above a confidence threshold.

    One point per distinct confidence (tied items are kept or dropped together), from the most confident
    item alone to full coverage: {threshold, coverage, accuracy}.
    """
    c, y = _arrays(conf, correct)
    if c.size == 0:
        return []
    order = np.argsort(-c, kind="stable")
    cs, ys = c[order], y[order]
    cum = np.cumsum(ys)
    points = []
    for k in range(1, c.size + 1):
        if k < c.size and cs[k] == cs[k - 1]:
            continue  # a threshold cannot split tied confidences
        points.append({"threshold": float(cs[k - 1]), "coverage": k / c.size, "accuracy": float(cum[k - 1] / k)})
    return points


def majority_vote(answers: Sequence[Hashable | None]) -> tuple[Hashable | None, float]:
    """The most frequent non-None answer and its share of all votes; ties go to the first seen."""
    votes = [a for a in answers if a is not None]
    if not votes:
        return None, 0.0
    counts = Counter(votes)
    best = max(counts.values())
    winner = next(a for a in votes if counts[a] == best)
    return winner, best / len(answers)


def weighted_vote(answers: Sequence[Hashable | None], weights: Sequence[float]) -> tuple[Hashable | None, float]:
    """The answer with the largest total weight (e.g. the student's own P(correct) of each sampled CoT).

    Returns (answer, its share of the total weight); ties go to the first seen; None answers do not vote.
    """
    if len(answers) != len(weights):
        raise ValueError(f"answers ({len(answers)}) and weights ({len(weights)}) differ in length")
    total: dict[Hashable, float] = defaultdict(float)
    first: dict[Hashable, int] = {}
    for i, (a, w) in enumerate(zip(answers, weights)):
        if a is None:
            continue
        total[a] += float(w)
        first.setdefault(a, i)
    if not total:
        return None, 0.0
    winner = max(total, key=lambda a: (total[a], -first[a]))
    s = sum(float(w) for w in weights)
    return winner, (total[winner] / s if s > 0 else 0.0)


def calibration_summary(conf: Sequence[float], correct: Sequence[int | bool], n_bins: int = 10,
                        seed: int = 0) -> dict[str, Any]:
    """Every metric of one set of (confidence, correct) pairs, as the JSON an eval run stores."""
    acc = accuracy_ci(correct, seed=seed)
    return {
        "n": acc["n"], "accuracy": acc["accuracy"], "accuracy_lo": acc["lo"], "accuracy_hi": acc["hi"],
        "ece": ece(conf, correct, n_bins, "width"), "ece_mass": ece(conf, correct, n_bins, "mass"),
        "brier": brier(conf, correct), "auroc": auroc(conf, correct),
        "mean_confidence": float(np.mean(conf)) if len(conf) else None,
        "reliability": reliability_bins(conf, correct, n_bins, "width"),
        "abstention": abstention_curve(conf, correct),
    }
