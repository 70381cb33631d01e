"""Curation: edits re-grade the CoT and keep history; stale saves conflict and lose nothing; bulk actions."""

import pytest

from mirror_core import store
from mirror_core.errors import ConflictError, CurationError, NotFoundError
from mirror_core.review import curation, queries
from mirror_core.review.filters import ReviewFilter
from review_helpers import cots, seeded


def _row(conn, rid):
    return dict(conn.execute("SELECT * FROM rationales WHERE id = ?", (rid,)).fetchone())


def test_edit_reparses_regrades_and_records_history(conn):
    seeded(conn, questions=3)
    wrong = next(r for r in cots(conn) if r["correct"] == 0)
    fixed = wrong["text"].rsplit("The answer is", 1)[0] + f"The answer is {wrong['gold']}."
    row = curation.edit_cot(conn, wrong["id"], fixed, expected_revision=0, author="alice")
    assert (row["parsed_answer"], row["correct"], row["revision"], row["parse_status"]) == \
        (wrong["gold"], 1, 1, "ok")
    # the verdict-vs-gold filter follows the new correctness
    assert queries.count(conn, ReviewFilter(edited="yes"))["cots"] == 1
    hist = curation.history(conn, wrong["id"])
    assert [(h["revision"], h["author"], h["old_text"], h["new_text"]) for h in hist] == \
        [(1, "alice", wrong["text"], fixed)]
    assert f"+The answer is {wrong['gold']}." in curation.diff(wrong["text"], fixed).splitlines()
    # text with no answer: parse error, counted wrong
    row = curation.edit_cot(conn, wrong["id"], "I am not sure.", expected_revision=1)
    assert (row["parsed_answer"], row["parse_status"], row["correct"]) == (None, "parse_error", 0)
    # search sees the new text
    assert queries.matching_ids(conn, ReviewFilter(q="sure")) == [wrong["id"]]


def test_revert_restores_an_earlier_text_as_a_new_revision(conn):
    seeded(conn, questions=2)
    r = cots(conn)[0]
    curation.edit_cot(conn, r["id"], "Step one.\nThe answer is 1.", expected_revision=0)
    curation.edit_cot(conn, r["id"], "Step two.\nThe answer is 2.", expected_revision=1)
    assert curation.text_at(conn, r["id"], 0) == r["text"]
    assert curation.text_at(conn, r["id"], 1) == "Step one.\nThe answer is 1."
    row = curation.revert(conn, r["id"], 0, expected_revision=2)
    assert row["text"] == r["text"] and row["revision"] == 3
    assert row["parsed_answer"] == r["parsed_answer"] and row["correct"] == r["correct"]
    assert [h["revision"] for h in curation.history(conn, r["id"])] == [1, 2, 3]
    with pytest.raises(NotFoundError):
        curation.text_at(conn, r["id"], 9)


def test_two_sessions_editing_one_cot_conflict_and_nothing_is_lost(home):
    first, second = store.connect(home), store.connect(home)
    seeded(first, questions=2)
    rid = cots(first)[0]["id"]
    base = _row(second, rid)["revision"]  # both sessions opened the editor at the same revision
    assert _row(first, rid)["revision"] == base
    curation.edit_cot(first, rid, "Alice's fix.\nThe answer is 7.", expected_revision=base, author="alice")
    mine = "Bob's fix.\nThe answer is 8."
    with pytest.raises(ConflictError, match="revision 1"):
        curation.edit_cot(second, rid, mine, expected_revision=base, author="bob")
    # Alice's save is intact, Bob's was not written; Bob still holds his text and can re-apply it
    assert _row(first, rid)["text"].startswith("Alice's fix.")
    assert len(curation.history(first, rid)) == 1
    curation.edit_cot(second, rid, mine, expected_revision=1, author="bob")
    hist = curation.history(first, rid)
    assert [h["author"] for h in hist] == ["alice", "bob"]
    assert hist[1]["old_text"].startswith("Alice's fix.")  # Alice's version survives in history
    first.close(), second.close()


def test_empty_edit_is_refused(conn):
    seeded(conn, questions=1)
    with pytest.raises(CurationError, match="empty"):
        curation.edit_cot(conn, cots(conn)[0]["id"], "   ", expected_revision=0)


def test_accept_reject_flag_with_reason(conn):
    seeded(conn, questions=2)
    a, b, c = [r["id"] for r in cots(conn)[:3]]
    assert curation.set_status(conn, a, "accept") == 1
    assert curation.set_status(conn, [b, c], "flag", "odd step 2") == 2
    assert (_row(conn, a)["status"], _row(conn, b)["status"], _row(conn, b)["status_reason"]) == \
        ("accepted", "flagged", "odd step 2")
    curation.set_status(conn, b, "reset")
    assert _row(conn, b)["status"] == "active"
    with pytest.raises(NotFoundError):
        curation.set_status(conn, [a, 99999], "reject")
    assert _row(conn, a)["status"] == "accepted"  # all-or-nothing


def test_bulk_reject_over_a_filter_checks_the_confirmed_count(conn):
    seeded(conn, questions=10)
    f = ReviewFilter(correct="no")
    n = curation.bulk_count(conn, f)
    wrong_ids = {r["id"] for r in cots(conn) if r["correct"] == 0}
    assert n == len(wrong_ids) > 0
    with pytest.raises(ConflictError, match="confirm again"):
        curation.bulk_set_status(conn, f, "reject", "wrong answer", expected_count=n + 1)
    assert queries.count(conn, ReviewFilter(status="rejected"))["cots"] == 0  # nothing changed
    assert curation.bulk_set_status(conn, f, "reject", "wrong answer", expected_count=n) == n
    assert set(queries.matching_ids(conn, ReviewFilter(status="rejected"))) == wrong_ids
    # with a search in the filter (its parameter comes first in the statement)
    g = ReviewFilter(q="answer", status="rejected")
    m = curation.bulk_count(conn, g)
    assert m == n
    assert curation.bulk_set_status(conn, g, "flag", "", expected_count=m) == m
