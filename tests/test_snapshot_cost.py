"""A snapshot's teacher cost is summed once, when it is frozen: the calls behind its CoTs and their
self-evaluations, each call once. Calls paid after the freeze do not change it; migration m010 sums the
snapshots frozen before it."""

from __future__ import annotations

from mirror_core import snapshots, store
from mirror_core.evaluation import compare
from mirror_core.migrations import migrate
from review_helpers import cots, seeded


def _paid_call(conn, n: int, cost: float) -> int:
    return conn.execute(
        "INSERT INTO teacher_calls (request_hash, provider, model, prompt, params, status, cost_usd, created_at,"
        " updated_at) VALUES (?, 'openai', 'm', 'p', '{}', 'ok', ?, ?, ?)",
        (f"h{n}", cost, store.now(), store.now())).lastrowid


def _pay_for_everything(conn) -> float:
    """A call of its own behind every CoT (1 ¢) and every self-evaluation (0.1 ¢), one call shared by two
    self-evaluations; returns what the calls cost, each counted once."""
    total, n = 0.0, 0
    for r in cots(conn):
        n += 1
        conn.execute("UPDATE rationales SET call_id = ? WHERE id = ?", (_paid_call(conn, n, 0.01), r["id"]))
        total += 0.01
    evals = conn.execute("SELECT id, rationale_id FROM self_evals ORDER BY id").fetchall()
    first = evals[0]
    other = next(e for e in evals if e[1] != first[1])  # of another CoT: it shares the first one's call
    shared = None
    for eid, _ in evals:
        n += 1
        if eid == other[0]:
            continue
        call = _paid_call(conn, n, 0.001)
        shared = shared or call
        conn.execute("UPDATE self_evals SET call_id = ? WHERE id = ?", (call, eid))
        total += 0.001
    conn.execute("UPDATE self_evals SET call_id = ? WHERE id = ?", (shared, other[0]))
    return total


def test_the_cost_is_summed_when_frozen_and_stays(conn):
    seeded(conn, questions=6)
    paid = _pay_for_everything(conn)
    snap = snapshots.create_snapshot(conn, "all-v1", "all")
    assert abs(snapshots.teacher_cost(conn, snap["id"]) - paid) < 1e-9
    assert compare.teacher_cost(conn, snap["id"]) == snapshots.teacher_cost(conn, snap["id"])

    # a call paid after the freeze (a re-evaluation of one of its CoTs) is not part of what it holds
    rid = cots(conn)[0]["id"]
    conn.execute("INSERT INTO self_evals (rationale_id, evaluator, call_id, critique, verdict, confidence, created_at)"
                 " VALUES (?, 'openai:m', ?, 'again', 'correct', 0.9, ?)", (rid, _paid_call(conn, 999, 5.0), store.now()))
    assert abs(snapshots.teacher_cost(conn, snap["id"]) - paid) < 1e-9
    later = snapshots.create_snapshot(conn, "all-v2", "all")
    assert abs(snapshots.teacher_cost(conn, later["id"]) - (paid + 5.0)) < 1e-9


def test_migration_sums_the_snapshots_frozen_before_it(conn):
    seeded(conn, questions=4)
    paid = _pay_for_everything(conn)
    sid = snapshots.create_snapshot(conn, "old", "all")["id"]
    # the database as it was before m010: no table of costs
    conn.execute("DROP TABLE snapshot_costs")
    conn.execute("DELETE FROM _migrations WHERE name = 'm010_snapshot_costs'")
    assert migrate(conn) == ["m010_snapshot_costs"]
    row = conn.execute("SELECT teacher_cost_usd FROM snapshot_costs WHERE snapshot_id = ?", (sid,)).fetchone()
    assert row is not None and abs(row[0] - paid) < 1e-9
