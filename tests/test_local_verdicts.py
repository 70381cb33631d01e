"""The local teacher's outputs: a CoT stops at a next question the model invents; a self-evaluation's
verdict and confidence are read from the model's log-probabilities of the three verdict words."""

from __future__ import annotations

import math

import pytest

from mirror_core import formats, jobs, store
from mirror_core.evaluation.runner import teacher_calibration
from mirror_core.review import queries
from mirror_core.teachers.base import GenParams, TeacherRequest
from mirror_core.teachers.local import VERDICT_SOURCE, cut_invented_question, split_own_verdict, verdict_confidence


def test_cot_is_cut_at_an_invented_next_question():
    assert cut_invented_question("3 + 4 = 7. The answer is 7.\nQuestion: Tom has 5 apples") == \
        "3 + 4 = 7. The answer is 7."
    assert cut_invented_question("So 12.\n\nQ: what is 2+2?\nA: 4") == "So 12."
    assert cut_invented_question("The question: how many? 5.") == "The question: how many? 5."


# ---------------------------------------------------------------- verdicts read from log-probabilities
# The local teacher on a tiny random Llama built from a config (SmolLM2's tokenizer): its critiques are
# noise, but its verdicts must still come from its next-token distribution after the verdict stem.


@pytest.fixture(scope="module")
def tiny():
    import torch

    from mirror_core.teachers.registry import make_teacher

    torch.set_num_threads(1)  # the CPU is shared
    t = make_teacher("local:tiny", device="cpu")
    t.batch_size = 4
    return t


def _eval_request(question: str, cot: str, index: int = 0) -> TeacherRequest:
    msgs = [{"role": "system", "content": "You check solutions."},
            {"role": "user", "content": f"Question: {question}\nProposed reasoning:\n{cot}\nCritique it."}]
    return TeacherRequest(msgs, GenParams(temperature=0.7, max_tokens=10, seed=0, sample_index=index),
                          meta={"purpose": "self_eval"})


def _direct_probs(teacher, context: str) -> dict[str, float]:
    """The three verdict words' probabilities from one unpadded forward pass, computed apart from the teacher."""
    import torch

    tok = teacher.tokenizer
    ids = tok(context, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logits = teacher.lm(input_ids=ids).logits[0, -1]
    first = {w: tok(" " + w, add_special_tokens=False)["input_ids"][0] for w in formats.VERDICTS}
    z = sum(math.exp(float(logits[i])) for i in first.values())
    return {w: math.exp(float(logits[i])) / z for w, i in first.items()}


def test_every_self_evaluation_carries_a_verdict_read_from_the_model(tiny):
    reqs = [_eval_request("What is 2 + 2?", "2 + 2 = 4. The answer is 4."),
            _eval_request("Tom has 3 boxes of 4 apples and eats 2 of them. How many are left?",
                          "3 * 4 = 12 and 12 - 2 = 10. The answer is 10.", 1),
            _eval_request("Hi", "The answer is 5.", 2)]
    comps = tiny.complete(reqs)  # one batch of three prompts of different lengths (left padding)
    confs = []
    for req, c in zip(reqs, comps):
        assert c.status in ("ok", "truncated"), c.error
        se = c.raw["self_eval"]
        assert se["source"] == VERDICT_SOURCE and se["verdict"] in formats.VERDICTS
        assert 0.0 <= se["confidence"] <= 1.0
        assert math.isclose(sum(se["probs"].values()), 1.0, rel_tol=1e-6)
        assert se["verdict"] == max(se["probs"], key=se["probs"].get)
        # The batched, padded pass reads what a direct forward pass of that one context gives.
        direct = _direct_probs(tiny, tiny.render(req) + (c.text + "\n" if c.text else "") + formats.VERDICT_STEM)
        for w in formats.VERDICTS:
            assert se["probs"][w] == pytest.approx(direct[w], abs=1e-4)
        confs.append(se["probs"]["correct"])
    assert len({round(p, 6) for p in confs}) == 3  # different inputs, different readings


def test_a_cot_request_is_left_alone_and_keeps_its_cache_key(tiny):
    cot = TeacherRequest([{"role": "user", "content": "What is 2 + 2?"}], GenParams(temperature=0.0, max_tokens=6),
                         meta={"purpose": "cot"})
    c = tiny.complete([cot])[0]
    assert "self_eval" not in c.raw
    assert tiny.content_key(cot) is None and tiny.content_key(_eval_request("q", "c")) is not None


def test_the_models_own_verdict_line_is_cut_and_replaced():
    assert split_own_verdict("Step 1 is right.\n**Evaluation result:** the given answer is correct\nConfidence: 0.9") \
        == ("Step 1 is right.", "**Evaluation result:** the given answer is correct\nConfidence: 0.9")
    assert split_own_verdict("No verdict here.") == ("No verdict here.", "")
    # "Evaluation result:" as a heading over more critique is critique, not a verdict
    heading = "The given answer is 42.\n\nEvaluation result: The answer is (42 - 84) / 2 = 20 points."
    assert split_own_verdict(heading) == (heading, "")


def test_stored_confidence_reads_back_as_the_models_p_correct():
    probs = {"correct": 0.2, "wrong": 0.5, "uncertain": 0.3}
    # calibration reads P(correct) as confidence for 'correct' and 1 - confidence for 'wrong'
    assert 1.0 - verdict_confidence("wrong", probs) == pytest.approx(0.2)
    assert verdict_confidence("correct", {"correct": 0.7, "wrong": 0.2, "uncertain": 0.1}) == pytest.approx(0.7)


def test_generate_job_with_the_tiny_local_teacher_parses_every_self_evaluation(conn, home, monkeypatch):
    monkeypatch.setenv("MIRROR_TORCH_THREADS", "1")
    conn.execute("INSERT INTO datasets (name, source, task_type, content_hash, created_at)"
                 " VALUES ('toy', 'test', 'numeric', 'h', ?)", (store.now(),))
    for i in range(3):
        conn.execute("INSERT INTO examples (dataset_id, ext_id, split, question, answer, task_type)"
                     " VALUES (1, ?, 'train', ?, ?, 'numeric')", (f"q{i}", f"What is {i} + {i + 3}?", str(2 * i + 3)))
    # 3 CoTs, 2 self-evaluations each, through the real job runner (a worker process).
    cfg = dict(dataset="toy", teachers=["local:tiny"], n_cots=1, k_evals=2, max_tokens=8, eval_max_tokens=8)
    run_id = jobs.submit(conn, "generate", cfg)
    row = jobs.wait(conn, run_id, poll_s=0.2, timeout_s=300)
    assert row["status"] == "succeeded", jobs.log_tail(row["log_path"])
    evals = [dict(r) for r in conn.execute(
        "SELECT s.*, c.response, c.raw FROM self_evals s JOIN teacher_calls c ON c.id = s.call_id")]
    assert len(evals) == 6
    for e in evals:
        assert e["parse_status"] == "ok" and e["verdict"] in formats.VERDICTS
        assert 0.0 <= e["confidence"] <= 1.0
        assert e["critique"] == e["response"]  # the critique as written stays
        raw = store.loads(e["raw"])["response"]["self_eval"]
        assert raw["source"] == VERDICT_SOURCE and raw["verdict"] == e["verdict"]
        assert e["confidence"] == pytest.approx(raw["confidence"])
    assert store.loads(row["result"])["verdict_vs_gold"]["parse_errors"] == 0
    # Every one of them counts in the teacher-quality calibration (Review) and the eval's teacher calibration.
    # The tiny model's CoTs are noise: two are marked right so the calibration has both classes.
    conn.execute("UPDATE rationales SET correct = (id IN (SELECT id FROM rationales ORDER BY id LIMIT 2))")
    tq = {t["teacher"]: t for t in queries.teacher_quality(conn, "toy")}
    assert tq["local:tiny"]["calibrated_n"] == 6 and tq["local:tiny"]["auroc"] is not None
    assert teacher_calibration(conn, 1)["local:tiny"]["n"] == 6
