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


# ---------------------------------------------------------------- files past the parser's limits

from mirror_core.data import importing, sources  # noqa: E402
from mirror_core.errors import DataImportError  # noqa: E402

DEEP = 100_000
BIG = "9" * 5001


@pytest.mark.parametrize("name,text,expect", [
    ("nested.jsonl", '{"question":"q","answer":"1"}\n{"question":"q","answer":"1","x":' + "[" * DEEP + "]" * DEEP + "}\n",
     "row 2: the JSON is nested too deeply"),
    ("nested.json", '[{"question":"q","answer":"1","x":' + "[" * DEEP + "]" * DEEP + "}]",
     "the JSON is nested too deeply"),
    ("bigint.jsonl", '{"question":"q","answer":1}\n{"question":"q2","answer":%s}\n' % BIG, "row 2: a value cannot be read"),
    ("bigint.json", '[{"question":"q","answer":1},{"question":"q2","answer":%s}]' % BIG, "a value cannot be read"),
    ("bigstr.jsonl", '{"question":"q","answer":"1"}\n{"question":"q2","answer":"%s"}\n' % BIG,
     "column 'answer': a gold answer cannot be read"),
    ("bigint.csv", "question,answer\nq,1\nq2,%s\n" % BIG, "column 'answer': a gold answer cannot be read"),
])
def test_deep_nesting_and_huge_integers_are_one_line_errors_and_db_unchanged(home, conn, tmp_path, name, text, expect):
    path = tmp_path / name
    path.write_text(text)
    db = home / "mirror.sqlite3"
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = db.read_bytes()
    with pytest.raises(DataImportError) as info:
        importing.import_source(conn, str(path))
    assert expect in str(info.value) and "\n" not in str(info.value)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert db.read_bytes() == before
    r = _cli(home, "import", str(path))
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_gzip_of_blank_lines_says_no_rows_fast(home, conn, tmp_path):
    import gzip
    import time

    path = tmp_path / "blank.jsonl.gz"
    with gzip.open(path, "wb", 9) as f:
        f.write(b"\n" * 50_000_000)
    assert path.stat().st_size < 60_000
    t0 = time.perf_counter()
    with pytest.raises(DataImportError, match="no rows"):
        importing.import_source(conn, str(path))
    assert time.perf_counter() - t0 < 10  # was 124 s


def test_line_and_row_limits_fail_fast_with_the_limit_named(home, conn, tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MAX_LINE_BYTES", 2**20)
    path = tmp_path / "long.jsonl"
    path.write_text('{"question":"q","answer":"1"}\n{"question":"' + "x" * (3 * 2**20) + '","answer":"1"}\n')
    with pytest.raises(DataImportError, match=r"row 2: the line is longer than the limit of 1 MiB"):
        importing.import_source(conn, str(path))
    monkeypatch.setattr(importing, "MAX_ROWS", 3)
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(f'{{"question":"q{i}","answer":"{i}"}}\n' for i in range(5)))
    with pytest.raises(DataImportError, match="more than 3 rows, the limit"):
        importing.import_source(conn, str(path))
    assert conn.execute("SELECT COUNT(*) FROM datasets").fetchone()[0] == 0


def test_uploads_are_stored_by_content_hash_with_a_sane_extension(home, conn):
    a = b'{"question":"q","answer":"1"}\n{"question":"r","answer":"2"}\n'
    b = b'{"question":"s","answer":"3"}\n{"question":"t","answer":"4"}\n'
    long_name = ("x" * 300) + ".jsonl"  # over 255 bytes: was OSError
    p1 = sources.save_upload(long_name, a)
    p2 = sources.save_upload("data.jsonl", b)
    p3 = sources.save_upload("data.jsonl", a)  # same name as p2, other content: was an overwrite
    p4 = sources.save_upload("....jsonl", b)  # was saved as "jsonl", no extension
    assert p1 == p3 and p2 == p4 and p1 != p2
    assert p1.read_bytes() == a and p2.read_bytes() == b
    assert all(p.suffix == ".jsonl" and len(p.name.encode()) < 255 for p in (p1, p2))
    assert importing.import_source(conn, str(p2), name="up").rows == 2
