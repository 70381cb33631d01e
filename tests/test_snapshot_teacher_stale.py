"""Snapshots select by teacher from the CLI (issue 11.12) and leave out stale self-evaluations (issue 13.5)."""

import os
import subprocess
import sys
from pathlib import Path

from mirror_core import snapshots, store
from mirror_core.review import curation
from review_helpers import cots, seeded

ROOT = Path(__file__).resolve().parent.parent


def _cli(home, *args):
    env = dict(os.environ, MIRROR_HOME=str(home), PYTHONPATH=str(ROOT))
    env.pop("DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "mirror_core", "snapshot", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def _authors(conn, sid):
    return {r[0] for r in conn.execute("SELECT r.author FROM snapshot_items i JOIN rationales r"
                                       " ON r.id = i.rationale_id WHERE i.snapshot_id = ?", (sid,))}


def test_cli_teacher_selects_only_that_teachers_cots_and_their_self_evals(home, conn):
    seeded(conn, questions=8, teachers=("fake", "openai:gpt-4o-mini"))
    by_fake = [r for r in cots(conn) if r["author"] == "fake"]
    p = _cli(home, "create", "fake-only", "--policy", "all", "--dataset", "seeded", "--teacher", "fake")
    assert p.returncode == 0, p.stderr
    snap = snapshots.get_snapshot(conn, "fake-only")
    assert snap["size"] == len(by_fake) and "teachers fake" in p.stdout
    assert _authors(conn, snap["id"]) == {"fake"}
    assert snap["meta"]["teachers"] == ["fake"]
    # Each frozen CoT carries its own self-evaluations, no one else's.
    n_evals = sum(len(i["self_evals"]) for i in snapshots.snapshot_rows(conn, snap["id"]))
    want = conn.execute("SELECT COUNT(*) FROM self_evals s JOIN rationales r ON r.id = s.rationale_id"
                        " WHERE r.author = 'fake' AND s.verdict IS NOT NULL").fetchone()[0]
    assert n_evals == want > 0
    # A spec with a colon is taken as stored; repeating --teacher takes both.
    p = _cli(home, "create", "both", "--policy", "all", "--teacher", "fake", "--teacher", "openai:gpt-4o-mini")
    assert p.returncode == 0, p.stderr
    assert _authors(conn, snapshots.get_snapshot(conn, "both")["id"]) == {"fake", "openai:gpt-4o-mini"}


def test_cli_unknown_teacher_is_one_line_listing_the_dataset_teachers(home, conn):
    seeded(conn, questions=4, teachers=("fake", "openai:gpt-4o-mini"))
    before = conn.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0]
    p = _cli(home, "create", "x", "--policy", "all", "--dataset", "seeded", "--teacher", "palm")
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "no CoTs by 'palm' in dataset 'seeded'; teachers with CoTs: fake, openai:gpt-4o-mini" in lines[0]
    assert conn.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0] == before


def test_snapshot_leaves_out_self_evals_made_stale_by_an_edit(conn):
    seeded(conn, questions=6, evals_per_cot=2)
    cot = cots(conn)[0]
    old = [dict(r) for r in conn.execute("SELECT * FROM self_evals WHERE rationale_id = ? AND verdict IS NOT NULL",
                                         (cot["id"],))]
    assert len(old) == 2
    curation.edit_cot(conn, cot["id"], cot["text"] + "\nChecked again: the answer stands.",
                      expected_revision=cot["revision"])
    assert curation.stale_count(conn, cot["id"]) == 2
    # A self-evaluation written after the edit judges the text the snapshot holds.
    with store.transaction(conn):
        conn.execute("INSERT INTO self_evals (rationale_id, evaluator, critique, verdict, confidence, created_at)"
                     " VALUES (?, 'fake', 'fresh look at the edited steps', 'correct', 0.8, ?)",
                     (cot["id"], store.now()))
    assert curation.stale_count(conn, cot["id"]) == 2
    snap = snapshots.create_snapshot(conn, "after-edit", "all")
    items = {i["rationale_id"]: i for i in snapshots.snapshot_rows(conn, snap["id"])}
    edited = items[cot["id"]]
    assert edited["revision"] == 1
    assert edited["self_evals"] == [{"critique": "fresh look at the edited steps", "verdict": "correct",
                                     "confidence": 0.8}]
    # Untouched CoTs keep all their (current) self-evaluations.
    other = cots(conn)[1]
    n_other = conn.execute("SELECT COUNT(*) FROM self_evals WHERE rationale_id = ? AND verdict IS NOT NULL",
                           (other["id"],)).fetchone()[0]
    assert len(items[other["id"]]["self_evals"]) == n_other > 0
    assert snapshots.verify(conn, "after-edit")
