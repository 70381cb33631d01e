"""Teacher-as-critic end to end on CPU: fake judge, tiny student, DPO, win rate; resume without repaying."""

from __future__ import annotations

import json

import pytest

from loops_helpers import context, make_dataset, paid_calls, served_lines, use_reviewing_fakes
from mirror_core import store
from mirror_core.loops import critic, job
from mirror_core.loops import steps as S

CFG = {"loop": "critic", "dataset": "arith", "student": "tiny", "teachers": ["fake:judge"], "budget": 12,
       "rounds": 1, "pool": 4, "k": 3, "winrate_limit": 2, "max_new_tokens": 16, "band": [0.5, 2.0],
       "dpo_epochs": 2, "lr": 0.005}


def test_critic_prefers_judges_both_orders_trains_dpo_and_reports_win_rate(conn, home, tmp_path, monkeypatch):
    served = tmp_path / "served.log"
    monkeypatch.setenv("MIRROR_FAKE_SERVED_LOG", str(served))
    use_reviewing_fakes(monkeypatch)
    make_dataset(conn, n_train=4, n_dev=2)
    ctx = context(conn, home, dict(CFG))

    real_write = S.write_step

    def crash_on_judge(c, run_id, rnd, step, decision, calls=0):
        if step == "judge":
            raise KeyboardInterrupt("killed")
        return real_write(c, run_id, rnd, step, decision, calls)

    monkeypatch.setattr(S, "write_step", crash_on_judge)
    with pytest.raises(KeyboardInterrupt):
        job.run(ctx)
    before = len(served_lines(served))
    assert before > 0
    monkeypatch.setattr(S, "write_step", real_write)
    job.run(ctx)
    lines = served_lines(served)
    assert len(lines) == len(set(lines)), "a paid request was sent twice"
    assert paid_calls(conn, ctx.run_id) <= S.calls_spent(conn, ctx.run_id) <= CFG["budget"]

    smp = S.step_record(conn, ctx.run_id, 1, "sample")
    kept = [q for q in smp["questions"] if q["kept"]]
    assert kept and len(kept) <= smp["max_pairs"]
    for q in smp["questions"]:
        if not q["kept"]:
            assert q["reason"]
    prefs = conn.execute("SELECT * FROM preferences WHERE run_id = ?", (ctx.run_id,)).fetchall()
    assert len(prefs) == len(kept)
    for p in prefs:
        d = json.loads(p["detail"])
        assert d["order_ab"]["call_id"] and d["order_ba"]["call_id"] and d["order_ab"]["call_id"] != d["order_ba"]["call_id"]
        j = critic.combine_orders(d["choice_ab"], d["choice_ba"])
        assert bool(p["consistent"]) == j.consistent
        if j.consistent:  # the fake judge prefers the longer text
            assert len(critic.words(p["chosen"])) > len(critic.words(p["rejected"]))
    dp = S.step_record(conn, ctx.run_id, 1, "dpo")
    n_consistent = sum(p["consistent"] for p in prefs)
    assert dp["pairs"] == n_consistent
    assert n_consistent >= 1  # the length-preferring judge agrees with itself whenever lengths differ
    if n_consistent:
        assert dp["steps"] >= 1 and dp["loss_first"] == pytest.approx(0.6931, abs=1e-3)
    wr = S.step_record(conn, ctx.run_id, 1, "winrate")
    assert wr["wins"] + wr["ties"] + wr["losses"] == wr["n"] >= 1
    result = store.loads(conn.execute("SELECT result FROM runs WHERE id = ?", (ctx.run_id,)).fetchone()[0])
    assert result["winrate"][0]["n"] == wr["n"] and result["preferences"] == len(prefs)


def test_critic_config_errors():
    with pytest.raises(S.LoopError, match="band"):
        job.validate(None, {"loop": "critic", "dataset": "x", "teachers": ["fake"], "band": [1.2, 0.8]})
    with pytest.raises(S.LoopError, match="k must"):
        job.validate(None, {"loop": "critic", "dataset": "x", "teachers": ["fake"], "k": 1})
