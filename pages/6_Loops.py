"""Loops: launch ELAD, MAPD peer review or teacher-as-critic as background jobs; see every round's decisions."""

import pandas as pd
import streamlit as st

from mirror_core import jobs, store
from mirror_core.data.queries import list_datasets
from mirror_core.errors import MirrorError
from mirror_core.loops import job as loop_job
from mirror_core.loops import view
from mirror_core.ui import charts, progress, settings

st.set_page_config(page_title="Loops · Mind's Mirror Studio", page_icon="🪞", layout="wide")
st.title("Feedback loops")
conn = store.connect()
jobs.reap(conn)
datasets = [d.name for d in list_datasets(conn)]
settings.restore(st.session_state, "loops")  # a new tab starts from the last launch's settings
st.session_state.update(st.session_state.pop("_loops_clone", {}))
FORM = ("ds", "student", "teachers", "budget", "rounds")

LOOPS = {
    "elad": ("ELAD — active distillation",
             "The student explains unlabeled questions; the most uncertain explanations (per-step token entropy and "
             "answer disagreement) go to the teacher, which corrects their flawed steps; retrain; repeat. A random "
             "selection arm with the same budget is the control."),
    "mapd": ("MAPD — mistake-aware peer review",
             "The student's mistakes on train get feedback from each teacher (gold answer as a hint); each teacher's "
             "own rationale is scored 1–5 by the others and accepted when the mean valid score is above the threshold."),
    "critic": ("Teacher as critic",
               "The student samples k candidates; the most different pair is judged by the teacher in both orders; "
               "consistent preferences train the student with DPO; the new student is judged against the old."),
}


def launch(loop: str) -> None:
    if not datasets:
        st.info("Import a dataset on the Data page first.")
        return
    c1, c2, c3, c4, c5 = st.columns([2, 2, 3, 1, 1])
    ds = c1.selectbox("Dataset", datasets, key=f"{loop}_ds")
    student = c2.text_input("Student", "smollm2", key=f"{loop}_student",
                            help="smollm2, tiny, a local folder, or run:N for a trained student")
    default = "fake:a, fake:b" if loop == "mapd" else "fake"
    teachers = c3.text_input("Teachers (comma-separated)", default, key=f"{loop}_teachers",
                             help="e.g. openai:gpt-4o-mini, anthropic:claude-haiku-4-5, local, fake:NAME")
    budget = c4.number_input("Budget (calls)", min_value=1, value=20, key=f"{loop}_budget")
    rounds = c5.number_input("Rounds", min_value=1, value=2, key=f"{loop}_rounds")
    if st.button("Run in the background", key=f"{loop}_go", type="primary"):
        specs = [t.strip() for t in teachers.split(",") if t.strip()]
        try:  # submit runs the loop config's own checks: teachers, student, settings, dataset
            rid = loop_job.submit(conn, {"loop": loop, "dataset": ds, "student": student.strip(), "teachers": specs,
                                         "budget": int(budget), "rounds": int(rounds)})
        except MirrorError as exc:  # loop checks name CLI flags; on this page they are the Teachers field
            st.error(str(exc).replace("(--teacher A --teacher B)", "in the Teachers field")
                     .replace("(--teacher SPEC)", "in the Teachers field"))
        else:
            st.session_state[f"{loop}_pick"] = rid
            settings.remember(st.session_state, "loops", [f"{lp}_{k}" for lp in LOOPS for k in FORM])
            st.success(f"Loop run {rid} queued; it runs in the background and this page follows it.")


def jobs_cfg(rid: int) -> dict:
    return store.loads(jobs.get(conn, rid)["config"]) or {}


def show_run(loop: str, run: dict) -> None:
    rid = run["id"]
    progress.live_status(conn, rid)
    if st.button("Clone this run", key=f"{loop}_clone_{rid}", help="Fill New run with this run's settings"):
        cfg = jobs_cfg(rid)
        st.session_state["_loops_clone"] = {f"{loop}_ds": cfg.get("dataset"), f"{loop}_student": cfg.get("student"),
                                            f"{loop}_teachers": ", ".join(cfg.get("teachers") or []),
                                            f"{loop}_budget": cfg.get("budget", 20), f"{loop}_rounds": cfg.get("rounds", 2)}
        st.rerun()
    st.dataframe(pd.DataFrame(view.steps_table(conn, rid)), hide_index=True, key=f"{loop}_{rid}_steps")
    if loop == "elad":
        pts = view.elad_curve(run["result"])
        if pts:
            charts.build(st, view.curve_figure, pts, key=f"elad_{rid}_curve",
                         live=charts.interactive(st, key=f"elad_{rid}_interactive"))
        sel = view.elad_selection(conn, rid)
        if sel:
            st.caption("Uncertainty of each explained question (score = (1−λ)·entropy/log V + λ·disagreement)")
            st.dataframe(pd.DataFrame(sel), hide_index=True, key=f"elad_{rid}_sel")
    elif loop == "mapd":
        for why in (run["result"] or {}).get("not_done") or []:
            st.info(why)
        m = view.mapd_matrix(conn, rid)
        if m:
            st.caption("Peer-review scores per rationale (rows: author; columns: reviewer) and why it was rejected")
            st.dataframe(pd.DataFrame(m), hide_index=True, key=f"mapd_{rid}_matrix")
    else:
        prefs = view.preferences(conn, rid)
        if prefs:
            st.caption("Preferences, judged in both orders (only consistent ones train the student)")
            st.dataframe(pd.DataFrame(prefs), hide_index=True, key=f"critic_{rid}_prefs")
        wr = view.winrates(conn, rid)
        if wr:
            st.dataframe(pd.DataFrame(wr), hide_index=True, key=f"critic_{rid}_wr")


for loop, tab in zip(LOOPS, st.tabs([t for t, _ in LOOPS.values()], key="tab", bind="query-params")):
    with tab:
        st.caption(LOOPS[loop][1])
        with st.expander("New run", expanded=False):
            launch(loop)
        runs = view.loop_runs(conn, loop)
        if not runs:
            st.info("No run of this loop yet. Open **New run** above, pick a student (e.g. `tiny` to try it, or "
                    "`run:N` for a trained one) and teachers, and run it in the background.")
            continue
        rows = []
        for r in runs:  # "not done" beside "progress": a succeeded run at 8/15 says what it left undone
            row = {}
            for k, v in r.items():
                if k != "result":
                    row[k] = v
                if k == "progress":
                    row["not done"] = "; ".join((r["result"] or {}).get("not_done") or [])
            rows.append(row)
        st.dataframe(pd.DataFrame(rows), hide_index=True, key=f"{loop}_runs")
        pick = st.selectbox("Run", [r["id"] for r in runs], key=f"{loop}_pick",
                            format_func=lambda i: f"#{i}")
        show_run(loop, next(r for r in runs if r["id"] == pick))
