"""The paired test the experiment report uses to say whether two methods differ on the same questions."""

from math import comb

import pytest

from mirror_core.evaluation.experiment import diffs_markdown, mcnemar_p


def test_mcnemar_matches_the_binomial_tail_by_hand():
    # 22 questions fixed, 9 broken (the SVAMP step-by-step vs answer-only run): 2·P(X ≤ 9 | n=31, 1/2)
    want = 2 * sum(comb(31, i) for i in range(10)) / 2 ** 31
    assert mcnemar_p(22, 9) == pytest.approx(want)
    assert mcnemar_p(22, 9) == pytest.approx(0.02945, abs=1e-5)


def test_mcnemar_is_symmetric_and_bounded():
    assert mcnemar_p(3, 12) == mcnemar_p(12, 3)
    assert mcnemar_p(5, 5) == 1.0          # the tail sum passes 1 when fixed == broken: capped
    assert mcnemar_p(0, 0) == 1.0          # no discordant question: no evidence either way
    assert mcnemar_p(0, 6) == pytest.approx(2 / 64)


def test_diffs_markdown_shows_counts_and_p():
    md = diffs_markdown({"step-by-step": {"fixed": 22, "broken": 9, "both right": 2, "both wrong": 67,
                                          "mcnemar_p": mcnemar_p(22, 9)}})
    assert "| step-by-step | 22 | 9 | 2 | 67 | 0.0294 |" in md
