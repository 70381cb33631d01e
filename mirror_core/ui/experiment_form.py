"""Evaluate's "Run a method comparison": the experiment stage's form (answer-only, step-by-step and Mind's
Mirror trained and evaluated alike), queued through `evaluation.experiment_job.submit` as the CLI's
`experiment` is, and the latest experiment run followed live. Each field's help is the Config's own."""

from __future__ import annotations

import sqlite3

import streamlit as st

from mirror_core import config, configs, jobs
from mirror_core.errors import MirrorError
from mirror_core.evaluation import experiment_job
from mirror_core.evaluation.experiment import METHODS
from mirror_core.ui import lazy, progress

HELP = configs.help_of(experiment_job.ExperimentConfig)
FIELDS = ["exp_dataset", "exp_teacher", "exp_evaluator", "exp_student", "exp_methods", "exp_steps", "exp_limit",
          "exp_samples", "exp_ncots", "exp_out"]


def experiment_form(conn: sqlite3.Connection) -> None:
    """The form (folded away) and, when an experiment run exists, the latest one's live status."""
    lazy.keep(st.session_state, FIELDS)  # what was typed survives folding the form away
    form = lazy.expander("Run a method comparison (train and evaluate each method alike)", key="ev_exp_form_open")
    if form:
        with form:
            _form(conn)
    runs = jobs.list_runs(conn, "experiment")
    if runs:
        latest = runs[0]
        st.caption(f"Experiment run {latest['id']} ({latest['name'] or ''}): {latest['status']}")
        progress.live_status(conn, latest["id"])


def _form(conn: sqlite3.Connection) -> None:
    """The comparison's settings and its button: queue it through the stage's submit."""
    c1, c2, c3, c4 = st.columns(4)
    dataset = c1.text_input("Data set", "svamp", key="exp_dataset", help=HELP["dataset"])
    teacher = c2.text_input("Teacher", "palm", key="exp_teacher", help=HELP["teacher"])
    evaluator = c3.selectbox("Evaluator", ["reference", "teacher"], key="exp_evaluator", help=HELP["evaluator"])
    student = c4.text_input("Student", "smollm2", key="exp_student", help=HELP["student"])
    methods = st.multiselect("Methods", list(METHODS), default=list(METHODS), key="exp_methods",
                             help=HELP["methods"])
    c1, c2, c3, c4 = st.columns(4)
    steps = c1.number_input("Steps per method", min_value=0, value=40, step=10, key="exp_steps",
                            help=HELP["max_steps"])
    limit = c2.number_input("Test questions", min_value=1, value=100, step=50, key="exp_limit", help=HELP["limit"])
    samples = c3.number_input("Samples per question", min_value=1, max_value=16, value=3, key="exp_samples",
                              help=HELP["samples"])
    n_cots = c4.number_input("CoTs per question", min_value=1, value=1, key="exp_ncots", help=HELP["n_cots"])
    out = st.text_input("Output folder", str(config.home() / "experiments" / "comparison"), key="exp_out",
                        help=HELP["out"])
    st.caption("Each method's training and evaluation is a job of its own on this device, one after another: "
               "on a 2-core CPU, 40 steps of SmolLM2 take about 20–30 min per method and 100 test questions "
               "with 3 samples about 15–20 min (docs/RESULTS.md). A rerun reuses every finished job.")
    if st.button("Run the comparison in the background", key="exp_go"):
        cfg = {"dataset": dataset.strip(), "teacher": teacher.strip(), "evaluator": evaluator,
               "student": student.strip(), "methods": methods, "max_steps": int(steps), "limit": int(limit),
               "samples": int(samples), "n_cots": int(n_cots), "k_evals": 1, "out": out.strip()}
        try:
            run_id = experiment_job.submit(conn, cfg)  # the same checks as the CLI's experiment
        except MirrorError as exc:
            st.error(str(exc))
        else:
            st.success(f"Experiment run {run_id} queued; its train and eval runs appear in the tables as "
                       "they start, and the comparison below once they have finished.")
