"""Review queries: every filter and count is checked against a plain Python computation over the rows."""

from collections import Counter

import pytest

from mirror_core import migrations, store
from mirror_core.agreement import agreement
from mirror_core.errors import FilterError
from mirror_core.review import queries
from mirror_core.review.filters import ReviewFilter
from review_helpers import cots, seeded, verdicts


def _ids(conn, f):
    return set(queries.matching_ids(conn, f))


def test_each_filter_matches_python(conn):
    seeded(conn, questions=15)
    rows = cots(conn)
    vs = {r["id"]: verdicts(conn, r["id"]) for r in rows}
    answers_by_ex: dict[int, set] = {}
    for r in rows:
        answers_by_ex.setdefault(r["example_id"], set()).add(r["parsed_answer"])
    expect = {
        ReviewFilter(split="dev"): {r["id"] for r in rows if r["split"] == "dev"},
        ReviewFilter(teacher="local"): {r["id"] for r in rows if r["author"] == "local"},
        ReviewFilter(correct="no"): {r["id"] for r in rows if r["correct"] == 0},
        ReviewFilter(verdict="any_wrong"): {r["id"] for r in rows if "wrong" in vs[r["id"]]},
        ReviewFilter(verdict="any_uncertain"): {r["id"] for r in rows if "uncertain" in vs[r["id"]]},
        ReviewFilter(verdict="all_correct"): {r["id"] for r in rows if set(vs[r["id"]]) == {"correct"}},
        ReviewFilter(verdict_vs_gold=True): {
            r["id"] for r in rows if (r["correct"] == 0 and "correct" in vs[r["id"]])
            or (r["correct"] == 1 and "wrong" in vs[r["id"]])},
        ReviewFilter(cots_disagree=True): {r["id"] for r in rows if len(answers_by_ex[r["example_id"]]) > 1},
        ReviewFilter(edited="no"): {r["id"] for r in rows},
        ReviewFilter(status="rejected"): set(),
    }
    for f, want in expect.items():
        assert _ids(conn, f) == want, f
    # filters combine with AND
    both = ReviewFilter(correct="no", verdict_vs_gold=True)
    assert _ids(conn, both) == expect[ReviewFilter(correct="no")] & expect[ReviewFilter(verdict_vs_gold=True)]
    assert expect[ReviewFilter(verdict_vs_gold=True)], "seed should contain hallucinated verdicts"


def test_facet_counts_match_python(conn):
    seeded(conn, questions=20)
    rows = cots(conn)
    f = ReviewFilter(teacher="fake")
    sel = [r for r in rows if r["author"] == "fake"]
    fc = queries.facet_counts(conn, f)
    assert fc["cots"] == len(sel)
    assert fc["questions"] == len({r["example_id"] for r in sel})
    assert fc["by_split"] == dict(Counter(r["split"] for r in sel))
    assert fc["correct"]["no"] == sum(r["correct"] == 0 for r in sel)
    assert fc["verdict"]["any_wrong"] == sum(r["v_wrong"] > 0 for r in sel)
    assert fc["verdict_vs_gold"] == len(_ids(conn, f.replace(verdict_vs_gold=True)))
    assert fc["cots_disagree"] == len(_ids(conn, f.replace(cots_disagree=True)))
    assert queries.count(conn, f) == {"cots": fc["cots"], "questions": fc["questions"]}


def test_verdict_counters_follow_self_eval_changes(conn):
    seeded(conn, questions=3)
    rid = cots(conn)[0]["id"]

    def counters():
        r = conn.execute("SELECT v_correct, v_wrong, v_uncertain FROM rationales WHERE id = ?", (rid,)).fetchone()
        v = verdicts(conn, rid)
        assert tuple(r) == (v.count("correct"), v.count("wrong"), v.count("uncertain"))
        return tuple(r)

    before = counters()
    conn.execute("INSERT INTO self_evals (rationale_id, evaluator, critique, verdict, created_at)"
                 " VALUES (?, 'x', 'looks wrong', 'wrong', ?)", (rid, store.now()))
    assert counters()[1] == before[1] + 1
    conn.execute("UPDATE self_evals SET verdict = 'uncertain' WHERE rationale_id = ? AND evaluator = 'x'", (rid,))
    counters()
    conn.execute("INSERT INTO self_evals (rationale_id, evaluator, critique, verdict, parse_status, created_at)"
                 " VALUES (?, 'y', 'garbled', NULL, 'parse_error', ?)", (rid, store.now()))
    counters()
    conn.execute("DELETE FROM self_evals WHERE rationale_id = ?", (rid,))
    assert counters() == (0, 0, 0)


def test_full_text_search_over_questions_cots_and_critiques_stays_in_sync(conn):
    seeded(conn, questions=5)
    rows = cots(conn)
    target = rows[4]
    # a word only in one CoT
    conn.execute("UPDATE rationales SET text = text || ' Zebracount check.' WHERE id = ?", (target["id"],))
    assert _ids(conn, ReviewFilter(q="zebracount")) == {target["id"]}
    assert _ids(conn, ReviewFilter(q="zebra*")) == {target["id"]}
    # edited away: no longer found
    conn.execute("UPDATE rationales SET text = 'plain' WHERE id = ?", (target["id"],))
    assert _ids(conn, ReviewFilter(q="zebracount")) == set()
    # a critique word finds its CoT
    conn.execute("INSERT INTO self_evals (rationale_id, evaluator, critique, verdict, created_at)"
                 " VALUES (?, 'x', 'The quokka step is unjustified', 'wrong', ?)", (rows[1]["id"], store.now()))
    assert _ids(conn, ReviewFilter(q="quokka")) == {rows[1]["id"]}
    conn.execute("DELETE FROM self_evals WHERE critique LIKE '%quokka%'")
    assert _ids(conn, ReviewFilter(q="quokka")) == set()
    # a question word finds all the question's CoTs; stemming: "marble" matches "marbles"
    conn.execute("UPDATE examples SET question = 'How many marbles does Kiwi own?' WHERE id = ?",
                 (rows[0]["example_id"],))
    want = {r["id"] for r in rows if r["example_id"] == rows[0]["example_id"]}
    assert _ids(conn, ReviewFilter(q="kiwi")) == want
    assert want <= _ids(conn, ReviewFilter(q="kiwi marble"))
    # phrases and FTS syntax characters in user input do not raise
    assert _ids(conn, ReviewFilter(q='"does Kiwi own"')) == want
    for odd in ['a-b (c', 'NEAR(', '"unclosed', "col:val", "^*"]:
        queries.matching_ids(conn, ReviewFilter(q=odd)) if queries.fts_query(odd) else None
    with pytest.raises(FilterError):
        queries.count(conn, ReviewFilter(q="^*"))


def test_pagination_and_sort(conn):
    seeded(conn, questions=23)
    f = ReviewFilter(correct="no")
    total = queries.count(conn, f)["questions"]
    pages = [queries.question_ids(conn, f, offset=o, limit=5) for o in range(0, total + 5, 5)]
    flat = [i for p in pages for i in p]
    assert len(flat) == len(set(flat)) == total
    assert flat == sorted(flat)
    assert queries.question_at(conn, f, total) is None
    g = f.replace(sort="most_wrong_verdicts")
    order = queries.question_ids(conn, g, limit=100)
    wrongs = [conn.execute("SELECT SUM(v_wrong) FROM rationales WHERE example_id = ? AND correct = 0", (e,))
              .fetchone()[0] for e in order]
    assert wrongs == sorted(wrongs, reverse=True)
    rows = queries.cot_rows(conn, f.replace(sort="teacher"), limit=1000)
    assert [r["teacher"] for r in rows] == sorted(r["teacher"] for r in rows)
    assert all(r["correct"] == 0 for r in rows)


def test_question_detail_and_agreement(conn):
    seeded(conn, questions=4, cots_per_question=4)
    ex = cots(conn)[0]["example_id"]
    d = queries.question_detail(conn, ex, ReviewFilter(teacher="fake"))
    assert len(d["cots"]) == 4
    assert {c["author"] for c in d["cots"] if c["matches"]} == {"fake"}
    assert all(len(c["self_evals"]) == 3 for c in d["cots"])
    # the page's agreement is the one definition (mirror_core.agreement), over the question's rows
    assert d["agreement"] == agreement(d["cots"])
    assert d["agreement"]["cots"] == 4


def test_teacher_quality_matches_python(conn):
    seeded(conn, questions=15)
    tq = {t["teacher"]: t for t in queries.teacher_quality(conn)}
    rows = cots(conn)
    for teacher in ("fake", "local"):
        mine = [r for r in rows if r["author"] == teacher]
        assert tq[teacher]["accuracy"] == pytest.approx(sum(r["correct"] for r in mine) / len(mine))
        pairs = [(v, r["correct"]) for r in rows for v, ev in conn.execute(
            "SELECT verdict, evaluator FROM self_evals WHERE rationale_id = ?", (r["id"],)) if ev == teacher]
        c = tq[teacher]["confusion"]
        assert c["correct"]["wrong"] == sum(1 for v, ok in pairs if v == "correct" and ok == 0)
        assert c["wrong"]["right"] == sum(1 for v, ok in pairs if v == "wrong" and ok == 1)
        decided = [(v, ok) for v, ok in pairs if v in ("correct", "wrong")]
        hits = sum(1 for v, ok in decided if (v == "correct") == bool(ok))
        assert tq[teacher]["verdict_accuracy"] == pytest.approx(hits / len(decided))


def test_filters_round_trip_through_url_params():
    f = ReviewFilter(dataset="gsm8k", split="dev", teacher="openai:gpt-4o-mini", correct="no",
                     verdict="any_wrong", verdict_vs_gold=True, cots_disagree=True, edited="yes",
                     status="flagged", q='"final step" marble*', sort="most_wrong_verdicts")
    assert ReviewFilter.from_params(f.to_params()) == f
    assert ReviewFilter().to_params() == {}
    errors: list[str] = []
    g = ReviewFilter.from_params({"split": "holdout", "verdict_vs_gold": "maybe", "correct": ["yes", "no"],
                                  "view": "table"}, errors)
    assert g == ReviewFilter(correct="no") and len(errors) == 2 and "holdout" in errors[0]
    with pytest.raises(FilterError):
        ReviewFilter(status="deleted")


def test_filter_description_reads_as_words_not_url_params():
    assert ReviewFilter().describe() == "everything"
    f = ReviewFilter(split="train", correct="no", verdict="any_wrong", verdict_vs_gold=True, cots_disagree=True,
                     q="marbles", sort="teacher")
    assert f.describe() == ('split train, wrong vs gold, any says wrong, verdict contradicts gold, '
                            'the question\'s CoTs disagree, search "marbles"')
    assert "=" not in f.describe()


def test_migration_backfills_search_and_counters(home):
    """A store made before m003 gets its existing rows indexed and counted when it upgrades."""
    import sqlite3

    db = sqlite3.connect(home / "old.db", isolation_level=None)
    db.row_factory = sqlite3.Row
    migrations.migrate(db, upto="m002_teachers_rationales_runs")
    ts = store.now()
    db.execute("INSERT INTO datasets (name, source, task_type, content_hash, created_at) VALUES ('d','x','numeric','h',?)", (ts,))
    db.execute("INSERT INTO examples (dataset_id, ext_id, split, question, answer, task_type)"
               " VALUES (1, 'a', 'train', 'Wombats dig holes?', '3', 'numeric')")
    db.execute("INSERT INTO rationales (example_id, author, text, parsed_answer, correct, created_at, updated_at)"
               " VALUES (1, 'fake', 'dig dig dig, answer 3', '3', 1, ?, ?)", (ts, ts))
    db.execute("INSERT INTO self_evals (rationale_id, evaluator, critique, verdict, created_at)"
               " VALUES (1, 'fake', 'sound reasoning', 'correct', ?)", (ts,))
    migrations.migrate(db)
    assert db.execute("SELECT v_correct FROM rationales").fetchone()[0] == 1
    for word in ("wombats", "dig", "sound"):
        assert queries.matching_ids(db, ReviewFilter(q=word)) == [1]


def test_facet_options_are_counted_with_the_other_filters_only(conn):
    seeded(conn, questions=12)
    rows = cots(conn)
    fc = queries.facet_counts(conn, ReviewFilter(teacher="fake", correct="no"))
    # teacher options: counted with correct=no but without teacher=fake
    assert fc["by_teacher"] == dict(Counter(r["author"] for r in rows if r["correct"] == 0))
    assert fc["correct"]["yes"] == sum(1 for r in rows if r["author"] == "fake" and r["correct"] == 1)
    assert fc["cots"] == sum(1 for r in rows if r["author"] == "fake" and r["correct"] == 0)


def test_cached_counts_follow_writes_from_any_connection(home, conn):
    seeded(conn, questions=6)
    cache: dict = {}
    f = ReviewFilter(status="rejected")
    assert queries.facet_counts(conn, f, cache)["cots"] == 0
    other = store.connect(home)
    other.execute("UPDATE rationales SET status = 'rejected' WHERE id IN (1, 2)")
    assert queries.facet_counts(conn, f, cache)["cots"] == 2  # another session's commit
    conn.execute("UPDATE rationales SET status = 'rejected' WHERE id = 3")
    assert queries.facet_counts(conn, f, cache)["cots"] == 3  # our own write
    assert queries.count(conn, f, cache) == {"cots": 3, "questions": len({r["example_id"] for r in cots(conn)
                                                                          if r["id"] <= 3})}
    other.close()


def test_peer_disagreement_flag_follows_edits(conn):
    seeded(conn, questions=3, cots_per_question=2)
    a, b = [r for r in cots(conn) if r["example_id"] == cots(conn)[0]["example_id"]]
    conn.execute("UPDATE rationales SET parsed_answer = '1' WHERE id IN (?, ?)", (a["id"], b["id"]))
    assert {a["id"], b["id"]}.isdisjoint(queries.matching_ids(conn, ReviewFilter(cots_disagree=True)))
    conn.execute("UPDATE rationales SET parsed_answer = '2' WHERE id = ?", (b["id"],))
    assert {a["id"], b["id"]} <= set(queries.matching_ids(conn, ReviewFilter(cots_disagree=True)))
    conn.execute("DELETE FROM rationales WHERE id = ?", (b["id"],))
    assert a["id"] not in queries.matching_ids(conn, ReviewFilter(cots_disagree=True))


def _words(text):
    import re
    return set(re.findall(r"\w+", text.lower()))


def test_search_fast_paths_match_a_python_computation(conn):
    """Search-only counts and pages come straight from the per-CoT index (migration m006); searches with
    other filters walk the index in question order. Both must equal a plain Python computation."""
    seeded(conn, questions=30, cots_per_question=3)
    rows = cots(conn)
    crit = {r["id"]: " ".join(c[0] for c in conn.execute(
        "SELECT critique FROM self_evals WHERE rationale_id = ?", (r["id"],))) for r in rows}

    def truth(words, keep=lambda r: True):
        # a CoT matches when every word occurs in its question, its text or its critiques
        return [r for r in rows if keep(r) and all(
            w in _words(r["question"]) | _words(r["text"]) | _words(crit[r["id"]]) for w in words)]

    for q, words in [("Zoe", ["zoe"]), ("checked the", ["checked", "the"]), ("the", ["the"])]:
        for f, keep in [(ReviewFilter(q=q), lambda r: True),
                        (ReviewFilter(q=q, teacher="local"), lambda r: r["author"] == "local"),
                        (ReviewFilter(q=q, split="train", correct="no"),
                         lambda r: r["split"] == "train" and r["correct"] == 0)]:
            want = truth(words, keep)
            want_q = sorted({r["example_id"] for r in want})
            assert queries.count(conn, f) == {"cots": len(want), "questions": len(want_q)}, f
            assert set(queries.matching_ids(conn, f)) == {r["id"] for r in want}, f
            pages = [queries.question_ids(conn, f, offset=o, limit=4) for o in range(0, len(want_q) + 4, 4)]
            assert [i for p in pages for i in p] == want_q, f
            assert queries.question_at(conn, f, len(want_q)) is None
            got = [r["id"] for o in range(0, len(want) + 5, 5) for r in queries.cot_rows(conn, f, offset=o, limit=5)]
            assert got == [r["id"] for r in sorted(want, key=lambda r: (r["example_id"], r["id"]))], f
    assert queries.count(conn, ReviewFilter(q="Zoe"))["cots"] > 0  # the seeded names make this non-trivial


def test_search_terms_may_come_from_different_parts_of_a_cot_but_phrases_do_not_span_them(conn):
    seeded(conn, questions=2, cots_per_question=2)
    rows = cots(conn)
    r = rows[0]
    conn.execute("UPDATE examples SET question = 'How many apples does Wren keep?' WHERE id = ?", (r["example_id"],))
    conn.execute("UPDATE rationales SET text = 'Platypus reasoning here.' WHERE id = ?", (r["id"],))
    conn.execute("INSERT INTO self_evals (rationale_id, evaluator, critique, verdict, created_at)"
                 " VALUES (?, 'x', 'Kestrel says fine', 'correct', ?)", (r["id"], store.now()))
    # question word + CoT word + critique word: that one CoT
    assert _ids(conn, ReviewFilter(q="wren platypus kestrel")) == {r["id"]}
    # a phrase must occur within one part: "keep platypus" would span question -> CoT text
    assert _ids(conn, ReviewFilter(q='"keep platypus"')) == set()
    assert _ids(conn, ReviewFilter(q='"platypus reasoning"')) == {r["id"]}


def test_search_index_follows_kind_moves_and_deletes(conn):
    seeded(conn, questions=3, cots_per_question=2)
    rows = cots(conn)
    a, b = rows[0], rows[-1]
    # another kind's text is found only under that kind
    ts = store.now()
    rev = conn.execute("INSERT INTO rationales (example_id, kind, author, text, created_at, updated_at)"
                       " VALUES (?, 'revision', 'human', 'Narwhal fix', ?, ?)", (a["example_id"], ts, ts)).lastrowid
    assert _ids(conn, ReviewFilter(q="narwhal")) == set()
    assert _ids(conn, ReviewFilter(q="narwhal", kind="revision")) == {rev}
    # a question edit reaches every CoT of the question and only those
    conn.execute("UPDATE examples SET question = 'Ocelot count?' WHERE id = ?", (b["example_id"],))
    assert _ids(conn, ReviewFilter(q="ocelot")) == {r["id"] for r in rows if r["example_id"] == b["example_id"]}
    # a critique moved to another CoT is found under the new one only
    sid = conn.execute("INSERT INTO self_evals (rationale_id, evaluator, critique, verdict, created_at)"
                       " VALUES (?, 'x', 'Axolotl issue', 'wrong', ?)", (a["id"], ts)).lastrowid
    assert _ids(conn, ReviewFilter(q="axolotl")) == {a["id"]}
    conn.execute("UPDATE self_evals SET rationale_id = ? WHERE id = ?", (b["id"], sid))
    assert _ids(conn, ReviewFilter(q="axolotl")) == {b["id"]}
    conn.execute("UPDATE self_evals SET critique = 'Plain remark' WHERE id = ?", (sid,))
    assert _ids(conn, ReviewFilter(q="axolotl")) == set()
    # deleting the dataset cascades through examples, CoTs and self-evaluations: the index empties
    conn.execute("DELETE FROM datasets")
    assert conn.execute("SELECT COUNT(*) FROM review_cot_fts").fetchone()[0] == 0
    conn.execute("INSERT INTO review_cot_fts(review_cot_fts) VALUES ('integrity-check')")


def test_stale_self_evaluations_leave_the_verdict_counters(conn):
    import time

    from mirror_core.review import curation

    seeded(conn, questions=3)
    rid = cots(conn)[0]["id"]

    def counters_match():
        fresh = [r[0] for r in conn.execute("SELECT verdict FROM self_evals WHERE rationale_id = ? AND NOT stale",
                                            (rid,))]
        r = conn.execute("SELECT v_correct, v_wrong, v_uncertain FROM rationales WHERE id = ?", (rid,)).fetchone()
        assert tuple(r) == (fresh.count("correct"), fresh.count("wrong"), fresh.count("uncertain"))
        return len(fresh)

    n = counters_match()
    original = conn.execute("SELECT text FROM rationales WHERE id = ?", (rid,)).fetchone()[0]
    curation.edit_cot(conn, rid, "Recounted.\nThe answer is 5.", expected_revision=0)
    assert counters_match() == 0
    time.sleep(0.01)  # timestamps have millisecond resolution: the evaluation comes after the edit
    conn.execute("INSERT INTO self_evals (rationale_id, evaluator, critique, verdict, created_at)"
                 " VALUES (?, 'x', 'fine', 'correct', ?)", (rid, store.now()))  # an evaluation of the new text
    assert counters_match() == 1
    conn.execute("UPDATE self_evals SET verdict = 'wrong' WHERE rationale_id = ? AND stale", (rid,))
    assert counters_match() == 1
    conn.execute("DELETE FROM self_evals WHERE rationale_id = ? AND stale AND id = (SELECT MIN(id) FROM self_evals"
                 " WHERE rationale_id = ?)", (rid, rid))
    assert counters_match() == 1
    curation.revert(conn, rid, 0, expected_revision=1)  # the old evaluations judged this text: fresh again
    assert conn.execute("SELECT text FROM rationales WHERE id = ?", (rid,)).fetchone()[0] == original
    assert counters_match() == n - 1  # one was deleted; the new one judged the other text
