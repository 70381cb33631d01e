"""Review's Question view: step through the filter's questions (J/K), see one question with its gold and
agreement, select a CoT and accept/reject/flag/reset it (A/X/F), with its CoTs as cards side by side.

Which CoT is selected follows the filter: a new question or filter starts at its first matching CoT, and
a CoT that an action moved out of the filter hands the selection to the next match unless the reviewer
picked it by hand.
"""

from __future__ import annotations

import sqlite3

import streamlit as st

from mirror_core.errors import MirrorError
from mirror_core.review import curation, queries
from mirror_core.review.filters import ReviewFilter
from mirror_core.ui.review_cards import cot_card, steps_md

PAST = {"accept": "accepted", "reject": "rejected", "flag": "flagged", "reset": "reset to active"}
ACTIONS = [("accept", "Accept", "A"), ("reject", "Reject", "X"), ("flag", "Flag", "F"), ("reset", "Reset", None)]


def _step(delta: int, n_questions: int) -> None:
    ss = st.session_state
    ss["pin_ex"] = None
    ss["qnum"] = min(max(1, ss.get("qnum", 1) + delta), max(1, n_questions))


def _navigation(db: sqlite3.Connection, f: ReviewFilter, n_questions: int) -> int | None:
    """Prev/Next and the question number; the question shown (a pinned one from the table wins)."""
    ss = st.session_state
    nav = st.columns([1, 1, 2, 4])
    nav[0].button("◀ Prev", key="prev", on_click=_step, args=(-1, n_questions), shortcut="K",
                  disabled=ss.get("qnum", 1) <= 1 and not ss.get("pin_ex"))
    nav[1].button("Next ▶", key="next", on_click=_step, args=(1, n_questions), shortcut="J",
                  disabled=ss.get("qnum", 1) >= n_questions)
    if ss.get("qnum", 1) > max(1, n_questions):
        ss["qnum"] = max(1, n_questions)
    nav[2].number_input("Question", min_value=1, max_value=max(1, n_questions), key="qnum",
                        label_visibility="collapsed", on_change=lambda: ss.update(pin_ex=None))
    ex_id = ss.get("pin_ex") or (queries.question_at(db, f, ss["qnum"] - 1) if n_questions else None)
    nav[3].caption(f"question {ss['qnum']:,} of {n_questions:,}" if not ss.get("pin_ex")
                   else f"question {ex_id} (opened from the table)")
    return ex_id


def _question(ex: dict, agr: dict) -> None:
    with st.container(border=True):
        st.caption(f"{ex['dataset']} · {ex['split']} · {ex['ext_id']} · {ex['task_type']}")
        st.markdown(steps_md(ex["question"]))
        if ex["choices"]:
            st.markdown("  \n".join(f"**{chr(65 + k)}.** {c}" for k, c in enumerate(ex["choices"])))
        st.markdown(f"Gold answer: **{ex['answer']}**")
    if agr["answered"]:
        share = f"{agr['majority_share']:.0%}"
        gold_mark = {True: ":green-badge[majority = gold]", False: ":red-badge[majority ≠ gold]",
                     None: ""}[agr["majority_matches_gold"]]
        teach = {True: ":green-badge[teachers agree]", False: ":orange-badge[teachers disagree]",
                 None: ""}[agr["teachers_agree"]]
        spread = ", ".join(f"{a} ×{n}" for a, n in agr["answers"].items())
        st.markdown(f"**Agreement** {share} on **{agr['majority']}** ({spread}) {gold_mark} {teach}")


def _act(db: sqlite3.Connection, action: str, rid: int, name: str) -> None:
    ss = st.session_state
    reason = (ss.get("act_reason") or "").strip()
    try:
        curation.set_status(db, rid, action, reason)
    except MirrorError as exc:
        ss["flash"] = ("error", str(exc))
        return
    ss["flash"] = ("success", f"{name} {PAST[action]}" + (f" — reason: {reason}" if reason else "") + ".")
    ss["act_reason"], ss["_sel_explicit"] = "", False  # a reason never carries over to the next action


def _selection(ex_id: int, f: ReviewFilter, cots: list[dict]) -> tuple[list[str], list[str]]:
    """The CoTs' labels and those in the filter; keeps session_state["sel_cot"] on a sensible one."""
    ss = st.session_state
    labels = [f"CoT {k + 1}" for k in range(len(cots))]
    matching = [lab for lab, c in zip(labels, cots) if c["matches"]]
    context = (ex_id, f)
    if ss.get("_sel_ctx") != context:  # another question or filter: start from its first match
        ss["_sel_ctx"], ss["_sel_explicit"], ss["act_reason"] = context, False, ""
        ss["sel_cot"] = (matching or labels)[0]
    elif ss.get("sel_cot") not in labels:
        ss["sel_cot"] = (matching or labels)[0]
    elif matching and ss["sel_cot"] not in matching and not ss.get("_sel_explicit"):
        ss["sel_cot"] = matching[0]  # the selected CoT left the filter (e.g. after an action)
    return labels, matching


def question_view(db: sqlite3.Connection, f: ReviewFilter, n_questions: int) -> None:
    """The Question view of the filter's n_questions questions."""
    ss = st.session_state
    ex_id = _navigation(db, f, n_questions)
    if ex_id is None:
        st.info("No question matches this filter. Loosen a filter or reset them in the sidebar.")
        return
    detail = queries.question_detail(db, ex_id, f)
    cots = detail["cots"]
    _question(detail["example"], detail["agreement"])
    if not cots:
        st.info("This question has no CoTs of this kind yet.")
        return
    labels, matching = _selection(ex_id, f, cots)
    bar = st.columns([3, 2.4, 1.3, 1.3, 1.1, 1.1])
    bar[0].radio("Selected CoT", labels, key="sel_cot", horizontal=True,
                 on_change=lambda: ss.update(_sel_explicit=True),
                 format_func=lambda lab: lab if lab in matching else f"{lab} (not in filter)")
    bar[1].text_input("Reason", key="act_reason", placeholder="reason (optional)", label_visibility="collapsed")
    sel = cots[labels.index(ss["sel_cot"])]
    for col, (action, text, key) in zip(bar[2:], ACTIONS):
        col.button(text, key=f"act_{action}", on_click=_act, args=(db, action, sel["id"], ss["sel_cot"]),
                   shortcut=key)
    per_row = min(3, len(cots))
    for start in range(0, len(cots), per_row):
        cols = st.columns(per_row)
        for k, cot in enumerate(cots[start:start + per_row]):
            with cols[k]:
                cot_card(db, start + k, cot, cot["id"] == sel["id"])
