"""Review's CoT card: one CoT with its answer, grade, self-evaluations, peer reviews, editor and history.

Also the markdown helpers the cards and the question share (steps, verdict chips, badges). Edits,
reverts and re-evaluation go through mirror_core.review.curation; a callback reports its outcome in
session_state["flash"], which the page shows on the next run.
"""

from __future__ import annotations

import re
import sqlite3

import streamlit as st

from mirror_core.errors import ConflictError, MirrorError
from mirror_core.generation.reference import EVALUATOR as REFERENCE
from mirror_core.review import curation
from mirror_core.ui import lazy

VERDICT_COLOR = {"correct": "green", "wrong": "red", "uncertain": "orange", None: "gray"}
STATUS_BADGE = {"active": "", "accepted": ":green-badge[accepted]", "rejected": ":red-badge[rejected]",
                "flagged": ":orange-badge[flagged]"}


def steps_md(text: str) -> str:
    """CoT text as markdown: one step per line, math kept, currency and markdown syntax defused."""
    t = text.replace("\\(", "$").replace("\\)", "$").replace("\\[", "$$").replace("\\]", "$$")
    t = re.sub(r"(?<!\$)\$(?=\s?\d)", r"\\$", t)  # "$5" is money, not math
    t = re.sub(r"(?m)^(\s*)#", r"\1\\#", t)  # "#### 18" is an answer, not a heading
    t = t.replace("*", "\\*").replace("_", "\\_")
    return "  \n".join(t.splitlines())


def verdict_chips(evals, truth) -> str:
    """One badge per self-evaluation; ⚠ where the verdict contradicts the gold, grey where it is stale."""
    chips = []
    for s in evals:
        v = s["verdict"]
        if s.get("stale"):
            chips.append(f":gray-badge[stale: {v or 'unparsed'}]")
            continue
        conf = f" {s['confidence']:.2f}" if s["confidence"] is not None else ""
        clash = (v == "correct" and truth == 0) or (v == "wrong" and truth == 1)
        chips.append(f":{VERDICT_COLOR.get(v, 'gray')}-badge[{'⚠ ' if clash else ''}{v or 'unparsed'}{conf}]")
    return " ".join(chips) if chips else ":gray-badge[no self-evaluation]"


def correctness_badge(cot) -> str:
    if cot["parse_status"] == "parse_error" or cot["parsed_answer"] is None:
        return ":gray-badge[no answer found]"
    return {1: ":green-badge[✓ correct]", 0: ":red-badge[✗ wrong]"}.get(cot["correct"], ":gray-badge[not graded]")


def evaluator_label(evaluator: str) -> str:
    if evaluator == REFERENCE:
        return "reference (answer vs gold, not a teacher)"
    return f"`{evaluator}`"


def _run_action(func, *args, **kwargs):
    try:
        func(*args, **kwargs)
    except MirrorError as exc:
        st.session_state["flash"] = ("error", str(exc))


def _drop_draft(rid: int) -> None:
    for k in (f"base_{rid}", f"text_{rid}", f"conflict_{rid}"):
        st.session_state.pop(k, None)


def _save_edit(db: sqlite3.Connection, rid: int, name: str) -> None:
    ss = st.session_state
    try:
        curation.edit_cot(db, rid, ss[f"text_{rid}"], expected_revision=ss[f"base_{rid}"])
    except ConflictError as exc:
        ss[f"conflict_{rid}"] = str(exc)  # the typed text stays in the text area: nothing is lost
        return
    except MirrorError as exc:
        ss["flash"] = ("error", str(exc))
        return
    stale = curation.stale_count(db, rid)
    ss["flash"] = ("success", f"{name} saved; answer re-parsed and graded."
                   + (f" {stale} self-evaluation{'s' if stale != 1 else ''} of its earlier text marked stale."
                      if stale else ""))
    _drop_draft(rid)
    ss[f"edit_{rid}"] = False


def _reevaluate(db: sqlite3.Connection, rid: int, name: str) -> None:
    try:
        run_id = curation.reevaluate(db, rid, label=name)
    except MirrorError as exc:
        st.session_state["flash"] = ("error", str(exc))
    else:
        st.session_state["flash"] = ("success", f"Re-evaluating {name}: generate run {run_id} queued "
                                                "(see the Generate page).")


def _keep_mine(rid: int, revision: int) -> None:
    st.session_state[f"base_{rid}"] = revision  # the next save deliberately replaces theirs (it stays in history)
    st.session_state.pop(f"conflict_{rid}", None)


def _critiques(cot) -> None:
    """Each self-evaluation's verdict, evaluator, confidence and critique, drawn only while unfolded: a
    question's cards hold a dozen of them, and the verdict chips above already show every verdict."""
    box = lazy.expander(f"Critiques ({len(cot['self_evals'])})", key=f"crit_{cot['id']}")
    if box is None:
        return
    with box:
        for s in cot["self_evals"]:
            st.markdown(f"**{s['verdict'] or 'unparsed'}** · {evaluator_label(s['evaluator'])}"
                        + (f" · confidence {s['confidence']:.2f}" if s["confidence"] is not None else "")
                        + (" · :gray-badge[stale: written about an earlier text]" if s.get("stale") else ""))
            if s["critique"]:
                st.markdown(steps_md(s["critique"]))
            elif s["evaluator"] == REFERENCE:
                st.caption("No critique: the verdict compares the CoT's answer with the gold answer.")


def _editor(db: sqlite3.Connection, i: int, cot) -> None:
    """The Edit toggle: a draft kept in the session, saved against the revision it started from."""
    ss, rid = st.session_state, cot["id"]
    if not st.toggle("Edit", key=f"edit_{rid}"):
        _drop_draft(rid)  # closing the editor discards the draft; the next edit starts from the current revision
        return
    ss.setdefault(f"base_{rid}", cot["revision"])
    if f"text_{rid}" not in ss:
        ss[f"text_{rid}"] = cot["text"]
    st.text_area("CoT text", key=f"text_{rid}", height=220)
    conflict = ss.get(f"conflict_{rid}")
    if conflict:
        st.error(conflict)
        st.code(curation.diff(ss[f"text_{rid}"], cot["text"], old_label="yours (unsaved)",
                              new_label=f"theirs (rev {cot['revision']})") or "(same text)", language="diff")
        st.button("Keep mine over theirs", key=f"keep_{rid}", on_click=_keep_mine, args=(rid, cot["revision"]))
    st.button("Save", key=f"save_{rid}", type="primary", on_click=_save_edit, args=(db, rid, f"CoT {i + 1}"))


def _history(db: sqlite3.Connection, cot) -> None:
    rid = cot["id"]
    hist = curation.history(db, rid) if cot["revision"] else []
    if not hist:
        return
    box = lazy.expander(f"History ({len(hist)} edits)", key=f"hist_{rid}")
    if box is None:
        return
    with box:
        for h in reversed(hist):
            st.markdown(f"**rev {h['revision']}** · {h['author']} · {h['created_at'][:19].replace('T', ' ')}")
            st.code(curation.diff(h["old_text"], h["new_text"], old_label=f"rev {h['revision'] - 1}",
                                  new_label=f"rev {h['revision']}"), language="diff")
            st.button(f"Revert to rev {h['revision'] - 1}", key=f"revert_{rid}_{h['revision']}",
                      on_click=_run_action, args=(curation.revert, db, rid, h["revision"] - 1),
                      kwargs={"expected_revision": cot["revision"]})


def cot_card(db: sqlite3.Connection, i: int, cot: dict, selected: bool) -> None:
    """CoT number i + 1 of its question in a bordered card; ▶ marks the selected one."""
    rid = cot["id"]
    with st.container(border=True):
        edited = f" · ✏️ rev {cot['revision']}" if cot["revision"] else ""
        st.markdown(f"{'▶ ' if selected else ''}**CoT {i + 1}** · `{cot['author']}` #{cot['sample_index']}"
                    f"{edited} {STATUS_BADGE[cot['status']]}")
        if cot["status_reason"]:
            st.caption(f"{cot['status']}: {cot['status_reason']}")
        st.markdown(f"Answer **{cot['parsed_answer'] if cot['parsed_answer'] is not None else '—'}** "
                    f"{correctness_badge(cot)}")
        if not cot["matches"]:
            st.caption("not in the current filter")
        st.markdown(steps_md(cot["text"]))
        st.markdown(verdict_chips(cot["self_evals"], cot["correct"]))
        if cot["self_evals"]:
            _critiques(cot)
        n_stale = sum(1 for s in cot["self_evals"] if s.get("stale"))
        if n_stale:
            st.caption(f"{n_stale} self-evaluation{'s' if n_stale != 1 else ''} judged an earlier text of this CoT "
                       "(stale: not counted in the verdict filters).")
            st.button("Re-evaluate", key=f"reeval_{rid}", on_click=_reevaluate, args=(db, rid, f"CoT {i + 1}"),
                      help="Queue the generation run that wrote this CoT again: cached CoTs cost nothing, "
                           "edited CoTs get new self-evaluations of their current text.")
        if cot["reviews"]:
            st.markdown("Peer review: " + " · ".join(
                f"{'★' * (r['score'] or 0)}{'☆' * (5 - (r['score'] or 0))} `{r['reviewer']}`"
                for r in cot["reviews"]))
            notes = lazy.expander("Review notes", key=f"notes_{rid}")
            for r in cot["reviews"] if notes else []:
                notes.markdown(f"`{r['reviewer']}` ({r['score']}/5): {r['text'] or ''}")
        _editor(db, i, cot)
        _history(db, cot)
