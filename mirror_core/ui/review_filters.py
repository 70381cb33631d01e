"""Review's filter on screen: its state in the session and the URL, the facet counts every session shares,
the sidebar of filters with counts, and the bulk action over everything the filter matches.

The filter lives in the URL so a view can be shared and survives a reload; the widgets' keys (f_*) are
the session's copy of it. Queries and edits stay in mirror_core.review (queries, curation).
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import streamlit as st

from mirror_core import config, store
from mirror_core.data.queries import dataset_names
from mirror_core.errors import MirrorError
from mirror_core.review import curation, queries
from mirror_core.review.filters import CHOICES, LABELS, ReviewFilter
from mirror_core.ui import lazy

VIEWS = ["Question", "Table", "Teacher quality", "Snapshots"]
# widget key -> ReviewFilter field
FIELDS = {"f_dataset": "dataset", "f_split": "split", "f_teacher": "teacher", "f_correct": "correct",
          "f_verdict": "verdict", "f_vvg": "verdict_vs_gold", "f_disagree": "cots_disagree",
          "f_edited": "edited", "f_status": "status", "f_q": "q", "f_sort": "sort"}


def session_conn() -> sqlite3.Connection:
    """One connection per browser session (and per project home: a test may switch homes)."""
    ss, url = st.session_state, config.database_url()
    if ss.get("_review_url") != url:
        ss["_review_conn"], ss["_review_url"] = store.connect(), url
    return ss["_review_conn"]


def _view_slug(view: str) -> str:
    return view.lower().replace(" ", "_")


def init_from_url() -> None:
    """On a session's first run, set the filter, view, question and pinned question from the URL."""
    ss = st.session_state
    if "_review_init" in ss:
        return
    problems: list[str] = []
    f0 = ReviewFilter.from_params(st.query_params.to_dict(), problems)
    for key, name in FIELDS.items():
        value = getattr(f0, name)
        ss[key] = value if isinstance(value, bool) else (value or "")
    view = st.query_params.get("view", "question")
    ss["view"] = next((v for v in VIEWS if _view_slug(v) == view), "Question")
    try:
        ss["qnum"] = max(1, int(st.query_params.get("i", "1")))
    except ValueError:
        ss["qnum"] = 1
    ex = st.query_params.get("ex")
    ss["pin_ex"] = int(ex) if ex and ex.isdigit() else None
    ss["_review_problems"] = problems
    ss["_review_init"] = True


def current_filter() -> ReviewFilter:
    """The filter the sidebar widgets hold; a new filter starts at its first question."""
    ss = st.session_state
    values = {name: (ss.get(key) if isinstance(ss.get(key), bool) else (ss.get(key) or None))
              for key, name in FIELDS.items()}
    values["q"] = ss.get("f_q") or ""
    values["sort"] = ss.get("f_sort") or "question"
    f = ReviewFilter(**values)
    if ss.get("_review_prev") != f:
        if "_review_prev" in ss:
            ss["qnum"], ss["pin_ex"], ss["tpage"] = 1, None, 1
        ss["_review_prev"] = f
    return f


def sync_url(f: ReviewFilter) -> None:
    """Write the filter, view, question number and pinned question back to the URL (only when changed)."""
    ss = st.session_state
    params = f.to_params()
    view = ss.get("view", "Question")
    if view != "Question":
        params["view"] = _view_slug(view)
    if ss.get("qnum", 1) > 1:
        params["i"] = str(ss["qnum"])
    if ss.get("pin_ex"):
        params["ex"] = str(ss["pin_ex"])
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)


@st.cache_resource(show_spinner=False)
def shared_counts(url: str) -> tuple:
    """One read connection, count cache and lock per project home, shared by every browser session.

    The facet cube scans every CoT (seconds on 100k); a new tab or a reload is a new session, so a
    per-session cache paid that scan on every page load. The cache is keyed on this connection's
    PRAGMA data_version, which moves whenever any connection commits, so an edit anywhere refreshes it."""
    return store.connect(), {}, threading.Lock()


def facet_counts(f: ReviewFilter) -> tuple[dict[str, Any], str | None]:
    """The filter's counts per facet option, and the search error if its text search does not parse
    (then the counts leave the search out)."""
    shared_db, cache, cache_lock = shared_counts(config.database_url())
    with cache_lock:  # one session fills the cache while the others wait for it rather than scan too
        try:
            # Each option's count is what picking it would give with the other filters kept.
            return queries.facet_counts(shared_db, f, cache), None
        except MirrorError as exc:
            return queries.facet_counts(shared_db, f.replace(q=""), cache), str(exc)


def _opts(values) -> list:
    return [""] + list(values)


def _label(facets: dict, name: str, facet_key: str):
    def fmt(value):
        if value == "":
            return "any"
        text = LABELS.get(name, {}).get(value, value)
        n = facets[facet_key].get(value, 0)
        return f"{text} ({n:,})"
    return fmt


def _reset_filters() -> None:
    for key in FIELDS:
        st.session_state[key] = False if key in ("f_vvg", "f_disagree") else ("question" if key == "f_sort" else "")


def sidebar(db: sqlite3.Connection, f: ReviewFilter, facets: dict) -> None:
    """The filter widgets, each option labelled with its count, and Reset."""
    ss = st.session_state
    with st.sidebar:
        st.header("Filters")
        st.text_input("Search questions, CoTs, critiques", key="f_q", placeholder='e.g. marbles "final step"',
                      help="Full-text search (words are ANDed; \"quoted phrase\"; prefix*).")
        names = dataset_names(db)
        if ss.get("f_dataset") and ss["f_dataset"] not in names:
            names.append(ss["f_dataset"])
        st.selectbox("Dataset", _opts(names), key="f_dataset", format_func=lambda v: v or "all datasets")
        st.selectbox("Split", _opts(CHOICES["split"]), key="f_split", format_func=_label(facets, "split", "by_split"))
        teachers = queries.teachers(db, f.kind)
        if ss.get("f_teacher") and ss["f_teacher"] not in teachers:
            teachers.append(ss["f_teacher"])
        st.selectbox("Teacher", _opts(teachers), key="f_teacher",
                     format_func=_label(facets, "teacher", "by_teacher"))
        st.selectbox("Answer vs gold", _opts(CHOICES["correct"]), key="f_correct",
                     format_func=_label(facets, "correct", "correct"))
        st.selectbox("Self-evaluation", _opts(CHOICES["verdict"]), key="f_verdict",
                     format_func=_label(facets, "verdict", "verdict"))
        st.checkbox(f"Verdict contradicts gold ({facets['verdict_vs_gold']:,})", key="f_vvg",
                    help="A self-evaluation says 'correct' on a wrong CoT, or 'wrong' on a right one.")
        st.checkbox(f"CoTs of the question disagree ({facets['cots_disagree']:,})", key="f_disagree",
                    help="The question's CoTs reach different answers.")
        st.selectbox("Edited", _opts(CHOICES["edited"]), key="f_edited", format_func=_label(facets, "edited", "edited"))
        st.selectbox("Status", _opts(CHOICES["status"]), key="f_status",
                     format_func=_label(facets, "status", "by_status"))
        st.selectbox("Sort", CHOICES["sort"], key="f_sort", format_func=lambda v: LABELS["sort"][v])
        st.button("Reset filters", on_click=_reset_filters, key="reset_filters", disabled=f.is_default())
        st.caption("Keys: **J** next · **K** previous · **A** accept · **X** reject · **F** flag the selected CoT.")


def _bulk_review(db: sqlite3.Connection, f: ReviewFilter) -> None:
    ss = st.session_state
    ss["bulk_pending"] = {"action": ss["bulk_action"], "reason": ss.get("bulk_reason", ""),
                          "count": curation.bulk_count(db, f), "filter": f}


def _bulk_confirm(db: sqlite3.Connection) -> None:
    ss = st.session_state
    p = ss.pop("bulk_pending")
    try:
        n = curation.bulk_set_status(db, p["filter"], p["action"], p["reason"], expected_count=p["count"])
        ss["flash"] = ("success", f"{p['action']}: {n:,} CoTs updated.")
        ss["bulk_reason"] = ""
    except MirrorError as exc:
        ss["flash"] = ("error", str(exc))


def bulk_action(db: sqlite3.Connection, f: ReviewFilter, n_cots: int) -> None:
    """Accept/reject/flag/reset every CoT of the filter, after a confirmation that names the count."""
    ss = st.session_state
    lazy.keep(ss, ["bulk_action", "bulk_reason"])  # drawn only while unfolded; what was typed survives folding
    box = lazy.expander(f"Bulk action on the {n_cots:,} CoTs of this filter", key="bulk_open")
    if box is None:
        return
    with box:
        b1, b2, b3 = st.columns([1, 2, 1])
        b1.selectbox("Action", list(curation.ACTIONS), key="bulk_action")
        b2.text_input("Reason", key="bulk_reason", placeholder="e.g. wrong final answer")
        b3.button("Review…", key="bulk_review", on_click=_bulk_review, args=(db, f), disabled=n_cots == 0)
        pending = ss.get("bulk_pending")
        if pending and pending["filter"] != f:  # the confirmation was for another filter
            ss.pop("bulk_pending")
            pending = None
        if pending:
            st.warning(f"This will **{pending['action']}** **{pending['count']:,} CoTs** matching: {f.describe()}"
                       + (f" — reason: {pending['reason']}" if pending["reason"] else ""))
            c1, c2 = st.columns(2)
            c1.button(f"Confirm: {pending['action']} {pending['count']:,} CoTs", key="bulk_confirm",
                      type="primary", on_click=_bulk_confirm, args=(db,))
            c2.button("Cancel", key="bulk_cancel", on_click=lambda: ss.pop("bulk_pending", None))


def show_flash() -> None:
    """The message an action's callback left for this run (success or error), shown once."""
    flash = st.session_state.pop("flash", None)
    if flash:
        getattr(st, flash[0])(flash[1])
