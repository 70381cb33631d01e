"""From a frozen snapshot to token batches: examples per task, tokenization, packing or bucketing.

Pipeline: `load_items` (snapshot_items + the example's choices) → `build_examples` (one text pair per
task, laid out by `formats`) → `tokenize` (labels -100 on prompt tokens) → `make_batches` for one epoch:
  * packed (causal): examples go first-fit into rows of `seq_len` tokens; `position_ids` restart at 0
    for every example. transformers 5 turns restarting position_ids (with attention_mask=None and no
    cache) into a block-diagonal causal mask for eager/sdpa (masking_utils.find_packed_sequence_indices)
    and into varlen attention for flash-attention, so packed examples never attend to each other.
  * bucketed (causal unpacked, seq2seq): examples sorted by length inside shuffled windows, padded
    batches filled up to `batch_tokens` of padded area.
The batch plan of an epoch depends only on (seed, epoch), so resume replays the same order exactly.
Every label position carries its task index (`task_ids`) so the loss can be split per task.
"""

from __future__ import annotations

import json
import random
import sqlite3
from dataclasses import dataclass
from typing import Any, Iterable

from mirror_core import answers, formats
from mirror_core.errors import TrainingError

IGNORE = -100
TASK_INDEX = {t: i for i, t in enumerate(formats.TASKS)}


@dataclass(frozen=True)
class TextExample:
    task: str
    prompt: str
    target: str
    example_id: int


@dataclass(frozen=True)
class TokExample:
    """Causal: input_ids = prompt + target + eos, labels -100 on the prompt. Seq2seq: labels = target + eos."""
    task: int
    input_ids: list[int]
    labels: list[int]



def load_items(conn: sqlite3.Connection, snapshot_id: int) -> list[dict[str, Any]]:
    """The snapshot's frozen rows with the example's choices; raises if the snapshot is empty or missing."""
    snap = conn.execute("SELECT id, name FROM snapshots WHERE id = ?", (snapshot_id,)).fetchone()
    if snap is None:
        raise TrainingError(f"Snapshot {snapshot_id} does not exist; `python -m mirror_core snapshot list` shows them.")
    rows = conn.execute(
        "SELECT si.example_id, si.rationale_id, si.split, si.question, si.answer, si.cot, si.self_evals, e.choices, e.task_type"
        " FROM snapshot_items si JOIN examples e ON e.id = si.example_id WHERE si.snapshot_id = ?"
        " ORDER BY si.example_id, si.rationale_id", (snapshot_id,)).fetchall()
    if not rows:
        raise TrainingError(f"Snapshot '{snap['name']}' (id {snapshot_id}) has no items; rebuild it from reviewed data.")
    items = []
    for r in rows:
        d = dict(r)
        d["choices"] = json.loads(d["choices"]) if d["choices"] else None
        d["self_evals"] = json.loads(d["self_evals"]) if d["self_evals"] else []
        items.append(d)
    return items


def build_examples(items: Iterable[dict[str, Any]], tasks: Iterable[str], split: str) -> list[TextExample]:
    """One (prompt, target) per task per item of `split`: the answer and CoT once per CoT (as in the
    paper, a question repeats once per distinct CoT), verdict and critique once per self-evaluation."""
    tasks = set(tasks)
    out: list[TextExample] = []
    for it in items:
        if it["split"] != split:
            continue
        q, ch, cot, eid = it["question"], it["choices"], it["cot"], it["example_id"]
        if "answer" in tasks:
            out.append(TextExample("answer", formats.prompt("answer", q, ch), formats.target("answer", answer=it["answer"]), eid))
        if not cot:
            continue
        if "cot" in tasks:
            tgt = cot_target(it)
            if tgt is not None:
                out.append(TextExample("cot", formats.prompt("cot", q, ch), tgt, eid))
        for ev in it["self_evals"]:
            if "verdict" in tasks and ev.get("verdict") in formats.VERDICTS:
                out.append(TextExample("verdict", formats.prompt("verdict", q, ch, cot),
                                       formats.target("verdict", verdict=ev["verdict"]), eid))
            if "critique" in tasks and (ev.get("critique") or "").strip():
                out.append(TextExample("critique", formats.prompt("critique", q, ch, cot),
                                       formats.target("critique", critique=ev["critique"]), eid))
    return out


def cot_own_answer(item: dict[str, Any]) -> str | None:
    """The final answer the CoT itself states (canonical form), or None when it reaches none."""
    task_type = item.get("task_type")
    if task_type not in answers.TASK_TYPES:
        return None
    return answers.extract_answer(item["cot"], task_type, item.get("choices"))


def cot_target(item: dict[str, Any]) -> str | None:
    """The CoT task's target: the CoT ending in an answer line with the CoT's *own* final answer, or None
    (left out of the CoT task) when the CoT states no final answer. The gold is never attached to a CoT:
    "The question is unanswerable" must not become "... The answer is 3." (issue 11 item 10)."""
    own = cot_own_answer(item)
    if own is None:
        return None
    return formats.target("cot", cot=item["cot"], answer=own)


def cot_report(items: Iterable[dict[str, Any]], split: str = "train") -> dict[str, int]:
    """How the CoTs of `split` enter the CoT task: `kept`, `answer_line_added` (the CoT's own answer
    appended as the fixed answer line), `left_out` (no final answer of its own)."""
    kept = added = left = 0
    for it in items:
        if it["split"] != split or not it["cot"]:
            continue
        if cot_target(it) is None:
            left += 1
            continue
        kept += 1
        text = it["cot"].strip()
        last = text.splitlines()[-1] if text else ""
        added += not formats._ANSWER_LINE.search(last)
    return {"kept": kept, "answer_line_added": added, "left_out": left}


def task_counts(items: list[dict[str, Any]], tasks: Iterable[str], split: str = "train") -> dict[str, int]:
    """Examples per task of `split` (0 for a task the snapshot has no data for)."""
    counts = {t: 0 for t in tasks}
    for e in build_examples(items, counts, split):
        counts[e.task] += 1
    return counts


def tokenize(examples: list[TextExample], tokenizer, arch: str, seq_len: int) -> list[TokExample]:
    """Token ids per example. The prompt gets the tokenizer's usual special tokens (what evaluation's
    `tokenizer(prompt)` gives); the target gets none but ends in eos. Too long: the prompt's middle is cut
    (its task prefix and its last line — e.g. the verdict stem — stay), then the target's end."""
    if not examples:
        return []
    eos = tokenizer.eos_token_id
    prompts = tokenizer([e.prompt for e in examples]).input_ids
    targets = tokenizer([e.target for e in examples], add_special_tokens=False).input_ids
    out = []
    for ex, p, t in zip(examples, prompts, targets):
        t = t + [eos]
        if arch == "seq2seq":
            if not p or p[-1] != eos:
                p = p + [eos]
            p = _cut_middle(p, seq_len)
            out.append(TokExample(TASK_INDEX[ex.task], p, t[:seq_len]))
            continue
        if len(p) + len(t) > seq_len:
            p = _cut_middle(p, max(seq_len - len(t), min(len(p), seq_len // 4)))
            t = t[: seq_len - len(p)]
        out.append(TokExample(TASK_INDEX[ex.task], p + t, [IGNORE] * len(p) + t))
    return out


def _cut_middle(ids: list[int], n: int) -> list[int]:
    if len(ids) <= n:
        return ids
    head = min(16, n // 2)
    return ids[:head] + ids[len(ids) - (n - head):]


# ---------------------------------------------------------------- batches

def make_batches(examples: list[TokExample], *, arch: str, packing: bool, seq_len: int, batch_tokens: int,
                 pad_id: int, seed: int, epoch: int) -> list[dict[str, Any]]:
    """The micro-batches of one epoch (CPU tensors), in training order; deterministic in (seed, epoch)."""
    rng = random.Random(seed * 100_003 + epoch)
    order = list(range(len(examples)))
    rng.shuffle(order)
    if packing:
        if arch != "causal":
            raise TrainingError("packing works for causal students only.")
        rows = pack_rows([examples[i] for i in order], seq_len)
        rng.shuffle(rows)
        per = max(1, batch_tokens // seq_len)
        return [collate_packed(rows[i:i + per], pad_id) for i in range(0, len(rows), per)]
    groups = bucket([examples[i] for i in order], batch_tokens, arch)
    rng.shuffle(groups)
    return [collate_padded(g, pad_id, arch) for g in groups]


def pack_rows(examples: list[TokExample], seq_len: int) -> list[list[TokExample]]:
    """First-fit in the given order: each example goes into the first row with room for it."""
    rows: list[list[TokExample]] = []
    space: list[int] = []
    for ex in examples:
        n = len(ex.input_ids)
        for i, s in enumerate(space):
            if s >= n:
                rows[i].append(ex)
                space[i] -= n
                break
        else:
            rows.append([ex])
            space.append(seq_len - n)
    return rows


def collate_packed(rows: list[list[TokExample]], pad_id: int) -> dict[str, Any]:
    """Rows padded to the longest row; position_ids restart per example (padding continues as its own
    segment); labels and task_ids are -100 / -1 where there is no label."""
    import torch

    width = max(sum(len(e.input_ids) for e in r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    tasks = torch.full((len(rows), width), -1, dtype=torch.long)
    pos = torch.zeros((len(rows), width), dtype=torch.long)
    for b, r in enumerate(rows):
        o = 0
        for e in r:
            n = len(e.input_ids)
            ids[b, o:o + n] = torch.tensor(e.input_ids)
            lab = torch.tensor(e.labels)
            labels[b, o:o + n] = lab
            tasks[b, o:o + n] = torch.where(lab != IGNORE, e.task, -1)
            pos[b, o:o + n] = torch.arange(n)
            o += n
        pos[b, o:] = torch.arange(width - o)
    return {"input_ids": ids, "labels": labels, "task_ids": tasks, "position_ids": pos,
            "n_examples": sum(len(r) for r in rows), "n_tokens": sum(len(e.input_ids) for r in rows for e in r)}


def bucket(examples: list[TokExample], batch_tokens: int, arch: str) -> list[list[TokExample]]:
    """Length-bucketed groups whose padded area (count × longest) stays within batch_tokens."""
    def size(e: TokExample) -> int:
        return max(len(e.input_ids), len(e.labels)) if arch == "seq2seq" else len(e.input_ids)

    window = 64
    groups: list[list[TokExample]] = []
    for w in range(0, len(examples), window * 8):
        chunk = sorted(examples[w:w + window * 8], key=size)
        cur: list[TokExample] = []
        for e in chunk:
            if cur and (len(cur) + 1) * max(size(e), max(size(c) for c in cur)) > batch_tokens:
                groups.append(cur)
                cur = []
            cur.append(e)
        if cur:
            groups.append(cur)
    return groups


def collate_padded(group: list[TokExample], pad_id: int, arch: str) -> dict[str, Any]:
    import torch

    n = len(group)
    if arch == "seq2seq":
        li, lt = max(len(e.input_ids) for e in group), max(len(e.labels) for e in group)
        ids = torch.full((n, li), pad_id, dtype=torch.long)
        att = torch.zeros((n, li), dtype=torch.long)
        labels = torch.full((n, lt), IGNORE, dtype=torch.long)
        tasks = torch.full((n, lt), -1, dtype=torch.long)
        for b, e in enumerate(group):
            ids[b, :len(e.input_ids)] = torch.tensor(e.input_ids)
            att[b, :len(e.input_ids)] = 1
            labels[b, :len(e.labels)] = torch.tensor(e.labels)
            tasks[b, :len(e.labels)] = e.task
        return {"input_ids": ids, "attention_mask": att, "labels": labels, "task_ids": tasks, "n_examples": n,
                "n_tokens": sum(len(e.input_ids) + len(e.labels) for e in group)}
    width = max(len(e.input_ids) for e in group)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    att = torch.zeros((n, width), dtype=torch.long)
    labels = torch.full((n, width), IGNORE, dtype=torch.long)
    tasks = torch.full((n, width), -1, dtype=torch.long)
    for b, e in enumerate(group):
        k = len(e.input_ids)
        ids[b, :k] = torch.tensor(e.input_ids)
        att[b, :k] = 1
        lab = torch.tensor(e.labels)
        labels[b, :k] = lab
        tasks[b, :k] = torch.where(lab != IGNORE, e.task, -1)
    return {"input_ids": ids, "attention_mask": att, "labels": labels, "task_ids": tasks, "n_examples": n,
            "n_tokens": sum(len(e.input_ids) for e in group)}
