"""`python -m mirror_core loop ...`: the interface outside checks use, through a real background job."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from loops_helpers import make_dataset
from mirror_core import cli, store
from conftest import ROOT


def _cli(home, *args, timeout=240):
    env = dict(os.environ, MIRROR_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "mirror_core", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_loop_elad_from_the_cli_waits_and_succeeds(home, conn):
    make_dataset(conn, n_train=3, n_dev=1)
    p = _cli(home, "loop", "elad", "--dataset", "arith", "--student", "tiny", "--teacher", "fake:a",
             "--budget", "2", "--rounds", "1", "--set", "pool=2", "--set", "samples=2", "--set", "eval_limit=1",
             "--set", "max_new_tokens=8", "--set", "train_steps=1", "--wait")
    assert p.returncode == 0, p.stderr
    run = conn.execute("SELECT * FROM runs WHERE kind = 'loop'").fetchone()
    assert run["status"] == "succeeded"
    cfg = json.loads(run["config"])
    assert cfg["teachers"] == ["fake:a"] and cfg["budget"] == 2 and cfg["pool"] == 2
    assert store.loads(run["result"])["calls"] <= 2
    assert conn.execute("SELECT COUNT(*) FROM teacher_calls WHERE run_id = ?", (run["id"],)).fetchone()[0] <= 2


@pytest.mark.parametrize("args,message", [
    (["loop", "mapd", "--dataset", "arith", "--teacher", "fake:a"], "two or more"),
    (["loop", "critic", "--dataset", "nope", "--teacher", "fake"], "Dataset 'nope' does not exist"),
    (["loop", "elad", "--dataset", "arith", "--teacher", "fake", "--set", "bogus=1"], "Unknown ELAD setting"),
])
def test_loop_cli_errors(home, conn, capsys, args, message):
    make_dataset(conn)
    assert cli.main(args) == 1
    assert message in capsys.readouterr().err
    assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
