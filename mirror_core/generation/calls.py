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
the server's Retry-After asks; a malformed 200 (a body the SDK cannot read) is retried too, at most
`RetryPolicy.max_malformed` times. Every HTTP attempt is a `call_attempts` row written 'sent' by the worker
thread before the request leaves and completed after (AttemptLog, its own connection), so after a SIGKILL
the attempts whose answers were lost are known: they count in the ledger as possibly billed, and the
request's re-send shows as "possibly billed twice". On a stop, in-flight requests are drained (answered
and recorded) but no retry starts: a request that still needs one stays pending for the resume.
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


def request_hash(teacher: Teacher, template: str | None, messages, params: dict, content: Any = None) -> str:
    """The cache key. `content` is what a teacher that answers from stored outputs (replay) will return
    for the request: an edited output is then a new request, and only that one."""
    key = {"provider": teacher.provider, "model": teacher.cache_id, "template": template,
           "messages": [dict(m) for m in messages], "params": params}
    if content is not None:
        key["content"] = content
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


def call_hash(c: "Call") -> str:
    content_key = getattr(c.teacher, "content_key", None)
    return request_hash(c.teacher, c.template_key(), c.request.messages, c.request.params.as_dict(),
                        content_key(c.request) if content_key else None)


def is_malformed(comp: Completion) -> bool:
    """A reply the server sent but the SDK could not read (the teachers mark it 'malformed response')."""
    return comp.status == "error" and (comp.error or "").startswith("malformed response")


def billing(comp: Completion) -> str:
    """Whether the provider may have charged for this attempt: answered (or a malformed 200) = billed;
    a timeout or a dropped connection = possibly (the server may have finished it); an HTTP error = none."""
    if comp.status in FINAL_OK or comp.status == "truncated" or is_malformed(comp):
        return "billed"
    if comp.status == "timeout":
        return "possible"
    if comp.status == "error" and "Connection" in (comp.error or "") and not (comp.raw or {}).get("status_code"):
        return "possible"
    return "none"


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
    failed: int = 0            # requests that ended without an answer (error, rate_limited, timeout)

    def count(self, status: str, n: int = 1) -> None:
        self.by_status[status] = self.by_status.get(status, 0) + n
        if status in FAILED:
            self.failed += n


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
    max_malformed: int = 2     # re-sends of a malformed 200 (it was billed: bounded lower than the rest)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter on top of what the server asked for."""
        base = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
        wait_s = base * (0.5 + random.random() / 2)
        return max(wait_s, retry_after or 0.0)


class AttemptLog:
    """Writes `call_attempts` rows from the worker threads, on a connection of its own (the engine's
    connection stays the calling thread's). 'sent' is committed before the request leaves."""

    def __init__(self, conn: sqlite3.Connection, run_id: int | None):
        self.run_id = run_id
        self._lock = threading.Lock()
        path = conn.execute("PRAGMA database_list").fetchone()[2]
        if path:
            self.db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA busy_timeout=60000")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._own = True
        else:  # an in-memory database: only one connection can see it
            self.db, self._own = conn, False

    def sent(self, call_ids: list[int], est_costs: list[float]) -> list[int]:
        ts = store.now()
        out = []
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for cid, est in zip(call_ids, est_costs):
                    cur = self.db.execute(
                        "INSERT INTO call_attempts (call_id, run_id, attempt, state, billing, est_cost_usd, sent_at)"
                        " SELECT ?, ?, COUNT(*) + 1, 'sent', 'possible', ?, ? FROM call_attempts WHERE call_id = ?",
                        (cid, self.run_id, est, ts, cid))
                    out.append(cur.lastrowid)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return out

    def finish(self, attempt_ids: list[int], comps: list[Completion], costs: list[float | None]) -> None:
        ts = store.now()
        rows = [("answered" if billing(c) == "billed" else "failed", billing(c), c.status, c.input_tokens,
                 c.output_tokens, cost, c.latency_s, redact.redact(c.error), ts, aid)
                for aid, c, cost in zip(attempt_ids, comps, costs)]
        with self._lock:
            self.db.executemany("UPDATE call_attempts SET state = ?, billing = ?, status = ?, input_tokens = ?,"
                                " output_tokens = ?, cost_usd = ?, latency_s = ?, error = ?, finished_at = ?"
                                " WHERE id = ?", rows)

    def close(self) -> None:
        if self._own:
            self.db.close()


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
        self._attempt_log: AttemptLog | None = None

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
                c.hash = call_hash(c)
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
        # Attempts still 'sent' for requests we are about to send belong to a process that died with them
        # in flight: their answers are lost (they may have been billed; the ledger keeps counting them).
        id_list = list(ids.values())
        for i in range(0, len(id_list), 500):
            chunk = id_list[i:i + 500]
            self.conn.execute(f"UPDATE call_attempts SET state = 'lost', finished_at = ? WHERE state = 'sent'"
                              f" AND call_id IN ({','.join('?' * len(chunk))})", [store.now(), *chunk])
        self._attempt_log = AttemptLog(self.conn, self.run_id)
        try:
            self._dispatch(todo, by_hash, ids, stats, on_result, on_progress)
        finally:
            for pool in self._pools.values():
                pool.shutdown(wait=True)
            self._pools.clear()
            self._attempt_log.close()
            self._attempt_log = None
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
        return sum(self._worst_case(teacher, r) for r in reqs)

    def _worst_case(self, teacher: Teacher, r: TeacherRequest) -> float:
        return pricing.cost(self._price(teacher), pricing.estimate_tokens(r.prompt_chars()), r.params.max_tokens)

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
        interrupted_n = 0
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
                        fut = pool.submit(self._attempt, teacher, reqs, self._pacers[provider],
                                          [ids[h] for h in unit])
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
                    for h, (comp, history, interrupted) in zip(unit, results):
                        if interrupted:
                            interrupted_n += 1
                            self._record_interrupted(by_hash[h][0], ids[h], history, stats)
                        else:
                            self._record(by_hash[h], ids[h], comp, history, stats, on_result)
            if self.run_id is not None:
                # The ledger is the truth (a lost attempt's estimate becomes its request's real cost once
                # answered); the in-memory sum only serves runs without a row.
                self.spent = pricing.ledger(self.conn, self.run_id)
            if on_progress:
                on_progress(stats)
        left = sum(len(u) for q in queues.values() for u in q) + interrupted_n
        if budget_hit and left:
            raise BudgetExceeded(
                f"Budget cap of ${self.budget_usd:.4f} reached after spending ${self.spent:.4f}; {left} request(s) "
                "were not sent (their rows stay pending). Raise the budget and resume the run to finish.")
        if left:
            stats.stopped = True

    def _attempt(self, teacher: Teacher, reqs: list[TeacherRequest], pacer: Pacer, call_ids: list[int]):
        """Worker thread: send, retrying the retryable; returns [(completion, attempt history, interrupted)].
        Each attempt is logged 'sent' before it leaves and completed after. `interrupted`: a retry was due
        when a stop came, so the request stays pending for the resume."""
        results: list[tuple | None] = [None] * len(reqs)
        history: list[list] = [[] for _ in reqs]
        pending = list(range(len(reqs)))
        malformed = [0] * len(reqs)
        attempt = 0
        log = self._attempt_log
        price = self._price(teacher)
        while pending:
            attempt += 1
            pacer.acquire(len(pending))
            attempt_ids = log.sent([call_ids[i] for i in pending], [self._worst_case(teacher, reqs[i]) for i in pending])
            try:
                comps = teacher.complete([reqs[i] for i in pending])
            except Exception as exc:  # noqa: BLE001 - a teacher bug must still end as a recorded status
                comps = [Completion(status="error", error=f"{type(exc).__name__}: {exc}") for _ in pending]
            costs = [self._attempt_cost(price, teacher, reqs[i], c) for i, c in zip(pending, comps)]
            log.finish(attempt_ids, comps, costs)
            again, wait_s = [], 0.0
            for i, comp, cost in zip(pending, comps, costs):
                history[i].append({"attempt": attempt, "status": comp.status, "error": redact.redact(comp.error),
                                   "retry_after_s": comp.retry_after_s, "latency_s": comp.latency_s,
                                   "billing": billing(comp), "cost_usd": cost})
                bad_body = is_malformed(comp)
                if bad_body:
                    malformed[i] += 1
                retry = (comp.retryable or (bad_body and malformed[i] <= self.retry.max_malformed)) \
                    and attempt <= self.retry.max_retries
                if retry:
                    again.append(i)
                    wait_s = max(wait_s, self.retry.delay(attempt, comp.retry_after_s))
                else:
                    results[i] = (comp, history[i], False)
            if again and not self._sleep_unless_stopped(wait_s):
                for i in again:  # stopping: no new attempt; the last one is recorded, the row stays pending
                    results[i] = (None, history[i], True)
                again = []
            pending = again
        return results

    def _sleep_unless_stopped(self, seconds: float) -> bool:
        """Back off for `seconds`; False as soon as a stop is asked (then no retry is sent)."""
        deadline = time.monotonic() + seconds
        while True:
            if self.should_stop():
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(0.1, left))

    def _attempt_cost(self, price, teacher: Teacher, req: TeacherRequest, comp: Completion) -> float | None:
        """What one attempt cost when the provider said so; a billed reply without usage (malformed) is
        counted at its worst case; None when the cost is unknown (not billed, or only possibly)."""
        b = billing(comp)
        if b != "billed":
            return None
        if comp.input_tokens is None and comp.output_tokens is None and price:
            return self._worst_case(teacher, req)
        return pricing.cost(price, comp.input_tokens, comp.output_tokens)

    @staticmethod
    def _history_cost(history: list, est: float) -> float:
        """Cost of a request's attempts: billed ones at their cost, possibly billed ones at the cost of
        the billed answer when there is one (the same request), else at the worst case."""
        known = [h["cost_usd"] for h in history if h.get("billing") == "billed" and h.get("cost_usd") is not None]
        like = known[-1] if known else est
        return sum(known) + like * sum(1 for h in history if h.get("billing") == "possible")

    def _record_interrupted(self, call: Call, row_id: int, history: list, stats: Stats) -> None:
        c = self._history_cost(history, self._worst_case(call.teacher, call.request))
        self.spent += c
        stats.cost_usd += c
        stats.attempts += len(history)
        stats.retries += max(0, len(history) - 1)
        error = f"stopped before a retry; last attempt: {history[-1].get('error')}" if history else None
        self.conn.execute("UPDATE teacher_calls SET run_id = ?, attempts = attempts + ?, error = ?, updated_at = ?"
                          " WHERE id = ?", (self.run_id, len(history), error, store.now(), row_id))

    def _record(self, group: list[Call], row_id: int, comp: Completion, history: list, stats: Stats,
                on_result) -> None:
        call = group[0]
        price = self._price(call.teacher)
        c = pricing.cost(price, comp.input_tokens, comp.output_tokens)
        spent = self._history_cost(history, self._worst_case(call.teacher, call.request))
        self.spent += spent
        stats.cost_usd += spent
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
