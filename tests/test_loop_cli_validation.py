"""`loop` refuses a teacher or student that cannot work, in one line, before any job is queued."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT
from loops_helpers import make_dataset
from mirror_core import cli


@pytest.mark.parametrize("args,message", [
    (["--teacher", "bogus:zzz"], "Unknown teacher 'bogus:zzz'"),
    (["--teacher", "run:999"], "Unknown teacher 'run:999'"),
    (["--teacher", "fake", "--student", "no-such/model-xyz"], "not in the local Hugging Face cache"),
    (["--teacher", "fake", "--student", "run:999"], "train run 999 has no checkpoint"),
])
def test_loop_refuses_bad_teacher_or_student(home, conn, capsys, monkeypatch, args, message):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    make_dataset(conn)
    assert cli.main(["loop", "elad", "--dataset", "arith", *args]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


def test_loop_cli_process_exits_non_zero_with_one_line(home, conn):
    make_dataset(conn)
    env = dict(os.environ, MIRROR_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    p = subprocess.run([sys.executable, "-m", "mirror_core", "loop", "mapd", "--dataset", "arith", "--teacher", "fake:a",
                        "--teacher", "fake:b", "--student", "no-such/model-xyz"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    assert p.stderr.startswith("error: Student 'no-such/model-xyz'") and p.stderr.count("\n") == 1, p.stderr
    assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
