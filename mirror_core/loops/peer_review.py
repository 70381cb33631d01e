"""MAPD / FAIR peer review (PAPERS.md §4): teachers score each other's rationales 1–5; accept by threshold.

Rules, as in the paper:
- A reviewer writes its score wrapped in square brackets ("... so I give it [4]"). `parse_score` reads the
  *last* bracketed integer; a review with none, or with a number outside 1–5, has no valid score.
- A rationale's author never scores itself: only the OTHER teachers' scores count.
- A rationale is accepted when the mean of the valid scores is strictly greater than the threshold
  (default 3). With no valid score at all it is rejected, and the reason says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

DEFAULT_THRESHOLD = 3.0
# "[4]", "[ 4 ]", "[4/5]", "[Score: 4]", "[[4]]" — a number inside square brackets.
_BRACKETED = re.compile(r"\[\s*\[?\s*(?:score\s*[:=]?\s*)?(-?\d+(?:\.\d+)?)\s*(?:/\s*5)?\s*\]?\s*\]", re.IGNORECASE)


def parse_score(text: str | None) -> int | None:
    """The 1–5 score in the last square-bracketed number of a review, else None."""
    if not text:
        return None
    found = _BRACKETED.findall(text)
    if not found:
        return None
    value = float(found[-1])
    if value != int(value) or not 1 <= value <= 5:
        return None
    return int(value)


@dataclass(frozen=True)
class Decision:
    """Whether a rationale is accepted, the mean of the valid peer scores, and why, in words."""

    accepted: bool
    mean: float | None
    n_valid: int
    reason: str

    def as_dict(self) -> dict:
        return {"accepted": self.accepted, "mean": self.mean, "n_valid": self.n_valid, "reason": self.reason}


def decide(author: str, scores: Mapping[str, int | None], threshold: float = DEFAULT_THRESHOLD) -> Decision:
    """Accept the rationale written by `author` when the mean valid score of the other reviewers > threshold.

    `scores` maps reviewer -> parsed score (None when the review had no valid score).
    """
    others = {r: s for r, s in scores.items() if r != author}
    valid = [s for s in others.values() if s is not None and 1 <= s <= 5]
    invalid = sorted(r for r, s in others.items() if s is None)
    if not valid:
        why = "no valid peer score" + (f" ({', '.join(invalid)} gave none in [1-5] brackets)" if invalid else
                                       " (no other teacher reviewed it)")
        return Decision(False, None, 0, why)
    mean = sum(valid) / len(valid)
    note = f" ({len(invalid)} review(s) without a valid score ignored)" if invalid else ""
    if mean > threshold:
        return Decision(True, mean, len(valid), f"mean peer score {mean:.2f} > {threshold:g}{note}")
    return Decision(False, mean, len(valid), f"mean peer score {mean:.2f} is not above {threshold:g}{note}")


def score_matrix(rows) -> dict[int, dict[str, dict[str, int | None]]]:
    """Group review rows (rationale_id, author, reviewer, score) into {rationale_id: {author: {reviewer: score}}}."""
    out: dict[int, dict[str, dict[str, int | None]]] = {}
    for r in rows:
        out.setdefault(r["rationale_id"], {}).setdefault(r["author"], {})[r["reviewer"]] = r["score"]
    return out
