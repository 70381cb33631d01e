"""The generation pipeline end to end with fake teachers, through the real job runner."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter

import pytest

from mirror_core import jobs, prompts, store
from mirror_core.generation import calls, pipeline
from mirror_core.teachers.base import GenParams, TeacherRequest
from mirror_core.teachers.registry import make_teacher


def _dataset(conn, n=8, name="toy", task_type="numeric"):
    conn.execute("INSERT INTO datasets (name, source, task_type, content_hash, created_at) VALUES (?,?,?,?,?)",
                 (name, "test", task_type, "h", store.now()))
    ds = conn.execute("SELECT id FROM datasets WHERE name = ?", (name,)).fetchone()[0]
    for i in range(n):
        conn.execute("INSERT INTO examples (dataset_id, ext_id, split, question, answer, task_type)"
                     " VALUES (?, ?, 'train', ?, ?, ?)", (ds, f"q{i}", f"What is {i} + {i + 1}?", str(2 * i + 1),
                                                         task_type))


def _cfg(**kw):
    base = dict(dataset="toy", teachers=["fake:a", "fake:b"], n_cots=2, k_evals=2)
    base.update(kw)
    return pipeline.GenConfig(**base).as_dict()


def _check_no_duplicates(conn, n_cots_total, n_evals_total):
    assert conn.execute("SELECT COUNT(*) FROM rationales").fetchone()[0] == n_cots_total
    assert conn.execute("SELECT COUNT(*) FROM self_evals").fetchone()[0] == n_evals_total
    dup = conn.execute("SELECT COUNT(*) FROM (SELECT example_id, author, sample_index, COUNT(*) n FROM rationales"
                       " GROUP BY 1, 2, 3 HAVING n > 1)").fetchone()[0]
    assert dup == 0
    dup = conn.execute("SELECT COUNT(*) FROM (SELECT rationale_id, sample_index, COUNT(*) n FROM self_evals"
                       " GROUP BY 1, 2 HAVING n > 1)").fetchone()[0]
    assert dup == 0
    assert conn.execute("SELECT COUNT(*) FROM teacher_calls").fetchone()[0] == n_cots_total + n_evals_total
    assert conn.execute("SELECT COUNT(*) FROM teacher_calls WHERE status <> 'ok'").fetchone()[0] == 0


def test_fake_pipeline_through_job_runner(conn, home):
    _dataset(conn)
    run_id = jobs.submit(conn, "generate", _cfg(limit=5, templates={}))
    row = jobs.wait(conn, run_id, poll_s=0.1, timeout_s=60)
    assert row["status"] == "succeeded", jobs.log_tail(row["log_path"])
    n_cots, n_evals = 5 * 2 * 2, 5 * 2 * 2 * 2
    _check_no_duplicates(conn, n_cots, n_evals)
    assert (row["progress_done"], row["progress_total"]) == (n_cots + n_evals, n_cots + n_evals)
    result = store.loads(row["result"])
    assert result["agreement"]["questions"] == 5 and result["agreement"]["cots"] == n_cots
    # distinct fake teachers, some right and some wrong, graded against the gold
    by_author = {r[0]: r[1] for r in conn.execute("SELECT author, COUNT(*) FROM rationales GROUP BY author")}
    assert by_author == {"fake:a": 10, "fake:b": 10}
    correct = [r[0] for r in conn.execute("SELECT correct FROM rationales")]
    assert 0 < sum(correct) < len(correct)
    # self-evaluations: parsed verdicts and confidences; a missing verdict keeps its text as parse_error
    verdicts = Counter(r[0] for r in conn.execute("SELECT verdict FROM self_evals"))
    assert verdicts["correct"] and verdicts["wrong"]
    for r in conn.execute("SELECT * FROM self_evals WHERE parse_status = 'parse_error'"):
        assert r["verdict"] is None and r["critique"]
    # every call records the template name and version it used
    assert conn.execute("SELECT COUNT(*) FROM teacher_calls WHERE template_name IS NULL OR template_version IS NULL"
                        ).fetchone()[0] == 0
    # a second run of the same work sends nothing and writes nothing new
    run2 = jobs.submit(conn, "generate", _cfg(limit=5))
    row2 = jobs.wait(conn, run2, poll_s=0.1, timeout_s=60)
    assert row2["status"] == "succeeded"
    res2 = store.loads(row2["result"])
    assert res2["cots"]["sent"] == 0 and res2["self_evals"]["sent"] == 0
    _check_no_duplicates(conn, n_cots, n_evals)


def test_sigkill_then_resume_answers_each_request_once(conn, home, monkeypatch, tmp_path):
    _dataset(conn)
    served = tmp_path / "served.log"
    monkeypatch.setenv("MIRROR_FAKE_LATENCY_S", "0.1")
    monkeypatch.setenv("MIRROR_FAKE_SERVED_LOG", str(served))
    in_flight = 4
    run_id = jobs.submit(conn, "generate", _cfg(max_in_flight=in_flight))
    total = 8 * 2 * 2 * 3
    deadline = time.time() + 60
    while time.time() < deadline:
        row = jobs.get(conn, run_id)
        if row["status"] == "running" and row["progress_done"] >= 30:
            break
        time.sleep(0.05)
    assert row["progress_done"] < total, "the run finished before it could be killed"
    os.killpg(row["pgid"], signal.SIGKILL)
    time.sleep(0.3)
    jobs.reap(conn)
    assert jobs.get(conn, run_id)["status"] == "failed"
    assert conn.execute("SELECT COUNT(*) FROM teacher_calls WHERE status = 'pending'").fetchone()[0] > 0
    jobs.resume(conn, run_id)
    row = jobs.wait(conn, run_id, poll_s=0.1, timeout_s=120)
    assert row["status"] == "succeeded", jobs.log_tail(row["log_path"])
    _check_no_duplicates(conn, 8 * 2 * 2, 8 * 2 * 2 * 2)
    # Each request has exactly one answer; only those in flight at the kill went out twice.
    counts = Counter(served.read_text().split())
    assert len(counts) == total
    assert sum(n - 1 for n in counts.values()) <= in_flight


def test_stop_then_resume(conn, home, monkeypatch):
    _dataset(conn)
    monkeypatch.setenv("MIRROR_FAKE_LATENCY_S", "0.05")
    run_id = jobs.submit(conn, "generate", _cfg(max_in_flight=2))
    deadline = time.time() + 30
    while time.time() < deadline and jobs.get(conn, run_id)["progress_done"] < 10:
        time.sleep(0.05)
    jobs.stop(conn, run_id)
    assert jobs.get(conn, run_id)["status"] == "cancelled"
    jobs.resume(conn, run_id)
    row = jobs.wait(conn, run_id, poll_s=0.1, timeout_s=60)
    assert row["status"] == "succeeded"
    _check_no_duplicates(conn, 32, 64)


def test_keys_never_written(conn, home, monkeypatch, tmp_path):
    """Run a job with a real SDK teacher and a secret key; grep every file the run wrote for the key."""
    from teacher_stub import Stub

    secret = "sk-LEAKCHECK-7f3a9c1e5b"
    _dataset(conn, n=3)
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    with Stub() as stub:
        cfg = _cfg(teachers=["openai:gpt-4o-mini"], base_url=stub.url + "/v1", requests_per_minute=0, n_cots=1,
                   k_evals=1)
        run_id = jobs.submit(conn, "generate", cfg)
        row = jobs.wait(conn, run_id, poll_s=0.1, timeout_s=60)
        assert row["status"] == "succeeded", jobs.log_tail(row["log_path"])
        assert stub.requests and all(secret in r["auth"] for r in stub.requests)  # it was really used
    assert conn.execute("SELECT COUNT(*) FROM rationales").fetchone()[0] == 3
    dump = "\n".join(conn.iterdump())
    assert secret not in dump
    conn.execute("PRAGMA wal_checkpoint(FULL)")
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "job.log" for p in files)
    for p in files:
        assert secret.encode() not in p.read_bytes(), f"the key leaked into {p}"
    assert secret not in (row["config"] or "") and secret not in json.dumps(dict(row))


def test_prompt_edit_makes_new_version_and_calls_record_it(conn):
    _dataset(conn, n=2)
    t1 = prompts.get(conn, "cot-numeric")
    t2 = prompts.edit(conn, "cot-numeric", t1.body.replace("careful teacher", "patient teacher"))
    assert (t1.version, t2.version) == (1, 2)
    assert prompts.get(conn, "cot-numeric", 1).body == t1.body
    assert prompts.edit(conn, "cot-numeric", t2.body).version == 2  # unchanged body adds nothing
    with pytest.raises(Exception, match="question"):
        prompts.edit(conn, "cot-numeric", "no placeholder here")
    cfg = pipeline.GenConfig(dataset="toy", teachers=["fake"], n_cots=1, k_evals=1)
    pipeline.run(conn, cfg, [make_teacher("fake")], log=lambda m: None)
    got = {(r[0], r[1]) for r in conn.execute("SELECT template_name, template_version FROM teacher_calls")}
    assert got == {("cot-numeric", 2), ("self-eval", 1)}


def test_replay_teacher(conn, tmp_path):
    _dataset(conn, n=3)
    path = tmp_path / "outputs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"id": "q0", "cots": ["0 + 1 = 1. The answer is 1.", "I think it is 2. The answer is 2."],
         "self_evals": [[{"critique": "Right.", "verdict": "correct", "confidence": 0.9}], ["Hmm, no verdict."]]},
        {"id": "q1", "cot": "1 + 2 = 3. The answer is 3."},
    ]))
    cfg = pipeline.GenConfig(dataset="toy", teachers=[f"replay:{path}"], n_cots=5, k_evals=3)
    teacher = make_teacher(cfg.teachers[0])
    summary = pipeline.run(conn, cfg, [teacher], log=lambda m: None)
    rats = conn.execute("SELECT e.ext_id, r.sample_index, r.parsed_answer, r.correct, r.author FROM rationales r"
                        " JOIN examples e ON e.id = r.example_id ORDER BY 1, 2").fetchall()
    assert [tuple(r)[:4] for r in rats] == [("q0", 0, "1", 1), ("q0", 1, "2", 0), ("q1", 0, "3", 1)]
    assert rats[0]["author"] == f"replay:{path}"
    evals = conn.execute("SELECT verdict, confidence, parse_status FROM self_evals ORDER BY id").fetchall()
    assert [tuple(e) for e in evals] == [("correct", 0.9, "ok"), (None, None, "parse_error")]
    assert summary["cots"]["by_status"] == {"ok": 3}  # q2 has no outputs: nothing asked, nothing failed


def test_fake_teachers_deterministic_and_distinct():
    req = TeacherRequest([{"role": "user", "content": "What is 3 + 4?"}], GenParams(sample_index=1),
                         meta={"purpose": "cot", "gold": "7", "task_type": "numeric"})
    a1, a2 = make_teacher("fake:a").complete([req])[0], make_teacher("fake:a").complete([req])[0]
    assert a1.text == a2.text and a1.status == "ok"
    texts = {make_teacher(f"fake:{n}").complete([req])[0].text for n in "abcdefgh"}
    assert len(texts) > 1


def test_verdict_parsing():
    assert pipeline.parse_verdict("blah\nEvaluation result: the given answer is wrong\nConfidence: 0.35") == ("wrong", 0.35)
    assert pipeline.parse_verdict("Evaluation result: The given answer is **Incorrect**") == ("wrong", None)
    assert pipeline.parse_verdict("Evaluation result: the given answer is uncertain. Confidence: 80%") == ("uncertain", 0.8)
    assert pipeline.parse_verdict("no verdict at all") == (None, None)


def test_reset_failed_and_retry(conn):
    _dataset(conn, n=1)
    t = make_teacher("fake")
    call = calls.Call(t, TeacherRequest([{"role": "user", "content": "x"}], GenParams()), purpose="cot")
    eng = calls.CallEngine(conn)
    eng.run([call])
    conn.execute("UPDATE teacher_calls SET status = 'error', error = 'boom'")
    assert calls.failed_calls(conn)[0]["error"] == "boom"
    assert eng.run([calls.Call(t, call.request, purpose="cot")]).sent == 0  # failed rows are cached...
    assert calls.reset_failed(conn) == 1                                     # ...until reset
    s = eng.run([calls.Call(t, call.request, purpose="cot")])
    assert s.sent == 1 and conn.execute("SELECT status, attempts FROM teacher_calls").fetchone()[:] == ("ok", 2)


def test_relative_replay_path_is_made_absolute_for_the_job(tmp_path, monkeypatch):
    from mirror_core.generation.pipeline import GenConfig

    (tmp_path / "out.jsonl").write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    cfg = GenConfig(dataset="d", split="train", teachers=["replay:out.jsonl", "fake", "replay:missing.jsonl"])
    assert cfg.teachers == [f"replay:{tmp_path / 'out.jsonl'}", "fake", "replay:missing.jsonl"]


def test_dev_limit_adds_dev_questions_to_a_train_run(conn, home):
    _dataset(conn, n=6)
    conn.execute("UPDATE examples SET split = 'dev' WHERE ext_id IN ('q4', 'q5')")
    run_id = jobs.submit(conn, "generate", _cfg(limit=3, dev_limit=1, teachers=["fake:a"], k_evals=1))
    row = jobs.wait(conn, run_id, poll_s=0.1, timeout_s=60)
    assert row["status"] == "succeeded", jobs.log_tail(row["log_path"])
    by_split = dict(conn.execute("SELECT e.split, COUNT(*) FROM rationales r JOIN examples e ON e.id = r.example_id"
                                 " GROUP BY e.split").fetchall())
    assert by_split == {"train": 3 * 2, "dev": 1 * 2}
    with pytest.raises(Exception, match="dev_limit"):
        pipeline.GenConfig(dataset="toy", teachers=["fake"], split="test", dev_limit=2)
