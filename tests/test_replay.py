"""Replay teachers (issue 11, items 4, 5, 6 and 12's file format): the file is the source of truth per
slot, all of it is taken unless told otherwise, and bad files fail with a sentence naming the row."""

from __future__ import annotations

import gzip
import json

import pytest

from mirror_core import store
from mirror_core.errors import DataImportError
from mirror_core.generation import pipeline
from mirror_core.teachers.registry import make_teacher
from mirror_core.teachers.replay import ReplayTeacher, read_replay


def _dataset(conn, n=2, name="toy"):
    conn.execute("INSERT INTO datasets (name, source, task_type, content_hash, created_at) VALUES (?,?,?,?,?)",
                 (name, "test", "numeric", "h", store.now()))
    ds = conn.execute("SELECT id FROM datasets WHERE name = ?", (name,)).fetchone()[0]
    for i in range(n):
        conn.execute("INSERT INTO examples (dataset_id, ext_id, split, question, answer, task_type)"
                     " VALUES (?, ?, 'train', ?, ?, 'numeric')", (ds, f"q{i}", f"What is {i} + {i + 1}?", str(2 * i + 1)))


def _rows(n_q=2, n_cots=5, n_evals=5):
    out = []
    for q in range(n_q):
        out.append({"id": f"q{q}", "cots": [f"Try {c}. The answer is {2 * q + 1 if c % 2 == 0 else 0}."
                                            for c in range(n_cots)],
                    "self_evals": [[{"critique": f"Check {c}.{e}", "verdict": "correct" if e % 2 == 0 else "wrong",
                                     "confidence": 0.5 + e / 20} for e in range(n_evals)] for c in range(n_cots)]})
    return out


def _write(path, rows, teacher=None):
    if teacher:
        rows = [{**r, "teacher": teacher} for r in rows]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def _run(conn, path, **kw):
    cfg = pipeline.GenConfig(dataset="toy", teachers=[f"replay:{path}"], **kw)
    logs = []
    summary = pipeline.run(conn, cfg, [make_teacher(cfg.teachers[0])], log=logs.append)
    return summary, logs


def _count(conn, table):
    return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


# ---------------------------------------------------------------- item 4

def test_editing_one_output_changes_only_that_output(conn, tmp_path):
    _dataset(conn)
    rows = _rows()
    path = _write(tmp_path / "palm.jsonl", rows)
    _run(conn, path)
    assert (_count(conn, "rationales"), _count(conn, "self_evals")) == (10, 50)
    before = {(r["example_id"], r["sample_index"]): (r["id"], r["text"]) for r in conn.execute("SELECT * FROM rationales")}
    evals_before = {r["id"]: r["critique"] for r in conn.execute("SELECT * FROM self_evals")}

    rows[1]["cots"][3] = "Edited. The answer is 3."
    rows[0]["self_evals"][2][4] = {"critique": "Edited critique.", "verdict": "uncertain", "confidence": 0.4}
    _write(path, rows)
    summary, _ = _run(conn, path)
    assert (_count(conn, "rationales"), _count(conn, "self_evals")) == (10, 50)
    after = {(r["example_id"], r["sample_index"]): (r["id"], r["text"]) for r in conn.execute("SELECT * FROM rationales")}
    changed = [k for k in before if before[k] != after[k]]
    assert len(changed) == 1 and after[changed[0]][1] == "Edited. The answer is 3."
    assert after[changed[0]][0] == before[changed[0]][0]  # the same row, so reviews and snapshots still point at it
    # only the edited CoT's 5 evaluations (they quote its text) and the one edited evaluation are new requests
    assert summary["cots"]["sent"] == 1 and summary["self_evals"]["sent"] == 6
    edited = conn.execute("SELECT * FROM self_evals WHERE critique = 'Edited critique.'").fetchall()
    assert [(e["verdict"], e["confidence"]) for e in edited] == [("uncertain", 0.4)]
    evals_after = {r["id"]: r["critique"] for r in conn.execute("SELECT * FROM self_evals")}
    assert sum(1 for i, c in evals_before.items() if evals_after.get(i) != c) == 1 + 5


# ---------------------------------------------------------------- item 5

def test_replay_takes_all_it_holds_unless_told_and_says_what_it_skipped(conn, tmp_path):
    _dataset(conn)
    path = _write(tmp_path / "palm.jsonl", _rows())
    summary, logs = _run(conn, path)  # no n_cots / k_evals given
    assert (_count(conn, "rationales"), _count(conn, "self_evals")) == (10, 50)
    cov = summary["replay"][f"replay:{path}"]
    assert (cov["cots_taken"], cov["cots_skipped"], cov["self_evals_taken"], cov["self_evals_skipped"]) == (10, 0, 50, 0)

    conn.execute("DELETE FROM self_evals")
    conn.execute("DELETE FROM rationales")
    conn.execute("DELETE FROM teacher_calls")
    summary, logs = _run(conn, path, n_cots=3, k_evals=2)
    assert (_count(conn, "rationales"), _count(conn, "self_evals")) == (6, 12)
    cov = summary["replay"][f"replay:{path}"]
    assert (cov["cots_skipped"], cov["self_evals_skipped"]) == (4, 50 - 12)
    assert any("skipped 4 CoTs and 38 self-evaluations" in line for line in logs)


# ---------------------------------------------------------------- item 6

def test_replay_ids_matching_no_question_is_an_error_naming_them(conn, tmp_path):
    _dataset(conn)
    path = _write(tmp_path / "other.jsonl", [{"id": "gsm-17", "cot": "The answer is 3."},
                                             {"id": "gsm-18", "cot": "The answer is 4."}])
    with pytest.raises(DataImportError, match="none of the 2 question ids.*'gsm-17', 'gsm-18'.*'q0', 'q1'"):
        _run(conn, path)
    assert _count(conn, "teacher_calls") == 0


def test_a_null_cot_is_an_error_naming_the_row(tmp_path):
    path = _write(tmp_path / "bad.jsonl", [{"id": "q0", "cots": ["fine"]}, {"id": "q1", "cots": ["ok", None]}])
    with pytest.raises(DataImportError, match=r"row 2.*CoT #2 of question 'q1' is null"):
        ReplayTeacher(str(path))


def test_json_lines_named_json_and_gzip_are_read(tmp_path):
    rows = [{"id": "q0", "cots": ["a"]}, {"id": "q1", "cots": ["b"]}]
    named_json = _write(tmp_path / "out.json", rows)
    assert sorted(ReplayTeacher(str(named_json)).data) == ["q0", "q1"]
    gz = tmp_path / "out.jsonl.gz"
    gz.write_bytes(gzip.compress(named_json.read_bytes()))
    assert sorted(ReplayTeacher(str(gz)).data) == ["q0", "q1"]
    one_line = _write(tmp_path / "one.jsonl", rows[:1])
    assert ReplayTeacher(str(one_line)).data["q0"]["cots"] == ["a"]


def test_a_self_evaluation_object_keeps_its_critique_as_written(conn, tmp_path):
    _dataset(conn, n=1)
    path = _write(tmp_path / "o.jsonl", [{"id": "q0", "cots": ["The answer is 1."],
                                          "self_evals": [[{"critique": "Right.", "verdict": "correct", "confidence": 0.9},
                                                          "Looks wrong.\nEvaluation result: the given answer is wrong"]]}])
    _run(conn, path)
    got = [tuple(r) for r in conn.execute("SELECT critique, verdict, confidence, parse_status FROM self_evals ORDER BY sample_index")]
    assert got == [("Right.", "correct", 0.9, "ok"),
                   ("Looks wrong.\nEvaluation result: the given answer is wrong", "wrong", None, "ok")]


# ---------------------------------------------------------------- item 12 (the file side)

def test_replay_file_names_its_teacher_and_holds_feedback_and_reviews(conn, tmp_path):
    _dataset(conn, n=1)
    path = _write(tmp_path / "t.jsonl",
                  [{"id": "q0", "cots": ["The answer is 1."], "feedback": "You added wrong.",
                    "reviews": {"Other": {"score": 4, "text": "Clear."}, "Third": 2}}], teacher="PaLM 540B")
    name, data = read_replay(path)
    assert name == "PaLM 540B"
    assert data["q0"]["feedback"] == ["You added wrong."]
    assert data["q0"]["reviews"] == {"Other": [{"text": "Clear.", "score": 4}], "Third": [{"text": "", "score": 2}]}
    _run(conn, path)
    assert {r[0] for r in conn.execute("SELECT author FROM rationales")} == {"replay:PaLM 540B"}
    t = ReplayTeacher(path=None, data=data, name="PaLM 540B")
    assert t.spec == "replay:PaLM 540B" and t.samples_available({"purpose": "feedback", "ext_id": "q0"}) == 1
    bad = _write(tmp_path / "two.jsonl", [{"id": "q0", "cot": "a", "teacher": "A"}, {"id": "q1", "cot": "b", "teacher": "B"}])
    with pytest.raises(DataImportError, match="one replay file holds one teacher"):
        read_replay(bad)


def test_snapshot_selects_by_teacher(conn, tmp_path):
    from mirror_core import snapshots
    from mirror_core.errors import SnapshotError

    _dataset(conn)
    a = _write(tmp_path / "a.jsonl", _rows(n_cots=2, n_evals=1), teacher="A")
    b = _write(tmp_path / "b.jsonl", _rows(n_cots=3, n_evals=1), teacher="B")
    cfg = pipeline.GenConfig(dataset="toy", teachers=[f"replay:{a}", f"replay:{b}"])
    pipeline.run(conn, cfg, [make_teacher(t) for t in cfg.teachers], log=lambda m: None)
    assert snapshots.preview_counts(conn, "toy", teachers=["replay:B"])["all"] == 6
    snap = snapshots.create_snapshot(conn, "b-only", "all", "toy", teachers=["replay:B"])
    assert snap["size"] == 6
    authors = {r[0] for r in conn.execute("SELECT r.author FROM snapshot_items i JOIN rationales r"
                                          " ON r.id = i.rationale_id WHERE i.snapshot_id = ?", (snap["id"],))}
    assert authors == {"replay:B"}
    assert snapshots.get_snapshot(conn, "b-only")["meta"]["teachers"] == ["replay:B"]
    with pytest.raises(SnapshotError, match="no CoTs by 'replay:C'.*replay:A, replay:B"):
        snapshots.create_snapshot(conn, "c", "all", "toy", teachers=["replay:C"])


def test_mapd_runs_on_replayed_teachers(conn, home, tmp_path):
    """FAIR-style data: each teacher's rationale, its feedback on a mistake and its scores of the others."""
    from loops_helpers import context, make_dataset
    from mirror_core.loops import job
    from mirror_core.loops import steps as S

    make_dataset(conn, n_train=3, n_dev=2)
    golds = {f"q{i}": str((2 + i) + (3 + 2 * i)) for i in range(3)}

    def rows(me, other, score):
        return [{"id": q, "cots": [f"{me} adds the numbers.\nThe answer is {g}."],
                 "feedback": f"{me}: the student added wrong; the sum is {g}.", "reviews": {other: score}}
                for q, g in golds.items()]

    a = _write(tmp_path / "a.jsonl", rows("A", "B", 4), teacher="A")
    b = _write(tmp_path / "b.jsonl", rows("B", "A", 2), teacher="B")
    cfg = {"loop": "mapd", "dataset": "arith", "student": "tiny", "teachers": [f"replay:{a}", f"replay:{b}"],
           "budget": 30, "rounds": 1, "pool": 3, "eval_limit": 2, "max_new_tokens": 8, "train_steps": 1}
    ctx = context(conn, home, cfg)
    job.run(ctx)
    mine = S.step_record(conn, ctx.run_id, 1, "mine")
    n = len(mine["mistakes"])
    assert n == 3  # a random tiny student gets every question wrong
    assert conn.execute("SELECT COUNT(*) FROM teacher_calls WHERE status != 'ok'").fetchone()[0] == 0
    fb = conn.execute("SELECT author, text FROM rationales WHERE kind = 'feedback'").fetchall()
    assert sorted(r["author"] for r in fb) == ["replay:A"] * 3 + ["replay:B"] * 3
    reviews = {(r["author"], r["reviewer"], r["score"]) for r in conn.execute(
        "SELECT r.author, v.reviewer, v.score FROM reviews v JOIN rationales r ON r.id = v.rationale_id")}
    assert reviews == {("replay:B", "replay:A", 4), ("replay:A", "replay:B", 2)}
    status = {(r[0], r[1]) for r in conn.execute("SELECT author, status FROM rationales WHERE kind = 'cot'")}
    assert status == {("replay:B", "accepted"), ("replay:A", "rejected")}
    assert S.step_record(conn, ctx.run_id, 1, "train")["rationale_items"] == 3
