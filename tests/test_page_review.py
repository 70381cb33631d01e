"""AppTest for pages/3_Review.py: filters in the URL, edit with history and revert, conflict, bulk reject,
snapshots, table and teacher-quality views."""

from streamlit.testing.v1 import AppTest

from mirror_core import snapshots, store
from mirror_core.review import curation, queries
from mirror_core.review.filters import ReviewFilter
from review_helpers import cots, seeded

PAGE = "../pages/3_Review.py"


def _app():
    return AppTest.from_file(PAGE, default_timeout=60)


def _text(at):
    return "\n".join(m.value for m in at.markdown)


def test_filters_update_counts_and_url_and_load_from_url(home, conn):
    seeded(conn, questions=12)
    at = _app().run()
    assert not at.exception
    total = len(cots(conn))
    assert f"**{total:,} CoTs**" in at.markdown[0].value
    at.selectbox(key="f_correct").set_value("no").run()
    n_wrong = queries.count(conn, ReviewFilter(correct="no"))
    assert at.query_params["correct"] == "no"
    assert f"**{n_wrong['cots']:,} CoTs** in **{n_wrong['questions']:,} questions**" in at.markdown[0].value
    at.checkbox(key="f_vvg").check().run()
    at.text_input(key="f_q").input("answer").run()
    assert at.query_params == {"correct": "no", "verdict_vs_gold": "1", "q": "answer"}
    n = queries.count(conn, ReviewFilter(correct="no", verdict_vs_gold=True, q="answer"))["cots"]
    assert f"**{n:,} CoTs**" in at.markdown[0].value
    # every CoT card shown belongs to the filter or says it does not
    assert "✗ wrong" in _text(at)

    # a shared link: a fresh session opens on the same view; bad values are reported, not kept
    shared = _app()
    shared.query_params.update({"teacher": "local", "split": "holdout", "view": "table"})
    shared.run()
    assert not shared.exception
    assert shared.selectbox(key="f_teacher").value == "local"
    assert shared.radio(key="view").value == "Table"
    assert any("holdout" in w.value for w in shared.warning)
    df = shared.dataframe[0].value
    assert set(df["teacher"]) == {"local"}
    assert shared.query_params == {"teacher": "local", "view": "table"}


def test_navigation_edit_history_and_revert(home, conn):
    seeded(conn, questions=5)
    at = _app().run()
    at.button(key="next").click().run()
    assert at.query_params.get("i") == "2"
    assert any(c.value == "question 2 of 5" for c in at.caption)
    at.button(key="prev").click().run()
    first = [r for r in cots(conn) if r["example_id"] == queries.question_at(conn, ReviewFilter(), 0)]
    rid, gold = first[0]["id"], first[0]["gold"]
    at.toggle(key=f"edit_{rid}").set_value(True).run()
    assert at.text_area(key=f"text_{rid}").value == first[0]["text"]
    new = f"Count them again.\nThe answer is {gold}."
    at.text_area(key=f"text_{rid}").input(new).run()
    at.button(key=f"save_{rid}").click().run()
    assert not at.exception
    row = conn.execute("SELECT text, correct, revision FROM rationales WHERE id = ?", (rid,)).fetchone()
    assert tuple(row) == (new, 1, 1)
    assert any("saved" in s.value for s in at.success)
    assert "Count them again." in _text(at)
    # history shows the diff and reverts
    assert not at.code  # folded away, the history is not drawn
    at.session_state[f"hist_{rid}"] = True  # unfold it (a click in the browser)
    at.run()
    assert any("+Count them again." in c.value for c in at.code)
    at.button(key=f"revert_{rid}_1").click().run()
    row = conn.execute("SELECT text, revision FROM rationales WHERE id = ?", (rid,)).fetchone()
    assert tuple(row) == (first[0]["text"], 2)
    assert [h["revision"] for h in curation.history(conn, rid)] == [1, 2]


def test_conflicting_save_keeps_the_draft_and_changes_nothing(home, conn):
    seeded(conn, questions=3)
    at = _app().run()
    rid = cots(conn)[0]["id"]
    at.toggle(key=f"edit_{rid}").set_value(True).run()
    at.text_area(key=f"text_{rid}").input("My draft.\nThe answer is 1.").run()
    # another session saves first
    curation.edit_cot(store.connect(home), rid, "Their fix.\nThe answer is 2.", expected_revision=0, author="bob")
    at.button(key=f"save_{rid}").click().run()
    assert any("changed by someone else" in e.value for e in at.error)
    assert at.text_area(key=f"text_{rid}").value == "My draft.\nThe answer is 1."
    assert conn.execute("SELECT text FROM rationales WHERE id = ?", (rid,)).fetchone()[0].startswith("Their fix.")
    at.button(key=f"keep_{rid}").click().run()
    at.button(key=f"save_{rid}").click().run()
    assert conn.execute("SELECT text FROM rationales WHERE id = ?", (rid,)).fetchone()[0].startswith("My draft.")
    assert [h["author"] for h in curation.history(conn, rid)] == ["bob", "human"]


def test_accept_and_bulk_reject_behind_a_confirmation(home, conn):
    seeded(conn, questions=10)
    at = _app().run()
    first_rid = queries.question_detail(conn, queries.question_at(conn, ReviewFilter(), 0))["cots"][0]["id"]
    at.text_input(key="act_reason").input("clean steps").run()
    at.button(key="act_accept").click().run()
    assert tuple(conn.execute("SELECT status, status_reason FROM rationales WHERE id = ?", (first_rid,))
                 .fetchone()) == ("accepted", "clean steps")

    at.selectbox(key="f_correct").set_value("no").run()
    n = queries.count(conn, ReviewFilter(correct="no"))["cots"]
    at.session_state["bulk_open"] = True  # unfold the bulk action (a click in the browser)
    at.run()
    at.selectbox(key="bulk_action").set_value("reject").run()
    at.text_input(key="bulk_reason").input("wrong final answer").run()
    at.button(key="bulk_review").click().run()
    assert any(f"**{n:,} CoTs**" in w.value for w in at.warning)
    assert queries.count(conn, ReviewFilter(status="rejected"))["cots"] == 0  # nothing before confirming
    at.button(key="bulk_confirm").click().run()
    assert not at.exception
    assert queries.count(conn, ReviewFilter(status="rejected"))["cots"] == n
    assert queries.count(conn, ReviewFilter(status="rejected", correct="yes"))["cots"] == 0
    assert any(f"{n:,} CoTs updated" in s.value for s in at.success)


def test_snapshot_section_creates_lists_and_diffs(home, conn):
    seeded(conn, questions=8)
    at = _app().run()
    at.radio(key="view").set_value("Snapshots").run()
    assert at.query_params["view"] == "snapshots"
    at.text_input(key="snap_name").input("mm-all").run()
    at.selectbox(key="snap_policy").set_value("all").run()
    at.button(key="snap_create").click().run()
    snap = snapshots.get_snapshot(conn, "mm-all")
    assert any(f"{snap['size']:,} items" in s.value for s in at.success)
    at.text_input(key="snap_name").input("rt-correct").run()
    at.selectbox(key="snap_policy").set_value("correct").run()
    at.button(key="snap_create").click().run()
    assert not at.exception
    assert list(at.dataframe[0].value["name"]) == ["rt-correct", "mm-all"]
    n_wrong = sum(r["correct"] == 0 for r in cots(conn))
    assert at.metric[0].value == f"{n_wrong:,}"  # only in mm-all
    at.button(key="snap_create").click().run()  # same name again: refused with a sentence
    assert any("already exists" in e.value for e in at.error)


def test_table_and_teacher_quality_views(home, conn):
    seeded(conn, questions=6)
    at = _app().run()
    at.radio(key="view").set_value("Teacher quality").run()
    assert not at.exception
    tq = at.dataframe[0].value
    assert set(tq["teacher"]) == {"fake", "local"}
    want = {t["teacher"]: round(t["accuracy"], 3) for t in queries.teacher_quality(conn)}
    assert dict(zip(tq["teacher"], tq["accuracy"])) == want
    at.radio(key="view").set_value("Table").run()
    assert len(at.dataframe[0].value) == len(cots(conn))
    at.radio(key="view").set_value("Question").run()
    # keyboard shortcuts are Streamlit's own button shortcuts (ignored while typing in a text field)
    shortcuts = {b.key: b.proto.shortcut for b in at.button if b.key in ("next", "prev", "act_accept",
                                                                         "act_reject", "act_flag")}
    assert shortcuts == {"next": "j", "prev": "k", "act_accept": "a", "act_reject": "x", "act_flag": "f"}


def test_selection_follows_the_filter_and_the_reason_clears(home, conn):
    seeded(conn, questions=10)
    at = _app().run()
    at.selectbox(key="f_correct").set_value("no").run()
    ex_id = queries.question_at(conn, ReviewFilter(correct="no"), 0)
    detail = queries.question_detail(conn, ex_id, ReviewFilter(correct="no"))
    first_match = next(k for k, c in enumerate(detail["cots"]) if c["matches"])
    assert at.radio(key="sel_cot").value == f"CoT {first_match + 1}"
    at.text_input(key="act_reason").input("wrong final answer").run()
    at.button(key="act_reject").click().run()
    rid = detail["cots"][first_match]["id"]
    assert tuple(conn.execute("SELECT status, status_reason FROM rationales WHERE id = ?", (rid,)).fetchone()) \
        == ("rejected", "wrong final answer")
    assert at.text_input(key="act_reason").value == ""
    assert any(s.value == f"CoT {first_match + 1} rejected — reason: wrong final answer." for s in at.success)
    at.button(key="next").click().run()
    at.button(key="act_accept").click().run()
    assert conn.execute("SELECT COUNT(*) FROM rationales WHERE status = 'accepted' AND status_reason IS NOT NULL"
                        ).fetchone()[0] == 0


def test_edit_marks_self_evaluations_stale_and_names_the_card(home, conn):
    seeded(conn, questions=3)
    at = _app().run()
    ex_id = queries.question_at(conn, ReviewFilter(), 0)
    cot = queries.question_detail(conn, ex_id)["cots"][1]
    rid, n_evals = cot["id"], len(cot["self_evals"])
    assert n_evals and cot["id"] > 1
    at.toggle(key=f"edit_{rid}").set_value(True).run()
    at.text_area(key=f"text_{rid}").input(f"Recounted.\nThe answer is {cot['parsed_answer']}.").run()
    at.button(key=f"save_{rid}").click().run()
    assert any(s.value.startswith("CoT 2 saved") and f"{n_evals} self-evaluations" in s.value for s in at.success)
    assert conn.execute("SELECT COUNT(*) FROM self_evals WHERE rationale_id = ? AND stale = 1", (rid,)).fetchone()[0] \
        == n_evals
    assert conn.execute("SELECT v_correct + v_wrong + v_uncertain FROM rationales WHERE id = ?", (rid,)).fetchone()[0] == 0
    assert "stale:" in _text(at)
    at.session_state[f"crit_{rid}"] = True  # unfold the critiques: each stale one is marked
    at.run()
    assert sum("stale: written about an earlier text" in m.value for m in at.markdown) == n_evals
    at.button(key=f"reeval_{rid}").click().run()  # seeded CoTs have no generate run: a sentence, not a crash
    assert any("cannot be re-evaluated" in e.value for e in at.error)
    at.session_state[f"hist_{rid}"] = True  # unfold the history
    at.run()
    at.button(key=f"revert_{rid}_1").click().run()  # back to the judged text: current again
    assert conn.execute("SELECT COUNT(*) FROM self_evals WHERE rationale_id = ? AND stale = 1", (rid,)).fetchone()[0] == 0


def test_teacher_quality_shows_calibration_and_labels_the_reference_evaluator(home, conn):
    seeded(conn, questions=6)
    rows = cots(conn)
    conn.executemany("INSERT INTO self_evals (rationale_id, evaluator, critique, verdict, confidence, created_at)"
                     " VALUES (?, 'reference', '', ?, 1.0, ?)",
                     [(r["id"], "correct" if r["correct"] else "wrong", store.now()) for r in rows])
    at = _app().run()
    at.radio(key="view").set_value("Teacher quality").run()
    tq = at.dataframe[0].value.set_index("teacher")
    assert tq.loc["reference (answer vs gold)", "ECE"] == 0.0
    assert tq.loc["reference (answer vs gold)", "AUROC"] == 1.0
    assert 0.0 < tq.loc["fake", "ECE"] < 1.0 and 0.5 < tq.loc["fake", "AUROC"] < 1.0
