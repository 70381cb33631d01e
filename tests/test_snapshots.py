"""Snapshots: policies select the right CoTs, items are frozen and hashed, diff, export, CLI."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mirror_core import snapshots
from mirror_core.errors import NotFoundError, SnapshotError
from mirror_core.review import curation
from review_helpers import cots, seeded, verdicts

ROOT = Path(__file__).resolve().parent.parent


def _keys(conn, sid):
    return {r["rationale_id"] for r in snapshots.snapshot_rows(conn, sid)}


def test_policies_select_the_right_cots_and_skip_rejected(conn):
    seeded(conn, questions=15)
    rows = cots(conn)
    rejected = rows[0]["id"]
    accepted = [r["id"] for r in rows[1:4]]
    curation.set_status(conn, rejected, "reject", "bad")
    curation.set_status(conn, accepted, "accept")
    live = [r for r in rows if r["id"] != rejected]

    def majority_correct(rid):
        v = verdicts(conn, rid)
        return v.count("correct") * 2 > len([x for x in v if x])

    want = {
        "all": {r["id"] for r in live},
        "correct": {r["id"] for r in live if r["correct"] == 1},
        "self-eval-correct": {r["id"] for r in live if majority_correct(r["id"])},
        "accepted": set(accepted),
    }
    for policy, ids in want.items():
        snap = snapshots.create_snapshot(conn, f"s-{policy}", policy)
        assert snap["size"] == len(ids)
        assert _keys(conn, snap["id"]) == ids, policy
    assert want["all"] != want["correct"] != want["self-eval-correct"]


def test_items_are_frozen_hashed_and_immutable(conn):
    seeded(conn, questions=6)
    r = cots(conn)[0]
    a = snapshots.create_snapshot(conn, "v1", "all")
    item = next(i for i in snapshots.snapshot_rows(conn, a["id"]) if i["rationale_id"] == r["id"])
    assert item["cot"] == r["text"] and item["answer"] == r["gold"] and item["revision"] == 0
    assert [s["verdict"] for s in item["self_evals"]] == verdicts(conn, r["id"])
    assert set(item["self_evals"][0]) == {"critique", "verdict", "confidence"}
    # same content -> same hash; a later edit does not touch the frozen copy
    b = snapshots.create_snapshot(conn, "v1-again", "all")
    assert b["hash"] == a["hash"] and len(a["hash"]) == 64
    curation.edit_cot(conn, r["id"], "Rewritten.\nThe answer is 3.", expected_revision=0)
    item = next(i for i in snapshots.snapshot_rows(conn, a["id"]) if i["rationale_id"] == r["id"])
    assert item["cot"] == r["text"]
    c = snapshots.create_snapshot(conn, "v2", "all")
    assert c["hash"] != a["hash"]
    assert snapshots.verify(conn, "v1") and snapshots.verify(conn, c["id"])
    # immutable: name reuse refused, updates refused by the database
    with pytest.raises(SnapshotError, match="already exists"):
        snapshots.create_snapshot(conn, "v1", "correct")
    with pytest.raises(sqlite3.DatabaseError, match="frozen"):
        conn.execute("UPDATE snapshot_items SET cot = 'x' WHERE snapshot_id = ?", (a["id"],))
    with pytest.raises(sqlite3.DatabaseError, match="immutable"):
        conn.execute("UPDATE snapshots SET hash = 'x' WHERE id = ?", (a["id"],))
    assert snapshots.get_snapshot(conn, "v1")["size"] == a["size"]
    with pytest.raises(NotFoundError):
        snapshots.get_snapshot(conn, "nope")
    with pytest.raises(SnapshotError, match="unknown policy"):
        snapshots.create_snapshot(conn, "v3", "best")
    with pytest.raises(SnapshotError, match="no CoTs"):
        snapshots.create_snapshot(conn, "v3", "accepted")
    assert [s["name"] for s in snapshots.list_snapshots(conn)] == ["v2", "v1-again", "v1"]


def test_diff_counts(conn):
    seeded(conn, questions=10)
    rows = cots(conn)
    snapshots.create_snapshot(conn, "all", "all")
    snapshots.create_snapshot(conn, "correct", "correct")
    curation.edit_cot(conn, rows[0]["id"], rows[0]["text"] + "\nChecked.", expected_revision=0)
    snapshots.create_snapshot(conn, "all-2", "all")
    d = snapshots.diff_snapshots(conn, "all", "correct")
    n_wrong = sum(r["correct"] == 0 for r in rows)
    assert (d["only_a"], d["only_b"], d["changed"], d["same"]) == (n_wrong, 0, 0, len(rows) - n_wrong)
    d = snapshots.diff_snapshots(conn, "all", "all-2")
    assert (d["only_a"], d["only_b"], d["changed"], d["same"]) == (0, 0, 1, len(rows) - 1)
    assert d["samples"]["changed"][0]["rationale_id"] == rows[0]["id"] and not d["identical"]


def test_export_jsonl_and_datasets(conn, tmp_path):
    import datasets

    seeded(conn, questions=10)
    snap = snapshots.create_snapshot(conn, "ex", "correct")
    n = snapshots.export_jsonl(conn, "ex", tmp_path / "ex.jsonl")
    lines = [json.loads(x) for x in (tmp_path / "ex.jsonl").read_text().splitlines()]
    assert n == len(lines) == snap["size"]
    assert {"question", "answer", "cot", "self_evals", "split", "choices", "task_type"} <= set(lines[0])
    per_split = snapshots.export_datasets(conn, "ex", tmp_path / "ds")
    dd = datasets.load_from_disk(str(tmp_path / "ds"))
    assert sum(per_split.values()) == snap["size"] == sum(len(v) for v in dd.values())
    first = dd[lines[0]["split"]][0]
    assert first["cot"] == lines[0]["cot"] and first["self_evals"][0]["verdict"] == lines[0]["self_evals"][0]["verdict"]


def _cli(home, *args):
    env = dict(os.environ, MIRROR_HOME=str(home), PYTHONPATH=str(ROOT))
    env.pop("DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "mirror_core", "snapshot", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_create_list_diff_export(home, conn, tmp_path):
    seeded(conn, questions=8)
    p = _cli(home, "create", "first", "--policy", "correct")
    assert p.returncode == 0, p.stderr
    snap = snapshots.get_snapshot(conn, "first")
    assert f"size {snap['size']}" in p.stdout and snap["hash"] in p.stdout
    assert _cli(home, "create", "second", "--policy", "all", "--dataset", "seeded").returncode == 0
    dup = _cli(home, "create", "first", "--policy", "all")
    assert dup.returncode == 1 and "already exists" in dup.stderr
    p = _cli(home, "list", "--json")
    assert [s["name"] for s in json.loads(p.stdout)] == ["second", "first"]
    assert "first" in _cli(home, "list").stdout
    p = _cli(home, "diff", "second", "first", "--json")
    d = json.loads(p.stdout)
    assert d["only_b"] == 0 and d["only_a"] == sum(r["correct"] == 0 for r in cots(conn))
    p = _cli(home, "export", "first", "--format", "jsonl", "--out", str(tmp_path / "f.jsonl"))
    assert p.returncode == 0 and len((tmp_path / "f.jsonl").read_text().splitlines()) == snap["size"]
    bad = _cli(home, "create", "x", "--policy", "accepted")
    assert bad.returncode == 1 and "no CoTs match" in bad.stderr
