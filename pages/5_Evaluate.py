"""Evaluate: the runs table, launch an eval in the background, compare runs' accuracy, calibration,
abstention and loss, and see which questions one run fixed and another broke. Logic lives in mirror_core;
the sections are drawn by mirror_core.ui.eval_runs, eval_charts and eval_diff."""

import streamlit as st

from mirror_core import jobs, store
from mirror_core.ui.eval_charts import experiments, run_charts
from mirror_core.ui.eval_runs import launch_form, running, runs_table
from mirror_core.ui.experiment_form import experiment_form

st.set_page_config(page_title="Evaluate · Mind's Mirror Studio", page_icon="🪞", layout="wide")
st.title("Evaluate")
conn = store.connect()
jobs.reap(conn)

# ---------------------------------------------------------------- launch
launch_form(conn)
running(conn)
experiment_form(conn)

# ---------------------------------------------------------------- table
st.subheader("Runs")
table = runs_table(conn)
if not table:
    st.info("No evaluations yet. Pick a finished train run above and evaluate it; runs show up here.")
    st.stop()
experiments(conn)
done = [r for r in table if r["status"] == "succeeded" and r["accuracy"] is not None]
if not done:
    st.info("Evaluations are still running.")
    st.stop()
by_id = {r["eval_run"]: r for r in done}
st.subheader("Compare runs")
run_charts(conn, by_id)  # the charts and "which questions changed", each a tab
