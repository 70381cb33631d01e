"""Live status of a run, shared by every page: done/total, rate, ETA, heartbeat age and the last log lines.

`run_status` is plain Python (tested without Streamlit). The rate comes from two observations of the
run's progress (the page keeps the first one it saw), else from progress since the run started.
`live_status` renders it as a fragment that reruns every few seconds only while the run is active, so
an idle tab costs nothing.
"""

from __future__ import annotations

import html
import time
from datetime import datetime, timezone
from typing import Any

from mirror_core import jobs

ACTIVE = ("queued", "running")
STALE_HEARTBEAT_S = 30.0


def _ts(value: str | None) -> float | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s"


def run_status(row: Any, now: float | None = None, first: tuple[float, int] | None = None) -> dict[str, Any]:
    """What to show about a run. `first` = (time, done) seen earlier, for the rate; else since started_at."""
    now = time.time() if now is None else now
    done, total = int(row["progress_done"] or 0), int(row["progress_total"] or 0)
    rate = None
    if first is not None and now > first[0] and done > first[1]:
        rate = (done - first[1]) / (now - first[0])
    else:
        started = _ts(row["started_at"])
        if started and now > started and done:
            rate = done / (now - started)
    eta = (total - done) / rate if rate and total and row["status"] in ACTIVE else None
    beat = _ts(row["heartbeat_at"])
    age = now - beat if beat and row["status"] == "running" else None
    parts = [f"{row['status']}: {done}/{total}" if total else row["status"]]
    if row["status"] in ACTIVE:
        parts.append(f"{rate * 60:.1f}/min" if rate else "rate: measuring…")
        parts.append(f"ETA {duration(eta)}" if eta is not None else "ETA: after the first step")
    if age is not None:
        parts.append(f"heartbeat {duration(age)} ago" + (" — the worker may be stuck" if age > STALE_HEARTBEAT_S else ""))
    if row["progress_note"]:
        parts.append(row["progress_note"])
    return {"done": done, "total": total, "rate_per_s": rate, "eta_s": eta, "heartbeat_age_s": age,
            "text": " · ".join(parts)}


LOG_STYLE = ("font-family: 'Source Code Pro', ui-monospace, monospace; font-size: 0.8rem; line-height: 1.45;"
             " white-space: pre-wrap; overflow-wrap: anywhere; max-height: 24rem; overflow-y: auto; margin: 0;"
             " padding: 0.75rem 1rem; border-radius: 0.5rem; background: rgba(128, 128, 128, 0.09)")


def log_block(container: Any, text: str) -> None:
    """A log tail as preformatted, wrapped, scrollable monospace text. Not st.code: its syntax highlighter
    is a chunk of the frontend that cost ≈ 0.4 s of every page load showing a log here, new tab and reload
    alike (bench/page_load_bench.py); a log needs no highlighting. The text is escaped, never read as HTML."""
    container.html(f'<pre class="mirror-log" style="{LOG_STYLE}">{html.escape(text)}</pre>')


def live_status(conn, run_id: int, *, log_lines: int = 12, every_s: float = 2.0) -> None:
    """Progress bar, rate, ETA, heartbeat and the log tail of one run; follows it while it is active.

    When the run ends the whole page reruns once, so its buttons and tables catch up."""
    import streamlit as st

    row = jobs.get(conn, run_id)
    active = row["status"] in ACTIVE

    @st.fragment(run_every=every_s if active else None)
    def _show() -> None:
        r = jobs.get(conn, run_id)
        seen = st.session_state.setdefault("_progress_first", {})
        first = seen.setdefault(run_id, (time.time(), int(r["progress_done"] or 0)))
        s = run_status(r, first=tuple(first))
        st.progress(min(1.0, s["done"] / s["total"]) if s["total"] else 0.0, text=s["text"])
        if r["error"]:
            st.error(r["error"])
        if r["log_path"]:
            with st.expander("Log (last lines)", expanded=r["status"] in ACTIVE):
                log_block(st, jobs.log_tail(r["log_path"], log_lines))
        if (r["status"] in ACTIVE) != active:
            st.rerun()  # started or ended: let the page redraw its buttons and tables

    _show()


# Measured on this 2-core CPU (docs/BENCHMARKS.md): SmolLM2-135M trains at ~42 tokens/s; the local teacher
# (SmolLM2, batched) writes ~55 tokens/s. A measured rate from past runs in the store wins over these.
CPU_TRAIN_TOKENS_PER_S = {"smollm2": 42.0}
CPU_LOCAL_TEACHER_TOKENS_PER_S = 55.0
WARN_AFTER_S = 300.0


def train_estimate_s(conn, snapshot_id: int, student: str, tasks: list[str], epochs: float, max_steps: int,
                     device: str) -> float | None:
    """Rough seconds a CPU training run takes (None when it is quick or cannot be told): tokens ≈ chars/4."""
    if device != "cpu" or max_steps:
        return None
    rate = conn.execute("SELECT AVG(m.value) FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.kind = 'train'"
                        " AND r.device = 'cpu' AND m.key = 'tokens_per_s' AND json_extract(r.config, '$.student') = ?",
                        (student,)).fetchone()[0] or CPU_TRAIN_TOKENS_PER_S.get(student)
    if not rate:
        return None
    chars = conn.execute("SELECT COALESCE(SUM(LENGTH(question) + LENGTH(COALESCE(cot, ''))), 0) FROM snapshot_items"
                         " WHERE snapshot_id = ? AND split = 'train'", (snapshot_id,)).fetchone()[0]
    return chars / 4 * max(1, len(tasks)) * epochs / rate


def local_teacher_estimate_s(conn, output_tokens: int) -> tuple[float, float]:
    """(seconds, tokens/s) the local teacher needs for `output_tokens` at most, from past local calls."""
    row = conn.execute("SELECT SUM(output_tokens), SUM(latency_s / COALESCE(json_extract(raw, '$.response.batch'), 1))"
                       " FROM teacher_calls WHERE provider = 'local' AND status IN ('ok', 'truncated')").fetchone()
    rate = row[0] / row[1] if row[0] and row[1] else CPU_LOCAL_TEACHER_TOKENS_PER_S
    return output_tokens / rate, rate
