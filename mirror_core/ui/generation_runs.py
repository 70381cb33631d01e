"""Generate's estimate and its runs: what a launch would cost and take, then the run picker, live status,
cost and unanswered requests of the picked run, and Stop / Resume / Retry failed requests."""

from __future__ import annotations

import sqlite3
from typing import Callable

import pandas as pd
import streamlit as st

from mirror_core import jobs, store
from mirror_core.errors import MirrorError
from mirror_core.generation import calls, job as gen_job, pricing
from mirror_core.generation.pipeline import GenConfig
from mirror_core.ui import progress as live


def estimate(conn: sqlite3.Connection, cfg: GenConfig, est: dict) -> None:
    """The estimate's numbers, and a warning when the local teacher would take long on this machine."""
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


def _progress(conn: sqlite3.Connection, run_id: int) -> None:
    row = jobs.get(conn, run_id)
    c1, c2, c3 = st.columns(3)
    c1.metric("Cost so far", f"${pricing.ledger(conn, run_id):.4f}")
    failed = calls.failed_calls(conn, run_id)
    c2.metric("Not answered", len(failed))
    c3.metric("Status", row["status"])
    if failed:
        st.dataframe(pd.DataFrame(failed), hide_index=True, key=f"g_errors_{run_id}")


def _pick(runs: list) -> int:
    """The run picker; it follows a run launched here (g_run) until another is picked."""
    ss = st.session_state
    ids = [r["id"] for r in runs]
    if ss.get("g_run_pick") not in ids:
        ss["g_run_pick"] = ss["g_run"] if ss.get("g_run") in ids else ids[0]
    run_id = st.selectbox("Run", ids, key="g_run_pick",
                          format_func=lambda i: next(f"#{r['id']} {r['name'] or ''} — {r['status']}" for r in runs
                                                     if r["id"] == i))
    if ss.get("g_run") != run_id:
        ss.pop("g_flash", None)  # the launch message was about another run
    return run_id


def _controls(conn: sqlite3.Connection, run_id: int, keys_env: Callable[[], dict[str, str]]) -> None:
    ss = st.session_state
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
            new_id = gen_job.submit(conn, store.loads(row["config"]), name=f"retry of run {run_id}",
                                    keys_env=keys_env())
        except MirrorError as exc:
            st.error(str(exc))
        else:
            ss["g_run"] = ss["g_run_pick"] = new_id
            st.success(f"{n} failed request(s) queued again in run {new_id}; everything else comes from the cache.")


def runs_panel(conn: sqlite3.Connection, keys_env: Callable[[], dict[str, str]]) -> None:
    """Every generation run: pick one, follow it live (refreshing only while it is active), act on it."""
    runs = jobs.list_runs(conn, "generate")
    if not runs:
        return
    st.subheader("Generation runs")
    run_id = _pick(runs)
    live.live_status(conn, run_id, log_lines=20)
    every = 2 if jobs.get(conn, run_id)["status"] in live.ACTIVE else None
    st.fragment(run_every=every)(_progress)(conn, run_id)
    _controls(conn, run_id, keys_env)
