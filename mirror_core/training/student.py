"""The student network before any training: a fresh tiny or T5 model from a config, else from_pretrained.

Both the loop (a fresh run) and `checkpoints.load_model` (a LoRA checkpoint is its base plus the
adapter) build it, so it lives below both of them rather than inside the loop.
"""

from __future__ import annotations

from mirror_core import models
from mirror_core.training import seq2seq
from mirror_core.training.config import is_tiny


def base_model(student: str, arch: str, device: str, seed: int = 0, tokenizer=None):
    """The student before LoRA: tiny/T5 shapes from a config, else from_pretrained (fp32 master weights)."""
    import torch

    if arch == "seq2seq":
        tok = tokenizer or models.load_tokenizer(seq2seq.tokenizer_spec(student))
        return seq2seq.load_seq2seq(student, tok, seed).to(device)
    if is_tiny(student):
        return models.tiny_causal_lm(tokenizer, seed=seed).to(device)
    return models.load_causal_lm(student, device=device, dtype=torch.float32)
