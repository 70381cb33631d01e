"""How far one question's CoTs agree on a final answer — the one definition of agreement.

The generation summary (`generation.pipeline.agreement_summary`) and the Review page's question view
(`review.queries.question_detail`) both read it, so a question shows the same numbers in both.
It works on rows already graded by `answers.grade`; it never re-grades.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Mapping


def agreement(cots: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Agreement among one question's CoTs (rows with `parsed_answer`, `correct`, `status`, `author`).

    Definition:
    - Rejected CoTs are left out (a reviewer said they do not count); `cots` counts the rest.
    - `majority` is the most common parsed answer (a tie goes to the answer seen first) and
      `majority_share` its votes over ALL those CoTs: a CoT that states no answer agrees with nobody, so
      two "5"s and two unreadable CoTs are 50% agreement, not 100%. None when there are no CoTs.
    - `majority_matches_gold` is the stored grade of a CoT giving the majority answer (True/False; None
      when no CoT states an answer or the gold is ungradable) — the grading rule's tolerance, not text equality.
    - `correct` counts CoTs graded right; `per_teacher` is each teacher's own majority answer, and
      `teachers_agree` whether those all match (None with a single teacher).
    """
    live = [c for c in cots if c.get("status") != "rejected"]
    answers = Counter(c["parsed_answer"] for c in live if c.get("parsed_answer") is not None)
    majority, votes = answers.most_common(1)[0] if answers else (None, 0)
    graded = next((c.get("correct") for c in live if majority is not None and c.get("parsed_answer") == majority), None)
    per_teacher: dict[str, str | None] = {}
    for teacher in sorted({c.get("author") or "" for c in live}):
        mine = Counter(c["parsed_answer"] for c in live
                       if (c.get("author") or "") == teacher and c.get("parsed_answer") is not None)
        per_teacher[teacher] = mine.most_common(1)[0][0] if mine else None
    stated = {a for a in per_teacher.values() if a is not None}
    return {
        "cots": len(live), "answered": sum(answers.values()), "distinct_answers": len(answers),
        "majority": majority, "majority_share": (votes / len(live)) if live else None,
        "majority_matches_gold": None if graded is None else bool(graded),
        "correct": sum(1 for c in live if c.get("correct")),
        "answers": dict(answers.most_common()), "per_teacher": per_teacher,
        "teachers_agree": (len(stated) <= 1) if len(per_teacher) > 1 else None,
    }
