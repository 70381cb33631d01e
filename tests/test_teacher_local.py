"""The local transformers teacher on the offline SmolLM2-135M-Instruct: a few short generations."""

from __future__ import annotations

import pytest

from mirror_core import store
from mirror_core.generation import pipeline
from mirror_core.teachers.base import GenParams, TeacherRequest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def teacher():
    from mirror_core.teachers.registry import make_teacher

    import torch

    torch.set_num_threads(1)  # the CPU is shared: spinning threads would slow this test many times over
    t = make_teacher("local", device="cpu")
    t.batch_size = 4
    return t


def test_batched_generation_keeps_order_and_reports_tokens(teacher):
    qs = ["What is 2 + 2?", "Name a colour of the sky on a clear day, and explain why in one sentence.", "Hi"]
    reqs = [TeacherRequest([{"role": "user", "content": q}], GenParams(temperature=0.0, max_tokens=12)) for q in qs]
    batched = teacher.complete(reqs)
    assert len(batched) == 3
    for c in batched:
        assert c.status in ("ok", "truncated") and c.text
        assert 0 < c.output_tokens <= 12 and c.input_tokens > 0
        assert c.finish_reason == ("length" if c.status == "truncated" else "stop")
    # left padding and length sorting must not change what each prompt gets (greedy decoding)
    one = [teacher.complete([r])[0].text for r in reqs]
    assert [c.text for c in batched] == one
    assert teacher.spec == "local"


def test_local_teacher_in_the_pipeline(conn, teacher):
    conn.execute("INSERT INTO datasets (name, source, task_type, content_hash, created_at)"
                 " VALUES ('toy', 'test', 'numeric', 'h', ?)", (store.now(),))
    for i in range(2):
        conn.execute("INSERT INTO examples (dataset_id, ext_id, split, question, answer, task_type)"
                     " VALUES (1, ?, 'train', ?, ?, 'numeric')", (f"q{i}", f"What is {i} + 3?", str(i + 3)))
    cfg = pipeline.GenConfig(dataset="toy", teachers=["local"], n_cots=2, k_evals=1, max_tokens=24,
                             eval_max_tokens=16)
    summary = pipeline.run(conn, cfg, [teacher], log=lambda m: None)
    assert summary["cots"]["sent"] == 4
    assert conn.execute("SELECT COUNT(*) FROM rationales WHERE author = 'local'").fetchone()[0] == 4
    assert conn.execute("SELECT COUNT(*) FROM self_evals").fetchone()[0] == 4
    again = pipeline.run(conn, cfg, [teacher], log=lambda m: None)
    assert again["cots"]["sent"] == 0 and again["self_evals"]["sent"] == 0
