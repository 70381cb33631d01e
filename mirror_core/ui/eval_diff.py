"""Evaluate's question-by-question comparison of two runs: counts per category (fixed, broken, ...), the
questions of one category with links to their teacher CoTs on Review, and the whole comparison as CSV.
The comparison itself is mirror_core.evaluation.compare.example_diff."""

from __future__ import annotations

import sqlite3

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from mirror_core.errors import MirrorError
from mirror_core.evaluation import compare, plots

COLUMNS = ["example", "review", "question", "gold", "A", "B", "A conf", "B conf", "teacher CoTs"]


def _review_links(picked: list[dict]) -> None:
    for r in picked[:5]:
        label = f"Example {r['example_id']} on the Review page (its teacher CoTs)"
        try:
            st.page_link("pages/3_Review.py", label=label, query_params={"ex": str(r["example_id"])}, icon="🔎")
        except StreamlitAPIException:  # the page run on its own (not under app.py) has no page registry
            st.markdown(f"🔎 [{label}](/Review?ex={r['example_id']})")


def example_diff(conn: sqlite3.Connection, by_id: dict[int, dict]) -> None:
    """Pick run A and run B among the finished ones (at least two) and see which questions changed."""
    ids = list(by_id)
    c1, c2 = st.columns(2)
    a = c1.selectbox("From run (A)", ids, index=1, format_func=lambda i: plots.label(by_id[i]), key="ev_a")
    b = c2.selectbox("To run (B)", ids, index=0, format_func=lambda i: plots.label(by_id[i]), key="ev_b")
    try:
        rows = compare.example_diff(conn, a, b)
    except MirrorError as exc:
        st.error(str(exc))
        return
    for col, (name, n) in zip(st.columns(4), compare.diff_counts(rows).items()):
        col.metric(name, n)
    show = st.radio("Show", list(compare.CATEGORIES), horizontal=True, key="ev_show")
    picked = [r for r in rows if r["category"] == show]
    df = pd.DataFrame([{"example": r["example_id"], "review": f"/Review?ex={r['example_id']}",
                        "question": r["question"], "gold": r["gold"], "A": r["a_answer"], "B": r["b_answer"],
                        "A conf": r["a_confidence"], "B conf": r["b_confidence"],
                        "teacher CoTs": " ".join(map(str, r["rationale_ids"]))} for r in picked], columns=COLUMNS)
    st.dataframe(df, hide_index=True, width="stretch", key="ev_diff",
                 column_config={"review": st.column_config.LinkColumn("Review", display_text="open")})
    _review_links(picked)
    st.download_button("Download this comparison (CSV)", pd.DataFrame(rows).to_csv(index=False),
                       file_name=f"compare-{a}-{b}.csv", mime="text/csv", key="ev_csv")
