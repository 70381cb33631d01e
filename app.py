"""Home: what the project holds, what is running, and the next step. Logic lives in mirror_core."""

from pathlib import Path

import streamlit as st

from mirror_core import config, overview, store
from mirror_core.errors import MirrorError

st.set_page_config(page_title="Mind's Mirror Studio", page_icon="🪞", layout="wide")
st.title("🪞 Mind's Mirror Studio")
st.caption("Distil chains of thought — and the teacher's self-evaluation of them — into small students.")

conn = store.connect()
counts = overview.summary(conn)

cols = st.columns(6)
for col, (label, key) in zip(cols, [("Datasets", "datasets"), ("Examples", "examples"), ("CoTs", "rationales"),
                                    ("Self-evaluations", "self_evals"), ("Teacher calls", "teacher_calls"),
                                    ("Snapshots", "snapshots")]):
    col.metric(label, f"{counts[key]:,}")

step = overview.next_step(conn)
st.subheader("Next step")
st.info(step.text)
if step.stage == "import":
    if st.button("Import the built-in GSM8K (offline, one click)", type="primary", key="import_gsm8k"):
        from mirror_core.data.importing import import_source

        with st.spinner("Importing GSM8K…"):
            try:
                result = import_source(conn, "gsm8k")
            except MirrorError as exc:
                st.error(str(exc))
            else:
                st.success(f"Imported {result.name}: {result.counts}")
                st.rerun()
if (Path(__file__).parent / step.page).exists():
    st.page_link(step.page, label=f"Go to {step.page.split('_', 1)[1].removesuffix('.py')}", icon="➡️")

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
