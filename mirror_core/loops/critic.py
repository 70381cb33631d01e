"""Teacher as critic ("Small But Funny", PAPERS.md §5): which pair to judge and how to read the judgments.

- The pair: among the student's k candidates, the two whose word sets are farthest apart by Jaccard
  distance (1 − |A∩B| / |A∪B|, lower-cased word tokens). Ties go to the lowest (i, j). Identical texts
  carry no preference, so a pair at distance 0 is no pair.
- Length band: drop a pair when max(len)/min(len), in words, exceeds min(high, 1/low) (default band
  0.8–1.2, so the longer may be at most 1.2× the shorter). It is symmetric, so the order does not matter;
  it stops the critic from learning "longer is better".
- Both orders: the teacher sees (A, B) and then (B, A) and answers "[1]" or "[2]". The judgment is
  consistent when the same candidate wins in both orders; only consistent ones train the student.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

DEFAULT_BAND = (0.8, 1.2)
_WORD = re.compile(r"\w+", re.UNICODE)
_CHOICE_BRACKET = re.compile(r"\[\s*\[?\s*([12])\s*\]?\s*\]")
_CHOICE_WORDS = re.compile(r"\b(?:output|response|candidate|answer|option)\s*(?:#\s*)?([12])\b", re.IGNORECASE)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def jaccard_distance(a: str, b: str) -> float:
    """1 − Jaccard similarity of the two texts' lower-cased word sets (0 for two empty texts)."""
    sa, sb = set(words(a)), set(words(b))
    union = sa | sb
    if not union:
        return 0.0
    return 1.0 - len(sa & sb) / len(union)


def most_different_pair(candidates: Sequence[str]) -> tuple[int, int, float] | None:
    """(i, j, distance) of the farthest pair, i < j; None when fewer than two distinct candidates."""
    best = None
    for i in range(len(candidates)):
        for j in range(i + 1, len(candidates)):
            d = jaccard_distance(candidates[i], candidates[j])
            if d > 0 and (best is None or d > best[2]):
                best = (i, j, d)
    return best


def length_ratio(a: str, b: str) -> float:
    """Longer / shorter, in words (inf when exactly one is empty, 1 when both are)."""
    la, lb = len(words(a)), len(words(b))
    if la == lb:
        return 1.0
    if min(la, lb) == 0:
        return float("inf")
    return max(la, lb) / min(la, lb)


def within_band(a: str, b: str, band: tuple[float, float] = DEFAULT_BAND) -> bool:
    """Whether the pair's length ratio lies inside the band (symmetric; see the module docstring)."""
    low, high = band
    if not 0 < low <= 1 <= high:
        raise ValueError(f"length band must satisfy 0 < low <= 1 <= high, got {band}")
    return length_ratio(a, b) <= min(high, 1.0 / low) + 1e-12


def parse_choice(text: str | None) -> int | None:
    """1 or 2 from a judgment ("[2] because ...", "Output 1 is better"); None when it names neither or both."""
    if not text:
        return None
    m = _CHOICE_BRACKET.findall(text)
    if m:
        return int(m[0])
    found = set(_CHOICE_WORDS.findall(text))
    if len(found) == 1:
        return int(found.pop())
    return None


@dataclass(frozen=True)
class Judgment:
    """The outcome of judging candidates a and b in both orders."""

    consistent: bool
    winner: str | None        # 'a', 'b' or None when the judgments disagree or did not parse
    choice_ab: int | None     # the critic's answer when a was shown first
    choice_ba: int | None     # its answer when b was shown first

    def as_dict(self) -> dict:
        return {"consistent": self.consistent, "winner": self.winner, "choice_ab": self.choice_ab,
                "choice_ba": self.choice_ba}


def combine_orders(choice_ab: int | None, choice_ba: int | None) -> Judgment:
    """Read the two judgments: (a, b) shown as (1, 2), then (b, a) shown as (1, 2)."""
    win_ab = {1: "a", 2: "b"}.get(choice_ab)
    win_ba = {1: "b", 2: "a"}.get(choice_ba)
    if win_ab is not None and win_ab == win_ba:
        return Judgment(True, win_ab, choice_ab, choice_ba)
    return Judgment(False, None, choice_ab, choice_ba)
