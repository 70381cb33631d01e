"""Generate: teachers write N CoTs per question and K self-evaluations per CoT, as a background job.

Typed API keys live only in this browser session's memory and reach the job through the launched
process's environment — never the job config, the database or a command line. Logic lives in mirror_core.
"""

import streamlit as st

from mirror_core import jobs, store
from mirror_core.data.queries import dataset_names
from mirror_core.errors import MirrorError
from mirror_core.generation import job as gen_job, pipeline
from mirror_core.teachers.registry import TeacherSpec
from mirror_core.ui import settings, teacher_setup
from mirror_core.ui.generation_runs import estimate, runs_panel

st.set_page_config(page_title="Generate · Mind's Mirror Studio", page_icon="🪞", layout="wide")
st.title("Generate")
ss = st.session_state
conn = store.connect()
jobs.reap(conn)
PRESETS = ["local", "fake", "fake:b", "anthropic:claude-haiku-4-5", "openai:gpt-4o-mini"]
# the form a new tab gets back from the last launch; never the API keys (key_*), which stay in this session
FORM = ["g_dataset", "g_split", "g_limit", "g_dev_limit", "g_teachers", "g_extra", "g_n", "g_k", "g_temp", "g_max",
        "g_emax", "g_base_url", "g_budget"]


# ---------------------------------------------------------------- what to generate
datasets = dataset_names(conn)
if not datasets:
    st.info("No dataset yet. Import one on the Data page first (GSM8K is built in).")
    st.stop()
settings.restore(ss, "generate")
settings.keep_valid(ss, "g_dataset", datasets)  # a dataset deleted since the last launch
settings.keep_valid(ss, "g_teachers", PRESETS)
c1, c2, c3 = st.columns([2, 1, 1])
dataset = c1.selectbox("Dataset", datasets, key="g_dataset")
split = c2.selectbox("Split", ["train", "dev", "test"], key="g_split")
limit = c3.number_input("Questions (0 = all)", min_value=0, value=20, step=10, key="g_limit")
dev_limit = 0
n_dev = pipeline.count_split(conn, dataset, "dev")
if split == "train" and n_dev:
    if ss.get("g_dev_limit", 0) > n_dev:  # remembered from a dataset with more dev questions
        ss["g_dev_limit"] = n_dev
    dev_limit = c3.number_input("Dev questions too", min_value=0, max_value=n_dev, value=min(8, n_dev), step=4,
                                key="g_dev_limit",
                                help="CoTs for the first N dev questions as well, so a snapshot has dev items "
                                     "for choosing the best checkpoint and early stopping.")
c1, c2 = st.columns([2, 2])
teachers = c1.multiselect("Teachers", PRESETS, default=["local"], key="g_teachers",
                          help="local = the offline SmolLM2-135M-Instruct; fake teachers are for tests.")
extra = c2.text_input("More teachers (comma-separated specs)", key="g_extra",
                      placeholder="openai:MODEL, local:PATH, replay:outputs.jsonl")
specs = teachers + [s.strip() for s in extra.split(",") if s.strip()]
try:  # each spec parsed once, here; a bad one is shown below, where the estimate would be
    parsed, spec_error = [TeacherSpec.parse(s) for s in specs], None
except MirrorError as exc:
    parsed, spec_error = [], exc
only_local = bool(parsed) and all(s.kind == "local" for s in parsed)
c1, c2, c3, c4, c5 = st.columns(5)
n_cots = c1.number_input("CoTs per question (N)", 1, 20, 3, key="g_n")
k_evals = c2.number_input("Self-evaluations per CoT (K)", 0, 20, 2, key="g_k")
temperature = c3.slider("Temperature", 0.0, 1.5, 0.7, 0.05, key="g_temp")
max_tokens = c4.number_input("CoT max tokens", 16, 4096, 256 if only_local else 512, key="g_max")
eval_max = c5.number_input("Self-eval max tokens", 16, 4096, 160 if only_local else 384, key="g_emax")
c1, c2 = st.columns(2)
base_url = c1.text_input("Base URL (OpenAI-compatible server, optional)", key="g_base_url") or None
budget = c2.number_input("Budget cap in USD (0 = none)", min_value=0.0, value=0.0, step=1.0, key="g_budget")

teacher_setup.api_keys()
teacher_setup.templates(conn)
teacher_setup.prices(conn)

# ---------------------------------------------------------------- estimate and launch
cfg = None
try:
    if not specs:
        raise MirrorError("Choose at least one teacher.")
    if spec_error:
        raise spec_error
    cfg = pipeline.GenConfig(dataset=dataset, split=split, limit=int(limit) or None, teachers=parsed,
                             n_cots=int(n_cots), k_evals=int(k_evals), temperature=float(temperature),
                             max_tokens=int(max_tokens), eval_max_tokens=int(eval_max), base_url=base_url,
                             budget_usd=float(budget) or None, dev_limit=int(dev_limit))
    est = pipeline.estimate(conn, cfg).as_dict()
except MirrorError as exc:
    st.warning(str(exc))
else:
    estimate(conn, cfg, est)
    if st.button("Launch generation", type="primary", key="g_launch"):
        try:  # submit checks what the CLI checks: teachers, keys (typed here or in the environment), questions
            run_id = gen_job.submit(conn, cfg, name=f"generate {dataset}/{split}", keys_env=teacher_setup.keys_env())
        except MirrorError as exc:
            st.error(str(exc))
        else:
            ss["g_run"] = ss["g_run_pick"] = run_id  # follow the new run, not the one picked before
            settings.remember(ss, "generate", FORM)
            ss["g_flash"] = f"Run {run_id} started in the background; it keeps going if you close this tab."
if ss.get("g_flash"):  # stays until another run is picked
    st.success(ss["g_flash"])

# ---------------------------------------------------------------- progress and errors
runs_panel(conn, teacher_setup.keys_env)
