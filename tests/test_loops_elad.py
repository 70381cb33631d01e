"""ELAD end to end on CPU: fake teacher, tiny student; rows, budget, curve, resume without repaying."""

from __future__ import annotations

import pytest

from loops_helpers import context, make_dataset, paid_calls, served_lines
from mirror_core import store
from mirror_core.loops import job
from mirror_core.loops import steps as S

CFG = {"loop": "elad", "dataset": "arith", "student": "tiny", "teachers": ["fake:a"], "budget": 4, "rounds": 1,
       "pool": 3, "samples": 2, "eval_limit": 2, "max_new_tokens": 12, "train_steps": 1}


def test_elad_runs_both_arms_within_budget_and_resumes_without_repaying(conn, home, tmp_path, monkeypatch):
    served = tmp_path / "served.log"
    monkeypatch.setenv("MIRROR_FAKE_SERVED_LOG", str(served))
    make_dataset(conn, n_train=5, n_dev=2)
    ctx = context(conn, home, dict(CFG))

    # Kill the loop right after the uncertainty arm's teacher calls were paid, before the step's record.
    real_write = S.write_step

    def crash_on_revise(c, run_id, rnd, step, decision, calls=0):
        if step == "uncertainty/revise":
            raise KeyboardInterrupt("killed")
        return real_write(c, run_id, rnd, step, decision, calls)

    monkeypatch.setattr(S, "write_step", crash_on_revise)
    with pytest.raises(KeyboardInterrupt):
        job.run(ctx)
    paid_before = len(served_lines(served))
    assert paid_before == 2  # B = budget / 2 arms / 1 round
    # the aborted step wrote nothing (its transaction rolled back), but the calls are in the cache
    assert conn.execute("SELECT COUNT(*) FROM rationales WHERE kind = 'revision'").fetchone()[0] == 0
    assert paid_calls(conn, ctx.run_id) == 2

    monkeypatch.setattr(S, "write_step", real_write)
    job.run(ctx)  # resume
    lines = served_lines(served)
    assert len(lines) == len(set(lines)), "a paid request was sent twice"
    # 4 requests issued; one the random arm shares with the uncertainty arm (same question, same student
    # text in round 1) is answered by the cache, so at most 4 were paid
    assert 2 < len(lines) <= 4 and paid_calls(conn, ctx.run_id) == len(lines) <= CFG["budget"]
    assert S.calls_spent(conn, ctx.run_id) == CFG["budget"]

    # rows: sampled student explanations, revisions linked to the student text they correct
    n_student = conn.execute("SELECT COUNT(*) FROM rationales WHERE kind = 'student' AND run_id = ?",
                             (ctx.run_id,)).fetchone()[0]
    assert n_student == 2 * 3 * 2  # 2 arms x 3 questions x 2 samples
    revs = conn.execute("SELECT r.*, p.kind AS parent_kind, p.example_id AS parent_example FROM rationales r"
                        " JOIN rationales p ON p.id = r.parent_id WHERE r.kind = 'revision'").fetchall()
    assert len(revs) >= 3 and all(r["parent_kind"] == "student" and r["parent_example"] == r["example_id"]
                                  for r in revs)
    assert all(r["author"] == "fake:a" and r["call_id"] for r in revs)

    # decisions: uncertainty picks the top scores; every step recorded once
    steps = {(r["round"], r["step"]): r["decision"] for r in S.rounds(conn, ctx.run_id)}
    sel = steps[(1, "uncertainty/select")]
    top = [s["example_id"] for s in sel["scores"][:2]]
    assert [s["example_id"] for s in sel["selected"]] == top
    assert all(0 <= s["score"] <= 1 for s in sel["scores"])
    assert len(steps[(1, "random/select")]["selected"]) == 2
    for arm in ("uncertainty", "random"):
        assert steps[(1, f"{arm}/train")]["items"] >= 1

    result = store.loads(conn.execute("SELECT result FROM runs WHERE id = ?", (ctx.run_id,)).fetchone()[0])
    assert set(result["curve"]) == {"uncertainty", "random"}
    assert [p["calls"] for p in result["curve"]["uncertainty"]] == [0, 2]


def test_elad_config_errors(conn):
    with pytest.raises(S.LoopError, match="teacher"):
        job.validate(None, {"loop": "elad", "dataset": "x", "teachers": []})
    with pytest.raises(S.LoopError, match="Unknown ELAD setting"):
        job.validate(None, {"loop": "elad", "dataset": "x", "teachers": ["fake"], "bugdet": 3})
    with pytest.raises(S.LoopError, match="Unknown loop"):
        job.validate(None, {"loop": "nope"})
