import json
import os
import signal
import subprocess
import sys
import time

import pytest

from mirror_core import jobs, store
from mirror_core.errors import JobError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(*args, home):
    env = dict(os.environ, MIRROR_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "mirror_core", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)


def test_job_runs_detached_and_succeeds(conn, home):
    rid = jobs.submit(conn, "sleep", {"steps": 3, "interval": 0.05}, home=home)
    row = jobs.wait(conn, rid, poll_s=0.1, timeout_s=60)
    assert row["status"] == "succeeded"
    assert row["progress_done"] == 3 and row["exit_code"] == 0
    assert row["pgid"] == row["pid"]  # its own session and process group
    assert "step 3/3" in jobs.log_tail(row["log_path"])
    assert row["heartbeat_at"] is not None


def test_failure_is_recorded(conn, home):
    rid = jobs.submit(conn, "sleep", {"steps": 1, "interval": 0.01, "fail": True}, home=home)
    row = jobs.wait(conn, rid, poll_s=0.1, timeout_s=60)
    assert row["status"] == "failed" and "asked to fail" in row["error"]


def test_sigkill_marks_failed_with_log_tail_then_resume_finishes(conn, home):
    rid = jobs.submit(conn, "sleep", {"steps": 40, "interval": 0.1}, home=home)
    deadline = time.time() + 30
    # Wait for step 4's progress: the handler logs "step 3/40" right after step 3's progress and before
    # step 4's, so that line is surely in the log when the kill comes.
    while jobs.get(conn, rid)["progress_done"] < 4:
        assert time.time() < deadline
        time.sleep(0.05)
    pid = jobs.get(conn, rid)["pid"]
    os.killpg(jobs.get(conn, rid)["pgid"], signal.SIGKILL)
    time.sleep(0.5)
    jobs.reap(conn)
    row = jobs.get(conn, rid)
    assert row["status"] == "failed"
    assert row["error"].startswith(f"process {pid} is gone without finishing; last log lines:\n")
    assert any(line.endswith("] step 3/40") for line in row["error"].splitlines())  # the log's tail
    done_before = row["progress_done"]
    jobs.resume(conn, rid, home)
    row = jobs.wait(conn, rid, poll_s=0.1, timeout_s=60)
    assert row["status"] == "succeeded" and row["progress_done"] == 40
    # resumed from where it stopped, not from zero
    assert f"step {done_before + 1}/40" in jobs.log_tail(row["log_path"], 100)
    assert "step 1/40" in open(row["log_path"]).read().split("started")[1]


def test_stop_kills_process_group(conn, home):
    rid = jobs.submit(conn, "sleep", {"steps": 1000, "interval": 0.1}, home=home)
    while jobs.get(conn, rid)["status"] != "running":
        time.sleep(0.05)
    pid = jobs.get(conn, rid)["pid"]
    jobs.stop(conn, rid, grace_s=5)
    assert jobs.get(conn, rid)["status"] == "cancelled"
    time.sleep(0.3)
    assert not jobs._alive(pid, rid)


def test_device_queue_runs_one_at_a_time_and_reorders(conn, home):
    if True:
        a = jobs.submit(conn, "sleep-device", {"steps": 10, "interval": 0.1}, home=home, start=False)
        b = jobs.submit(conn, "sleep-device", {"steps": 1, "interval": 0.01}, home=home, start=False)
        c = jobs.submit(conn, "sleep-device", {"steps": 1, "interval": 0.01}, home=home, start=False)
        jobs.move(conn, c, -1)  # c before b
        launched = jobs.start_ready(conn, home)
        assert launched == [a]
        assert jobs.get(conn, b)["status"] == "queued"
        jobs.wait(conn, a, poll_s=0.1, timeout_s=60)
        # the finishing worker launched the next one in queue order: c, then b
        assert jobs.wait(conn, c, poll_s=0.1, timeout_s=60)["status"] == "succeeded"
        assert jobs.wait(conn, b, poll_s=0.1, timeout_s=60)["status"] == "succeeded"
        assert jobs.get(conn, c)["started_at"] < jobs.get(conn, b)["started_at"]


def test_secrets_refused_in_config(conn, home):
    with pytest.raises(JobError, match="secret"):
        jobs.submit(conn, "sleep", {"teacher": {"api_key": "sk-x"}}, home=home)


def test_cli_jobs_list_json_and_status(conn, home):
    rid = jobs.submit(conn, "sleep", {"steps": 1, "interval": 0.01}, home=home)
    jobs.wait(conn, rid, poll_s=0.1, timeout_s=60)
    out = _cli("jobs", "list", "--json", home=home)
    assert out.returncode == 0, out.stderr
    runs = json.loads(out.stdout)
    assert runs[0]["id"] == rid and runs[0]["kind"] == "sleep" and runs[0]["status"] == "succeeded"
    st = json.loads(_cli("status", "--json", home=home).stdout)
    assert st["runs"] == {"succeeded": 1} and st["datasets"] == 0
    bad = _cli("jobs", "stop", "999", home=home)
    assert bad.returncode == 1 and bad.stderr.startswith("error: Run 999 does not exist")


def test_multi_gpu_job_blocks_each_of_its_gpus():
    assert jobs._units("cuda:0,1") == {"cuda:0", "cuda:1"}
    assert jobs._units("cpu") == {"cpu"}
    assert jobs._units("cuda:1") & jobs._units("cuda:0,1")
    assert not jobs._units("cuda:2") & jobs._units("cuda:0,1")


def test_a_device_job_launched_but_not_yet_running_holds_its_device(home, conn):
    # start_ready claims a job (pid -1) and launches it; until its worker starts, the row is still 'queued'.
    # A second submit in that window must not start a second device job (the experiment submits four at once).
    a = jobs.submit(conn, "sleep-device", {"steps": 1, "interval": 0.01}, home=home, start=False)
    conn.execute("UPDATE runs SET pid = -1 WHERE id = ?", (a,))
    b = jobs.submit(conn, "sleep-device", {"steps": 1, "interval": 0.01}, home=home, start=False)
    assert jobs.start_ready(conn, home=home) == []
    assert conn.execute("SELECT status, pid FROM runs WHERE id = ?", (b,)).fetchone()[:] == ("queued", None)
