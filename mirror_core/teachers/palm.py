"""The built-in PaLM teacher: the PaLM 540B chains of thought that the distilling step-by-step release
published for SVAMP and CommonsenseQA (vendored under `data/vendor/dss`, Apache-2.0), replayed.

One CoT per question, for the release's train and test questions; 0 teacher calls are paid. The
completions are few-shot continuations that often run on into an invented next "Q: … A: …" pair: each is
cut at the first such "Q:" (as the release's authors did), or the answer extractor would read the invented
question's answer (SVAMP: 752/1000 correct after cutting, 669 without).

Test-split CoTs exist so a user can compare a student with the teacher on test; they are a reference only.
Training never reads test items (snapshots train on train, select on dev).
"""

from __future__ import annotations

import re
from functools import lru_cache

from mirror_core.teachers.replay import ReplayTeacher, parse_replay

SPEC = "palm"
DISPLAY_NAME = "PaLM 540B (distilling step-by-step release)"
_NEXT_QUESTION_RE = re.compile(r"\n\s*Q:")


def cut_completion(text: str) -> str:
    """The completion up to the invented next question, stripped."""
    m = _NEXT_QUESTION_RE.search(text or "")
    return (text[: m.start()] if m else text or "").strip()


@lru_cache(maxsize=1)
def palm_outputs() -> dict[str, dict]:
    """{question id: replay entry} for every SVAMP and CommonsenseQA question in the release."""
    from mirror_core.data.builtin import vendored_rows

    rows = [{"id": r["id"], "cots": [cut_completion(r["palm_cot"])]}
            for name in ("svamp", "cqa_palm") for r in vendored_rows(name)]
    return parse_replay(rows, file="palm (vendored)")[1]


class PalmTeacher(ReplayTeacher):
    """Replays the vendored PaLM CoTs; its spec (and so every rationale's author) is 'palm'."""

    display_name = DISPLAY_NAME

    def __init__(self):
        super().__init__(data=palm_outputs(), name=SPEC)

    @property
    def spec(self) -> str:
        return SPEC

    @property
    def cache_id(self) -> str:
        return "palm-540b-dss-release-v1"
