"""The Review page's filter state as a dataclass that round-trips through URL query parameters.

Only non-default values go into the URL, so a plain link stays short and a shared link shows exactly
what differs. Unknown or invalid values from a hand-edited URL are reported, never silently kept.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

from mirror_core.errors import FilterError

# Allowed values per choice field (None = no filter). The page builds its widgets from these.
CHOICES: dict[str, tuple[str, ...]] = {
    "split": ("train", "dev", "test"),
    "correct": ("yes", "no", "unknown"),          # CoT's answer vs gold
    "verdict": ("any_wrong", "any_uncertain", "all_correct", "none"),  # its self-evaluations
    "edited": ("yes", "no"),
    "status": ("active", "accepted", "rejected", "flagged"),
    "kind": ("cot", "revision", "feedback", "student"),
    "sort": ("question", "most_wrong_verdicts", "fewest_correct_verdicts", "recently_updated", "teacher"),
}
LABELS: dict[str, dict[str, str]] = {
    "correct": {"yes": "correct vs gold", "no": "wrong vs gold", "unknown": "not graded"},
    "verdict": {"any_wrong": "any says wrong", "any_uncertain": "any says uncertain",
                "all_correct": "all say correct", "none": "no self-evaluation"},
    "edited": {"yes": "edited", "no": "not edited"},
    "sort": {"question": "question order", "most_wrong_verdicts": "most 'wrong' verdicts",
             "fewest_correct_verdicts": "fewest 'correct' verdicts", "recently_updated": "recently updated",
             "teacher": "teacher"},
}
_BOOL_TRUE, _BOOL_FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class ReviewFilter:
    """What the reviewer is looking at. Every field maps to one URL parameter of the same name."""

    dataset: str | None = None
    split: str | None = None
    teacher: str | None = None          # rationales.author
    correct: str | None = None
    verdict: str | None = None
    verdict_vs_gold: bool = False        # a self-evaluation contradicts the truth
    cots_disagree: bool = False          # the question's CoTs reach different answers
    edited: str | None = None
    status: str | None = None
    q: str = ""                          # full-text search
    kind: str = "cot"
    sort: str = "question"

    def __post_init__(self):
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise FilterError(f"filter '{name}' cannot be '{value}'; use one of: {', '.join(allowed)}")

    def to_params(self) -> dict[str, str]:
        """Non-default fields as URL query parameters (strings)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value == f.default:
                continue
            out[f.name] = ("1" if value else "0") if isinstance(value, bool) else str(value)
        return out

    @classmethod
    def from_params(cls, params: Mapping[str, Any], errors: list[str] | None = None) -> "ReviewFilter":
        """Filter from URL parameters; invalid values are skipped and described in `errors` if given.

        Parameters that are not filter fields (e.g. the page's `view` or `i`) are ignored.
        """
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in params:
                continue
            raw = params[f.name]
            if isinstance(raw, (list, tuple)):
                raw = raw[-1] if raw else ""
            raw = str(raw)
            if f.type == "bool" or isinstance(f.default, bool):
                low = raw.strip().lower()
                if low in _BOOL_TRUE or low in _BOOL_FALSE:
                    kwargs[f.name] = low in _BOOL_TRUE
                elif errors is not None:
                    errors.append(f"'{f.name}={raw}' is not true/false; ignored")
                continue
            if f.name in CHOICES and raw not in CHOICES[f.name]:
                if errors is not None:
                    errors.append(f"'{f.name}={raw}' is not one of {', '.join(CHOICES[f.name])}; ignored")
                continue
            kwargs[f.name] = raw if raw != "" or f.name == "q" else None
        return cls(**kwargs)

    def replace(self, **changes) -> "ReviewFilter":
        return replace(self, **changes)

    def is_default(self) -> bool:
        return not self.to_params()

    def describe(self) -> str:
        """One line a user can read: what this filter selects."""
        parts = []
        for k, v in self.to_params().items():
            if k == "sort":
                continue
            if k == "q":
                parts.append(f'search "{v}"')
            elif k == "verdict_vs_gold":
                parts.append("verdict contradicts gold" if self.verdict_vs_gold else "no verdict contradicts gold")
            elif k == "cots_disagree":
                parts.append("the question's CoTs disagree" if self.cots_disagree else "the question's CoTs agree")
            elif k in LABELS:
                parts.append(LABELS[k].get(v, v))
            else:  # dataset, split, teacher, status, kind
                parts.append(f"{k} {v}")
        return ", ".join(parts) if parts else "everything"
