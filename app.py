"""Entry point: the page list (sidebar) and the home page: what the project holds, what is running, and the
next step. Every page's logic lives in mirror_core."""

from pathlib import Path

import streamlit as st

from mirror_core import config, overview, store
from mirror_core.errors import MirrorError
from mirror_core.ui import charts

st.set_page_config(page_title="Mind's Mirror Studio", page_icon="🪞", layout="wide")
ROOT = Path(__file__).parent


def home() -> None:
    st.title("Mind's Mirror Studio")
    st.caption("Distil chains of thought — and the teacher's self-evaluation of them — into small students.")

    conn = store.connect()
    counts = overview.summary(conn)

    cols = st.columns(6)
    for col, (label, key) in zip(cols, [("Datasets", "datasets"), ("Examples", "examples"), ("CoTs", "rationales"),
                                        ("Self-evaluations", "self_evals"), ("Teacher calls", "teacher_calls"),
                                        ("Snapshots", "snapshots")]):
        col.metric(label, f"{counts[key]:,}")

    flash = st.session_state.pop("home_flash", None)
    if flash:
        st.success(flash)
    step = overview.next_step(conn)
    st.subheader("Next step")
    st.info(step.text)
    if step.stage == "import":
        st.write("Start with real teacher CoTs: SVAMP's 800 training questions with the PaLM 540B chains of thought "
                 "of the distilling step-by-step release, each judged against the gold (reference verdicts).")
        if st.button("Import SVAMP with PaLM 540B CoTs (offline, one click)", type="primary", key="quickstart_svamp"):
            try:
                summary, run_id = overview.quickstart_svamp(conn)
            except MirrorError as exc:
                st.error(str(exc))
            else:
                st.session_state["home_flash"] = (f"{summary[:1].upper() + summary[1:]}. Run {run_id} is replaying "
                                                  "the PaLM CoTs with reference verdicts: open Review in a few seconds.")
                st.rerun()
        if st.button("Import the built-in GSM8K (offline, one click)", key="import_gsm8k"):
            from mirror_core.data.importing import import_source

            with st.spinner("Importing GSM8K…"):
                try:
                    result = import_source(conn, "gsm8k")
                except MirrorError as exc:
                    st.error(str(exc))
                else:  # shown after the rerun that moves the next step on
                    summary = result.summary()
                    st.session_state["home_flash"] = summary[:1].upper() + summary[1:]
                    st.rerun()
    if (ROOT / step.page).exists():
        st.page_link(step.page, label=f"Go to {PAGE_TITLES.get(step.page, step.page)}", icon=":material/arrow_forward:")

    st.subheader("Running now")
    active = overview.active_runs(conn)
    if active:
        st.dataframe(active, hide_index=True, width="stretch")
    else:
        st.write("Nothing is running.")
    failed = overview.recent_failures(conn)
    if failed:
        with st.expander(f"Recent failures ({len(failed)})"):
            st.dataframe(failed, hide_index=True, width="stretch")

    st.caption(f"Project home: `{config.home()}` (set MIRROR_HOME to use another). Runs: {counts['runs'] or 'none'}.")


PAGE_TITLES = {"pages/1_Data.py": "Data", "pages/2_Generate.py": "Generate", "pages/3_Review.py": "Review",
               "pages/4_Train.py": "Train", "pages/5_Evaluate.py": "Evaluate", "pages/6_Loops.py": "Loops"}
ICONS = {"Data": "table_view", "Generate": "auto_awesome", "Review": "rate_review", "Train": "model_training",
         "Evaluate": "analytics", "Loops": "autorenew"}
pages = [st.Page(home, title="Home", icon=":material/home:", default=True)]
pages += [st.Page(path, title=title, icon=f":material/{ICONS[title]}:") for path, title in PAGE_TITLES.items()]
charts.warm_up()  # once per process: the first chart then draws without starting Vega
st.navigation(pages).run()
