"""Train's runs: the live table of every train run, the run picker, and the picked run followed live —
progress, error, Stop / Resume, loss panels and the log tail — with Clone this run.

Both panels are fragments that rerun on their own (every few seconds while a run is active, rarely or not
at all otherwise), so following a run does not redraw the form above them.
"""

from __future__ import annotations

import sqlite3
import time

import pandas as pd
import streamlit as st

from mirror_core import config, jobs, store
from mirror_core.errors import MirrorError
from mirror_core.evaluation import plots
from mirror_core.students import checkpoints
from mirror_core.ui import charts, progress, settings


@st.cache_resource(max_entries=32, show_spinner=False)
def loss_figure(_conn: sqlite3.Connection, url: str, run_id: int, log_y: bool, version: tuple) -> list:
    """The loss panels of a run, built again only when it logged new metrics (`version`): reading the
    metrics and building the charts cost more than the rest of the page. Shared read-only across sessions."""
    return plots.loss_panels({f"run {run_id}": plots.loss_series(_conn, run_id)}, log_y=log_y)


# While a run is queued or running the table and the picked run refresh every few seconds; otherwise the
# table only looks every IDLE_POLL_S for a run launched elsewhere (the CLI, another tab), and the picked
# finished run not at all: each refresh is a script run, and an idle tab should cost nothing.
ACTIVE_POLL_S = 3.0
IDLE_POLL_S = 15.0


def runs_table(conn: sqlite3.Connection) -> None:
    """Every train run, refreshed in place (faster while one is active); the page reruns when one starts or
    ends, so the picker, the buttons and the polling rate catch up."""
    active = _any_active(jobs.list_runs(conn, "train"))
    st.fragment(run_every=ACTIVE_POLL_S if active else IDLE_POLL_S)(_runs_table)(conn, active)


def _any_active(rows: list) -> bool:
    return any(r["status"] in progress.ACTIVE for r in rows)


def _runs_table(conn: sqlite3.Connection, active: bool) -> None:
    rows = jobs.list_runs(conn, "train")
    if _any_active(rows) != active:
        st.rerun()
    st.dataframe(pd.DataFrame([{"id": r["id"], "name": r["name"], "status": r["status"], "device": r["device"],
                                "steps": f"{r['progress_done']}/{r['progress_total']}" if r["progress_total"] else "",
                                "progress": r["progress_note"] or "",
                                "created": (r["created_at"] or "")[:19].replace("T", " ")}
                               for r in rows]), hide_index=True, width="stretch")


def pick_run(runs: list) -> int:
    """The run picker; it follows a run launched on this page (session_state["run"])."""
    ss = st.session_state
    ids = [r["id"] for r in runs]
    if ss.get("run_pick") not in ids:
        ss["run_pick"] = ss["run"] if ss.get("run") in ids else ids[0]
    return st.selectbox("Run", ids, key="run_pick",
                        format_func=lambda i: f"{i} · {next(r for r in runs if r['id'] == i)['name'] or ''}")


def _stop_resume(conn: sqlite3.Connection, row, run_id: int) -> None:
    b1, b2, _ = st.columns([1, 1, 6])
    if row["status"] in ("queued", "running") and b1.button("Stop", key=f"stop_{run_id}"):
        jobs.stop(conn, run_id)
        st.rerun()
    resumable = checkpoints.find(config.run_dir(run_id), checkpoints.LAST) is not None
    if row["status"] in ("failed", "cancelled") and not resumable:
        b2.caption("No checkpoint to resume from: clone it (Launch) with fixed settings.")
    if row["status"] in ("failed", "cancelled") and resumable and b2.button("Resume", key=f"resume_{run_id}"):
        try:
            jobs.resume(conn, run_id)
        except MirrorError as exc:
            st.error(str(exc))
        st.rerun()


def live(conn: sqlite3.Connection, run_id: int) -> None:
    """One run: status line, progress bar (rate from the first observation this session made), controls,
    loss panels once it logged a loss, and its log tail; followed every few seconds while it is active."""
    active = jobs.get(conn, run_id)["status"] in progress.ACTIVE
    st.fragment(run_every=ACTIVE_POLL_S if active else None)(_live)(conn, run_id, active)


def _live(conn: sqlite3.Connection, run_id: int, active: bool) -> None:
    row = jobs.get(conn, run_id)
    if (row["status"] in progress.ACTIVE) != active:
        st.rerun()  # started or ended: the page redraws its buttons and the polling rate
    st.markdown(f"**Run {run_id}** · {row['status']} · {row['device']}")
    s = progress.run_status(row, first=st.session_state.setdefault("_train_first", {}).setdefault(
        run_id, (time.time(), row["progress_done"])))
    st.progress(min(1.0, s["done"] / s["total"]) if s["total"] else 0.0, text=s["text"])
    if row["error"]:
        st.error(row["error"])
    _stop_resume(conn, row, run_id)
    version = plots.loss_version(conn, run_id)
    if version[0]:
        c1, c2, _ = st.columns([1, 2, 3])
        log_y = c1.checkbox("Log scale", key="loss_log")
        live = charts.interactive(c2, key="loss_interactive")
        charts.build(st, loss_figure, config.database_url(), run_id, log_y, version, conn=conn, key=f"curves_{run_id}",
                     live=live)
        charts.loss_caption(st, live)
    progress.log_block(st, jobs.log_tail(row["log_path"], 30))


def clone_button(conn: sqlite3.Connection, run_id: int) -> None:
    """Fill the New training run form with a run's settings (applied before the widgets on the rerun)."""
    if st.button("Clone this run", key=f"clone_{run_id}", help="Fill the New training run form with this run's settings"):
        st.session_state["_train_clone"] = settings.train_form(store.loads(jobs.get(conn, run_id)["config"]))
        st.session_state["_train_clone"]["train_form_open"] = True  # show the form it filled
        st.rerun()
