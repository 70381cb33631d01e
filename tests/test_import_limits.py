"""Bad input (issue 11, item 13): every CLI input error is one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MIRROR_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "mirror_core", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120)


@pytest.mark.parametrize("args,expect", [
    (["generate", "--dataset", "toy", "--teacher", "fake", "--temperature", "3"],
     "argument --temperature: must be within 0..2, got 3"),
    (["generate", "--dataset", "toy", "--teacher", "fake", "--max-tokens", "0", "--estimate"],
     "argument --max-tokens: must be at least 1, got 0"),
    (["generate", "--dataset", "toy", "--teacher", "fake", "--timeout", "-1", "--estimate"],
     "argument --timeout: must be more than 0, got -1"),
    (["generate", "--dataset", "toy", "--teacher", "fake", "--budget", "-1", "--estimate"],
     "argument --budget: must be at least 0, got -1"),
    (["eval", "--run", "1", "--samples", "0"], "argument --samples: must be at least 1, got 0"),
    (["loop", "elad", "--dataset", "toy", "--teacher", "nope"], "Unknown teacher 'nope'"),
    (["prompts", "edit", "cot", "/nonexistent/prompt.txt"], "No such file or directory: /nonexistent/prompt.txt"),
    (["jobs", "logs", "1", "--lines", "-5"], "argument --lines: must be at least 1, got -5"),
])
def test_cli_input_errors_are_one_line(home, args, expect):
    r = _cli(home, *args)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], r.stderr
    assert "Traceback" not in r.stderr
