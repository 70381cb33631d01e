"""mirror_core.ui.progress.run_status: rate, ETA and heartbeat age from a run row."""

from mirror_core.ui.progress import run_status


def _row(**kw):
    base = {"status": "running", "progress_done": 30, "progress_total": 90, "progress_note": None,
            "started_at": "2026-01-01T00:00:00+00:00", "heartbeat_at": "2026-01-01T00:01:00+00:00"}
    return {**base, **kw}


T0 = 1767225600.0  # 2026-01-01T00:00:00Z


def test_rate_and_eta_from_the_page_observation_then_from_the_start():
    s = run_status(_row(), now=T0 + 60, first=(T0 + 30, 15))
    assert abs(s["rate_per_s"] - 0.5) < 1e-9 and abs(s["eta_s"] - 120) < 1e-6
    assert "30.0/min" in s["text"] and "ETA 2m00s" in s["text"] and "heartbeat 0m00s ago" in s["text"]
    s = run_status(_row(), now=T0 + 60)
    assert abs(s["eta_s"] - 120) < 1e-6


def test_no_progress_yet_says_so_and_a_silent_worker_is_flagged():
    s = run_status(_row(progress_done=0), now=T0 + 300)
    assert s["eta_s"] is None and "rate: measuring" in s["text"]
    assert "heartbeat 4m00s ago — the worker may be stuck" in s["text"]
    assert "ETA" not in run_status(_row(status="succeeded"), now=T0 + 60)["text"]
