"""MAPD end to end on CPU: two fake teachers that review each other, tiny student."""

from __future__ import annotations

import pytest

from loops_helpers import context, make_dataset, paid_calls, served_lines, use_reviewing_fakes
from mirror_core import store
from mirror_core.loops import job, mapd
from mirror_core.loops import peer_review
from mirror_core.loops import steps as S

CFG = {"loop": "mapd", "dataset": "arith", "student": "tiny", "teachers": ["fake:a", "fake:b", "fake:c"],
       "budget": 30, "rounds": 1, "pool": 3, "eval_limit": 2, "max_new_tokens": 12, "train_steps": 1}


def test_mapd_feedback_peer_review_accept_and_budget(conn, home, tmp_path, monkeypatch):
    served = tmp_path / "served.log"
    monkeypatch.setenv("MIRROR_FAKE_SERVED_LOG", str(served))
    use_reviewing_fakes(monkeypatch)
    make_dataset(conn, n_train=4, n_dev=2)
    ctx = context(conn, home, dict(CFG))

    real_write = S.write_step

    def crash_on_review(c, run_id, rnd, step, decision, calls=0):
        if step == "review":
            raise KeyboardInterrupt("killed")
        return real_write(c, run_id, rnd, step, decision, calls)

    monkeypatch.setattr(S, "write_step", crash_on_review)
    with pytest.raises(KeyboardInterrupt):
        job.run(ctx)
    monkeypatch.setattr(S, "write_step", real_write)
    job.run(ctx)
    lines = served_lines(served)
    assert len(lines) == len(set(lines)), "a paid request was sent twice"

    per = mapd.calls_per_mistake(3)
    assert per == 12
    mine = S.step_record(conn, ctx.run_id, 1, "mine")
    n = len(mine["mistakes"])
    assert n == min(mine["n_wrong"], CFG["budget"] // per) == 2  # a random tiny student gets all 3 wrong
    assert S.calls_spent(conn, ctx.run_id) == n * per <= CFG["budget"]
    assert paid_calls(conn, ctx.run_id) <= CFG["budget"]

    def count(kind):
        return conn.execute("SELECT COUNT(*) FROM rationales WHERE kind = ? AND run_id = ?", (kind, ctx.run_id)).fetchone()[0]

    assert count("student") == n and count("feedback") == 3 * n and count("cot") == 3 * n
    # feedback points at the student's wrong rationale
    bad = conn.execute("SELECT COUNT(*) FROM rationales f JOIN rationales s ON s.id = f.parent_id"
                       " WHERE f.kind = 'feedback' AND (s.kind != 'student' OR s.correct != 0)").fetchone()[0]
    assert bad == 0
    # reviews: every rationale is scored by the two OTHER teachers only
    rows = conn.execute("SELECT r.author, v.reviewer, v.score, v.parse_status FROM reviews v"
                        " JOIN rationales r ON r.id = v.rationale_id").fetchall()
    assert len(rows) == 3 * n * 2 and all(r["author"] != r["reviewer"] for r in rows)
    # acceptance follows the rule, and the reason is on the row
    for r in conn.execute("SELECT * FROM rationales WHERE kind = 'cot' AND run_id = ?", (ctx.run_id,)):
        scores = {v["reviewer"]: v["score"] for v in conn.execute("SELECT * FROM reviews WHERE rationale_id = ?", (r["id"],))}
        d = peer_review.decide(r["author"], scores)
        assert r["status"] == ("accepted" if d.accepted else "rejected")
        assert r["status_reason"] == "peer review: " + d.reason
    statuses = {r[0] for r in conn.execute("SELECT status FROM rationales WHERE kind = 'cot'")}
    assert statuses == {"accepted", "rejected"}  # both paths exercised by the hashed scores

    tr = S.step_record(conn, ctx.run_id, 1, "train")
    assert [p["phase"] for p in tr["phases"]] == ["feedback", "rationale"]
    assert tr["feedback_items"] == 3 * n and tr["rationale_items"] == sum(
        1 for r in conn.execute("SELECT 1 FROM rationales WHERE kind = 'cot' AND status = 'accepted'"))
    result = store.loads(conn.execute("SELECT result FROM runs WHERE id = ?", (ctx.run_id,)).fetchone()[0])
    assert result["accepted"] + result["rejected"] == 3 * n and len(result["curve"]) == 2


def test_mapd_needs_two_teachers():
    with pytest.raises(S.LoopError, match="two or more"):
        job.validate(None, {"loop": "mapd", "dataset": "x", "teachers": ["fake:a"]})
    with pytest.raises(S.LoopError, match="two or more"):
        job.validate(None, {"loop": "mapd", "dataset": "x", "teachers": ["fake:a", "fake:a"]})
