"""Review's two table views: the filter's CoTs a page at a time (a row opens its question), and the
teachers' quality — accuracy against the gold, how their self-evaluations match the truth, ECE and AUROC."""

from __future__ import annotations

import sqlite3

import pandas as pd
import streamlit as st

from mirror_core.evaluation.metrics import metric
from mirror_core.generation.reference import EVALUATOR as REFERENCE
from mirror_core.review import queries
from mirror_core.review.filters import ReviewFilter

PAGE_SIZE = 50


def _open_question(ex_id: int) -> None:
    st.session_state["pin_ex"], st.session_state["view"] = ex_id, "Question"


def cot_table(db: sqlite3.Connection, f: ReviewFilter, n_cots: int, search_error: str | None) -> None:
    """The Table view: PAGE_SIZE CoTs a page; selecting a row offers to open its question."""
    ss = st.session_state
    pages = max(1, -(-n_cots // PAGE_SIZE))
    ss["tpage"] = min(ss.get("tpage", 1), pages)
    t1, t2 = st.columns([1, 5])
    t1.number_input("Page", min_value=1, max_value=pages, key="tpage")
    t2.caption(f"page {ss['tpage']} of {pages} · {PAGE_SIZE} CoTs per page")
    rows = queries.cot_rows(db, f, offset=(ss["tpage"] - 1) * PAGE_SIZE, limit=PAGE_SIZE) if not search_error else []
    if not rows:
        st.info("No CoT matches this filter.")
        return
    df = pd.DataFrame([{
        "question": r["example_id"], "split": r["split"], "teacher": r["teacher"],
        "answer": r["parsed_answer"], "gold": r["gold"],
        "correct": {1: "✓", 0: "✗"}.get(r["correct"], "?"),
        "verdicts": f"✓{r['v_correct']} ✗{r['v_wrong']} ?{r['v_uncertain']}",
        "status": r["status"], "rev": r["revision"], "CoT": r["cot"].replace("\n", " ⏎ "),
        "text": r["question"]} for r in rows])
    event = st.dataframe(df, hide_index=True, width="stretch", on_select="rerun",
                         selection_mode="single-row", key="table_sel")
    chosen = event.selection.rows if event and event.selection else []
    if chosen:
        ex_id = int(df.iloc[chosen[0]]["question"])
        st.button(f"Open question {ex_id}", key="open_q", on_click=_open_question, args=(ex_id,), type="primary")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def teacher_quality(db: sqlite3.Connection, f: ReviewFilter) -> None:
    """The Teacher quality view: one row per teacher (and the reference), then each one's verdict × truth."""
    st.caption("Accuracy of each teacher's CoTs against the gold, and how often its self-evaluation verdicts "
               "match the truth about the CoT they judge (counted per evaluator). ECE and AUROC: how well the "
               "self-evaluation's P(correct) is calibrated against the gold and separates right CoTs from wrong "
               "ones. The reference evaluator compares each answer with the gold: calibrated by construction, "
               "not a teacher's judgment. Stale self-evaluations (of an earlier text) are left out.")
    tq = queries.teacher_quality(db, f.dataset, f.kind)
    if not tq:
        st.info("No CoTs yet.")
        return
    st.dataframe(pd.DataFrame([{
        "teacher": ("reference (answer vs gold)" if t["teacher"] == REFERENCE else t["teacher"]),
        "CoTs": t["cots"], "accuracy": _round(t["accuracy"]),
        "no answer": t["parse_errors"], "self-evals": t["self_evals"],
        "verdict matches truth": _round(t["verdict_accuracy"]),
        "says correct on wrong": t["confusion"]["correct"]["wrong"],
        "says wrong on right": t["confusion"]["wrong"]["right"],
        **{metric(k).label: _round(t[k]) for k in ("ece", "auroc")}} for t in tq]),
        hide_index=True, width="stretch", key="tq_table")
    cols = st.columns(min(3, len(tq)))
    for k, t in enumerate(tq):
        with cols[k % len(cols)]:
            st.markdown(f"**{t['teacher']}**: verdict × truth")
            st.dataframe(pd.DataFrame({v: {"CoT right": c["right"], "CoT wrong": c["wrong"]}
                                       for v, c in t["confusion"].items()}), width="stretch")
