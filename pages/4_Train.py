"""Train: pick a snapshot, a student, tasks and weights, launch a background job; follow, stop, resume."""

import time

import pandas as pd
import streamlit as st

from mirror_core import config, jobs, store
from mirror_core import device as device_info
from mirror_core.errors import MirrorError
from mirror_core.evaluation import plots
from mirror_core.snapshots import list_snapshots
from mirror_core.students import checkpoints
from mirror_core.training import job as train_job
from mirror_core.training.config import METHODS, SCHEDULES, TASKS, TrainConfig
from mirror_core.ui import progress, settings

st.set_page_config(page_title="Train · Mind's Mirror Studio", page_icon="🪞", layout="wide")
st.title("Train")
conn = store.connect()
jobs.reap(conn)
HELP = TrainConfig.help()


@st.cache_resource
def gpu_names() -> list[str]:
    """GPUs the driver lists (none on a CPU box), read without importing torch into the app's process."""
    return device_info.gpu_names()


@st.cache_data(ttl=60, show_spinner=False)
def train_estimate_s(url: str, snap_id: int, student: str, tasks: tuple, epochs: float, max_steps: int,
                     device: str) -> float | None:
    """progress.train_estimate_s, kept a minute: it sums a snapshot's text, which costs on a large one."""
    return progress.train_estimate_s(conn, snap_id, student, list(tasks), epochs, max_steps, device)


@st.cache_resource(max_entries=32, show_spinner=False)
def loss_figure(url: str, run_id: int, log_y: bool, version: tuple):
    """The loss panels of a run, built again only when it logged new metrics (`version`): building the
    plotly figure costs more than the rest of the page. Shared read-only across sessions."""
    return plots.loss_panels({f"run {run_id}": plots.loss_series(conn, run_id)}, log_y=log_y)


# ---------------------------------------------------------------- launch
snaps = list_snapshots(conn)
FORM = ["student", "method", "schedule", "lr", "max_steps", "epochs", "eval_every", "seq_len", "batch_tokens",
        "grad_accum", "patience", "packing", "lora", "gc", "compile"]
settings.restore(st.session_state, "train")  # a new tab starts from the last launch's settings
st.session_state.update(st.session_state.pop("_train_clone", {}))
with st.expander("New training run", expanded=not jobs.list_runs(conn, "train")):
    if not snaps:
        st.info("No snapshot yet: freeze reviewed data into one on the Review page (or `python -m mirror_core snapshot create`).")
    else:
        c1, c2, c3 = st.columns(3)
        snap = c1.selectbox("Snapshot", [s["name"] for s in snaps], key="snapshot")
        snap_id = next(s["id"] for s in snaps if s["name"] == snap)
        if not conn.execute("SELECT 1 FROM snapshot_items WHERE snapshot_id = ? AND split = 'dev' LIMIT 1",
                            (snap_id,)).fetchone():
            st.warning("This snapshot has no dev items, so training has no dev loss, no best checkpoint and no "
                       "early stopping. Generate CoTs for the dev split too, then freeze a new snapshot.")
        student = c2.text_input("Student", "smollm2", help=HELP["student"], key="student")
        method = c3.selectbox("Method", list(METHODS), help=HELP["method"], key="method")
        tasks = st.multiselect("Tasks", list(TASKS), default=list(METHODS[method]), key=f"tasks_{method}")
        wcols = st.columns(max(1, len(tasks)))
        weights = {t: wcols[i].number_input(f"α {t}", 0.05, 10.0, float(METHODS[method].get(t, 0.5)), 0.05,
                                            key=f"w_{method}_{t}") for i, t in enumerate(tasks)}
        schedule = st.radio("Schedule", SCHEDULES, horizontal=True, help=HELP["schedule"], key="schedule")
        with st.expander("Hyperparameters (blank or 0 = sized to the student)"):
            h1, h2, h3, h4 = st.columns(4)
            lr = h1.number_input("Learning rate (0 = auto)", 0.0, 1.0, 0.0, format="%.6f", help=HELP["lr"], key="lr")
            max_steps = h2.number_input("Max steps per stage (0 = epochs)", 0, 10_000_000, 0, help=HELP["max_steps"], key="max_steps")
            epochs = h3.number_input("Epochs", 0.1, 1000.0, 3.0, help=HELP["epochs"], key="epochs")
            eval_every = h4.number_input("Eval every", 0, 100_000, 50, help=HELP["eval_every"], key="eval_every")
            seq_len = h1.number_input("Sequence length", 16, 32768, 1024, help=HELP["seq_len"], key="seq_len")
            batch_tokens = h2.number_input("Tokens per micro-batch (0 = auto)", 0, 1 << 24, 0, help=HELP["batch_tokens"], key="batch_tokens")
            grad_accum = h3.number_input("Gradient accumulation", 1, 1024, 1, help=HELP["grad_accum"], key="grad_accum")
            patience = h4.number_input("Early-stopping patience", 0, 1000, 3, help=HELP["patience"], key="patience")
            packing = h1.checkbox("Packing (causal students)", True, help=HELP["packing"], key="packing")
            lora = h2.checkbox("LoRA", False, help=HELP["lora"], key="lora")
            gc = h3.checkbox("Gradient checkpointing", False, help=HELP["grad_checkpointing"], key="gc")
            compile_ = h4.checkbox("torch.compile", False, help=HELP["compile"], key="compile")
        gpus = gpu_names()
        if gpus:
            picked = st.multiselect("GPUs (several → DDP under torchrun)", list(range(len(gpus))), default=[0],
                                    format_func=lambda i: f"cuda:{i} · {gpus[i]}", key="gpus")
            device = "cuda:" + ",".join(map(str, picked)) if picked else "cpu"
        else:
            device = "cpu"
            st.caption("No GPU visible to torch: training runs on the CPU.")
        est = train_estimate_s(config.database_url(), snap_id, student.strip(), tuple(tasks), float(epochs),
                               int(max_steps), device)
        if est and est > progress.WARN_AFTER_S:
            st.warning(f"About {progress.duration(est)} on this CPU ({student.strip()}, {epochs:g} epoch(s), "
                       f"{len(tasks)} task(s)). For a first try use student `tiny` or set Max steps.")
        if st.button("Launch", type="primary", key="launch"):
            try:
                cfg = TrainConfig(student=student.strip(), method=method, tasks=tasks, weights=weights, schedule=schedule,
                                  lr=lr or None, max_steps=int(max_steps), epochs=float(epochs),
                                  eval_every=int(eval_every), seq_len=int(seq_len),
                                  batch_tokens=int(batch_tokens) or None, grad_accum=int(grad_accum),
                                  patience=int(patience), packing=None if packing else False,
                                  lora=lora, grad_checkpointing=gc, compile=compile_)
                run_id = train_job.submit(conn, cfg, snapshot=snap, device=device)  # validates as the CLI does
                st.session_state["run"] = st.session_state["run_pick"] = run_id  # follow the new run
                settings.remember(st.session_state, "train", FORM + [k for k in st.session_state
                                                                     if str(k).startswith(("tasks_", "w_"))])
                st.success(f"Run {run_id} queued on {device}. It keeps running if you close this tab.")
            except MirrorError as exc:
                st.error(str(exc))

# ---------------------------------------------------------------- runs
runs = jobs.list_runs(conn, "train")
if not runs:
    st.stop()
st.subheader("Runs")


@st.fragment(run_every=3)
def runs_table() -> None:
    rows = jobs.list_runs(conn, "train")
    st.dataframe(pd.DataFrame([{"id": r["id"], "name": r["name"], "status": r["status"], "device": r["device"],
                                "steps": f"{r['progress_done']}/{r['progress_total']}" if r["progress_total"] else "",
                                "progress": r["progress_note"] or "", "created": (r["created_at"] or "")[:19].replace("T", " ")}
                               for r in rows]), hide_index=True, width="stretch")


runs_table()
ids = [r["id"] for r in runs]
if st.session_state.get("run_pick") not in ids:
    st.session_state["run_pick"] = st.session_state["run"] if st.session_state.get("run") in ids else ids[0]
run_id = st.selectbox("Run", ids, key="run_pick",
                      format_func=lambda i: f"{i} · {next(r for r in runs if r['id'] == i)['name'] or ''}")


@st.fragment(run_every=3)
def live(run_id: int) -> None:
    row = jobs.get(conn, run_id)
    st.markdown(f"**Run {run_id}** · {row['status']} · {row['device']}")
    s = progress.run_status(row, first=st.session_state.setdefault("_train_first", {}).setdefault(
        run_id, (time.time(), row["progress_done"])))
    st.progress(min(1.0, s["done"] / s["total"]) if s["total"] else 0.0, text=s["text"])
    if row["error"]:
        st.error(row["error"])
    b1, b2, _ = st.columns([1, 1, 6])
    if row["status"] in ("queued", "running") and b1.button("Stop", key=f"stop_{run_id}"):
        jobs.stop(conn, run_id)
        st.rerun()
    resumable = checkpoints.existing(checkpoints.ckpt_dir(config.run_dir(run_id), "last")) is not None
    if row["status"] in ("failed", "cancelled") and not resumable:
        b2.caption("No checkpoint to resume from: clone it (Launch) with fixed settings.")
    if row["status"] in ("failed", "cancelled") and resumable and b2.button("Resume", key=f"resume_{run_id}"):
        try:
            jobs.resume(conn, run_id)
        except MirrorError as exc:
            st.error(str(exc))
        st.rerun()
    version = tuple(conn.execute("SELECT COUNT(*), MAX(step) FROM metrics WHERE run_id = ? AND key LIKE '%loss%'",
                                 (run_id,)).fetchone())
    if version[0]:
        log_y = st.checkbox("Log scale", key="loss_log")
        st.plotly_chart(loss_figure(config.database_url(), run_id, log_y, version), key=f"curves_{run_id}")
        st.caption("The total is Σ α · task loss over the tasks present in each step's batches, so it dips when "
                   "a batch holds fewer tasks; a two-stage schedule changes the tasks between stages.")
    st.code(jobs.log_tail(row["log_path"], 30), language=None, wrap_lines=True)


live(run_id)
if st.button("Clone this run", key=f"clone_{run_id}", help="Fill the New training run form with this run's settings"):
    st.session_state["_train_clone"] = settings.train_form(store.loads(jobs.get(conn, run_id)["config"]))
    st.rerun()
