"""Sections drawn only while they are open: a folded expander or an unselected tab sends nothing to the browser.

Streamlit draws a folded expander's and a hidden tab's content all the same, and on these 2 cores every
chart, table and widget a page sends costs its load time whether or not anyone looks at it
(bench/page_load_bench.py). With `on_change="rerun"` the open state is a widget of its own: opening reruns
the page, which then draws the content.

A widget that is not drawn loses its value at the end of the run, so a form in a folded section would
forget what was typed when it folds. `keep` carries such values over (re-assigning a widget's own value
is Streamlit's way to keep it when the widget is not drawn).
"""

from __future__ import annotations

from typing import Any, Iterable


def keep(state: Any, keys: Iterable[str] = (), prefixes: tuple[str, ...] = ()) -> None:
    """Keep these widget values (and those whose key starts with a prefix) across runs that do not draw them."""
    names = set(keys)
    for k in list(state.keys()):
        if k in names or (prefixes and str(k).startswith(prefixes)):
            state[k] = state[k]


def expander(label: str, *, key: str, expanded: bool = False):
    """An expander whose content is drawn only while it is open: the container, or None when folded.

    Its open state belongs to its label and `expanded` as well as its key: a run that changes either
    starts it again (folded, or as `expanded` says)."""
    import streamlit as st

    box = st.expander(label, expanded=expanded, key=key, on_change="rerun")
    return box if box.open else None


def tabs(labels: list[str], *, key: str) -> list:
    """Tabs of which only the selected one is drawn: one container per label, None for each hidden tab."""
    import streamlit as st

    return [t if t.open else None for t in st.tabs(labels, key=key, on_change="rerun")]
