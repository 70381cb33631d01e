"""Prices per model (USD per million tokens, editable in `price_table`), estimates and the run ledger.

The defaults below are list prices at the time of writing, seeded once; edit them with `set_price` or on
the Generate page when they change. Models without a price cost 0 and the estimate names them, so a
budget cap is never silently meaningless. The ledger of a run is what its HTTP attempts may have been
billed (`call_attempts`; see `ledger`): cached answers cost nothing because the run that made them paid.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from mirror_core import store
from mirror_core.errors import ConfigError

DEFAULT_PRICES: dict[tuple[str, str], tuple[float, float]] = {
    ("anthropic", "claude-haiku-4-5"): (1.0, 5.0),
    ("anthropic", "claude-sonnet-4-5"): (3.0, 15.0),
    ("anthropic", "claude-opus-4-1"): (15.0, 75.0),
    ("anthropic", "claude-3-5-haiku-latest"): (0.8, 4.0),
    ("openai", "gpt-4o-mini"): (0.15, 0.60),
    ("openai", "gpt-4o"): (2.50, 10.0),
    ("openai", "gpt-4.1-mini"): (0.40, 1.60),
    ("openai", "gpt-3.5-turbo"): (0.50, 1.50),
}
FREE_PROVIDERS = {"fake", "local", "replay"}
CHARS_PER_TOKEN = 4.0  # rough rule for English prompts; only estimates use it


def ensure_defaults(conn: sqlite3.Connection) -> None:
    if conn.execute("SELECT COUNT(*) FROM price_table").fetchone()[0]:
        return
    with store.transaction(conn):
        conn.executemany("INSERT OR IGNORE INTO price_table (provider, model, input_per_mtok, output_per_mtok)"
                         " VALUES (?,?,?,?)", [(p, m, i, o) for (p, m), (i, o) in DEFAULT_PRICES.items()])


def set_price(conn: sqlite3.Connection, provider: str, model: str, input_per_mtok: float,
              output_per_mtok: float) -> None:
    if input_per_mtok < 0 or output_per_mtok < 0:
        raise ConfigError("Prices must be zero or more (USD per million tokens).")
    ensure_defaults(conn)
    conn.execute("INSERT OR REPLACE INTO price_table (provider, model, input_per_mtok, output_per_mtok)"
                 " VALUES (?,?,?,?)", (provider, model, float(input_per_mtok), float(output_per_mtok)))


def get_price(conn: sqlite3.Connection, provider: str, model: str) -> tuple[float, float] | None:
    """(input, output) USD per million tokens, (0, 0) for free providers, None when unknown."""
    ensure_defaults(conn)
    row = conn.execute("SELECT input_per_mtok, output_per_mtok FROM price_table WHERE provider=? AND model=?",
                       (provider, model)).fetchone()
    if row is not None:
        return float(row[0]), float(row[1])
    return (0.0, 0.0) if provider in FREE_PROVIDERS else None


def price_rows(conn: sqlite3.Connection) -> list[dict]:
    ensure_defaults(conn)
    return [dict(r) for r in conn.execute("SELECT * FROM price_table ORDER BY provider, model")]


def cost(price: tuple[float, float] | None, input_tokens: int | None, output_tokens: int | None) -> float:
    if price is None:
        return 0.0
    return ((input_tokens or 0) * price[0] + (output_tokens or 0) * price[1]) / 1e6


def estimate_tokens(chars: int) -> int:
    return int(chars / CHARS_PER_TOKEN) + 1


# The cost of one attempt as far as the provider may have charged: billed ones at their cost (a billed
# reply without usage at its worst case), possibly billed ones (timeouts, answers lost with a killed
# process) at the cost of the same request's billed answer when there is one, else at the worst case.
_ATTEMPT_COST = """CASE
    WHEN a.billing = 'billed' THEN COALESCE(a.cost_usd, a.est_cost_usd)
    WHEN a.billing = 'possible' THEN COALESCE(
        (SELECT b.cost_usd FROM call_attempts b WHERE b.call_id = a.call_id AND b.billing = 'billed'
         AND b.cost_usd IS NOT NULL ORDER BY b.id DESC LIMIT 1), a.est_cost_usd)
    ELSE 0 END"""


def ledger(conn: sqlite3.Connection, run_id: int) -> float:
    """What a run may have been billed: every HTTP attempt it made (`call_attempts`), counting lost and
    timed-out ones as possibly billed; calls made before attempts were recorded count their own cost."""
    attempts = conn.execute(f"SELECT COALESCE(SUM({_ATTEMPT_COST}), 0) FROM call_attempts a WHERE a.run_id = ?",
                            (run_id,)).fetchone()[0]
    legacy = conn.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM teacher_calls c WHERE c.run_id = ? AND NOT EXISTS"
                          " (SELECT 1 FROM call_attempts a WHERE a.call_id = c.id)", (run_id,)).fetchone()[0]
    return float(attempts) + float(legacy)


def possibly_billed_twice(conn: sqlite3.Connection, run_id: int) -> int:
    """Requests of this run that may have been billed more than once: two or more of their attempts were
    answered or may have been (a lost answer re-sent after a crash, a timeout the server finished)."""
    return int(conn.execute(
        "SELECT COUNT(*) FROM (SELECT call_id FROM call_attempts WHERE billing != 'none' AND call_id IN"
        " (SELECT call_id FROM call_attempts WHERE run_id = ?) GROUP BY call_id HAVING COUNT(*) >= 2)",
        (run_id,)).fetchone()[0])


@dataclass
class Estimate:
    """Requests a run will send and what they may cost (output counted at max_tokens: an upper bound)."""

    requests: int = 0
    cached: int = 0
    input_tokens: int = 0
    max_output_tokens: int = 0
    cost_usd: float = 0.0
    by_teacher: dict[str, dict] = field(default_factory=dict)
    unpriced: list[str] = field(default_factory=list)

    def add(self, teacher: str, price, n: int, cached: int, input_tokens: int, max_output: int) -> None:
        c = cost(price, input_tokens, max_output)
        t = self.by_teacher.setdefault(teacher, {"requests": 0, "cached": 0, "input_tokens": 0,
                                                 "max_output_tokens": 0, "cost_usd": 0.0})
        for d in (t,):
            d["requests"] += n; d["cached"] += cached
            d["input_tokens"] += input_tokens; d["max_output_tokens"] += max_output; d["cost_usd"] += c
        self.requests += n; self.cached += cached
        self.input_tokens += input_tokens; self.max_output_tokens += max_output; self.cost_usd += c
        if price is None and teacher not in self.unpriced:
            self.unpriced.append(teacher)

    def as_dict(self) -> dict:
        return {"requests": self.requests, "cached": self.cached, "to_send": self.requests - self.cached,
                "input_tokens": self.input_tokens, "max_output_tokens": self.max_output_tokens,
                "cost_usd": round(self.cost_usd, 6), "by_teacher": self.by_teacher, "unpriced": self.unpriced}
