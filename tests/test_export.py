"""Export to JSONL and a `datasets` folder; both import back to identical content."""

from __future__ import annotations

import json

import pytest

from mirror_core import store
from mirror_core.data.export import export
from mirror_core.data.importing import import_source
from mirror_core.errors import NotFoundError


def rows_of(conn, name):
    ds = conn.execute("SELECT id FROM datasets WHERE name = ?", (name,)).fetchone()["id"]
    return sorted(
        (r["ext_id"], r["split"], r["question"], r["choices"], r["answer"], r["rationale"], r["task_type"],
         json.dumps(store.loads(r["meta"]), sort_keys=True))
        for r in conn.execute("SELECT * FROM examples WHERE dataset_id = ?", (ds,)))


@pytest.fixture
def mc_conn(conn, tmp_path):
    rows = [{"id": f"m{i}", "question": f"Which {i}?", "choices": ["red", "green", "blue"], "answer": i % 3,
             "rationale": None if i % 4 else f"because {i}", "topic": "colours"} for i in range(40)]
    f = tmp_path / "colours.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    import_source(conn, str(f))  # no split column: seeded 80/10/10
    return conn


@pytest.mark.parametrize("fmt", ["jsonl", "datasets"])
def test_round_trip(mc_conn, tmp_path, fmt, monkeypatch):
    out = tmp_path / ("out.jsonl" if fmt == "jsonl" else "out_ds")
    assert export(mc_conn, "colours", fmt, out) == 40
    # Into the same project: recognised as already there.
    again = import_source(mc_conn, str(out))
    assert again.already_imported and again.name == "colours"
    # Into a fresh project: identical rows, same content hash.
    other = tmp_path / "other_home"
    other.mkdir()
    c2 = store.connect(other)
    r = import_source(c2, str(out), name="colours")
    assert not r.already_imported
    assert rows_of(c2, "colours") == rows_of(mc_conn, "colours")
    h1 = mc_conn.execute("SELECT content_hash FROM datasets").fetchone()[0]
    assert r.content_hash == h1


def test_round_trip_of_carved_builtin(conn, tmp_path):
    import_source(conn, "gsm8k")
    export(conn, "gsm8k", "jsonl", tmp_path / "g.jsonl")
    first = json.loads((tmp_path / "g.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"id", "split", "question", "choices", "answer", "rationale", "task_type", "meta"}
    assert import_source(conn, str(tmp_path / "g.jsonl")).already_imported


def test_export_unknown_dataset(conn, tmp_path):
    with pytest.raises(NotFoundError, match="no dataset named 'nope'"):
        export(conn, "nope", "jsonl", tmp_path / "x.jsonl")
