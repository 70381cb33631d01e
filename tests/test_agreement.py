"""The one agreement definition (`mirror_core.agreement`) and its two readers giving the same numbers."""

from __future__ import annotations

import pytest

from mirror_core.agreement import agreement
from mirror_core.generation.pipeline import agreement_summary
from mirror_core.review import queries
from review_helpers import seeded


def cot(author, answer, correct, status="active"):
    return {"author": author, "parsed_answer": answer, "correct": correct, "status": status}


def test_majority_share_and_teachers():
    agr = agreement([cot("a", "5", 1), cot("a", "5", 1), cot("b", "6", 0), cot("b", "9", 0, "rejected")])
    assert (agr["cots"], agr["answered"], agr["majority"]) == (3, 3, "5")
    assert agr["majority_share"] == pytest.approx(2 / 3)
    assert agr["majority_matches_gold"] is True and agr["correct"] == 2
    assert agr["per_teacher"] == {"a": "5", "b": "6"} and agr["teachers_agree"] is False
    assert agr["answers"] == {"5": 2, "6": 1}


def test_a_cot_without_an_answer_agrees_with_nobody():
    agr = agreement([cot("a", "5", 0), cot("a", "5", 0), cot("a", None, 0), cot("a", None, 0)])
    assert agr["majority_share"] == pytest.approx(0.5)  # not 1.0: half the CoTs state nothing
    assert agr["answered"] == 2 and agr["majority_matches_gold"] is False
    assert agr["teachers_agree"] is None  # one teacher: nothing to agree with


def test_ungradable_and_empty():
    agr = agreement([cot("a", "12", None), cot("b", "12", None)])
    assert agr["majority_matches_gold"] is None and agr["teachers_agree"] is True
    empty = agreement([cot("a", "5", 1, "rejected")])
    assert (empty["cots"], empty["majority"], empty["majority_share"], empty["majority_matches_gold"]) == \
        (0, None, None, None)


def test_generation_summary_and_review_page_read_the_same_numbers(conn):
    seeded(conn, questions=6)
    # one unreadable CoT and one rejected CoT, so the two old definitions would differ here
    first, second = [r[0] for r in conn.execute("SELECT id FROM rationales WHERE kind = 'cot' ORDER BY id LIMIT 2")]
    conn.execute("UPDATE rationales SET parsed_answer = NULL, parse_status = 'parse_error', correct = 0 WHERE id = ?",
                 (first,))
    conn.execute("UPDATE rationales SET status = 'rejected' WHERE id = ?", (second,))
    ids = [r[0] for r in conn.execute("SELECT DISTINCT example_id FROM rationales WHERE kind = 'cot' ORDER BY 1")]
    summary = agreement_summary(conn, ids)
    pages = [queries.question_detail(conn, i)["agreement"] for i in ids]
    assert summary["questions"] == len(pages)
    assert summary["cots"] == sum(p["cots"] for p in pages)
    assert summary["mean_majority_share"] == round(sum(p["majority_share"] for p in pages) / len(pages), 4)
    assert summary["majority_accuracy"] == round(sum(1 for p in pages if p["majority_matches_gold"]) / len(pages), 4)
