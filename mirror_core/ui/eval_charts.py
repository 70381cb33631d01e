"""Evaluate's charts: the method comparison `python -m mirror_core experiment` wrote (its table and
plots, read from the store), and the chosen runs side by side — accuracy, reliability, abstention and
training loss — with the question-by-question comparison of two runs, each in a tab drawn only while it is
selected. The figures are built by mirror_core.evaluation.plots."""

from __future__ import annotations

import sqlite3
from typing import Callable

import pandas as pd
import streamlit as st

from mirror_core.evaluation import compare, plots
from mirror_core.ui import charts, lazy
from mirror_core.ui.eval_diff import example_diff


def experiments(conn: sqlite3.Connection) -> None:
    """The latest run of each experiment: pick one, see its table and plots (nothing when none ran)."""
    from mirror_core.evaluation import experiment  # only this section needs it

    exps = {e["latest"]: e for e in experiment.find_experiments(conn)}
    if not exps:
        return
    st.subheader("Method comparison")
    pick = st.selectbox("Experiment", list(exps), format_func=lambda i: exps[i]["label"], key="ev_exp")
    view = experiment.experiment_view(conn, exps[pick]["eval_ids"])
    st.dataframe(pd.DataFrame(view["shown"]), hide_index=True, width="stretch", key="ev_exp_table")
    st.caption("The table `python -m mirror_core experiment` writes (table.md): the same snapshot, student, steps "
               "and seed for every method; accuracy with its 95% bootstrap interval. Differences inside the "
               "intervals are no evidence that one method beats another.")
    _chart_tabs("ev_exp", view["plot_rows"], view["calibration"], lambda: view["losses"],
                live=charts.interactive(st, key="ev_exp_interactive"))


def _choose(by_id: dict[int, dict]) -> list[int]:
    """Runs to plot: the first three at first; an eval launched on this page joins once it has finished."""
    ss = st.session_state
    new = [i for i in ss.get("ev_follow", []) if i in by_id]
    if new:
        base = ss.get("ev_chosen", list(by_id)[:3])
        ss["ev_chosen"] = [i for i in base if i in by_id] + [i for i in new if i not in base]
        ss["ev_follow"] = [i for i in ss["ev_follow"] if i not in by_id]
    return st.multiselect("Runs to plot", list(by_id), default=None if "ev_chosen" in ss else list(by_id)[:3],
                          format_func=lambda i: plots.label(by_id[i]), key="ev_chosen")


def run_charts(conn: sqlite3.Connection, by_id: dict[int, dict]) -> None:
    """The chosen finished runs' charts (calibration only for students trained on verdicts), and the
    question-by-question comparison of two runs in a tab of its own."""
    chosen = _choose(by_id)
    live = charts.interactive(st, key="fig_interactive")
    results = {plots.label(by_id[i]): res for i, res in compare.results_of(conn, chosen).items()}
    trained = {plots.label(by_id[i]) for i in chosen if by_id[i]["ece"] != plots.NOT_SELF_EVAL}
    untrained = [plots.label(by_id[i]) for i in chosen if by_id[i]["ece"] == plots.NOT_SELF_EVAL]
    note = (f"{', '.join(untrained)}: {plots.NOT_SELF_EVAL} (no verdict task in training), so no calibration is "
            "shown for it.") if untrained else ""
    tabs = lazy.tabs(TABS + [DIFF_TAB], key="fig_tab")
    if chosen:
        _chart_tabs("fig", [by_id[i] for i in chosen],
                    {k: v for k, v in results.items() if k in trained},
                    lambda: {plots.label(by_id[i]): plots.loss_series(conn, by_id[i]["train_run"]) for i in chosen
                             if by_id[i]["train_run"]}, note, tabs=tabs[:len(TABS)], live=live)
    else:
        for tab in tabs[:len(TABS)]:
            if tab:
                tab.caption("Choose runs to plot above.")
    if tabs[-1] is None:
        return
    with tabs[-1]:
        if len(by_id) < 2:
            st.caption("Evaluate a second run to compare them question by question.")
        else:
            example_diff(conn, by_id)


TABS = ["Accuracy and calibration", "Abstention", "Training loss"]
DIFF_TAB = "Which questions changed"


def _chart_tabs(key: str, rows: list[dict], calibration: dict[str, dict], losses: Callable[[], dict], note: str = "",
                tabs: list | None = None, live: bool = False) -> None:
    """Accuracy (of the runs-table `rows`) beside the reliability of self-evaluation, then abstention and the
    training loss, each in a tab drawn only while selected (lazy.tabs): five charts at once cost a page load
    ≈ 1 s here. `losses` is read only when its tab is open. `tabs`: the three tabs, when the caller made them
    (with more tabs). `live`: interactive charts rather than static drawings (charts.interactive)."""
    first, abstention, loss = tabs or lazy.tabs(TABS, key=f"{key}_tab")
    # what the figures read, and no more: it is the key of their cached drawings (charts.build)
    calibration = {name: {k: res.get(k) for k in ("ece", "reliability", "abstention")}
                   for name, res in calibration.items()}
    if first:
        left, right = first.columns(2)
        charts.build(left, plots.accuracy_bars, rows, key=f"{key}_acc", live=live, width=charts.HALF)
        charts.build(right, plots.reliability_figure, calibration, key=f"{key}_rel", live=live, width=charts.HALF)
        if note:
            right.caption(note)
    if abstention:
        charts.build(abstention, plots.abstention_figure, calibration, key=f"{key}_abst", live=live)
        if note:
            abstention.caption(note)
    if loss:
        series = losses()
        if any(series.values()):
            log_y = loss.checkbox("Log scale", key=f"{key}_loss_log")
            charts.build(loss, plots.loss_panels, series, log_y, key=f"{key}_loss", live=live)
            charts.loss_caption(loss, live)
        else:
            loss.caption("The chosen runs' training logged no loss metrics.")
