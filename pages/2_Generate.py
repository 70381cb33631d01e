"""Generate: teachers write N CoTs per question and K self-evaluations per CoT, as a background job.

Typed API keys live only in this browser session's memory and reach the job through the launched
process's environment — never the job config, the database or a command line. Logic lives in mirror_core.
"""

import pandas as pd
import streamlit as st

from mirror_core import jobs, prompts, store
from mirror_core.errors import MirrorError
from mirror_core.generation import calls, job as gen_job, pipeline, pricing
from mirror_core.teachers import keys
from mirror_core.teachers.registry import TeacherSpec
from mirror_core.ui import progress as live
from mirror_core.ui import settings

st.set_page_config(page_title="Generate · Mind's Mirror Studio", page_icon="🪞", layout="wide")
st.title("Generate")
ss = st.session_state
conn = store.connect()
jobs.reap(conn)
PRESETS = ["local", "fake", "fake:b", "anthropic:claude-haiku-4-5", "openai:gpt-4o-mini"]
# the form a new tab gets back from the last launch; never the API keys (key_*), which stay in this session
FORM = ["g_dataset", "g_split", "g_limit", "g_dev_limit", "g_teachers", "g_extra", "g_n", "g_k", "g_temp", "g_max",
        "g_emax", "g_base_url", "g_budget"]


def keys_env() -> dict[str, str]:
    """Keys typed on this page, as environment variables for the job process."""
    return {var: ss[f"key_{p}"] for p, var in keys.ENV_VARS.items() if ss.get(f"key_{p}")}


# ---------------------------------------------------------------- what to generate
datasets = [r[0] for r in conn.execute("SELECT name FROM datasets ORDER BY name")]
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

with st.expander("API keys (held in this browser session only)"):
    for provider, var in keys.ENV_VARS.items():
        have = keys.get_key(provider, required=False)
        st.text_input(f"{provider} key" + (" — found in the environment" if have else f" (or set {var})"),
                      type="password", key=f"key_{provider}")

# ---------------------------------------------------------------- templates and prices
with st.expander("Prompt templates"):
    tlist = prompts.list_templates(conn)
    name = st.selectbox("Template", [t["name"] for t in tlist], key="g_tpl",
                        format_func=lambda n: next(f"{t['name']} (v{t['version']}, {t['kind']})" for t in tlist
                                                   if t["name"] == n))
    current = prompts.get(conn, name)
    body = st.text_area("Body (system message above a line `---`, then the user message)", current.body,
                        height=300, key=f"g_tpl_body_{name}_{current.version}")
    if st.button("Save as a new version", key="g_tpl_save"):
        try:
            t = prompts.edit(conn, name, body)
        except MirrorError as exc:
            st.error(str(exc))
        else:
            st.success(f"{t.name} is now v{t.version}; new runs use it.")
with st.expander("Prices (USD per million tokens)"):
    st.dataframe(pd.DataFrame(pricing.price_rows(conn)), hide_index=True, key="g_prices")
    c1, c2, c3, c4, c5 = st.columns([1, 2, 1, 1, 1])
    pp = c1.selectbox("Provider", ["anthropic", "openai"], key="g_price_provider")
    pm = c2.text_input("Model", key="g_price_model")
    pin = c3.number_input("Input", min_value=0.0, key="g_price_in")
    pout = c4.number_input("Output", min_value=0.0, key="g_price_out")
    if c5.button("Set price", key="g_price_set") and pm:
        pricing.set_price(conn, pp, pm, pin, pout)
        st.rerun()

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
    st.subheader("Estimate")
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Requests", f"{est['requests']:,}")
    m2.metric("Already answered", f"{est['cached']:,}")
    m3.metric("Output tokens (at most)", f"{est['max_output_tokens']:,}")
    m4.metric("Cost (at most)", f"${est['cost_usd']:.4f}")
    if est["unpriced"]:
        st.caption(f"No price for {', '.join(est['unpriced'])}: counted as $0. Add one under Prices.")
    if any(s.kind == "local" for s in cfg.specs) and est["requests"]:
        todo = est["max_output_tokens"] * (est["requests"] - est["cached"]) / est["requests"]
        secs, rate = live.local_teacher_estimate_s(conn, int(todo))
        if secs > live.WARN_AFTER_S:
            st.warning(f"The local teacher needs up to {live.duration(secs)} for this on this machine "
                       f"({rate:.0f} tokens/s measured). Fewer questions or CoTs, or fewer max tokens, are quicker.")
    if st.button("Launch generation", type="primary", key="g_launch"):
        try:  # submit checks what the CLI checks: teachers, keys (typed here or in the environment), questions
            run_id = gen_job.submit(conn, cfg, name=f"generate {dataset}/{split}", keys_env=keys_env())
        except MirrorError as exc:
            st.error(str(exc))
        else:
            ss["g_run"] = ss["g_run_pick"] = run_id  # follow the new run, not the one picked before
            settings.remember(ss, "generate", FORM)
            ss["g_flash"] = f"Run {run_id} started in the background; it keeps going if you close this tab."
if ss.get("g_flash"):  # stays until another run is picked
    st.success(ss["g_flash"])

# ---------------------------------------------------------------- progress and errors
runs = jobs.list_runs(conn, "generate")
if not runs:
    st.stop()
st.subheader("Generation runs")
ids = [r["id"] for r in runs]
if ss.get("g_run_pick") not in ids:
    ss["g_run_pick"] = ss["g_run"] if ss.get("g_run") in ids else ids[0]
run_id = st.selectbox("Run", ids, key="g_run_pick",
                      format_func=lambda i: next(f"#{r['id']} {r['name'] or ''} — {r['status']}" for r in runs
                                                 if r["id"] == i))


if ss.get("g_run") != run_id:
    ss.pop("g_flash", None)
live.live_status(conn, run_id, log_lines=20)


@st.fragment(run_every=2 if jobs.get(conn, run_id)["status"] in live.ACTIVE else None)
def progress(run_id: int) -> None:
    row = jobs.get(conn, run_id)
    c1, c2, c3 = st.columns(3)
    c1.metric("Cost so far", f"${pricing.ledger(conn, run_id):.4f}")
    failed = calls.failed_calls(conn, run_id)
    c2.metric("Not answered", len(failed))
    c3.metric("Status", row["status"])
    if failed:
        st.dataframe(pd.DataFrame(failed), hide_index=True, key=f"g_errors_{run_id}")


progress(run_id)
row = jobs.get(conn, run_id)
c1, c2, c3 = st.columns(3)
if row["status"] in ("running", "queued") and c1.button("Stop", key="g_stop"):
    jobs.stop(conn, run_id)
    st.rerun()
if row["status"] in ("failed", "cancelled") and c2.button("Resume", key="g_resume"):
    try:
        gen_job.resume(conn, run_id, keys_env())
    except MirrorError as exc:
        st.error(str(exc))
    else:
        st.rerun()
if row["status"] in jobs.TERMINAL and c3.button("Retry failed requests", key="g_retry"):
    n = calls.reset_failed(conn, run_id=run_id)
    try:
        new_id = gen_job.submit(conn, store.loads(row["config"]), name=f"retry of run {run_id}", keys_env=keys_env())
    except MirrorError as exc:
        st.error(str(exc))
    else:
        ss["g_run"] = ss["g_run_pick"] = new_id
        st.success(f"{n} failed request(s) queued again in run {new_id}; everything else comes from the cache.")
