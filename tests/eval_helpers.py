"""A finished train run made by hand for evaluation tests: a tiny model taught to say "The answer is 4."."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from mirror_core import config, formats, store

_TRAINED: dict = {}
QUESTIONS = [("What is 2 + 2?", "4"), ("What is 3 + 1?", "4"), ("What is 2 + 3?", "5"),
             ("How many legs do two dogs have, minus four?", "4"), ("What is 10 - 3?", "7")]


def make_dataset(conn, name="toy", n_test=5) -> int:
    ts = store.now()
    did = conn.execute("INSERT INTO datasets (name, source, task_type, content_hash, created_at)"
                       " VALUES (?, 'test', 'numeric', 'h', ?)", (name, ts)).lastrowid
    for i in range(n_test):
        q, a = QUESTIONS[i % len(QUESTIONS)]
        conn.execute("INSERT INTO examples (dataset_id, ext_id, split, question, answer, task_type)"
                     " VALUES (?, ?, 'test', ?, ?, 'numeric')", (did, f"t{i}", q + ("" if i < 5 else f" ({i})"), a))
    eid = conn.execute("INSERT INTO examples (dataset_id, ext_id, split, question, answer, task_type)"
                       " VALUES (?, 'tr0', 'train', 'What is 1 + 3?', '4', 'numeric')", (did,)).lastrowid
    # a teacher CoT with a self-evaluation, so teacher calibration has something to measure
    rid = conn.execute("INSERT INTO rationales (example_id, kind, author, text, parsed_answer, correct, created_at,"
                       " updated_at) VALUES (?, 'cot', 'fake', '1 + 3 = 4. The answer is 4.', '4', 1, ?, ?)",
                       (eid, ts, ts)).lastrowid
    conn.execute("INSERT INTO self_evals (rationale_id, evaluator, critique, verdict, confidence, created_at)"
                 " VALUES (?, 'fake', 'fine', 'correct', 0.9, ?)", (rid, ts))
    return did


def make_train_run(conn, home, dataset_id: int, *, tasks=("answer", "cot", "verdict", "critique"),
                   steps: int = 40, name: str = "mm", seed: int = 0,
                   checkpoint: bool = True) -> int:
    """A `runs` row (train, succeeded) whose checkpoints/best holds a tiny model trained a few steps."""
    import torch

    from mirror_core.students import loading

    ts = store.now()
    sid = conn.execute("INSERT INTO snapshots (name, policy, dataset_id, hash, size, created_at)"
                       " VALUES (?, 'all', ?, 'h', 1, ?)", (f"snap-{name}", dataset_id, ts)).lastrowid
    ex = conn.execute("SELECT id FROM examples WHERE dataset_id = ? AND split = 'train'", (dataset_id,)).fetchone()[0]
    rid = conn.execute("SELECT id FROM rationales WHERE example_id = ?", (ex,)).fetchone()[0]
    conn.execute("INSERT INTO snapshot_items (snapshot_id, example_id, rationale_id, split, question, answer, cot,"
                 " self_evals) VALUES (?, ?, ?, 'train', 'What is 1 + 3?', '4', '1 + 3 = 4.', '[]')", (sid, ex, rid))
    run_id = conn.execute(
        "INSERT INTO runs (kind, name, status, config, snapshot_id, created_at, started_at, finished_at)"
        " VALUES ('train', ?, 'succeeded', ?, ?, ?, ?, ?)",
        (name, json.dumps({"student": "tiny", "tasks": list(tasks), "max_steps": steps}), sid, ts, ts, ts)).lastrowid
    if not checkpoint:  # a row is all that tables and diffs need
        return run_id
    out = config.run_dir(run_id, home) / "checkpoints" / "best"
    key = (steps, seed)  # the taught behaviour is the same whatever tasks the row claims
    if key in _TRAINED:  # training is the slow part: do it once per test session and copy the folder
        shutil.copytree(_TRAINED[key], out)
        _write_meta(out, tasks, sid, steps)
        return run_id
    tok = loading.load_tokenizer("tiny")
    model = loading.tiny_causal_lm(tok, seed=seed)
    # Teach it one answer for every question and "correct" as its verdict: predictions then differ by gold.
    prompts, texts = [], []
    for q, _ in QUESTIONS:
        for p, t in ((formats.prompt("cot", q), formats.target("cot", cot="Add them.", answer="4")),
                     (formats.prompt("answer", q), formats.target("answer", answer="4")),
                     (formats.prompt("verdict", q, None, "Add them.\nThe answer is 4."),
                      formats.target("verdict", verdict="correct"))):
            prompts.append(p)
            texts.append(p + t + tok.eos_token)
    tok.padding_side = "right"
    batch = tok(texts, return_tensors="pt", padding=True)
    # Loss on the target tokens only (prompt + target share the prompt's tokens): projecting just those
    # positions to the 49k vocabulary keeps this a couple of seconds on a busy CPU.
    prompt_lens = [len(tok(p)["input_ids"]) for p in prompts]
    ids, mask = batch["input_ids"], batch["attention_mask"]
    pos = torch.zeros_like(ids, dtype=torch.bool)
    for r, n in enumerate(prompt_lens):
        pos[r, n - 1:int(mask[r].sum()) - 1] = True  # position t predicts token t + 1
    targets = ids[:, 1:][pos[:, :-1]]
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a shared 2-core box, more threads than free cores is several times slower
    try:
        for _ in range(steps):
            hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
            loss = torch.nn.functional.cross_entropy(model.lm_head(hidden[:, :-1][pos[:, :-1]]), targets)
            loss.backward()
            opt.step()
            opt.zero_grad()
    finally:
        torch.set_num_threads(threads)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    _TRAINED[key] = Path(tempfile.mkdtemp(prefix="tiny-ckpt-"))
    shutil.copytree(out, _TRAINED[key], dirs_exist_ok=True)
    _write_meta(out, tasks, sid, steps)
    return run_id


def _write_meta(out, tasks, sid, steps) -> None:
    (out / "mirror_meta.json").write_text(json.dumps({
        "student": "tiny", "arch": "causal", "format_version": formats.FORMAT_VERSION, "tasks": list(tasks),
        "snapshot_id": sid, "step": steps}))


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """One torch thread here and in job workers: 2 shared cores thrash with more (several times slower)."""
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
