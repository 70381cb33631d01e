"""The real anthropic and openai SDKs against a local HTTP stub: retries, statuses, ledger, cache."""

from __future__ import annotations

import pytest

from mirror_core import jobs, store
from mirror_core.errors import MissingKeyError
from mirror_core.generation import calls, pipeline, pricing
from mirror_core.teachers.registry import make_teacher
from teacher_stub import USAGE_IN, USAGE_OUT, Stub

QUESTIONS = {"ok1": "What is 2 + 3?", "ok2": "What is 1 + 4?", "r429": "What is 2 + 3? [429]",
             "r500": "What is 2 + 3? [500]", "r500x": "What is 2 + 3? [500x]", "slow": "What is 2 + 3? [slow]",
             "bad": "What is 2 + 3? [malformed]", "refuse": "What is 2 + 3? [refuse]"}
MAX_RETRIES = 2


def _dataset(conn) -> None:
    conn.execute("INSERT INTO datasets (name, source, task_type, content_hash, created_at)"
                 " VALUES ('stubq', 'test', 'numeric', 'h', ?)", (store.now(),))
    for ext, q in QUESTIONS.items():
        conn.execute("INSERT INTO examples (dataset_id, ext_id, split, question, answer, task_type)"
                     " VALUES (1, ?, 'train', ?, '5', 'numeric')", (ext, q))


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_sdk_against_stub(conn, monkeypatch, provider):
    _dataset(conn)
    monkeypatch.setenv(f"{provider.upper()}_API_KEY", "sk-test-stub-key")
    pricing.set_price(conn, provider, "stub-model", 1.0, 2.0)
    with Stub(slow_s=1.2) as stub:
        base_url = stub.url + ("/v1" if provider == "openai" else "")
        cfg = pipeline.GenConfig(dataset="stubq", teachers=[f"{provider}:stub-model"], n_cots=1, k_evals=1,
                                 base_url=base_url, timeout_s=0.5, max_retries=MAX_RETRIES, backoff_s=0.05,
                                 requests_per_minute=6000)
        run_id = jobs.submit(conn, "generate", cfg.as_dict(), start=False)
        teacher = make_teacher(cfg.teachers[0], base_url=base_url, timeout_s=0.5)
        summary = pipeline.run(conn, cfg, [teacher], run_id=run_id, log=lambda m: None)

        rows = {r["ext_id"]: dict(r) for r in conn.execute(
            "SELECT c.*, e.ext_id FROM teacher_calls c JOIN examples e ON json_extract(c.prompt, '$[1].content')"
            " LIKE '%' || e.question || '%' WHERE c.purpose = 'cot' AND e.question = ("
            "SELECT question FROM examples e2 WHERE json_extract(c.prompt, '$[1].content') LIKE '%' || e2.question || '%'"
            " ORDER BY length(e2.question) DESC LIMIT 1)")}
        assert set(rows) == set(QUESTIONS)
        # 429 + Retry-After: 1 -> retried once, not before a second had passed
        t429 = stub.attempts("[429]")
        assert len(t429) == 2 and t429[1] - t429[0] >= 0.95
        assert rows["r429"]["status"] == "ok" and rows["r429"]["attempts"] == 2
        assert store.loads(rows["r429"]["raw"])["attempts"][0]["status"] == "rate_limited"
        # one 500 -> retried; 500 forever -> recorded as error after 1 + MAX_RETRIES attempts
        assert rows["r500"]["status"] == "ok" and rows["r500"]["attempts"] == 2
        assert rows["r500x"]["status"] == "error" and rows["r500x"]["attempts"] == 1 + MAX_RETRIES
        assert "500" in rows["r500x"]["error"] and len(stub.attempts("[500x]")) == 1 + MAX_RETRIES
        # slow past the timeout -> timeout recorded, retried, answered
        assert rows["slow"]["status"] == "ok" and rows["slow"]["attempts"] == 2
        assert store.loads(rows["slow"]["raw"])["attempts"][0]["status"] == "timeout"
        # malformed body -> retried a bounded number of times, then error; refusal -> refused
        assert rows["bad"]["status"] == "error" and "malformed" in rows["bad"]["error"]
        assert rows["bad"]["attempts"] == 1 + calls.RetryPolicy().max_malformed
        assert rows["refuse"]["status"] == "refused"

        # No lost rows: one row per request, none pending; rationales only for answered CoTs
        n_rows = conn.execute("SELECT COUNT(*) FROM teacher_calls").fetchone()[0]
        answered = ["ok1", "ok2", "r429", "r500", "slow"]
        assert n_rows == len(QUESTIONS) + len(answered)  # CoTs + one self-eval per answered CoT
        assert conn.execute("SELECT COUNT(*) FROM teacher_calls WHERE status = 'pending'").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM rationales").fetchone()[0] == len(answered)
        assert conn.execute("SELECT COUNT(*) FROM self_evals WHERE verdict = 'correct'").fetchone()[0] == len(answered)
        assert conn.execute("SELECT COUNT(*) FROM rationales WHERE correct = 1").fetchone()[0] == len(answered)
        assert summary["cots"]["by_status"] == {"ok": 5, "error": 2, "refused": 1}

        # Ledger: what may have been billed. Every readable 200 at its usage (10 in at $1/M, 20 out at $2/M),
        # the timed-out attempts of "slow" (the server may have finished them) at their answers' cost, each
        # malformed 200 (served, usage unknown) at its worst case; HTTP errors cost nothing.
        # CoTs + self-evals + the refusal + the first, timed-out attempts of "slow"'s CoT and self-evaluation
        billed = len(answered) * 2 + 1 + 2
        bad_chars = sum(len(m["content"]) for m in store.loads(rows["bad"]["prompt"]))
        worst = pricing.cost((1.0, 2.0), pricing.estimate_tokens(bad_chars), cfg.max_tokens)
        expected = billed * (USAGE_IN * 1.0 + USAGE_OUT * 2.0) / 1e6 + rows["bad"]["attempts"] * worst
        assert pricing.ledger(conn, run_id) == pytest.approx(expected)
        assert summary["cost_usd"] == pytest.approx(expected)

        # Rerun: every request is answered from the cache, nothing is sent
        sent_before = len(stub.requests)
        again = pipeline.run(conn, cfg, [teacher], run_id=run_id, log=lambda m: None)
        assert len(stub.requests) == sent_before
        assert again["cots"]["sent"] == 0 and again["self_evals"]["sent"] == 0
        assert conn.execute("SELECT COUNT(*) FROM teacher_calls").fetchone()[0] == n_rows
        # the stub saw the key (so it was really used) — the store never does
        assert all(r["auth"].endswith("sk-test-stub-key") for r in stub.requests)
        teacher.close()


def test_budget_cap_stops_cleanly(conn, monkeypatch):
    _dataset(conn)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-stub-key")
    pricing.set_price(conn, "openai", "pricey", 1000.0, 1000.0)
    with Stub() as stub:
        cfg = pipeline.GenConfig(dataset="stubq", teachers=["openai:pricey"], n_cots=2, k_evals=0, limit=2,
                                 base_url=stub.url + "/v1", max_tokens=50, budget_usd=0.2,
                                 requests_per_minute=0)
        run_id = jobs.submit(conn, "generate", cfg.as_dict(), start=False)
        teacher = make_teacher("openai:pricey", base_url=cfg.base_url)
        from mirror_core.errors import BudgetExceeded

        with pytest.raises(BudgetExceeded, match="Raise the budget"):
            pipeline.run(conn, cfg, [teacher], run_id=run_id, log=lambda m: None)
        spent = pricing.ledger(conn, run_id)
        assert 0 < spent <= 0.2
        statuses = [r[0] for r in conn.execute("SELECT status FROM teacher_calls ORDER BY id")]
        assert len(statuses) == 4 and "pending" in statuses and "ok" in statuses  # recorded, nothing dropped
        assert len(stub.requests) == statuses.count("ok")
        # a higher cap resumes and sends only the rest
        cfg.budget_usd = 10.0
        pipeline.run(conn, cfg, [teacher], run_id=run_id, log=lambda m: None)
        assert len(stub.requests) == 4
        assert conn.execute("SELECT COUNT(*) FROM teacher_calls WHERE status='ok'").fetchone()[0] == 4


@pytest.mark.parametrize("provider,var", [("anthropic", "ANTHROPIC_API_KEY"), ("openai", "OPENAI_API_KEY")])
def test_missing_key_names_the_variable(monkeypatch, tmp_path, provider, var):
    monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.streamlit/secrets.toml
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingKeyError, match=var):
        make_teacher(f"{provider}:some-model")
    # an explicit in-memory key wins
    assert make_teacher(f"{provider}:some-model", api_key="sk-x").model == "some-model"
