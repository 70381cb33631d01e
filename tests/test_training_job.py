"""Training as a background job: the CLI, SIGKILL then resume, and a 2-process DDP run on CPU (gloo)."""

import json
import os
import signal
import time

from mirror_core import cli, jobs, store
from mirror_core.students import checkpoints
from training_fixtures import make_snapshot


def _wait_for(pred, timeout=120.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def test_cli_train_wait_logs_metrics_and_lists_the_run(conn, home, capsys):
    make_snapshot(conn, "snap", n_train=6, n_dev=2)
    rc = cli.main(["train", "--snapshot", "snap", "--student", "tiny", "--max-steps", "3", "--batch-tokens", "512", "--seq-len", "256",
                   "--eval-every", "3", "--method", "step-by-step", "--wait"])
    assert rc == 0, capsys.readouterr().err
    run = jobs.list_runs(conn, "train")[0]
    assert run["status"] == "succeeded" and run["progress_done"] == 3 and "ETA" in run["progress_note"]
    keys = {r["key"] for r in conn.execute("SELECT key FROM metrics WHERE run_id = ?", (run["id"],))}
    assert {"loss/answer", "loss/cot", "loss", "lr", "tokens_per_s", "mem", "dev/loss"} <= keys
    assert store.loads(run["result"])["global_step"] == 3
    assert checkpoints.existing(checkpoints.ckpt_dir(home / "runs" / f"run-{run['id']:05d}", "best"))
    capsys.readouterr()
    assert cli.main(["jobs", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["id"] == run["id"] and listed[0]["kind"] == "train" and listed[0]["status"] == "succeeded"


def test_bad_snapshot_or_option_is_a_one_line_error(conn, home, capsys):
    assert cli.main(["train", "--snapshot", "nope", "--student", "tiny"]) == 1
    assert "snapshot 'nope' does not exist" in capsys.readouterr().err
    make_snapshot(conn, "s2", n_train=2, n_dev=0)
    assert cli.main(["train", "--snapshot", "s2", "--tasks", "answer,poem"]) == 1
    assert "not valid" in capsys.readouterr().err


def test_sigkill_mid_run_fails_with_log_tail_and_resume_finishes(conn, home):
    from mirror_core.training.config import TrainConfig

    sid = make_snapshot(conn, "snap", n_train=6, n_dev=2)
    cfg = TrainConfig(student="tiny", max_steps=12, seq_len=256, batch_tokens=256, eval_every=3, method="answer-only")
    run_id = jobs.submit(conn, "train", cfg.to_dict(), snapshot_id=sid)
    last = home / "runs" / f"run-{run_id:05d}" / "checkpoints" / "last"
    _wait_for(lambda: (last / "trainer_state.pt").exists() and jobs.get(conn, run_id)["progress_done"] >= 2)
    row = jobs.get(conn, run_id)
    assert row["status"] == "running"
    os.kill(row["pid"], signal.SIGKILL)
    _wait_for(lambda: jobs.reap(conn) or jobs.get(conn, run_id)["status"] == "failed", 30)
    row = jobs.get(conn, run_id)
    assert row["status"] == "failed" and "is gone without finishing" in row["error"]
    # The log's tail is in the error: the runner's first line and the loop's line naming the student.
    assert f"job {run_id} (train) started" in row["error"] and "] student tiny (causal)" in row["error"]
    killed_at = checkpoints.load_trainer_state(last)["global_step"]

    jobs.resume(conn, run_id)
    final = jobs.wait(conn, run_id, timeout_s=240)
    assert final["status"] == "succeeded", jobs.log_tail(final["log_path"])
    log = open(final["log_path"]).read()
    assert f"resuming from {last}" in log and f"(global step {killed_at})" in log
    assert store.loads(final["result"])["global_step"] == 12


def test_two_process_ddp_run_on_cpu_with_gloo(conn, home):
    from mirror_core.training.config import TrainConfig

    sid = make_snapshot(conn, "snap", n_train=6, n_dev=2)
    cfg = TrainConfig(student="tiny", max_steps=2, seq_len=256, batch_tokens=256, eval_every=2, nproc=2,
                      method="answer-only")
    run_id = jobs.submit(conn, "train", cfg.to_dict(), snapshot_id=sid)
    final = jobs.wait(conn, run_id, timeout_s=240)
    log = jobs.log_tail(final["log_path"], 200)
    assert final["status"] == "succeeded", log
    assert "torch.distributed.run" in log and "rank 0 of 2 (gloo)" in log
    res = store.loads(final["result"])
    assert res["world"] == 2 and res["ranks_in_sync"] is True and res["global_step"] == 2
