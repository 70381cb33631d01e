"""Train's New training run form: snapshot, student, method, tasks and their weights, schedule,
hyperparameters (help from TrainConfig's fields), GPUs, a CPU-time warning, and Launch.

Launch builds a TrainConfig and hands it to training.job.submit, which validates it as the CLI does.
The settings of a launch are remembered (ui.settings) so a new tab starts from them.
"""

from __future__ import annotations

import sqlite3

import streamlit as st

from mirror_core import config, device as device_info, snapshots
from mirror_core.errors import MirrorError
from mirror_core.training import job as train_job
from mirror_core.training.config import METHODS, SCHEDULES, TASKS, TrainConfig
from mirror_core.ui import progress, settings

FORM = ["student", "method", "schedule", "lr", "max_steps", "epochs", "eval_every", "seq_len", "batch_tokens",
        "grad_accum", "patience", "packing", "lora", "gc", "compile"]
FORM_PREFIXES = ("tasks_", "w_")  # the tasks and weights of each method


@st.cache_resource
def gpu_names() -> list[str]:
    """GPUs the driver lists (none on a CPU box), read without importing torch into the app's process."""
    return device_info.gpu_names()


@st.cache_data(ttl=60, show_spinner=False)
def train_estimate_s(_conn: sqlite3.Connection, url: str, snap_id: int, student: str, tasks: tuple, epochs: float,
                     max_steps: int, device: str) -> float | None:
    """progress.train_estimate_s, kept a minute per project (url): it sums a snapshot's text, which costs on
    a large one. `_conn` is left out of the cache key."""
    return progress.train_estimate_s(_conn, snap_id, student, list(tasks), epochs, max_steps, device)


def _hyperparameters(help_: dict[str, str]) -> dict:
    """The Hyperparameters expander, as TrainConfig keyword arguments."""
    with st.expander("Hyperparameters (blank or 0 = sized to the student)"):
        h1, h2, h3, h4 = st.columns(4)
        lr = h1.number_input("Learning rate (0 = auto)", 0.0, 1.0, 0.0, format="%.6f", help=help_["lr"], key="lr")
        max_steps = h2.number_input("Max steps per stage (0 = epochs)", 0, 10_000_000, 0, help=help_["max_steps"],
                                    key="max_steps")
        epochs = h3.number_input("Epochs", 0.1, 1000.0, 3.0, help=help_["epochs"], key="epochs")
        eval_every = h4.number_input("Eval every", 0, 100_000, 50, help=help_["eval_every"], key="eval_every")
        seq_len = h1.number_input("Sequence length", 16, 32768, 1024, help=help_["seq_len"], key="seq_len")
        batch_tokens = h2.number_input("Tokens per micro-batch (0 = auto)", 0, 1 << 24, 0, help=help_["batch_tokens"],
                                       key="batch_tokens")
        grad_accum = h3.number_input("Gradient accumulation", 1, 1024, 1, help=help_["grad_accum"], key="grad_accum")
        patience = h4.number_input("Early-stopping patience", 0, 1000, 3, help=help_["patience"], key="patience")
        packing = h1.checkbox("Packing (causal students)", True, help=help_["packing"], key="packing")
        lora = h2.checkbox("LoRA", False, help=help_["lora"], key="lora")
        gc = h3.checkbox("Gradient checkpointing", False, help=help_["grad_checkpointing"], key="gc")
        compile_ = h4.checkbox("torch.compile", False, help=help_["compile"], key="compile")
    return dict(lr=lr or None, max_steps=int(max_steps), epochs=float(epochs), eval_every=int(eval_every),
                seq_len=int(seq_len), batch_tokens=int(batch_tokens) or None, grad_accum=int(grad_accum),
                patience=int(patience), packing=None if packing else False, lora=lora, grad_checkpointing=gc,
                compile=compile_)


def _device() -> str:
    gpus = gpu_names()
    if not gpus:
        st.caption("No GPU visible to torch: training runs on the CPU.")
        return "cpu"
    picked = st.multiselect("GPUs (several → DDP under torchrun)", list(range(len(gpus))), default=[0],
                            format_func=lambda i: f"cuda:{i} · {gpus[i]}", key="gpus")
    return "cuda:" + ",".join(map(str, picked)) if picked else "cpu"


def new_run_form(conn: sqlite3.Connection, snaps: list[dict]) -> None:
    """The form's widgets and Launch; a launched run becomes the one the page follows (run, run_pick)."""
    ss = st.session_state
    help_ = TrainConfig.help()
    c1, c2, c3 = st.columns(3)
    snap = c1.selectbox("Snapshot", [s["name"] for s in snaps], key="snapshot")
    snap_id = next(s["id"] for s in snaps if s["name"] == snap)
    if not snapshots.has_split(conn, snap_id, "dev"):
        st.warning("This snapshot has no dev items, so training has no dev loss, no best checkpoint and no "
                   "early stopping. Generate CoTs for the dev split too, then freeze a new snapshot.")
    student = c2.text_input("Student", "smollm2", help=help_["student"], key="student").strip()
    method = c3.selectbox("Method", list(METHODS), help=help_["method"], key="method")
    tasks = st.multiselect("Tasks", list(TASKS), default=list(METHODS[method]), key=f"tasks_{method}")
    wcols = st.columns(max(1, len(tasks)))
    weights = {t: wcols[i].number_input(f"α {t}", 0.05, 10.0, float(METHODS[method].get(t, 0.5)), 0.05,
                                        key=f"w_{method}_{t}") for i, t in enumerate(tasks)}
    schedule = st.radio("Schedule", SCHEDULES, horizontal=True, help=help_["schedule"], key="schedule")
    hyper = _hyperparameters(help_)
    device = _device()
    est = train_estimate_s(conn, config.database_url(), snap_id, student, tuple(tasks), hyper["epochs"],
                           hyper["max_steps"], device)
    if est and est > progress.WARN_AFTER_S:
        st.warning(f"About {progress.duration(est)} on this CPU ({student}, {hyper['epochs']:g} epoch(s), "
                   f"{len(tasks)} task(s)). For a first try use student `tiny` or set Max steps.")
    if st.button("Launch", type="primary", key="launch"):
        try:
            cfg = TrainConfig(student=student, method=method, tasks=tasks, weights=weights, schedule=schedule, **hyper)
            run_id = train_job.submit(conn, cfg, snapshot=snap, device=device)  # validates as the CLI does
            ss["run"] = ss["run_pick"] = run_id  # follow the new run
            settings.remember(ss, "train", FORM + [k for k in ss if str(k).startswith(FORM_PREFIXES)])
            st.success(f"Run {run_id} queued on {device}. It keeps running if you close this tab.")
        except MirrorError as exc:
            st.error(str(exc))
