"""Batched generation for students: sorted by length, left-padded, with the KV cache.

Sorting prompts by token length before batching keeps padding (wasted compute) small; causal models
need *left* padding so every row's next token sits at the last position. Results come back in the
caller's order. With `num_samples` > 1 each prompt gets that many sampled continuations.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence


@dataclass
class Generations:
    """texts[i][j]: sample j for prompt i; new_tokens counts generated tokens up to and including EOS."""

    texts: list[list[str]]
    new_tokens: list[list[int]]
    seconds: float
    batches: int = 0
    tokens_total: int = field(init=False)

    def __post_init__(self):
        self.tokens_total = sum(sum(n) for n in self.new_tokens)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens_total / self.seconds if self.seconds > 0 else 0.0


@contextmanager
def padded_inference(model, tokenizer, arch: str) -> Iterator[None]:
    """The tokenizer and model set for batched inference, put back as they were afterwards (training may go on
    with the same objects): a pad token, left truncation (an over-long prompt loses its start, never the part
    to continue), left padding for a causal model (every row's next token at the last position; right for
    seq2seq, whose encoder reads the whole input) and eval mode."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    old_side, old_trunc = tokenizer.padding_side, tokenizer.truncation_side
    tokenizer.truncation_side = "left"
    tokenizer.padding_side = "left" if arch == "causal" else "right"
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        tokenizer.padding_side, tokenizer.truncation_side = old_side, old_trunc
        model.train(was_training)


def _stop_ids(tokenizer, model) -> set[int]:
    ids = set()
    for v in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
        if isinstance(v, int):
            ids.add(v)
        elif isinstance(v, (list, tuple)):
            ids.update(int(x) for x in v)
    return ids


def _trim(ids: list[int], stop: set[int], pad_id: int | None) -> tuple[list[int], int]:
    """Tokens before the first stop token, and the number of tokens the model actually produced."""
    for k, t in enumerate(ids):
        if t in stop:
            return ids[:k], k + 1
    n = len(ids)
    while n and pad_id is not None and ids[n - 1] == pad_id and pad_id not in stop:
        n -= 1
    return ids[:n], n


def generate(model, tokenizer, prompts: Sequence[str], *, arch: str = "causal", max_new_tokens: int = 128,
             batch_size: int = 16, num_samples: int = 1, do_sample: bool | None = None,
             temperature: float = 0.7, top_p: float = 0.95, seed: int = 0, max_prompt_tokens: int = 1024,
             on_batch: Callable[[int, int], None] | None = None) -> Generations:
    """Continuations of `prompts`: greedy when num_samples == 1 (unless do_sample), else sampled."""
    import torch

    if arch not in ("causal", "seq2seq"):
        raise ValueError(f"arch must be 'causal' or 'seq2seq', got {arch!r}")
    do_sample = num_samples > 1 if do_sample is None else do_sample
    if num_samples > 1 and not do_sample:
        raise ValueError("several samples per prompt need do_sample=True")
    device = next(model.parameters()).device
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    stop = _stop_ids(tokenizer, model)
    lengths = [len(tokenizer(p, add_special_tokens=True)["input_ids"]) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])
    texts: list[list[str]] = [[] for _ in prompts]
    counts: list[list[int]] = [[] for _ in prompts]
    gen_kwargs = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, num_return_sequences=num_samples,
                      use_cache=True, pad_token_id=tokenizer.pad_token_id)
    if do_sample:
        gen_kwargs.update(temperature=temperature, top_p=top_p)
    else:
        # Greedy decoding: silence sampling defaults a checkpoint's generation_config may carry.
        gen_kwargs.update(temperature=None, top_p=None, top_k=None)
    t0 = time.perf_counter()
    n_batches = 0
    with padded_inference(model, tokenizer, arch):
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            enc = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True, truncation=True,
                            max_length=max_prompt_tokens).to(device)
            if do_sample:
                torch.manual_seed(seed + start)  # each batch reproducible on its own (resume gives the same)
            with torch.inference_mode():
                out = model.generate(**enc, **gen_kwargs)
            new = out[:, enc["input_ids"].shape[1]:] if arch == "causal" else out[:, 1:]
            for row, ids in enumerate(new.tolist()):
                i = idx[row // num_samples]
                kept, n = _trim(ids, stop, tokenizer.pad_token_id)
                texts[i].append(tokenizer.decode(kept, skip_special_tokens=True))
                counts[i].append(n)
            n_batches += 1
            if on_batch:
                on_batch(min(start + batch_size, len(order)), len(order))
    return Generations(texts, counts, time.perf_counter() - t0, n_batches)
