"""A finished train run made by hand for evaluation tests: a tiny model taught to say "The answer is 4."."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

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
                   steps: int = 60, name: str = "mm", seed: int = 0,
                   checkpoint: bool = True) -> int:
    """A `runs` row (train, succeeded) whose checkpoints/best holds a tiny model trained a few steps."""
    import torch

    from mirror_core import models

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
    tok = models.load_tokenizer("tiny")
    model = models.tiny_causal_lm(tok, seed=seed)
    # Teach it one answer for every question and "correct" as its verdict: predictions then differ by gold.
    texts = []
    for q, _ in QUESTIONS:
        texts.append(formats.prompt("cot", q) + formats.target("cot", cot="Add them.", answer="4") + tok.eos_token)
        texts.append(formats.prompt("answer", q) + formats.target("answer", answer="4") + tok.eos_token)
        texts.append(formats.prompt("verdict", q, None, "Add them.\nThe answer is 4.")
                     + formats.target("verdict", verdict="correct") + tok.eos_token)
    tok.padding_side = "right"
    batch = tok(texts, return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
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
