"""Evaluate: the runs table, launch an eval in the background, compare runs' accuracy, calibration,
abstention and loss, and see which questions one run fixed and another broke. Logic lives in mirror_core."""

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from mirror_core import jobs, store
from mirror_core.errors import MirrorError
from mirror_core.evaluation import compare, plots
from mirror_core.evaluation.metrics import CALIBRATION, metric
from mirror_core.evaluation import job as eval_job
from mirror_core.ui import progress
from mirror_core.ui import settings

st.set_page_config(page_title="Evaluate · Mind's Mirror Studio", page_icon="🪞", layout="wide")
st.title("Evaluate")
conn = store.connect()
jobs.reap(conn)

# ---------------------------------------------------------------- launch
st.subheader("Evaluate a trained student")
ready = compare.train_runs_ready(conn)
FORM = ["ev_train", "ev_split", "ev_limit", "ev_samples"]
settings.restore(st.session_state, "evaluate")  # a new tab starts from the last launch's settings
st.session_state.update(st.session_state.pop("_ev_clone", {}))  # "Clone this run" below, applied before the widgets
settings.keep_valid(st.session_state, "ev_train", [r["id"] for r in ready])  # a train run deleted since
if not ready:
    st.info("No finished train run yet. Train a student first; its evaluation starts here.")
else:
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
            st.session_state.setdefault("ev_follow", []).append(run_id)  # plotted once it has finished
            settings.remember(st.session_state, "evaluate", FORM)
            st.success(f"Eval run {run_id} queued; it runs in the background and this page follows it.")


@st.fragment(run_every=3)
def follow(seen: list) -> None:
    """Re-render the page when an evaluation starts or ends (only while one is queued or running)."""
    if [(r["id"], r["status"]) for r in jobs.list_runs(conn, "eval")] != seen:
        st.rerun()


evals = [(r["id"], r["status"]) for r in jobs.list_runs(conn, "eval")]
if any(status in ("queued", "running") for _, status in evals):
    follow(evals)
for rid, status in evals:
    if status in progress.ACTIVE:
        st.caption(f"Eval run {rid}")
        progress.live_status(conn, rid, log_lines=6)

# ---------------------------------------------------------------- table
st.subheader("Runs")
table = compare.runs_table(conn)
if not table:
    st.info("No evaluations yet. Pick a finished train run above and evaluate it; runs show up here.")
    st.stop()
cols = ["eval_run", "status", "method", "student", "snapshot", "split", "n", "accuracy", "accuracy_lo",
        "accuracy_hi", "ece", "brier", "auroc", "majority_accuracy", "weighted_accuracy", "teacher_cost_usd",
        "train_seconds"]
calibration = [c for c in cols if c in CALIBRATION]  # what a student never trained on verdicts cannot have
results_all = compare.results_of(conn, [r["eval_run"] for r in table])
for r in table:  # a student never trained on verdicts has no self-evaluation to measure
    if plots.self_eval_trained(conn, r["train_run"], results_all.get(r["eval_run"])) is False:
        r.update(dict.fromkeys(calibration, plots.NOT_SELF_EVAL))
shown = pd.DataFrame(table)[cols]
for c in calibration:  # text columns: a number, or why there is none
    shown[c] = ["" if v is None or v != v else metric(c).format(v) for v in shown[c]]
st.dataframe(shown, hide_index=True, width="stretch", key="ev_table")
c1, c2, _ = st.columns([2, 1, 3])
clone = c1.selectbox("Eval run", [r["eval_run"] for r in table], key="ev_clone_pick", label_visibility="collapsed",
                     format_func=lambda i: f"eval run {i}")
if c2.button("Clone this run", key="ev_clone", help="Fill Evaluate a trained student with this run's settings"):
    st.session_state["_ev_clone"] = settings.eval_form(store.loads(jobs.get(conn, clone)["config"]) or {})
    st.rerun()


def experiments() -> None:
    """The method comparisons `python -m mirror_core experiment` ran: its table and plots, from the store."""
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
    left, right = st.columns(2)
    left.plotly_chart(plots.accuracy_bars(view["plot_rows"]), key="ev_exp_acc")
    right.plotly_chart(plots.reliability_figure(view["calibration"]), key="ev_exp_rel")
    left.plotly_chart(plots.abstention_figure(view["calibration"]), key="ev_exp_abst")
    if any(view["losses"].values()):
        right.plotly_chart(plots.loss_panels(view["losses"]), key="ev_exp_loss")


experiments()
done = [r for r in table if r["status"] == "succeeded" and r["accuracy"] is not None]
if not done:
    st.info("Evaluations are still running.")
    st.stop()
by_id = {r["eval_run"]: r for r in done}
new = [i for i in st.session_state.get("ev_follow", []) if i in by_id]
if new:  # a finished eval launched here joins the chart selection
    base = st.session_state.get("ev_chosen", list(by_id)[:3])
    st.session_state["ev_chosen"] = [i for i in base if i in by_id] + [i for i in new if i not in base]
    st.session_state["ev_follow"] = [i for i in st.session_state["ev_follow"] if i not in by_id]
chosen = st.multiselect("Runs to plot", list(by_id), default=None if "ev_chosen" in st.session_state else list(by_id)[:3],
                        format_func=lambda i: plots.label(by_id[i]), key="ev_chosen")
if chosen:
    results = {plots.label(by_id[i]): res for i, res in compare.results_of(conn, chosen).items()}
    left, right = st.columns(2)
    left.plotly_chart(plots.accuracy_bars([by_id[i] for i in chosen]), key="fig_acc")
    trained = {plots.label(by_id[i]) for i in chosen if by_id[i]["ece"] != plots.NOT_SELF_EVAL}
    untrained = [plots.label(by_id[i]) for i in chosen if by_id[i]["ece"] == plots.NOT_SELF_EVAL]
    calib = {k: v for k, v in results.items() if k in trained}
    right.plotly_chart(plots.reliability_figure(calib), key="fig_rel")
    if untrained:
        right.caption(f"{', '.join(untrained)}: {plots.NOT_SELF_EVAL} (no verdict task in training), so no "
                      "calibration is shown for it.")
    left.plotly_chart(plots.abstention_figure(calib), key="fig_abst")
    losses = {plots.label(by_id[i]): plots.loss_series(conn, by_id[i]["train_run"]) for i in chosen
              if by_id[i]["train_run"]}
    if any(losses.values()):
        log_y = right.checkbox("Log scale", key="ev_loss_log")
        right.plotly_chart(plots.loss_panels(losses, log_y=log_y), key="fig_loss")
    else:
        right.caption("The chosen runs' training logged no loss metrics.")

# ---------------------------------------------------------------- per-example diff
st.subheader("Which questions changed")
if len(by_id) < 2:
    st.caption("Evaluate a second run to compare them question by question.")
    st.stop()
ids = list(by_id)
c1, c2 = st.columns(2)
a = c1.selectbox("From run (A)", ids, index=1, format_func=lambda i: plots.label(by_id[i]), key="ev_a")
b = c2.selectbox("To run (B)", ids, index=0, format_func=lambda i: plots.label(by_id[i]), key="ev_b")
try:
    rows = compare.example_diff(conn, a, b)
except MirrorError as exc:
    st.error(str(exc))
    st.stop()
counts = compare.diff_counts(rows)
for col, (name, n) in zip(st.columns(4), counts.items()):
    col.metric(name, n)
show = st.radio("Show", list(compare.CATEGORIES), horizontal=True, key="ev_show")
picked = [r for r in rows if r["category"] == show]
df = pd.DataFrame([{"example": r["example_id"], "review": f"/Review?ex={r['example_id']}", "question": r["question"],
                    "gold": r["gold"], "A": r["a_answer"], "B": r["b_answer"], "A conf": r["a_confidence"],
                    "B conf": r["b_confidence"], "teacher CoTs": " ".join(map(str, r["rationale_ids"]))}
                   for r in picked], columns=["example", "review", "question", "gold", "A", "B", "A conf", "B conf",
                                              "teacher CoTs"])
st.dataframe(df, hide_index=True, width="stretch", key="ev_diff",
             column_config={"review": st.column_config.LinkColumn("Review", display_text="open")})
for r in picked[:5]:
    label = f"Example {r['example_id']} on the Review page (its teacher CoTs)"
    try:
        st.page_link("pages/3_Review.py", label=label, query_params={"ex": str(r["example_id"])}, icon="🔎")
    except StreamlitAPIException:  # the page run on its own (not under app.py) has no page registry
        st.markdown(f"🔎 [{label}](/Review?ex={r['example_id']})")
st.download_button("Download this comparison (CSV)", pd.DataFrame(rows).to_csv(index=False), file_name=f"compare-{a}-{b}.csv",
                   mime="text/csv", key="ev_csv")
