"""Teacher calls done right: a request cache, concurrency limits, retries and a row per request.

Every request is a row in `teacher_calls`, keyed by `request_hash` = sha256(provider, model, template
name+version, messages, params incl. sample index). Before a request is sent its row exists as 'pending';
its answer, status, tokens, cost and attempt history are written in the same transaction as whatever the
caller derives from it (`on_result`, e.g. the rationale insert), so a process killed at any moment leaves
each request either answered once or still pending — and pending ones are simply sent again on resume.
A row with any final status is the cache: a rerun sends nothing for it (failed ones only when
`retry_failed`, or after `reset_failed`).

Concurrency: worker threads only talk to teachers; the calling thread alone touches the database.
Each provider has its own thread pool (`max_in_flight`) and a requests-per-minute pacer. 429, 5xx,
timeouts and connection errors are retried with exponential backoff and jitter, waiting at least what
the server's Retry-After asks; every attempt is recorded in the row's `raw.attempts`.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from mirror_core import redact, store
from mirror_core.errors import BudgetExceeded
from mirror_core.generation import pricing
from mirror_core.teachers.base import Completion, Teacher, TeacherRequest

FINAL_OK = ("ok", "truncated", "refused")         # the provider's answer: never re-sent
FAILED = ("error", "rate_limited", "timeout")     # re-sent only on request (retry_failed / reset_failed)


def request_hash(teacher: Teacher, template: str | None, messages, params: dict) -> str:
    key = {"provider": teacher.provider, "model": teacher.cache_id, "template": template,
           "messages": [dict(m) for m in messages], "params": params}
    return hashlib.sha256(json.dumps(key, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass
class Call:
    """One request to one teacher, with what it is for. `hash` is filled in by the engine."""

    teacher: Teacher
    request: TeacherRequest
    template_name: str | None = None
    template_version: int | None = None
    purpose: str | None = None
    tag: Any = None            # the caller's own data (e.g. which example and sample), handed back
    hash: str = ""

    def template_key(self) -> str | None:
        return f"{self.template_name}@{self.template_version}" if self.template_name else None


@dataclass
class Stats:
    total: int = 0
    cached: int = 0
    sent: int = 0              # requests answered by a teacher in this run
    attempts: int = 0          # HTTP attempts, retries included
    retries: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    cost_usd: float = 0.0
    stopped: bool = False

    def count(self, status: str) -> None:
        self.by_status[status] = self.by_status.get(status, 0) + 1


class Pacer:
    """At most `rpm` request starts per minute, spread evenly (thread-safe)."""

    def __init__(self, rpm: float | None):
        self.interval = 60.0 / rpm if rpm else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self, n: int = 1) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval * n
        if start > now:
            time.sleep(start - now)


@dataclass
class RetryPolicy:
    max_retries: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter on top of what the server asked for."""
        base = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
        wait_s = base * (0.5 + random.random() / 2)
        return max(wait_s, retry_after or 0.0)


class CallEngine:
    """Runs calls through the cache, the limits and the retries; see the module docstring."""

    def __init__(self, conn: sqlite3.Connection, run_id: int | None = None, *, budget_usd: float | None = None,
                 retry: RetryPolicy | None = None, retry_failed: bool = False,
                 should_stop: Callable[[], bool] = lambda: False,
                 limits: dict[str, tuple[int, float | None]] | None = None, log: Callable[[str], None] = print):
        self.conn = conn
        self.run_id = run_id
        self.budget_usd = budget_usd
        self.retry = retry or RetryPolicy()
        self.retry_failed = retry_failed
        self.should_stop = should_stop
        self.limits = limits or {}
        self.log = log
        self._prices: dict[tuple[str, str], Any] = {}
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._pacers: dict[str, Pacer] = {}
        self.spent = pricing.ledger(conn, run_id) if run_id is not None else 0.0

    # ------------------------------------------------------------------ public

    def run(self, calls: list[Call], on_result: Callable[[Call, dict], None] | None = None,
            on_progress: Callable[[Stats], None] | None = None) -> Stats:
        """Answer every call (from the cache or a teacher); `on_result(call, row)` runs once per call with a
        final row, inside the transaction that stores it. Raises BudgetExceeded after recording in-flight
        answers when the cap would be passed; returns with `stats.stopped` when asked to stop."""
        on_result = on_result or (lambda c, r: None)
        stats = Stats(total=len(calls))
        for t in {id(c.teacher): c.teacher for c in calls}.values():
            redact.remember_teacher(t)  # its key is masked in every error stored from here on
        for c in calls:
            if not c.hash:
                c.hash = request_hash(c.teacher, c.template_key(), c.request.messages, c.request.params.as_dict())
        by_hash: dict[str, list[Call]] = {}
        for c in calls:
            by_hash.setdefault(c.hash, []).append(c)
        rows = self._rows(list(by_hash))
        todo: list[str] = []
        with store.transaction(self.conn):
            for h, group in by_hash.items():
                row = rows.get(h)
                if row is not None and (row["status"] in FINAL_OK or
                                        (row["status"] in FAILED and not self.retry_failed)):
                    stats.cached += len(group)
                    stats.count(row["status"])
                    for c in group:
                        on_result(c, row)
                else:
                    todo.append(h)
            self._insert_pending([by_hash[h][0] for h in todo if h not in rows])
        if on_progress:
            on_progress(stats)
        if not todo:
            return stats
        ids = {h: r["id"] for h, r in self._rows(todo).items()}
        try:
            self._dispatch(todo, by_hash, ids, stats, on_result, on_progress)
        finally:
            for pool in self._pools.values():
                pool.shutdown(wait=True)
            self._pools.clear()
        return stats

    # ------------------------------------------------------------------ internals

    def _rows(self, hashes: list[str]) -> dict[str, dict]:
        out = {}
        for i in range(0, len(hashes), 500):
            chunk = hashes[i:i + 500]
            for r in self.conn.execute(f"SELECT * FROM teacher_calls WHERE request_hash IN ({','.join('?' * len(chunk))})",
                                       chunk):
                out[r["request_hash"]] = dict(r)
        return out

    def _insert_pending(self, calls: list[Call]) -> None:
        ts = store.now()
        self.conn.executemany(
            "INSERT OR IGNORE INTO teacher_calls (request_hash, run_id, provider, model, template_name,"
            " template_version, purpose, prompt, params, status, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,'pending',?,?)",
            [(c.hash, self.run_id, c.teacher.provider, c.teacher.cache_id, c.template_name, c.template_version,
              c.purpose, store.dumps(list(c.request.messages)), store.dumps(c.request.params.as_dict()), ts, ts)
             for c in calls])

    def _price(self, teacher: Teacher):
        key = (teacher.provider, teacher.model)
        if key not in self._prices:
            self._prices[key] = pricing.get_price(self.conn, *key)
        return self._prices[key]

    def _reserve(self, teacher: Teacher, reqs: Iterable[TeacherRequest]) -> float:
        """Worst-case cost of sending these requests: their prompt and max_tokens of output."""
        price = self._price(teacher)
        return sum(pricing.cost(price, pricing.estimate_tokens(r.prompt_chars()), r.params.max_tokens)
                   for r in reqs)

    def _pool(self, teacher: Teacher) -> tuple[ThreadPoolExecutor, int]:
        limit, rpm = self.limits.get(teacher.provider, (teacher.max_in_flight, teacher.requests_per_minute))
        if teacher.provider not in self._pools:
            self._pools[teacher.provider] = ThreadPoolExecutor(max_workers=limit,
                                                               thread_name_prefix=f"teacher-{teacher.provider}")
            self._pacers[teacher.provider] = Pacer(rpm)
        return self._pools[teacher.provider], limit

    def _dispatch(self, todo, by_hash, ids, stats, on_result, on_progress) -> None:
        # Work units: one request each, or chunks of batch_size for batched teachers (sorted by length).
        units_by_provider: dict[str, list[list[str]]] = {}
        per_teacher: dict[int, list[str]] = {}
        for h in todo:
            per_teacher.setdefault(id(by_hash[h][0].teacher), []).append(h)
        for hs in per_teacher.values():
            t = by_hash[hs[0]][0].teacher
            bs = max(1, t.batch_size)
            if bs > 1:
                hs = sorted(hs, key=lambda h: by_hash[h][0].request.prompt_chars())
            units_by_provider.setdefault(t.provider, []).extend(hs[i:i + bs] for i in range(0, len(hs), bs))
        queues = {p: list(reversed(u)) for p, u in units_by_provider.items()}  # pop() takes the next
        inflight: dict[Future, tuple[list[str], float]] = {}
        count_inflight: dict[str, int] = {p: 0 for p in queues}
        reserved = 0.0
        budget_hit = False
        while True:
            stopping = budget_hit or self.should_stop()
            if not stopping:
                for provider, q in queues.items():
                    while q:
                        unit = q[-1]
                        teacher = by_hash[unit[0]][0].teacher
                        pool, limit = self._pool(teacher)
                        if count_inflight[provider] >= limit:
                            break
                        reqs = [by_hash[h][0].request for h in unit]
                        need = self._reserve(teacher, reqs)
                        if self.budget_usd is not None and self.spent + reserved + need > self.budget_usd + 1e-12:
                            budget_hit = True
                            break
                        q.pop()
                        reserved += need
                        fut = pool.submit(self._attempt, teacher, reqs, self._pacers[provider])
                        inflight[fut] = (unit, need)
                        count_inflight[provider] += 1
                    if budget_hit:
                        break
            if not inflight:
                break
            done, _ = wait(list(inflight), timeout=0.5, return_when=FIRST_COMPLETED)
            if not done:
                continue
            with store.transaction(self.conn):
                for fut in done:
                    unit, need = inflight.pop(fut)
                    reserved -= need
                    provider = by_hash[unit[0]][0].teacher.provider
                    count_inflight[provider] -= 1
                    results = fut.result()
                    for h, (comp, history) in zip(unit, results):
                        self._record(by_hash[h], ids[h], comp, history, stats, on_result)
            if on_progress:
                on_progress(stats)
        left = sum(len(u) for q in queues.values() for u in q)
        if budget_hit and left:
            raise BudgetExceeded(
                f"Budget cap of ${self.budget_usd:.4f} reached after spending ${self.spent:.4f}; {left} request(s) "
                "were not sent (their rows stay pending). Raise the budget and resume the run to finish.")
        if left:
            stats.stopped = True

    def _attempt(self, teacher: Teacher, reqs: list[TeacherRequest], pacer: Pacer):
        """Worker thread: send, retrying the retryable; returns [(completion, attempt history)]."""
        results: list[tuple[Completion, list] | None] = [None] * len(reqs)
        history: list[list] = [[] for _ in reqs]
        pending = list(range(len(reqs)))
        attempt = 0
        while pending:
            attempt += 1
            pacer.acquire(len(pending))
            try:
                comps = teacher.complete([reqs[i] for i in pending])
            except Exception as exc:  # noqa: BLE001 - a teacher bug must still end as a recorded status
                comps = [Completion(status="error", error=f"{type(exc).__name__}: {exc}") for _ in pending]
            again, wait_s = [], 0.0
            for i, comp in zip(pending, comps):
                history[i].append({"attempt": attempt, "status": comp.status, "error": comp.error,
                                   "retry_after_s": comp.retry_after_s, "latency_s": comp.latency_s})
                if comp.retryable and attempt <= self.retry.max_retries:
                    again.append(i)
                    wait_s = max(wait_s, self.retry.delay(attempt, comp.retry_after_s))
                else:
                    results[i] = (comp, history[i])
            if again:
                time.sleep(wait_s)
            pending = again
        return results

    def _record(self, group: list[Call], row_id: int, comp: Completion, history: list, stats: Stats,
                on_result) -> None:
        call = group[0]
        price = self._price(call.teacher)
        c = pricing.cost(price, comp.input_tokens, comp.output_tokens)
        self.spent += c
        stats.cost_usd += c
        stats.sent += 1
        stats.attempts += len(history)
        stats.retries += len(history) - 1
        stats.count(comp.status)
        # A provider error may quote the key it was sent (a 401 body): nothing key-like is stored.
        raw = redact.redact_obj({"response": comp.raw, "attempts": history})
        self.conn.execute(
            "UPDATE teacher_calls SET run_id = ?, status = ?, response = ?, finish_reason = ?, input_tokens = ?,"
            " output_tokens = ?, cost_usd = cost_usd + ?, latency_s = ?, attempts = attempts + ?, error = ?, raw = ?,"
            " updated_at = ? WHERE id = ?",
            (self.run_id, comp.status, comp.text, comp.finish_reason, comp.input_tokens, comp.output_tokens, c,
             comp.latency_s, len(history), redact.redact(comp.error), store.dumps(raw), store.now(), row_id))
        row = dict(self.conn.execute("SELECT * FROM teacher_calls WHERE id = ?", (row_id,)).fetchone())
        for c_ in group:
            on_result(c_, row)


def reset_failed(conn: sqlite3.Connection, call_ids: list[int] | None = None, run_id: int | None = None) -> int:
    """Mark failed calls (error / rate_limited / timeout) pending so the next run or resume sends them again."""
    sql = "UPDATE teacher_calls SET status = 'pending', updated_at = ? WHERE status IN ('error','rate_limited','timeout')"
    args: list[Any] = [store.now()]
    if call_ids is not None:
        if not call_ids:
            return 0
        sql += f" AND id IN ({','.join('?' * len(call_ids))})"
        args += list(call_ids)
    if run_id is not None:
        sql += " AND run_id = ?"
        args.append(run_id)
    return conn.execute(sql, args).rowcount


def failed_calls(conn: sqlite3.Connection, run_id: int | None = None) -> list[dict]:
    """Calls that did not get an answer (failed, refused or truncated), newest first, for the error table."""
    sql = ("SELECT id, run_id, provider, model, purpose, status, attempts, error, updated_at FROM teacher_calls"
           " WHERE status IN ('error','rate_limited','timeout','refused','truncated')")
    args: tuple = ()
    if run_id is not None:
        sql += " AND run_id = ?"
        args = (run_id,)
    return [dict(r) for r in conn.execute(sql + " ORDER BY id DESC", args)]
