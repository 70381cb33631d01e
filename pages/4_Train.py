"""Train: pick a snapshot, a student, tasks and weights, launch a background job; follow, stop, resume.

The form is drawn by mirror_core.ui.train_form, the runs by mirror_core.ui.train_runs; this page lays them out.
"""

import streamlit as st

from mirror_core import jobs, store
from mirror_core.snapshots import list_snapshots
from mirror_core.ui import settings
from mirror_core.ui.train_form import new_run_form
from mirror_core.ui.train_runs import clone_button, live, pick_run, runs_table

st.set_page_config(page_title="Train · Mind's Mirror Studio", page_icon="🪞", layout="wide")
st.title("Train")
conn = store.connect()
jobs.reap(conn)

# ---------------------------------------------------------------- launch
snaps = list_snapshots(conn)
settings.restore(st.session_state, "train")  # a new tab starts from the last launch's settings
st.session_state.update(st.session_state.pop("_train_clone", {}))
with st.expander("New training run", expanded=not jobs.list_runs(conn, "train")):
    if not snaps:
        st.info("No snapshot yet: freeze reviewed data into one on the Review page "
                "(or `python -m mirror_core snapshot create`).")
    else:
        new_run_form(conn, snaps)

# ---------------------------------------------------------------- runs
runs = jobs.list_runs(conn, "train")
if not runs:
    st.stop()
st.subheader("Runs")
runs_table(conn)
run_id = pick_run(runs)
live(conn, run_id)
clone_button(conn, run_id)
