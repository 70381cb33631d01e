"""Shared helpers for the review tests: seed a store with plain SQL (see mirror_core.review.seed)."""

from mirror_core.review import seed


def seeded(conn, **kw):
    kw.setdefault("questions", 12)
    return seed.seed(conn, **kw)


def cots(conn):
    """Every CoT row with its example, as dicts (the independent truth the tests compare against)."""
    return [dict(r) for r in conn.execute(
        "SELECT r.*, e.split, e.answer AS gold, e.question FROM rationales r JOIN examples e ON e.id = r.example_id"
        " WHERE r.kind = 'cot' ORDER BY r.id")]


def verdicts(conn, rid):
    return [r[0] for r in conn.execute("SELECT verdict FROM self_evals WHERE rationale_id = ? ORDER BY id", (rid,))]
