"""Train: pick a snapshot, a student, tasks and weights, launch a background job; follow, stop, resume.

The form is drawn by mirror_core.ui.train_form, the runs by mirror_core.ui.train_runs; this page lays them out.
"""

import streamlit as st

from mirror_core import jobs, store
from mirror_core.snapshots import list_snapshots
from mirror_core.ui import lazy, settings
from mirror_core.ui.train_form import FORM, FORM_PREFIXES, new_run_form
from mirror_core.ui.train_runs import clone_button, live, pick_run, runs_table

st.set_page_config(page_title="Train · Mind's Mirror Studio", page_icon="🪞", layout="wide")
st.title("Train")
conn = store.connect()
jobs.reap(conn)

# ---------------------------------------------------------------- launch
snaps = list_snapshots(conn)
settings.restore(st.session_state, "train")  # a new tab starts from the last launch's settings
st.session_state.update(st.session_state.pop("_train_clone", {}))
lazy.keep(st.session_state, FORM + ["snapshot", "gpus"], FORM_PREFIXES)  # what was typed survives folding the form away
# unfolded when there is no run yet; decided once per session, since a changed default would refold it
first_open = st.session_state.setdefault("_train_form_first_open", not jobs.list_runs(conn, "train"))
form = lazy.expander("New training run", key="train_form_open", expanded=first_open)
if form and not snaps:
    form.info("No snapshot yet: freeze reviewed data into one on the Review page "
              "(or `python -m mirror_core snapshot create`).")
elif form:
    with form:
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
