"""`python -m mirror_core import|export|datasets` through a real subprocess: exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cli(home, *args):
    env = {**os.environ, "MIRROR_HOME": str(home)}
    env.pop("DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "mirror_core", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_import_export_datasets(home, tmp_path):
    f = tmp_path / "sums.csv"
    f.write_text("Q,A,S\n" + "".join(f"{i}+{i}?,{2 * i},{'test' if i % 3 == 0 else 'train'}\n" for i in range(30)),
                 encoding="utf-8")
    r = cli(home, "import", str(f), "--question", "Q", "--answer", "A", "--split", "S")
    assert r.returncode == 0, r.stderr
    assert "imported 'sums': 30 examples" in r.stdout
    r = cli(home, "import", str(f), "--question", "Q", "--answer", "A", "--split", "S", "--name", "again")
    assert r.returncode == 0 and "already imported as 'sums'" in r.stdout
    r = cli(home, "datasets", "--json")
    [ds] = json.loads(r.stdout)
    assert ds["name"] == "sums" and ds["counts"]["test"] == 10 and ds["total"] == 30
    assert "sums" in cli(home, "datasets").stdout
    out = tmp_path / "sums_out.jsonl"
    r = cli(home, "export", "sums", "--format", "jsonl", "--out", str(out))
    assert r.returncode == 0 and len(out.read_text().splitlines()) == 30


def test_errors_are_one_line_with_nonzero_exit(home, tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"question": "q", "answer": 1}\n{"question": \n', encoding="utf-8")
    r = cli(home, "import", str(f))
    assert r.returncode != 0
    assert r.stderr.strip().count("\n") == 0
    assert r.stderr.startswith("error: file bad.jsonl, row 2: invalid JSON")
    f.write_text('{"question": "q", "answer": 1}\n', encoding="utf-8")
    r = cli(home, "import", str(f), "--question", "qu")
    assert r.returncode != 0 and "did you mean 'question'" in r.stderr
    r = cli(home, "export", "missing", "--out", str(tmp_path / "m.jsonl"))
    assert r.returncode != 0 and r.stderr.startswith("error: no dataset named 'missing'")


def test_help_for_each_command(home):
    for cmd in ("import", "export", "datasets"):
        r = cli(home, cmd, "--help")
        assert r.returncode == 0 and "usage:" in r.stdout
    assert "gsm_symbolic" in cli(home, "import", "--help").stdout
