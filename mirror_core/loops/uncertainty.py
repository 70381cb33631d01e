"""ELAD's selection score: how unsure the student is about the *steps* of its own explanation.

ELAD (PAPERS.md §3) spends the teacher's budget on the questions whose explanations the student is least
sure of, even when the final answer looks right. The paper's exact score is not public; ours is:

    score(q) = (1 - λ) · H(q) / log V  +  λ · D(q)          (λ = `weight`, default 0.5)

- Steps: an explanation is split into steps on newlines, then on sentence ends (". ", "! ", "? ").
- Step entropy: the mean, over the step's tokens, of the entropy (nats) of the student's next-token
  distribution at that token (teacher-forced on the sampled text). A token belongs to the step that holds
  its first character.
- H(q): the mean over steps of the step entropy (every step counts once, so a long easy step cannot hide a
  short unsure one), averaged over the sampled explanations of q. Divided by log V (V = vocabulary size,
  the largest possible entropy) it lies in [0, 1].
- D(q): disagreement between the samples' final answers: 1 − (count of the most common answer) / n.
  An explanation with no readable answer counts as its own distinct answer. 0 when all agree; with n
  samples it is at most 1 − 1/n.

Top-B selection takes the B highest scores (ties: smaller example id first); the control takes B at
random with a seeded generator, so both arms of the comparison are reproducible.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Hashable, Iterable, Sequence

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_steps(text: str) -> list[tuple[int, int]]:
    """Character spans (start, end) of the steps of an explanation: lines, then sentences within a line."""
    spans = []
    pos = 0
    for line in text.split("\n"):
        start = pos
        pos += len(line) + 1
        cursor = 0
        for part in _SENTENCE_END.split(line):
            i = line.find(part, cursor)
            cursor = i + len(part)
            stripped = part.strip()
            if not stripped:
                continue
            lead = len(part) - len(part.lstrip())
            spans.append((start + i + lead, start + i + lead + len(stripped)))
    return spans


def step_texts(text: str) -> list[str]:
    """The steps themselves (for display)."""
    return [text[a:b] for a, b in split_steps(text)]


def step_entropies(text: str, token_starts: Sequence[int], token_entropy: Sequence[float]) -> list[float]:
    """Mean token entropy per step. `token_starts[i]` is the character offset in `text` where token i starts.

    Tokens that start in whitespace between steps go to the next step; steps with no token are skipped.
    """
    if len(token_starts) != len(token_entropy):
        raise ValueError("token_starts and token_entropy must have the same length")
    spans = split_steps(text)
    sums = [0.0] * len(spans)
    counts = [0] * len(spans)
    for start, h in zip(token_starts, token_entropy):
        for k, (_, b) in enumerate(spans):
            if start < b:  # inside step k, or in the whitespace just before it
                sums[k] += float(h)
                counts[k] += 1
                break
    return [s / c for s, c in zip(sums, counts) if c]


def explanation_entropy(step_means: Sequence[float]) -> float:
    """H of one explanation: the mean of its step entropies (0 for an explanation with no steps)."""
    return sum(step_means) / len(step_means) if step_means else 0.0


def disagreement(answers: Sequence[str | None]) -> float:
    """1 − share of the most common final answer; each unreadable answer (None) is distinct."""
    if not answers:
        return 0.0
    keyed = [a if a is not None else ("__none__", i) for i, a in enumerate(answers)]
    top = Counter(keyed).most_common(1)[0][1]
    return 1.0 - top / len(answers)


@dataclass
class QuestionScore:
    """The uncertainty of one question's sampled explanations, with its parts kept for the page."""

    example_id: int
    score: float
    entropy: float            # H(q) in nats
    entropy_norm: float       # H(q) / log V
    disagreement: float
    answers: list = field(default_factory=list)
    sample_entropies: list = field(default_factory=list)   # H per sample
    most_uncertain_sample: int = 0                         # the sample the teacher will be asked to fix

    def as_dict(self) -> dict:
        return {"example_id": self.example_id, "score": round(self.score, 6), "entropy": round(self.entropy, 6),
                "entropy_norm": round(self.entropy_norm, 6), "disagreement": round(self.disagreement, 6),
                "answers": self.answers, "sample_entropies": [round(h, 6) for h in self.sample_entropies],
                "most_uncertain_sample": self.most_uncertain_sample}


def score_question(example_id: int, sample_step_entropies: Sequence[Sequence[float]],
                   answers: Sequence[str | None], vocab_size: int, weight: float = 0.5) -> QuestionScore:
    """Combine the samples of one question into its selection score (see the module docstring)."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    if vocab_size < 2:
        raise ValueError("vocab_size must be at least 2")
    per_sample = [explanation_entropy(s) for s in sample_step_entropies]
    h = sum(per_sample) / len(per_sample) if per_sample else 0.0
    h_norm = min(1.0, h / math.log(vocab_size))
    d = disagreement(answers)
    worst = max(range(len(per_sample)), key=lambda i: (per_sample[i], -i)) if per_sample else 0
    return QuestionScore(example_id, (1 - weight) * h_norm + weight * d, h, h_norm, d, list(answers),
                         per_sample, worst)


def select_top(scores: Iterable[QuestionScore], budget: int) -> list[QuestionScore]:
    """The `budget` most uncertain questions, highest score first (ties: smaller example id first)."""
    ranked = sorted(scores, key=lambda s: (-s.score, s.example_id))
    return ranked[:max(0, budget)]


def select_random(items: Sequence[Hashable], budget: int, seed: int) -> list:
    """`budget` items drawn uniformly without replacement with a seeded generator (the control arm)."""
    pool = sorted(items)
    rng = random.Random(seed)
    return rng.sample(pool, min(max(0, budget), len(pool)))


def token_entropies(model, tokenizer, prompt: str, completion: str) -> tuple[list[int], list[float]]:
    """Teacher-forced entropy of the model's next-token distribution at each token of `completion`.

    Returns (token_starts, entropies): token_starts are character offsets into `completion`. The prompt
    and completion are tokenised separately so offsets never straddle the boundary.
    """
    import torch

    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    enc = tokenizer(completion, add_special_tokens=False, return_offsets_mapping=True)
    c_ids, offsets = enc["input_ids"], enc["offset_mapping"]
    if not c_ids:
        return [], []
    ids = torch.tensor([p_ids + c_ids], device=next(model.parameters()).device)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float()
    # The distribution that produced completion token i sits at position len(p_ids) + i - 1.
    first = max(len(p_ids) - 1, 0)
    pred = logits[first:first + len(c_ids)]
    logp = torch.log_softmax(pred, dim=-1)
    ent = -(logp.exp() * logp).sum(-1)
    if len(p_ids) == 0:  # no context for the first token: use the unconditional guess at position 0
        ent = torch.cat([ent[:1], ent[:-1]])
    return [int(a) for a, _ in offsets], [float(x) for x in ent.tolist()]
