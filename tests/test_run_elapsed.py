"""A run's time is the time its worker ran, summed over attempts — not finish minus first start, which counts
the hours between a stop and a resume (the two-stage SVAMP run read 5,089 s for 23.5 min of training)."""

from __future__ import annotations

import time

from mirror_core import jobs
from mirror_core.evaluation.runner import run_timing


def test_elapsed_is_the_worker_time_of_a_plain_run(conn, home):
    rid = jobs.submit(conn, "sleep", {"steps": 3, "interval": 0.3})
    row = jobs.wait(conn, rid, timeout_s=60)
    assert row["status"] == "succeeded"
    assert 0.9 <= row["elapsed_s"] < 30 and run_timing(row) == row["elapsed_s"]


def test_a_stopped_and_resumed_run_counts_its_attempts_not_the_gap(conn, home):
    rid = jobs.submit(conn, "sleep", {"steps": 12, "interval": 0.25})
    deadline = time.time() + 60
    while jobs.get(conn, rid)["progress_done"] < 2 and time.time() < deadline:
        time.sleep(0.1)
    jobs.stop(conn, rid)
    first = jobs.wait(conn, rid, timeout_s=60)
    assert first["status"] == "cancelled" and first["elapsed_s"] >= 0.5
    # the resume comes an hour later, as after a session ends
    conn.execute("UPDATE runs SET started_at = '2026-01-01T00:00:00.000+00:00' WHERE id = ?", (rid,))
    jobs.resume(conn, rid)
    row = jobs.wait(conn, rid, timeout_s=60)
    assert row["status"] == "succeeded" and row["progress_done"] == 12
    assert row["elapsed_s"] > first["elapsed_s"] and 12 * 0.25 <= row["elapsed_s"] < 60
    assert run_timing(row) == row["elapsed_s"]


def test_a_run_from_before_the_column_falls_back_to_its_stamps(conn, home):
    rid = jobs.submit(conn, "sleep", {"steps": 1, "interval": 0.01})
    jobs.wait(conn, rid, timeout_s=60)
    conn.execute("UPDATE runs SET elapsed_s = NULL, started_at = '2026-01-01T00:00:00.000+00:00',"
                 " finished_at = '2026-01-01T00:00:42.000+00:00' WHERE id = ?", (rid,))
    assert run_timing(jobs.get(conn, rid)) == 42.0
