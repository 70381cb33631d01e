"""Evaluate's runs: the form that evaluates a finished train run in the background, the live status of
evaluations while they run, and the runs table (calibration columns say why a run has none) with
Clone this run. The eval stage's face (evaluation.job.submit) validates what the form sends, as the CLI's
eval does.
"""

from __future__ import annotations

import sqlite3

import pandas as pd
import streamlit as st

from mirror_core import jobs, store
from mirror_core.errors import MirrorError
from mirror_core.evaluation import compare, plots
from mirror_core.evaluation import job as eval_job
from mirror_core.evaluation.metrics import CALIBRATION, metric
from mirror_core.ui import lazy, progress, settings

FORM = ["ev_train", "ev_split", "ev_limit", "ev_samples"]
COLUMNS = ["eval_run", "status", "method", "student", "snapshot", "split", "n", "accuracy", "accuracy_lo",
           "accuracy_hi", "ece", "brier", "auroc", "majority_accuracy", "weighted_accuracy", "teacher_cost_usd",
           "train_seconds"]


def launch_form(conn: sqlite3.Connection) -> None:
    """Evaluate a trained student: train run, split, how many examples and sampled CoTs; queue it. Folded
    (and not drawn: lazy.expander) once evaluations exist, as Train's form is; unfolded when there is none yet,
    decided once per session so that launching the first one does not fold it away."""
    ss = st.session_state
    ready = compare.train_runs_ready(conn)
    settings.restore(ss, "evaluate")  # a new tab starts from the last launch's settings
    ss.update(ss.pop("_ev_clone", {}))  # "Clone this run" below, applied before the widgets
    settings.keep_valid(ss, "ev_train", [r["id"] for r in ready])  # a train run deleted since
    lazy.keep(ss, FORM)  # what was typed survives folding the form away
    first_open = ss.setdefault("_ev_form_first_open", not jobs.list_runs(conn, "eval"))
    box = lazy.expander("Evaluate a trained student", key="ev_form_open", expanded=first_open)
    if box is None:
        return
    with box:
        _launch_fields(conn, ready)


def _launch_fields(conn: sqlite3.Connection, ready: list) -> None:
    ss = st.session_state
    if not ready:
        st.info("No finished train run yet. Train a student first; its evaluation starts here.")
        return
    c1, c2, c3, c4 = st.columns([3, 1, 1, 1])
    ready_by_id = {r["id"]: r for r in ready}
    pick = ready_by_id[c1.selectbox("Train run", list(ready_by_id), key="ev_train", format_func=lambda i: (
        f"#{i} {ready_by_id[i]['name'] or ''} — {ready_by_id[i]['method']} ({ready_by_id[i]['student']})"))]
    split = c2.selectbox("Split", ["test", "dev"], key="ev_split", help="Select models on dev; report on test.")
    limit = c3.number_input("Examples (0 = all)", min_value=0, value=0, step=50, key="ev_limit")
    samples = c4.number_input("Sampled CoTs", min_value=1, max_value=32, value=1, key="ev_samples",
                              help="More than 1: self-consistency votes (majority and verdict-weighted).")
    if st.button("Evaluate in the background", type="primary", key="ev_go"):
        cfg = {"train_run": pick["id"], "split": split, "samples": int(samples)}
        if limit:
            cfg["limit"] = int(limit)
        try:
            run_id = eval_job.submit(conn, cfg)  # validates as the CLI's eval does
        except MirrorError as exc:
            st.error(str(exc))
        else:
            ss.setdefault("ev_follow", []).append(run_id)  # plotted once it has finished
            settings.remember(ss, "evaluate", FORM)
            st.success(f"Eval run {run_id} queued; it runs in the background and this page follows it.")


@st.fragment(run_every=3)
def _follow(conn: sqlite3.Connection, seen: list) -> None:
    """Re-render the page when an evaluation starts or ends (only while one is queued or running)."""
    if [(r["id"], r["status"]) for r in jobs.list_runs(conn, "eval")] != seen:
        st.rerun()


def running(conn: sqlite3.Connection) -> None:
    """The live status of every queued or running evaluation; the page reruns when one starts or ends."""
    evals = [(r["id"], r["status"]) for r in jobs.list_runs(conn, "eval")]
    if any(status in ("queued", "running") for _, status in evals):
        _follow(conn, evals)
    for rid, status in evals:
        if status in progress.ACTIVE:
            st.caption(f"Eval run {rid}")
            progress.live_status(conn, rid, log_lines=6)


def runs_table(conn: sqlite3.Connection) -> list[dict]:
    """The runs table and Clone this run; returns its rows (calibration of a student never trained on
    verdicts set to plots.NOT_SELF_EVAL), [] when there is no evaluation yet."""
    table = compare.runs_table(conn)
    if not table:
        return table
    calibration = [c for c in COLUMNS if c in CALIBRATION]  # what a student never trained on verdicts cannot have
    results_all = compare.results_of(conn, [r["eval_run"] for r in table])
    for r in table:  # a student never trained on verdicts has no self-evaluation to measure
        if plots.self_eval_trained(conn, r["train_run"], results_all.get(r["eval_run"])) is False:
            r.update(dict.fromkeys(calibration, plots.NOT_SELF_EVAL))
    shown = pd.DataFrame(table)[COLUMNS]
    for c in calibration:  # text columns: a number, or why there is none
        shown[c] = ["" if v is None or v != v else metric(c).format(v) for v in shown[c]]
    st.dataframe(shown, hide_index=True, width="stretch", key="ev_table")
    c1, c2, _ = st.columns([2, 1, 3])
    clone = c1.selectbox("Eval run", [r["eval_run"] for r in table], key="ev_clone_pick",
                         label_visibility="collapsed", format_func=lambda i: f"eval run {i}")
    if c2.button("Clone this run", key="ev_clone", help="Fill Evaluate a trained student with this run's settings"):
        st.session_state["_ev_clone"] = settings.eval_form(store.loads(jobs.get(conn, clone)["config"]) or {})
        st.session_state["_ev_clone"]["ev_form_open"] = True  # show the form it filled
        st.rerun()
    return table
