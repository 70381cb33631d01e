"""Nothing dropped or paid for silently (issue 11, items 3, 7, 8): shared cached answers still give every
question its rows; every HTTP attempt is recorded, so a crash shows what may have been billed twice; a
stop drains instead of waiting out a backoff; malformed replies are retried and a run with failures says so."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from mirror_core import jobs, store
from mirror_core.generation import pipeline, pricing
from mirror_core.teachers.registry import make_teacher
from teacher_stub import USAGE_IN, USAGE_OUT, Stub

ROOT = Path(__file__).resolve().parent.parent
COST_PER_REQUEST = (USAGE_IN * 0.15 + USAGE_OUT * 0.60) / 1e6  # openai:gpt-4o-mini's default price


def _dataset(conn, name, questions, prefix="q"):
    conn.execute("INSERT INTO datasets (name, source, task_type, content_hash, created_at) VALUES (?,?,?,?,?)",
                 (name, "test", "numeric", name, store.now()))
    ds = conn.execute("SELECT id FROM datasets WHERE name = ?", (name,)).fetchone()[0]
    for i, (q, a) in enumerate(questions):
        conn.execute("INSERT INTO examples (dataset_id, ext_id, split, question, answer, task_type)"
                     " VALUES (?, ?, 'train', ?, ?, 'numeric')", (ds, f"{prefix}{i}", q, a))


def _count(conn, sql, *args):
    return conn.execute(sql, args).fetchone()[0]


class FaultStub(Stub):
    """The shared stub plus: `[malformed1]` (a malformed 200 on the first attempt only) and, with
    `hold_after`, every request after the first `hold_after` is held (never answered) until `release`."""

    def __init__(self, hold_after: int | None = None):
        super().__init__()
        self.hold_after = hold_after
        self.release = threading.Event()
        self.held = 0

    def _record(self, h, body, text):
        key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with self.lock:
            n_before = sum(1 for r in self.requests if r["key"] == key)
            self.requests.append({"path": h.path, "key": key, "t": time.monotonic(), "text": text,
                                  "purpose": "self_eval" if "Proposed reasoning" in text else "cot",
                                  "auth": h.headers.get("authorization", "")})
        return n_before

    def handle(self, h, body):
        msgs = body.get("messages", [])
        text = msgs[-1]["content"] if msgs else ""
        if self.hold_after is not None and not self.release.is_set():
            with self.lock:
                hold = len(self.requests) >= self.hold_after
            if hold:
                self._record(h, body, text)
                with self.lock:
                    self.held += 1
                self.release.wait(30)
                return  # the client is gone by now: the answer is lost, the request was served
        if "[malformed1]" in text:
            with self.lock:
                key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
                first = not any(r["key"] == key for r in self.requests)
            if first:
                self._record(h, body, text)
                return self._send_raw(h, 200, b"{not json at all", "application/json")
        return super().handle(h, body)

    def per_key(self) -> Counter:
        with self.lock:
            return Counter(r["key"] for r in self.requests)


# ---------------------------------------------------------------- item 3

def test_a_cached_answer_shared_by_two_datasets_gives_each_question_its_rows(conn):
    qs = [(f"What is {i} + {i + 1}?", str(2 * i + 1)) for i in range(4)]
    _dataset(conn, "first", qs)
    _dataset(conn, "second", qs[:3] + [("What is 10 + 10?", "20")], prefix="s")
    teachers = [make_teacher("fake:a")]
    pipeline.run(conn, pipeline.GenConfig(dataset="first", teachers=["fake:a"], n_cots=2, k_evals=2), teachers,
                 log=lambda m: None)
    calls_after_first = _count(conn, "SELECT COUNT(*) FROM teacher_calls")
    s2 = pipeline.run(conn, pipeline.GenConfig(dataset="second", teachers=["fake:a"], n_cots=2, k_evals=2),
                      teachers, log=lambda m: None)
    per_ds = dict(conn.execute("SELECT d.name, COUNT(*) FROM rationales r JOIN examples e ON e.id = r.example_id"
                               " JOIN datasets d ON d.id = e.dataset_id GROUP BY d.name").fetchall())
    assert per_ds == {"first": 8, "second": 8}
    evals = dict(conn.execute("SELECT d.name, COUNT(*) FROM self_evals s JOIN rationales r ON r.id = s.rationale_id"
                              " JOIN examples e ON e.id = r.example_id JOIN datasets d ON d.id = e.dataset_id"
                              " GROUP BY d.name").fetchall())
    assert evals == {"first": 16, "second": 16}
    # the cache still paid once: only the one new question was sent (2 CoTs + 4 self-evaluations)
    assert s2["cots"]["sent"] == 2 and s2["self_evals"]["sent"] == 4
    assert _count(conn, "SELECT COUNT(*) FROM teacher_calls") == calls_after_first + 6
    # running it again writes nothing more
    pipeline.run(conn, pipeline.GenConfig(dataset="second", teachers=["fake:a"], n_cots=2, k_evals=2), teachers,
                 log=lambda m: None)
    assert _count(conn, "SELECT COUNT(*) FROM rationales") == 16
    assert _count(conn, "SELECT COUNT(*) FROM self_evals") == 32


def test_two_questions_with_the_same_text_in_one_dataset_both_get_rows(conn):
    _dataset(conn, "dup", [("What is 2 + 3?", "5"), ("What is 2 + 3?", "5"), ("What is 1 + 1?", "2")])
    s = pipeline.run(conn, pipeline.GenConfig(dataset="dup", teachers=["fake"], n_cots=1, k_evals=1),
                     [make_teacher("fake")], log=lambda m: None)
    assert _count(conn, "SELECT COUNT(DISTINCT example_id) FROM rationales") == 3
    assert _count(conn, "SELECT COUNT(*) FROM self_evals") == 3
    assert s["cots"]["sent"] == 2  # one request for the two identical questions


# ---------------------------------------------------------------- item 7

def _wait_for(pred, timeout=60.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigkill_in_flight_is_counted_as_possibly_billed_twice_and_in_the_ledger(conn, home, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-integrity-0000000000")
    _dataset(conn, "toy", [(f"What is {i} + {i + 1}?", str(2 * i + 1)) for i in range(6)])
    in_flight = 3
    with FaultStub(hold_after=5) as stub:
        cfg = pipeline.GenConfig(dataset="toy", teachers=["openai:gpt-4o-mini"], base_url=stub.url + "/v1",
                                 n_cots=2, k_evals=1, max_in_flight=in_flight, requests_per_minute=0).as_dict()
        run_id = jobs.submit(conn, "generate", cfg)
        _wait_for(lambda: stub.held == in_flight, what="the job to have 3 requests held by the server")
        row = jobs.get(conn, run_id)
        os.killpg(row["pgid"], signal.SIGKILL)
        _wait_for(lambda: jobs.reap(conn) or jobs.get(conn, run_id)["status"] == "failed", what="the reap")
        # three requests went out and their answers were lost: recorded as sent, possibly billed
        assert _count(conn, "SELECT COUNT(*) FROM call_attempts WHERE state = 'sent' AND billing = 'possible'") == 3
        stub.release.set()
        jobs.resume(conn, run_id)
        row = jobs.wait(conn, run_id, poll_s=0.1, timeout_s=120)
        assert row["status"] == "succeeded", jobs.log_tail(row["log_path"])
        per_key = stub.per_key()
    served = sum(per_key.values())
    twice = sum(1 for n in per_key.values() if n > 1)
    assert (served, twice) == (24 + 3, 3)
    result = store.loads(row["result"])
    assert result["possibly_billed_twice"] == 3
    assert "possibly billed twice: 3" in row["progress_note"]
    # every HTTP attempt has a row, and the ledger counts every request the server served
    assert _count(conn, "SELECT COUNT(*) FROM call_attempts WHERE run_id = ?", run_id) == served
    assert dict(conn.execute("SELECT state, COUNT(*) FROM call_attempts GROUP BY state").fetchall()) == \
        {"answered": 24, "lost": 3}
    assert pricing.ledger(conn, run_id) == pytest.approx(served * COST_PER_REQUEST)
    assert row["cost_usd"] == pytest.approx(served * COST_PER_REQUEST, abs=1e-6)
    assert _count(conn, "SELECT COUNT(*) FROM rationales") == 12 and _count(conn, "SELECT COUNT(*) FROM self_evals") == 12


def test_stop_during_a_retry_backoff_drains_at_once_and_records_the_attempt(conn, home, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-integrity-0000000000")
    _dataset(conn, "toy", [("[500] What is 2 + 3?", "5")])
    with FaultStub() as stub:
        cfg = pipeline.GenConfig(dataset="toy", teachers=["openai:gpt-4o-mini"], base_url=stub.url + "/v1",
                                 n_cots=1, k_evals=0, backoff_s=30.0, requests_per_minute=0).as_dict()
        run_id = jobs.submit(conn, "generate", cfg)
        _wait_for(lambda: _count(conn, "SELECT COUNT(*) FROM call_attempts WHERE state = 'failed'") == 1,
                  what="the first (500) attempt")
        t0 = time.monotonic()
        jobs.stop(conn, run_id)
        took = time.monotonic() - t0
        row = jobs.get(conn, run_id)
        assert row["status"] == "cancelled"
        assert took < 5.0, f"stop waited {took:.1f} s: the worker slept through its 30 s backoff"
        assert len(stub.requests) == 1
        a = conn.execute("SELECT * FROM call_attempts").fetchone()
        assert (a["state"], a["billing"], a["status"]) == ("failed", "none", "error")
        c = conn.execute("SELECT * FROM teacher_calls").fetchone()
        assert (c["status"], c["attempts"]) == ("pending", 1)  # the retry is owed: the resume sends it
        jobs.resume(conn, run_id)
        row = jobs.wait(conn, run_id, poll_s=0.1, timeout_s=60)
        assert row["status"] == "succeeded", jobs.log_tail(row["log_path"])
        assert len(stub.requests) == 2
    assert conn.execute("SELECT status, attempts FROM teacher_calls").fetchone()[:] == ("ok", 2)


# ---------------------------------------------------------------- item 8

def test_a_malformed_reply_is_retried(conn, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-integrity-0000000000")
    _dataset(conn, "toy", [("[malformed1] What is 2 + 3?", "5")])
    with FaultStub() as stub:
        t = make_teacher("openai:gpt-4o-mini", base_url=stub.url + "/v1")
        cfg = pipeline.GenConfig(dataset="toy", teachers=["openai:gpt-4o-mini"], n_cots=1, k_evals=0,
                                 backoff_s=0.01, requests_per_minute=0)
        s = pipeline.run(conn, cfg, [t], log=lambda m: None)
        t.close()
    assert s["cots"]["by_status"] == {"ok": 1} and s["failed"] == 0
    assert len(stub.requests) == 2
    assert [tuple(r) for r in conn.execute("SELECT state, billing FROM call_attempts ORDER BY id")] == \
        [("answered", "billed"), ("answered", "billed")]  # a malformed 200 was served: it may cost
    assert _count(conn, "SELECT COUNT(*) FROM rationales") == 1


def test_a_run_with_failures_ends_finished_with_n_failed_and_counts_what_is_owed(conn, home, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-integrity-0000000000")
    _dataset(conn, "toy", [("[malformed] What is 2 + 3?", "5"), ("What is 1 + 1?", "2"), ("What is 2 + 2?", "4")])
    with FaultStub() as stub:
        cfg = pipeline.GenConfig(dataset="toy", teachers=["openai:gpt-4o-mini"], base_url=stub.url + "/v1",
                                 n_cots=2, k_evals=2, backoff_s=0.01, requests_per_minute=0).as_dict()
        run_id = jobs.submit(conn, "generate", cfg)
        env = {**os.environ, "MIRROR_HOME": str(home)}
        waited = subprocess.run([sys.executable, "-m", "mirror_core", "jobs", "wait", str(run_id)], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
        malformed = stub.attempts("[malformed]")
    assert waited.returncode != 0
    assert "finished with 2 failed" in waited.stderr
    row = jobs.get(conn, run_id)
    assert row["status"] == "failed" and row["error"].startswith("finished with 2 failed")
    # the 2 malformed CoT requests: 1 + 2 re-sends each, then a final failure
    assert len(malformed) == 2 * 3
    # progress: 6 CoTs + 8 self-evaluations done, and the 4 self-evaluations the failed CoTs still owe
    assert (row["progress_done"], row["progress_total"]) == (14, 18)
    assert row["progress_note"].startswith("finished with 2 failed")
    result = store.loads(row["result"])
    assert (result["failed"], result["self_evals_owed"]) == (2, 4)
