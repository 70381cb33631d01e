"""Task-type detection on imports with a few non-numeric golds (issue 11.11): a mostly numeric data set is
stopped at its odd golds, named by row, instead of silently becoming free text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mirror_core.data import rows as data_rows
from mirror_core.data.importing import import_source
from mirror_core.errors import DataImportError

ROOT = Path(__file__).resolve().parent.parent


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def db_state(conn):
    return (conn.execute("SELECT COUNT(*) FROM examples").fetchone()[0],
            [tuple(r) for r in conn.execute("SELECT id, name, task_type, content_hash FROM datasets ORDER BY id")])


def numeric_rows(n, odd):
    rows = [{"id": f"q{i}", "question": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(n)]
    for i, value in odd.items():
        rows[i]["answer"] = value
    return rows


@pytest.fixture
def populated(conn, tmp_path):
    import_source(conn, str(write_jsonl(tmp_path / "existing.jsonl", numeric_rows(10, {}))))
    return conn


def test_one_odd_gold_in_a_small_numeric_set_is_named_not_free_text(populated, tmp_path):
    # 4 of 5 golds are numbers: below the old 90% rule this imported silently as free text.
    f = write_jsonl(tmp_path / "small.jsonl", numeric_rows(5, {2: "twelve-ish"}))
    before = db_state(populated)
    with pytest.raises(DataImportError) as e:
        import_source(populated, str(f))
    msg = str(e.value)
    assert msg == ("file small.jsonl, row 3, column 'answer': the gold answer does not parse as numeric: "
                   "'twelve-ish'; 4 of the first 5 golds are numbers, so this looks like a numeric data set. "
                   "Fix the rows, or import the golds as text with --task-type free_text "
                   "(Data page: Task type 'free_text')")
    assert "\n" not in msg
    assert db_state(populated) == before
    # The way out the message names works.
    assert import_source(populated, str(f), task_type="free_text").task_type == "free_text"


def test_several_odd_golds_are_named_with_their_rows(populated, tmp_path):
    odd = {7: "twelve-ish", 12: "NaN", 20: "n/a", 25: "lots"}
    f = write_jsonl(tmp_path / "odd.jsonl", numeric_rows(40, odd))
    before = db_state(populated)
    with pytest.raises(DataImportError, match=r"^file odd.jsonl, row 8, column 'answer': the gold answer does not "
                                              r"parse as numeric: 'twelve-ish' \(also row 13 'NaN', row 21 'n/a' "
                                              r"and 1 more\); 36 of the first 40 golds are numbers.*"
                                              r"--task-type free_text"):
        import_source(populated, str(f))
    assert db_state(populated) == before


def test_explicit_numeric_names_the_rows_even_when_most_golds_are_words(populated, tmp_path):
    rows = [{"question": f"q{i}", "answer": w} for i, w in enumerate(["Paris", "7", "blue", "Nile"])]
    f = write_jsonl(tmp_path / "words.jsonl", rows)
    before = db_state(populated)
    with pytest.raises(DataImportError, match=r"row 1, column 'answer': the gold answer does not parse as "
                                              r"numeric: 'Paris' \(also row 3 'blue', row 4 'Nile'\); the task "
                                              r"type is numeric\. Fix the rows"):
        import_source(populated, str(f), task_type="numeric")
    assert db_state(populated) == before


def test_mostly_words_still_imports_as_free_text(conn, tmp_path):
    # A QA set with a few numeric answers (3 of 8) is free text; no question asked.
    golds = ["Paris", "1969", "blue whale", "Nile", "7", "Mount Everest", "oxygen", "12"]
    f = write_jsonl(tmp_path / "qa.jsonl", [{"question": f"q{i}", "answer": g} for i, g in enumerate(golds)])
    r = import_source(conn, str(f))
    assert (r.task_type, r.rows) == ("free_text", 8)


def test_threshold_is_half_the_sample(conn, tmp_path):
    assert data_rows.MOSTLY_NUMERIC == 0.5
    # Exactly half numbers: asked (ambiguous); one number fewer: free text.
    half = [{"question": f"q{i}", "answer": g} for i, g in enumerate(["1", "2", "red", "green"])]
    with pytest.raises(DataImportError, match=r"row 3, column 'answer'.*2 of the first 4 golds are numbers"):
        import_source(conn, str(write_jsonl(tmp_path / "half.jsonl", half)))
    less = [{"question": f"q{i}", "answer": g} for i, g in enumerate(["1", "red", "green", "blue"])]
    assert import_source(conn, str(write_jsonl(tmp_path / "less.jsonl", less))).task_type == "free_text"


def test_cli_says_it_in_one_line_with_nonzero_exit(home, tmp_path):
    f = write_jsonl(tmp_path / "cli.jsonl", numeric_rows(6, {4: "NaN"}))
    env = {**os.environ, "MIRROR_HOME": str(home)}
    env.pop("DATABASE_URL", None)
    r = subprocess.run([sys.executable, "-m", "mirror_core", "import", str(f)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "row 5" in lines[0] and "'NaN'" in lines[0] and "--task-type free_text" in lines[0]
    r = subprocess.run([sys.executable, "-m", "mirror_core", "import", str(f), "--task-type", "free_text"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "task type free_text" in r.stdout
